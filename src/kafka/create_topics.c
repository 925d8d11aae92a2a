/* CreateTopics v0–4. -1 partitions or replication factor means the broker default on every version (kafkajs sends
 * -1/-1 even on v3). With one broker the only valid replication factor is 1. Topic configs are the topic's own
 * settings (topic_configs.c); one this broker cannot honour fails that topic with INVALID_CONFIG. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/errors.h"

static void write_result(sl_buf_t *out, int16_t v, sl_slice_t name, int16_t error, const char *message) {
  kafka_write_string(out, name.ptr ? (const char *)name.ptr : "", name.len);
  kafka_write_int16(out, error);
  if (v >= 1) kafka_write_cstring(out, error ? message : NULL);
}

int sl_kafka_handle_create_topics(sl_kafka_request_t *req) {
  sl_broker_t *b = req->broker;
  sl_reader_t *r = &req->body;
  int16_t v = req->api_version;
  int32_t topic_count = kafka_read_array_len(r, 14);
  if (r->err) return -1;
  /* validate_only sits after the topics: find it first */
  size_t topics_start = r->pos;
  for (int32_t t = 0; t < topic_count && !r->err; t++) {
    (void)kafka_read_string(r);
    (void)kafka_read_int32(r);
    (void)kafka_read_int16(r);
    int32_t assignments = kafka_read_array_len(r, 8);
    for (int32_t a = 0; a < assignments && !r->err; a++) {
      (void)kafka_read_int32(r);
      int32_t brokers = kafka_read_array_len(r, 4);
      (void)sl_read_bytes(r, (size_t)brokers * 4);
    }
    int32_t configs = kafka_read_array_len(r, 4);
    for (int32_t c = 0; c < configs && !r->err; c++) {
      (void)kafka_read_string(r);
      (void)kafka_read_string(r);
    }
  }
  (void)kafka_read_int32(r); /* timeout_ms */
  bool validate_only = v >= 1 ? kafka_read_bool(r) : false;
  if (r->err) return -1;
  r->pos = topics_start;

  sl_buf_t *out = &req->resp;
  if (v >= 2) kafka_write_int32(out, 0); /* throttle_time_ms */
  kafka_write_array_len(out, topic_count);
  for (int32_t t = 0; t < topic_count; t++) {
    sl_slice_t name = kafka_read_string(r);
    int32_t partitions = kafka_read_int32(r);
    int16_t replication = kafka_read_int16(r);
    int32_t assignments = kafka_read_array_len(r, 8);
    int32_t assigned_partitions = assignments;
    for (int32_t a = 0; a < assignments; a++) {
      (void)kafka_read_int32(r);
      int32_t brokers = kafka_read_array_len(r, 4);
      (void)sl_read_bytes(r, (size_t)brokers * 4);
    }
    int32_t configs = kafka_read_array_len(r, 4);
    sl_topic_overrides_t overrides;
    sl_topic_overrides_clear(&overrides);
    char message[300];
    int16_t config_error = KAFKA_NONE;
    for (int32_t c = 0; c < configs; c++) {
      sl_slice_t key = kafka_read_string(r), value = kafka_read_string(r);
      if (config_error == KAFKA_NONE)
        config_error = sl_kafka_topic_config_set(&overrides, key, value, message, sizeof message);
    }
    if (partitions == -1) partitions = assigned_partitions > 0 ? assigned_partitions : (int32_t)b->cfg->num_partitions;
    if (!name.ptr || !sl_topic_name_valid((const char *)name.ptr, name.len)) {
      write_result(out, v, name, KAFKA_INVALID_TOPIC_EXCEPTION,
                   "Topic name is illegal: use 1-249 characters of [a-zA-Z0-9._-], not '.' or '..'");
      continue;
    }
    if (sl_topics_find(b->topics, (const char *)name.ptr, name.len)) {
      snprintf(message, sizeof message, "Topic '%.*s' already exists.", (int)name.len, (const char *)name.ptr);
      write_result(out, v, name, KAFKA_TOPIC_ALREADY_EXISTS, message);
      continue;
    }
    if (partitions <= 0 || partitions > 10000) {
      snprintf(message, sizeof message, "Number of partitions must be between 1 and 10000 (got %d).", partitions);
      write_result(out, v, name, KAFKA_INVALID_PARTITIONS, message);
      continue;
    }
    if (replication != -1 && replication != 1) {
      snprintf(message, sizeof message, "Replication factor %d is larger than the 1 available broker.", replication);
      write_result(out, v, name, KAFKA_INVALID_REPLICATION_FACTOR, message);
      continue;
    }
    if (config_error != KAFKA_NONE) {
      write_result(out, v, name, config_error, message);
      continue;
    }
    if (validate_only) {
      write_result(out, v, name, KAFKA_NONE, NULL);
      continue;
    }
    int rc = sl_topics_create_with(b->topics, (const char *)name.ptr, name.len, partitions, &overrides, NULL);
    if (rc != 0) {
      snprintf(message, sizeof message, "Creating the topic failed: %s", strerror(-rc));
      write_result(out, v, name, rc == -EEXIST ? KAFKA_TOPIC_ALREADY_EXISTS : KAFKA_INVALID_REQUEST, message);
      continue;
    }
    SL_INFO("broker", "created topic '%.*s' with %d partition(s)", (int)name.len, (const char *)name.ptr, partitions);
    write_result(out, v, name, KAFKA_NONE, NULL);
  }
  sl_kafka_request_finish(req);
  return 0;
}
