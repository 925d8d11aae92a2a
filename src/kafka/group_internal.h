/* Internals of the consumer-group coordinator, shared by group_coordinator.c (the membership state machine),
 * offset_store.c (durable committed offsets) and the per-API handler files (join_group.c, sync_group.c,
 * heartbeat.c, leave_group.c, offset_commit.c, offset_fetch.c, find_coordinator.c), which only parse requests
 * and write responses. Everything here runs on the broker's loop thread, except the offset store's file I/O,
 * which it does on the libuv thread pool. */
#ifndef SL_KAFKA_GROUP_INTERNAL_H
#define SL_KAFKA_GROUP_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "kafka/group.h"

/* Kafka's OFFSET_METADATA_TOO_LARGE; errors.h does not list it yet. */
/* Kafka's offset.metadata.max.bytes default. */
#define SL_GROUP_OFFSET_METADATA_MAX 4096

/* ---- committed offsets (offset_store.c) ---- */

typedef struct sl_offset_store sl_offset_store_t;

/* One committed offset as stored. Strings are owned by the store and NUL-terminated. */
typedef struct {
  char *topic;
  size_t topic_len;
  int32_t partition;
  int64_t offset;
  int32_t leader_epoch; /* -1 when the client sent none */
  char *metadata;       /* NULL = null */
  size_t metadata_len;
  int64_t commit_ms;
} sl_offset_entry_t;

/* One offset to commit, pointing into the request (copied by the store). */
typedef struct {
  sl_slice_t topic;
  int32_t partition;
  int64_t offset;
  int32_t leader_epoch;
  sl_slice_t metadata; /* ptr NULL = null */
} sl_offset_commit_t;

/* status 0: durable and visible to sl_offset_store_get; negative errno: nothing was stored (-ECANCELED when the
 * store closed first). Runs on the loop thread, never from inside sl_offset_store_commit. */
typedef void (*sl_offset_commit_cb)(void *arg, int status);

/* Opens (creating) `dir`/offsets.log, replays it, truncates a torn or corrupt tail, and compacts the file when it
 * is mostly overwritten values. Blocking: call before serving. Returns 0 or a negative errno. */
int sl_offset_store_open(uv_loop_t *loop, const char *dir, sl_offset_store_t **out);
/* Commits not yet handed to the disk get -ECANCELED; one already being written completes and then the store frees
 * itself: the loop must run afterwards. */
void sl_offset_store_close(sl_offset_store_t *s);
/* Appends the commits as one record, fdatasyncs off the loop thread (several commits share one fsync), applies
 * them to the in-memory map and then calls cb. The store copies what it needs. */
void sl_offset_store_commit(sl_offset_store_t *s, sl_slice_t group, const sl_offset_commit_t *commits, size_t n,
                            sl_offset_commit_cb cb, void *arg);
const sl_offset_entry_t *sl_offset_store_get(const sl_offset_store_t *s, sl_slice_t group, sl_slice_t topic,
                                             int32_t partition);
/* Forgets every committed offset of a group, durably (the same queue, fsync and callback as a commit). */
void sl_offset_store_delete_group(sl_offset_store_t *s, sl_slice_t group, sl_offset_commit_cb cb, void *arg);
/* Whether a commit or deletion of the group is queued or being written (not yet in the map). */
bool sl_offset_store_pending(const sl_offset_store_t *s, sl_slice_t group);
/* The wall-clock time of the group's newest commit (INT64_MIN: no committed offsets). */
int64_t sl_offset_store_newest_commit_ms(const sl_offset_store_t *s, sl_slice_t group);
/* Calls fn for every group with committed offsets (in no particular order; fn must not change the store). */
void sl_offset_store_each_group(const sl_offset_store_t *s, void (*fn)(void *arg, sl_slice_t group), void *arg);
/* Every committed offset of a group, sorted by (topic, partition); valid until the next commit completes. */
size_t sl_offset_store_list(const sl_offset_store_t *s, sl_slice_t group, const sl_offset_entry_t **out);
/* Rewrite the file once it exceeds this many bytes and four times its live contents (default 16 MiB; tests lower
 * it). */
void sl_offset_store_set_compact_bytes(sl_offset_store_t *s, uint64_t bytes);
uint64_t sl_offset_store_file_bytes(const sl_offset_store_t *s);

/* ---- membership (group_coordinator.c) ---- */

typedef enum {
  SL_GROUP_EMPTY,
  SL_GROUP_PREPARING_REBALANCE,
  SL_GROUP_COMPLETING_REBALANCE,
  SL_GROUP_STABLE,
  SL_GROUP_DEAD,
} sl_group_state_t;

typedef struct {
  char *name;
  uint8_t *metadata;
  size_t metadata_len;
} sl_group_protocol_t;

typedef struct sl_group sl_group_t;

typedef struct sl_group_member {
  sl_group_t *group;
  char *member_id;
  char *client_id;
  char *client_host;
  char *group_instance_id; /* NULL: static membership is not implemented, members are dynamic */
  int32_t session_timeout_ms;
  int32_t rebalance_timeout_ms;
  char *protocol_type;
  sl_group_protocol_t *protocols; /* in the member's order of preference */
  size_t n_protocols;
  sl_kafka_request_t *join_req; /* parked JoinGroup, answered when the rebalance completes */
  sl_kafka_request_t *sync_req; /* parked SyncGroup, answered when the leader's assignment arrives */
  uint8_t *assignment;
  size_t assignment_len;
  uv_timer_t session_timer; /* the member is freed in this handle's close callback */
} sl_group_member_t;

