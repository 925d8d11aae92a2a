/* OffsetCommit v2–7 (api key 8): stores consumer positions durably (offset_store.c) and answers only once they are
 * on disk, so an acknowledged commit survives kill -9.
 *   request:  group_id, generation_id, member_id, group_instance_id (v7+), retention_time_ms (v2–4, ignored),
 *             topics[name, partitions[partition_index, committed_offset, committed_leader_epoch (v6+),
 *             committed_metadata]]
 *   response: throttle_time_ms (v3+), topics[name, partitions[partition_index, error_code]]
 * Who may commit is the coordinator's call (sl_group_commit_allowed): members of the current generation, or anyone
 * with generation -1 while the group has no members (consumers that assign partitions themselves). */
#include <errno.h>
#include <stdlib.h>

#include "kafka/codec.h"
#include "kafka/errors.h"
#include "kafka/group_internal.h"
#include "log/topics.h"

typedef struct {
  sl_slice_t name;
  size_t first, count; /* range in parts */
} commit_topic_t;

typedef struct {
  int32_t index;
  int64_t offset;
  int32_t leader_epoch;
  sl_slice_t metadata;
  int16_t error;
  bool stored; /* sent to the offset store: its outcome decides the error */
} commit_part_t;

typedef struct {
  sl_kafka_request_t *req; /* slices below point into req->frame */
  commit_topic_t *topics;
  size_t n_topics;
  commit_part_t *parts;
  size_t n_parts, cap_parts;
} commit_ctx_t;

static void ctx_free(commit_ctx_t *c) {
  free(c->topics);
  free(c->parts);
  free(c);
}

static void respond(commit_ctx_t *c) {
  sl_kafka_request_t *req = c->req;
  sl_buf_t *b = &req->resp;
  if (req->api_version >= 3) kafka_write_int32(b, 0);
  kafka_write_array_len(b, (int32_t)c->n_topics);
  for (size_t t = 0; t < c->n_topics; t++) {
    kafka_write_string(b, (const char *)c->topics[t].name.ptr, c->topics[t].name.len);
    kafka_write_array_len(b, (int32_t)c->topics[t].count);
    for (size_t i = c->topics[t].first; i < c->topics[t].first + c->topics[t].count; i++) {
      kafka_write_int32(b, c->parts[i].index);
      kafka_write_int16(b, c->parts[i].error);
    }
  }
  sl_kafka_request_finish(req);
  ctx_free(c);
}

/* Runs once the commit is durable (or failed); must not touch the broker, which may be gone at shutdown. */
static void commit_done(void *arg, int status) {
  commit_ctx_t *c = arg;
  if (status < 0) {
    /* Kafka maps storage failures to a coordinator error: the client looks the coordinator up again and retries. */
    for (size_t i = 0; i < c->n_parts; i++)
      if (c->parts[i].stored) c->parts[i].error = KAFKA_COORDINATOR_NOT_AVAILABLE;
  }
  respond(c);
}

static int parse(sl_kafka_request_t *req, commit_ctx_t *c, sl_slice_t *group_id, int32_t *generation,
                 sl_slice_t *member_id) {
  sl_reader_t *r = &req->body;
  int16_t v = req->api_version;
  *group_id = kafka_read_string(r);
  *generation = kafka_read_int32(r);
  *member_id = kafka_read_string(r);
  if (v >= 7) (void)kafka_read_string(r); /* group_instance_id */
  if (v <= 4) (void)kafka_read_int64(r);  /* retention_time_ms: offsets are kept until overwritten */
  /* A topic is at least a name (2) and a partition count (4). */
  int32_t nt = kafka_read_array_len(r, 6);
  if (r->err || !group_id->ptr || !member_id->ptr) return -EBADMSG;
  c->topics = calloc(nt > 0 ? (size_t)nt : 1, sizeof(*c->topics));
  if (!c->topics) return -ENOMEM;
  size_t part_min = 4 + 8 + 2 + (v >= 6 ? 4 : 0);
  for (int32_t t = 0; t < nt; t++) {
    commit_topic_t *ct = &c->topics[c->n_topics++];
    ct->name = kafka_read_string(r);
    int32_t np = kafka_read_array_len(r, part_min);
    if (r->err || !ct->name.ptr) return -EBADMSG;
    ct->first = c->n_parts;
    ct->count = np > 0 ? (size_t)np : 0;
    for (int32_t i = 0; i < np; i++) {
      if (c->n_parts == c->cap_parts) {
        size_t cap = c->cap_parts ? c->cap_parts * 2 : 16;
        commit_part_t *p = realloc(c->parts, cap * sizeof(*p));
        if (!p) return -ENOMEM;
        c->parts = p;
        c->cap_parts = cap;
      }
      commit_part_t *p = &c->parts[c->n_parts++];
      p->index = kafka_read_int32(r);
      p->offset = kafka_read_int64(r);
      p->leader_epoch = v >= 6 ? kafka_read_int32(r) : -1;
      p->metadata = kafka_read_string(r);
      p->error = KAFKA_NONE;
      p->stored = false;
      if (r->err) return -EBADMSG;
    }
  }
  return 0;
}

int sl_kafka_handle_offset_commit(sl_kafka_request_t *req) {
  commit_ctx_t *c = calloc(1, sizeof(*c));
  if (!c) return -ENOMEM;
  c->req = req;
  sl_slice_t group_id, member_id;
  int32_t generation;
  int rc = parse(req, c, &group_id, &generation, &member_id);
  if (rc < 0) {
    ctx_free(c);
    return rc;
  }
  sl_group_coordinator_t *gc = sl_groups_of(req);
  int16_t group_error =
      group_id.len == 0 ? KAFKA_INVALID_GROUP_ID : sl_group_commit_allowed(gc, group_id, generation, member_id);
  sl_offset_commit_t *commits = calloc(c->n_parts ? c->n_parts : 1, sizeof(*commits));
  if (!commits) {
    ctx_free(c);
    return -ENOMEM;
  }
  size_t n = 0;
  sl_topics_t *topics = req->broker ? req->broker->topics : NULL;
  for (size_t t = 0; t < c->n_topics; t++) {
    const commit_topic_t *ct = &c->topics[t];
    sl_topic_t *topic = topics ? sl_topics_find(topics, (const char *)ct->name.ptr, ct->name.len) : NULL;
    for (size_t i = ct->first; i < ct->first + ct->count; i++) {
      commit_part_t *p = &c->parts[i];
      if (group_error)
        p->error = group_error;
      else if (topics && (!topic || p->index < 0 || p->index >= topic->partition_count))
        p->error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
      else if (p->metadata.len > SL_GROUP_OFFSET_METADATA_MAX)
        p->error = KAFKA_OFFSET_METADATA_TOO_LARGE;
      if (p->error) continue;
      p->stored = true;
      commits[n++] = (sl_offset_commit_t){ct->name, p->index, p->offset, p->leader_epoch, p->metadata};
    }
  }
  if (n == 0)
    respond(c);
  else
    sl_offset_store_commit(gc->offsets, group_id, commits, n, commit_done, c);
  free(commits);
  return 0;
}
