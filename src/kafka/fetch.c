/* Fetch v4–11 with long polling.
 *
 *   request ──evaluate: enough bytes (>= min_bytes), an error, or max_wait 0?──yes──> respond
 *                 │ no
 *                 v
 *              parked (timer = max_wait) ──append to any partition: sl_fetch_wake──> re-check ──> respond
 *                                          └─timer fires / shutdown: sl_fetch_drain──────────────> respond
 *
 * A response holds whole batches, starting with the batch that contains fetch_offset (compressed batches legally
 * start before it; clients skip the records below). The first batch of the first non-empty partition is sent
 * whole even above max_bytes or partition_max_bytes (KIP-74), so a large record never wedges a consumer. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/errors.h"

typedef struct {
  sl_slice_t topic;
  int32_t index;
  int32_t current_leader_epoch;
  int64_t fetch_offset;
  int32_t partition_max_bytes;
} fetch_partition_t;

struct sl_fetch_waiter {
  sl_kafka_request_t *req;
  sl_broker_t *broker;
  int32_t max_wait_ms, min_bytes, max_bytes;
  int8_t isolation_level;
  fetch_partition_t *parts;
  int32_t part_count;
  uv_timer_t timer;
  sl_fetch_waiter_t *prev, *next; /* in broker->fetch_waiters while parked */
  bool parked;
};

/* Whether a fetch has something to return now (data or an error), decided without reading any data. */
static bool has_new_data(sl_fetch_waiter_t *w) {
  for (int32_t i = 0; i < w->part_count; i++) {
    const fetch_partition_t *fp = &w->parts[i];
    sl_topic_t *t = sl_topics_find(w->broker->topics, (const char *)fp->topic.ptr, fp->topic.len);
    if (!t || fp->index < 0 || fp->index >= t->partition_count) return true; /* an error to report */
    sl_partition_t *p = t->partitions[fp->index];
    int64_t leo = sl_partition_log_end_offset(p);
    if (fp->fetch_offset != leo) return true; /* data, or OFFSET_OUT_OF_RANGE */
  }
  return false;
}

/* Writes the complete response body. Returns the number of record bytes included; *had_error tells whether any
 * partition carries an error (errors are answered at once, whatever min_bytes says). */
static size_t write_response(sl_fetch_waiter_t *w, bool *had_error) {
  *had_error = false;
  sl_kafka_request_t *req = w->req;
  sl_buf_t *out = &req->resp;
  int16_t v = req->api_version;
  kafka_write_int32(out, 0); /* throttle_time_ms */
  if (v >= 7) {
    kafka_write_int16(out, KAFKA_NONE);
    kafka_write_int32(out, 0); /* session_id: fetch sessions are not kept; clients send full fetches */
  }
  int32_t topics = 0;
  for (int32_t i = 0; i < w->part_count; i++) {
    if (i == 0 || w->parts[i].topic.ptr != w->parts[i - 1].topic.ptr) topics++;
  }
  kafka_write_array_len(out, topics);
  size_t total = 0;
  bool first_whole = true;
  for (int32_t i = 0; i < w->part_count;) {
    int32_t j = i;
    while (j < w->part_count && w->parts[j].topic.ptr == w->parts[i].topic.ptr) j++;
    kafka_write_string(out, (const char *)w->parts[i].topic.ptr, w->parts[i].topic.len);
    kafka_write_array_len(out, j - i);
    sl_topic_t *t = sl_topics_find(w->broker->topics, (const char *)w->parts[i].topic.ptr, w->parts[i].topic.len);
    for (int32_t k = i; k < j; k++) {
      const fetch_partition_t *fp = &w->parts[k];
      sl_partition_t *p = t && fp->index >= 0 && fp->index < t->partition_count ? t->partitions[fp->index] : NULL;
      int16_t error = KAFKA_NONE;
      int64_t hwm = -1, log_start = -1;
      if (!p) error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
      else if (fp->current_leader_epoch > 0) error = KAFKA_UNKNOWN_LEADER_EPOCH; /* ours is always 0 */
      if (p) {
        hwm = sl_partition_log_end_offset(p);
        log_start = sl_partition_log_start_offset(p);
      }
      kafka_write_int32(out, fp->index);
      size_t error_pos = out->len;
      kafka_write_int16(out, error);
      kafka_write_int64(out, hwm);
      kafka_write_int64(out, hwm); /* last_stable_offset: no transactions, so the high watermark */
      if (v >= 5) kafka_write_int64(out, log_start);
      if (w->isolation_level == 1) kafka_write_array_len(out, 0); /* aborted_transactions */
      else kafka_write_array_len(out, -1);
      if (v >= 11) kafka_write_int32(out, -1); /* preferred_read_replica */
      size_t len_pos = out->len;
      kafka_write_int32(out, 0);
      size_t n = 0;
      if (error == KAFKA_NONE) {
        size_t budget = (size_t)fp->partition_max_bytes;
        size_t left = w->max_bytes > 0 && (size_t)w->max_bytes > total ? (size_t)w->max_bytes - total : 0;
        if (left < budget) budget = left;
        int rc = sl_partition_read(p, fp->fetch_offset, budget, first_whole, out, &n);
        if (rc == SL_LOG_OUT_OF_RANGE) error = KAFKA_OFFSET_OUT_OF_RANGE;
        else if (rc != 0) error = KAFKA_KAFKA_STORAGE_ERROR;
        if (error != KAFKA_NONE) {
          out->len = len_pos + 4;
          n = 0;
          out->data[error_pos] = (uint8_t)(error >> 8);
          out->data[error_pos + 1] = (uint8_t)error;
        }
      }
      if (error != KAFKA_NONE) *had_error = true;
      if (n > 0) first_whole = false;
      total += n;
      sl_buf_patch_be32(out, len_pos, (uint32_t)n);
    }
    i = j;
  }
  return total;
}

