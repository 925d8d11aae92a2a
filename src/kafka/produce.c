/* Produce v0–7: validate each partition's batch, check idempotent sequences, append, and answer per acks:
 *   acks=0  no response at all;  acks=1  after the write;  acks=-1  after fsync (group commit in the flusher),
 *   unless broker.flush_on_ack is off.
 * Produce v0–2 carry magic 0/1 message sets, which none of the supported clients send (they pick v3+ and magic 2);
 * v0 stays advertised only because librdkafka checks it to enable compression. Such partitions are refused. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/errors.h"
#include "kafka/producers.h"
#include "kafka/record_batch.h"

typedef struct {
  sl_slice_t topic;
  int32_t index;
  int16_t error;
  int64_t base_offset;
  int64_t log_start_offset;
} partition_result_t;

typedef struct {
  sl_kafka_request_t *req;
  partition_result_t *results;
  int32_t result_count;
  int32_t pending_flushes;
} produce_state_t;

static void write_response(sl_kafka_request_t *req, produce_state_t *st) {
  sl_buf_t *out = &req->resp;
  int16_t v = req->api_version;
  /* results are grouped by topic in request order: count the topic runs */
  int32_t topics = 0;
  for (int32_t i = 0; i < st->result_count; i++) {
    if (i == 0 || st->results[i].topic.ptr != st->results[i - 1].topic.ptr) topics++;
  }
  kafka_write_array_len(out, topics);
  for (int32_t i = 0; i < st->result_count;) {
    int32_t j = i;
    while (j < st->result_count && st->results[j].topic.ptr == st->results[i].topic.ptr) j++;
    kafka_write_string(out, (const char *)st->results[i].topic.ptr, st->results[i].topic.len);
    kafka_write_array_len(out, j - i);
    for (int32_t k = i; k < j; k++) {
      const partition_result_t *pr = &st->results[k];
      kafka_write_int32(out, pr->index);
      kafka_write_int16(out, pr->error);
      kafka_write_int64(out, pr->error ? -1 : pr->base_offset);
      if (v >= 2) kafka_write_int64(out, -1); /* log_append_time: -1 for CreateTime topics */
      if (v >= 5) kafka_write_int64(out, pr->log_start_offset);
    }
    i = j;
  }
  if (v >= 1) kafka_write_int32(out, 0); /* throttle_time_ms comes last in Produce */
}

static void complete(produce_state_t *st) {
  sl_kafka_request_t *req = st->req;
  req->handler_state = NULL;
  write_response(req, st);
  free(st->results);
  free(st);
  sl_kafka_request_finish(req);
}

typedef struct {
  produce_state_t *st;
  int32_t result_index;
} flush_wait_t;

static void on_flushed(void *arg, int status) {
  flush_wait_t *w = arg;
  produce_state_t *st = w->st;
  if (status != 0) {
    partition_result_t *pr = &st->results[w->result_index];
    SL_ERROR("broker", "fsync of %.*s-%d failed: %s; answering KAFKA_STORAGE_ERROR", (int)pr->topic.len,
             (const char *)pr->topic.ptr, pr->index, strerror(-status));
    pr->error = status == -ECANCELED ? KAFKA_REQUEST_TIMED_OUT : KAFKA_KAFKA_STORAGE_ERROR;
  }
  free(w);
  if (--st->pending_flushes == 0) complete(st);
}

/* Validates and appends one partition's records; fills *pr. Returns the partition if data was appended. */
static sl_partition_t *produce_partition(sl_kafka_request_t *req, sl_topic_t *topic, sl_slice_t records,
                                         partition_result_t *pr) {
  sl_broker_t *b = req->broker;
  if (pr->index < 0 || pr->index >= topic->partition_count) {
    pr->error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    return NULL;
  }
  sl_partition_t *p = topic->partitions[pr->index];
  pr->log_start_offset = sl_partition_log_start_offset(p);
  if (req->api_version < 3) {
    pr->error = KAFKA_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    return NULL;
  }
  const char *reason = NULL;
  pr->error = records.ptr ? sl_batch_validate(records.ptr, records.len, req->api_version,
                                              b->cfg->message_max_bytes, &reason)
                          : KAFKA_CORRUPT_MESSAGE;
  if (pr->error != KAFKA_NONE) {
    SL_WARN("broker", "refused produce to %.*s-%d: %s (error %d)", (int)pr->topic.len, (const char *)pr->topic.ptr,
            pr->index, reason ? reason : "no records", pr->error);
    return NULL;
  }
  /* records points into req->frame, which we own: the log stamps the base offset into it before writing */
  uint8_t *batch = (uint8_t *)records.ptr;
  if ((int64_t)sl_load_be64(batch + SL_BATCH_PRODUCER_ID) >= 0) {
    int64_t dup_offset;
    switch (sl_producers_check(b->producers, p, batch, &dup_offset, &pr->error)) {
      case SL_SEQ_DUPLICATE:
        pr->base_offset = dup_offset;
        return NULL; /* already durable or in flight to be: Kafka answers duplicates at once as well */
      case SL_SEQ_ERROR:
        SL_WARN("broker", "refused idempotent produce to %.*s-%d: error %d", (int)pr->topic.len,
                (const char *)pr->topic.ptr, pr->index, pr->error);
        return NULL;
      case SL_SEQ_APPEND: break;
    }
  }
  int rc = sl_partition_append(p, batch, records.len, &pr->base_offset);
  if (rc != 0) {
    SL_ERROR("broker", "append to %.*s-%d failed: %s", (int)pr->topic.len, (const char *)pr->topic.ptr, pr->index,
             strerror(-rc));
    pr->error = KAFKA_KAFKA_STORAGE_ERROR;
    return NULL;
  }
  sl_producers_record(b->producers, p, batch);
  return p;
}

