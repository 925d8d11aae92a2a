/* Pipeline status published to the store for the REST API (src/api/api_internal.h, "sluice_meta"): each stream
 * processor's counters and lag, one row per pipeline and processor and one per partition, refreshed every second
 * when they change (and every 30 s regardless, so `updated` shows the processor is alive), and one row per dead
 * letter (kept 7 days: the table's default_time_to_live).
 *
 *   sluice_meta.pipeline_processors ((pipeline), processor "host:pid") -> topics, keyspace, table, dead-letter
 *                                topic, state, this processor's counters and lag (rows expire a day after their
 *                                last update, so processors that are gone drop out)
 *   sluice_meta.pipeline_lag     ((pipeline), topic, partition) -> committed, high watermark, lag
 *   sluice_meta.dead_letters     ((pipeline), ts DESC, topic, partition, offset) -> field, value, reason, payload
 *
 * Everything here is best effort and bounded: writes are idempotent upserts through the processor's CQL client,
 * at most one status write per pipeline is in flight, dead-letter rows beyond a fixed number in flight are
 * dropped (and counted), and a failure never holds up the records themselves (their offsets are governed by the
 * row writes and the dead-letter topic only). All functions run on the processor's loop thread. */
#ifndef SL_STREAM_STATUS_H
#define SL_STREAM_STATUS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cql/client.h"

typedef struct {
  const char *topic;
  int32_t partition;
  int64_t committed;      /* offset committed by this processor (-1: none yet) */
  int64_t high_watermark; /* -1: unknown */
  int64_t lag;            /* records behind the high watermark (-1: unknown) */
} sl_status_part_t;

typedef struct {
  const char *name, *keyspace, *table, *dead_letter;
  const char *const *topics;
  size_t ntopics;
  const char *state; /* starting, running, stopping, stopped */
  uint64_t consumed, written, dead_lettered, filtered, inflight; /* consumed = written + dead_lettered + filtered
                                                                    + inflight */
  int64_t lag; /* sum of the known partition lags (-1: none known) */
} sl_status_pipe_t;

/* Fills *out for pipeline i (pointers valid until the next call) and up to cap partitions; returns how many. */
typedef size_t (*sl_status_snapshot_fn)(void *arg, size_t i, sl_status_pipe_t *out, sl_status_part_t *parts,
                                        size_t cap);

typedef struct sl_status sl_status_t;

sl_status_t *sl_status_new(uv_loop_t *loop, sl_cql_client_t *cql, size_t npipes, sl_status_snapshot_fn snapshot,
                           void *arg);
/* Creates the keyspace and tables (IF NOT EXISTS) and prepares the upserts, then publishes every second.
 * done(arg, ok) runs once (failure only disables publishing until a later retry succeeds). Call once connected. */
void sl_status_setup(sl_status_t *st, void (*done)(void *arg, bool ok), void *arg);
/* Records one dead letter (payload may be NULL: the record's value is not known). */
void sl_status_dead_letter(sl_status_t *st, const char *pipeline, const char *topic, int32_t partition,
                           int64_t offset, const char *field, const char *value, const char *reason,
                           const void *payload, size_t payload_len);
/* Publishes the final status, waits (bounded) for writes in flight, stops the timer, then calls done(arg). The
 * CQL client must stay open until then. */
void sl_status_finish(sl_status_t *st, void (*done)(void *arg), void *arg);
/* Frees once the CQL client is closed (every callback has run) and the timer is closed. */
void sl_status_free(sl_status_t *st);
uint64_t sl_status_dropped(const sl_status_t *st);

#endif