static void waiter_free_cb(uv_handle_t *h) {
  sl_fetch_waiter_t *w = h->data;
  free(w->parts);
  free(w);
}

static void unpark(sl_fetch_waiter_t *w) {
  if (!w->parked) return;
  w->parked = false;
  if (w->prev) w->prev->next = w->next;
  else w->broker->fetch_waiters = w->next;
  if (w->next) w->next->prev = w->prev;
}

/* Answers and frees a parked waiter. */
static void respond_parked(sl_fetch_waiter_t *w) {
  unpark(w);
  uv_timer_stop(&w->timer);
  sl_kafka_request_t *req = w->req;
  req->handler_state = NULL;
  bool had_error;
  if (req->conn) write_response(w, &had_error);
  sl_kafka_request_finish(req);
  uv_close((uv_handle_t *)&w->timer, waiter_free_cb);
}

static void on_timeout(uv_timer_t *t) { respond_parked(t->data); }

/* Whether a parked fetch can answer now: any error or new data when min_bytes <= 1 (what every client sends);
 * otherwise only once min_bytes of batches are readable, which takes a trial read (rare: no client default). */
static bool ready_to_answer(sl_fetch_waiter_t *w) {
  if (!has_new_data(w)) return false;
  if (w->min_bytes <= 1) return true;
  sl_kafka_request_t *req = w->req;
  size_t mark = req->resp.len;
  bool had_error;
  size_t got = write_response(w, &had_error);
  req->resp.len = mark; /* discard the trial: the real answer is written when we respond */
  return had_error || got >= (size_t)w->min_bytes;
}

void sl_fetch_wake(sl_broker_t *b) {
  sl_fetch_waiter_t *w = b->fetch_waiters;
  while (w) {
    sl_fetch_waiter_t *next = w->next;
    if (!w->req->conn || ready_to_answer(w)) respond_parked(w);
    w = next;
  }
}

void sl_fetch_drain(sl_broker_t *b) {
  while (b->fetch_waiters) respond_parked(b->fetch_waiters);
}

