/* CreatePartitions v0–1 (api key 37): grows topics to more partitions, as Kafka does (never fewer), so a pipeline
 * can be spread over more processors. kafka-python's create_partitions, kafkajs's admin.createPartitions and
 * confluent-kafka's create_partitions send it.
 *   request:  topics[name, count, assignments (nullable)[broker_ids[i32]]], timeout_ms, validate_only
 *   response: throttle_time_ms, results[name, error_code, error_message]
 * On this single broker every new partition is led by this broker: an assignment must name exactly this broker
 * once per new partition (INVALID_REPLICA_ASSIGNMENT otherwise). A topic named twice gets INVALID_REQUEST. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/errors.h"

typedef struct {
  sl_slice_t name;
  int32_t count;
  int32_t nassign; /* -1: none given */
  bool assignment_ok;
} topic_req_t;

int sl_kafka_handle_create_partitions(sl_kafka_request_t *req) {
  sl_broker_t *b = req->broker;
  sl_reader_t *r = &req->body;
  int32_t n = kafka_read_array_len(r, 2 + 4 + 4);
  if (r->err || n < 0) return -EBADMSG;
  topic_req_t *ts = calloc(n ? (size_t)n : 1, sizeof *ts);
  if (!ts) return -ENOMEM;
  for (int32_t i = 0; i < n && !r->err; i++) {
    ts[i].name = kafka_read_string(r);
    ts[i].count = kafka_read_int32(r);
    ts[i].nassign = kafka_read_array_len(r, 4);
    ts[i].assignment_ok = true;
    for (int32_t a = 0; a < ts[i].nassign && !r->err; a++) {
      int32_t nb = kafka_read_array_len(r, 4);
      for (int32_t k = 0; k < nb && !r->err; k++) {
        if (kafka_read_int32(r) != b->node_id) ts[i].assignment_ok = false;
      }
      if (nb != 1) ts[i].assignment_ok = false;
    }
    if (!r->err && !ts[i].name.ptr) r->err = true;
  }
  (void)kafka_read_int32(r); /* timeout_ms: everything happens before the answer */
  bool validate_only = kafka_read_bool(r);
  if (r->err) {
    free(ts);
    return -EBADMSG;
  }
  sl_buf_t *out = &req->resp;
  kafka_write_int32(out, 0); /* throttle_time_ms */
  kafka_write_array_len(out, n);
  for (int32_t i = 0; i < n; i++) {
    topic_req_t *t = &ts[i];
    int16_t error = KAFKA_NONE;
    char msg[300] = "";
    bool duplicate = false;
    for (int32_t j = 0; j < n; j++)
      if (j != i && ts[j].name.len == t->name.len && !memcmp(ts[j].name.ptr, t->name.ptr, t->name.len))
        duplicate = true;
    sl_topic_t *topic = sl_topics_find(b->topics, (const char *)t->name.ptr, t->name.len);
    if (duplicate) {
      error = KAFKA_INVALID_REQUEST;
      snprintf(msg, sizeof msg, "Duplicate topic in request.");
    } else if (!topic) {
      error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
      snprintf(msg, sizeof msg, "The topic '%.*s' does not exist.", (int)t->name.len, (const char *)t->name.ptr);
    } else if (t->count <= topic->partition_count) {
      error = KAFKA_INVALID_PARTITIONS;
      snprintf(msg, sizeof msg, "Topic currently has %d partitions, which is higher than or equal to the requested %d.",
               (int)topic->partition_count, (int)t->count);
    } else if (t->nassign >= 0 && (!t->assignment_ok || t->nassign != t->count - topic->partition_count)) {
      error = KAFKA_INVALID_REPLICA_ASSIGNMENT;
      snprintf(msg, sizeof msg, "Each of the %d new partitions must be assigned to broker %d alone.",
               (int)(t->count - topic->partition_count), (int)b->node_id);
    } else if (!validate_only) {
      int rc = sl_topics_add_partitions(b->topics, (const char *)t->name.ptr, t->name.len, t->count);
      if (rc == -EINVAL) {
        error = KAFKA_INVALID_PARTITIONS;
        snprintf(msg, sizeof msg, "Cannot grow the topic to %d partitions.", (int)t->count);
      } else if (rc < 0) {
        error = KAFKA_KAFKA_STORAGE_ERROR;
        snprintf(msg, sizeof msg, "Creating partitions failed: %s", strerror(-rc));
      }
    }
    kafka_write_string(out, (const char *)t->name.ptr, t->name.len);
    kafka_write_int16(out, error);
    kafka_write_cstring(out, error ? msg : NULL);
  }
  free(ts);
  sl_kafka_request_finish(req);
  return 0;
}