int sl_kafka_handle_produce(sl_kafka_request_t *req) {
  sl_broker_t *b = req->broker;
  sl_reader_t *r = &req->body;
  if (req->api_version >= 3) (void)kafka_read_string(r); /* transactional_id: transactions are not supported */
  int16_t acks = kafka_read_int16(r);
  (void)kafka_read_int32(r); /* timeout_ms */
  int32_t topic_count = kafka_read_array_len(r, 6);
  if (r->err) return -1;

  /* First pass: count partitions so results fit in one allocation. Reading twice is cheap: no copies. */
  size_t body_start = r->pos;
  int32_t total = 0;
  for (int32_t t = 0; t < topic_count && !r->err; t++) {
    (void)kafka_read_string(r);
    int32_t parts = kafka_read_array_len(r, 8);
    for (int32_t p = 0; p < parts && !r->err; p++) {
      (void)kafka_read_int32(r);
      (void)kafka_read_bytes(r);
      total++;
    }
  }
  if (r->err) return -1;
  r->pos = body_start;

  produce_state_t *st = calloc(1, sizeof *st);
  partition_result_t *results = calloc(total ? (size_t)total : 1, sizeof *results);
  if (!st || !results) {
    free(st);
    free(results);
    return -1;
  }
  st->req = req;
  st->results = results;
  bool bad_acks = acks != 0 && acks != 1 && acks != -1;
  sl_partition_t **appended = calloc(total ? (size_t)total : 1, sizeof *appended);
  if (!appended) abort();

  int32_t i = 0;
  for (int32_t t = 0; t < topic_count; t++) {
    sl_slice_t name = kafka_read_string(r);
    int32_t parts = kafka_read_array_len(r, 8);
    int16_t topic_error = KAFKA_NONE;
    sl_topic_t *topic = bad_acks ? NULL : sl_broker_topic(b, name, true, &topic_error);
    for (int32_t p = 0; p < parts; p++, i++) {
      partition_result_t *pr = &results[i];
      pr->topic = name;
      pr->index = kafka_read_int32(r);
      sl_slice_t records = kafka_read_bytes(r);
      pr->log_start_offset = -1;
      if (bad_acks) pr->error = KAFKA_INVALID_REQUIRED_ACKS;
      else if (!topic) pr->error = topic_error;
      else appended[i] = produce_partition(req, topic, records, pr);
    }
  }
  st->result_count = total;
  bool any_appended = false;
  for (i = 0; i < total; i++) any_appended |= appended[i] != NULL;
  if (any_appended) sl_fetch_wake(b);

  if (acks == 0) {
    free(appended);
    free(results);
    free(st);
    sl_kafka_request_finish_silently(req);
    return 0;
  }
  if (acks == -1 && b->cfg->flush_on_ack && any_appended) {
    req->handler_state = st;
    st->pending_flushes = 1; /* held until every request is queued, so no callback completes us early */
    for (i = 0; i < total; i++) {
      if (!appended[i]) continue;
      flush_wait_t *w = malloc(sizeof *w);
      if (!w) abort();
      w->st = st;
      w->result_index = i;
      st->pending_flushes++;
      sl_flusher_request(b->flusher, appended[i], on_flushed, w);
    }
    free(appended);
    if (--st->pending_flushes == 0) complete(st);
    return 0;
  }
  free(appended);
  complete(st);
  return 0;
}