int sl_kafka_handle_fetch(sl_kafka_request_t *req) {
  sl_broker_t *b = req->broker;
  sl_reader_t *r = &req->body;
  int16_t v = req->api_version;
  (void)kafka_read_int32(r); /* replica_id */
  int32_t max_wait = kafka_read_int32(r);
  int32_t min_bytes = kafka_read_int32(r);
  int32_t max_bytes = kafka_read_int32(r);
  int8_t isolation = kafka_read_int8(r);
  int32_t session_id = 0, session_epoch = -1;
  if (v >= 7) {
    session_id = kafka_read_int32(r);
    session_epoch = kafka_read_int32(r);
  }
  int32_t topic_count = kafka_read_array_len(r, 6);
  if (r->err) return -1;

  /* count partitions, then fill */
  size_t start = r->pos;
  int32_t total = 0;
  size_t part_size = 4 + (v >= 9 ? 4 : 0) + 8 + (v >= 5 ? 8 : 0) + 4;
  for (int32_t t = 0; t < topic_count && !r->err; t++) {
    (void)kafka_read_string(r);
    int32_t parts = kafka_read_array_len(r, part_size);
    if (!r->err) total += parts;
    (void)sl_read_bytes(r, (size_t)parts * part_size);
  }
  if (r->err) return -1;
  r->pos = start;
  sl_fetch_waiter_t *w = calloc(1, sizeof *w);
  if (!w) return -1;
  w->parts = calloc(total ? (size_t)total : 1, sizeof *w->parts);
  if (!w->parts) {
    free(w);
    return -1;
  }
  int32_t i = 0;
  for (int32_t t = 0; t < topic_count; t++) {
    sl_slice_t name = kafka_read_string(r);
    int32_t parts = kafka_read_array_len(r, part_size);
    for (int32_t p = 0; p < parts; p++, i++) {
      fetch_partition_t *fp = &w->parts[i];
      fp->topic = name;
      fp->index = kafka_read_int32(r);
      fp->current_leader_epoch = v >= 9 ? kafka_read_int32(r) : -1;
      fp->fetch_offset = kafka_read_int64(r);
      if (v >= 5) (void)kafka_read_int64(r); /* log_start_offset: only followers send it */
      fp->partition_max_bytes = kafka_read_int32(r);
      if (fp->partition_max_bytes < 0) fp->partition_max_bytes = 0;
    }
  }
  if (v >= 7) {
    int32_t forgotten = kafka_read_array_len(r, 6);
    for (int32_t f = 0; f < forgotten && !r->err; f++) {
      (void)kafka_read_string(r);
      int32_t n = kafka_read_array_len(r, 4);
      (void)sl_read_bytes(r, (size_t)n * 4);
    }
  }
  if (v >= 11) (void)kafka_read_string(r); /* rack_id */
  if (r->err) {
    free(w->parts);
    free(w);
    return -1;
  }
  w->req = req;
  w->broker = b;
  w->part_count = total;
  w->max_wait_ms = max_wait < 0 ? 0 : max_wait;
  w->min_bytes = min_bytes;
  w->max_bytes = max_bytes;
  w->isolation_level = isolation;

  if (v >= 7 && (session_id != 0 || session_epoch > 0)) {
    /* We keep no fetch sessions: a client continuing one must start over with a full fetch. */
    kafka_write_int32(&req->resp, 0);
    kafka_write_int16(&req->resp, KAFKA_FETCH_SESSION_ID_NOT_FOUND);
    kafka_write_int32(&req->resp, 0);
    kafka_write_array_len(&req->resp, 0);
    free(w->parts);
    free(w);
    sl_kafka_request_finish(req);
    return 0;
  }

  /* Answer now when there is something to say or nothing to wait for; otherwise park. */
  bool answer_now = w->max_wait_ms == 0 || min_bytes <= 0 || b->stopping || ready_to_answer(w);
  if (answer_now) {
    bool had_error;
    write_response(w, &had_error);
    free(w->parts);
    free(w);
    sl_kafka_request_finish(req);
    return 0;
  }
  req->handler_state = w;
  w->parked = true;
  w->next = b->fetch_waiters;
  if (w->next) w->next->prev = w;
  b->fetch_waiters = w;
  uv_timer_init(b->loop, &w->timer);
  w->timer.data = w;
  uv_timer_start(&w->timer, on_timeout, (uint64_t)w->max_wait_ms, 0);
  return 0;
}