/* A member id handed out with MEMBER_ID_REQUIRED that has not joined with it yet. */
typedef struct sl_group_pending {
  struct sl_group_pending *next;
  sl_group_t *group;
  char *member_id;
  uv_timer_t timer;
} sl_group_pending_t;

struct sl_group {
  sl_group_coordinator_t *gc;
  struct sl_group *hash_next;
  char *group_id;
  size_t group_id_len;
  sl_group_state_t state;
  int32_t generation;
  char *protocol_type; /* of the current members; NULL while Empty */
  char *last_protocol_type; /* of the members before the group became Empty (ListGroups shows it, as Kafka does) */
  char *protocol_name; /* chosen at the last completed rebalance; NULL while Empty */
  sl_group_member_t *leader;
  sl_group_member_t **members; /* join order */
  size_t n_members, cap_members;
  sl_group_pending_t *pending;
  uv_timer_t rebalance_timer; /* initial delay, then rebalance timeout; the group is freed in its close cb */
  bool in_initial_delay;
  uint64_t initial_delay_end; /* uv_now() bound for extending the initial delay */
};

struct sl_group_coordinator {
  sl_broker_t *broker;
  uv_loop_t *loop;
  sl_offset_store_t *offsets;
  int64_t initial_rebalance_delay_ms;
  int64_t min_session_timeout_ms;
  int64_t max_session_timeout_ms;
  sl_group_t **buckets;
  size_t n_buckets, n_groups;
  int64_t offsets_retention_ms; /* 0: committed offsets never expire */
  uv_timer_t *expiry_timer;     /* NULL without retention; closed (and freed) by sl_groups_close */
  bool closing;
};

/* Opens a coordinator with explicit settings (sl_groups_open takes them from the broker config; tests use this). */
int sl_groups_open_dir(sl_broker_t *b, uv_loop_t *loop, const char *groups_dir, int64_t initial_delay_ms,
                       int64_t min_session_ms, int64_t max_session_ms, sl_group_coordinator_t **out);

/* The coordinator of the request's broker, or NULL while it is not loaded (answer COORDINATOR_NOT_AVAILABLE). */
sl_group_coordinator_t *sl_groups_of(const sl_kafka_request_t *req);

sl_group_t *sl_group_find(sl_group_coordinator_t *gc, sl_slice_t group_id);

typedef struct {
  sl_slice_t name;
  sl_slice_t metadata;
} sl_join_protocol_t;

typedef struct {
  sl_slice_t group_id;
  int32_t session_timeout_ms;
  int32_t rebalance_timeout_ms; /* JoinGroup v0: the session timeout */
  sl_slice_t member_id;
  sl_slice_t group_instance_id;
  sl_slice_t protocol_type;
  const sl_join_protocol_t *protocols;
  size_t n_protocols;
} sl_join_params_t;

/* Takes charge of req: answers it now or parks it until the rebalance completes. */
void sl_group_join(sl_group_coordinator_t *gc, sl_kafka_request_t *req, const sl_join_params_t *p);

typedef struct {
  sl_slice_t member_id;
  sl_slice_t assignment;
} sl_sync_assignment_t;

/* Takes charge of req: answers it now or parks it until the leader's assignment arrives. */
void sl_group_sync(sl_group_coordinator_t *gc, sl_kafka_request_t *req, sl_slice_t group_id, int32_t generation,
                   sl_slice_t member_id, const sl_sync_assignment_t *assignments, size_t n_assignments);

/* These return a Kafka error code. */
int16_t sl_group_heartbeat(sl_group_coordinator_t *gc, sl_slice_t group_id, int32_t generation, sl_slice_t member_id);
int16_t sl_group_leave(sl_group_coordinator_t *gc, sl_slice_t group_id, sl_slice_t member_id);
/* DeleteGroups: NON_EMPTY_GROUP while the group has members, GROUP_ID_NOT_FOUND when neither the group nor committed
 * offsets exist; otherwise forgets the group and queues the durable deletion of its offsets, then cb(arg, status). */
int16_t sl_group_delete(sl_group_coordinator_t *gc, sl_slice_t group_id, sl_offset_commit_cb cb, void *arg);
/* Offsets retention, as Kafka's offsets.retention.minutes: every check_ms, the offsets of a group without members
 * whose newest commit is older than retention_ms are deleted, and memberless groups without offsets forgotten. */
void sl_groups_set_retention(sl_group_coordinator_t *gc, int64_t retention_ms, int64_t check_ms);
/* May this (generation, member) commit offsets for the group now? Creates an absent group for generation < 0. */
int16_t sl_group_commit_allowed(sl_group_coordinator_t *gc, sl_slice_t group_id, int32_t generation,
                                sl_slice_t member_id);

/* Protocol selection: among the protocols every member supports, the one most members list first among those
 * candidates; ties go to the earlier one in the first member's preference order. NULL if no protocol is common. */
const char *sl_group_select_protocol(sl_group_member_t *const *members, size_t n);

const char *sl_group_state_name(sl_group_state_t s);

/* ---- response writers (the handler files); they write req->resp and do not finish the request ---- */

/* Error responses pass g NULL. With members, the group's members with their metadata for the chosen protocol are
 * listed (the leader's response). */
void sl_join_group_write_response(sl_kafka_request_t *req, int16_t error, const sl_group_t *g, const char *member_id,
                                  bool with_members);
void sl_sync_group_write_response(sl_kafka_request_t *req, int16_t error, const uint8_t *assignment, size_t len);

/* FNV-1a, for the group and offset hash tables. */
static inline uint64_t sl_group_hash(const void *data, size_t len) {
  const uint8_t *p = (const uint8_t *)data;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

#endif
