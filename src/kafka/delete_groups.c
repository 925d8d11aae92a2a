/* DeleteGroups v0–1 (api key 42): forgets memberless groups and their committed offsets. Admin tools call it
 * (kafka-python's delete_consumer_groups, kafkajs's admin.deleteGroups, confluent-kafka's delete_consumer_groups).
 *   request:  groups_names[string]
 *   response: throttle_time_ms, results[group_id, error_code]
 * A group with members gets NON_EMPTY_GROUP; an unknown one GROUP_ID_NOT_FOUND. The answer waits until the
 * deletions are durable in the offsets log (sl_group_delete). */
#include <errno.h>
#include <stdlib.h>

#include "kafka/codec.h"
#include "kafka/errors.h"
#include "kafka/group_internal.h"

typedef struct {
  sl_kafka_request_t *req;
  int32_t n;
  sl_slice_t *ids;
  int16_t *errors;
  int pending; /* deletions not yet durable, +1 while they are being queued */
} delete_state_t;

typedef struct {
  delete_state_t *st;
  int32_t index;
} delete_wait_t;

static void finish(delete_state_t *st) {
  sl_buf_t *b = &st->req->resp;
  kafka_write_int32(b, 0); /* throttle_time_ms */
  kafka_write_array_len(b, st->n);
  for (int32_t i = 0; i < st->n; i++) {
    kafka_write_string(b, (const char *)st->ids[i].ptr, st->ids[i].len);
    kafka_write_int16(b, st->errors[i]);
  }
  sl_kafka_request_t *req = st->req;
  req->handler_state = NULL;
  free(st->ids);
  free(st->errors);
  free(st);
  sl_kafka_request_finish(req);
}

static void on_deleted(void *arg, int status) {
  delete_wait_t *w = arg;
  delete_state_t *st = w->st;
  if (status != 0) st->errors[w->index] = KAFKA_COORDINATOR_NOT_AVAILABLE; /* not durable: the client may retry */
  free(w);
  if (--st->pending == 0) finish(st);
}

int sl_kafka_handle_delete_groups(sl_kafka_request_t *req) {
  sl_reader_t *r = &req->body;
  int32_t n = kafka_read_array_len(r, 2);
  if (r->err || n < 0) return -EBADMSG;
  delete_state_t *st = calloc(1, sizeof *st);
  if (!st) return -ENOMEM;
  st->req = req;
  st->n = n;
  st->ids = calloc(n ? (size_t)n : 1, sizeof *st->ids);
  st->errors = calloc(n ? (size_t)n : 1, sizeof *st->errors);
  if (!st->ids || !st->errors) abort();
  for (int32_t i = 0; i < n; i++) {
    st->ids[i] = kafka_read_string(r); /* points into the request frame, which outlives the state */
    if (!r->err && !st->ids[i].ptr) r->err = true;
  }
  if (r->err) {
    free(st->ids);
    free(st->errors);
    free(st);
    return -EBADMSG;
  }
  sl_group_coordinator_t *gc = sl_groups_of(req);
  req->handler_state = st;
  st->pending = 1;
  for (int32_t i = 0; i < n; i++) {
    if (!gc || gc->closing) {
      st->errors[i] = KAFKA_COORDINATOR_NOT_AVAILABLE;
      continue;
    }
    delete_wait_t *w = malloc(sizeof *w);
    if (!w) abort();
    *w = (delete_wait_t){st, i};
    st->pending++;
    st->errors[i] = sl_group_delete(gc, st->ids[i], on_deleted, w);
    if (st->errors[i] != KAFKA_NONE) {
      st->pending--;
      free(w);
    }
  }
  if (--st->pending == 0) finish(st);
  return 0;
}
