/* Metadata v0–6: this broker as the only broker and controller, and the topics asked for (or all).
 * v0 sends an empty array for "all topics"; v1+ sends null for all and [] for none (librdkafka's broker-only
 * refresh). v4+ carries allow_auto_topic_creation; before v4 auto-creation follows the broker setting alone. */
#include <stdlib.h>
#include <string.h>

#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/errors.h"

static void write_topic(sl_buf_t *out, int16_t v, int16_t error, sl_slice_t name, const sl_topic_t *t, int32_t node) {
  kafka_write_int16(out, error);
  kafka_write_string(out, (const char *)name.ptr, name.len);
  if (v >= 1) kafka_write_bool(out, false); /* is_internal */
  int32_t n = t ? t->partition_count : 0;
  kafka_write_array_len(out, n);
  for (int32_t p = 0; p < n; p++) {
    kafka_write_int16(out, KAFKA_NONE);
    kafka_write_int32(out, p);
    kafka_write_int32(out, node); /* leader */
    kafka_write_array_len(out, 1); /* replicas */
    kafka_write_int32(out, node);
    kafka_write_array_len(out, 1); /* isr */
    kafka_write_int32(out, node);
    if (v >= 5) kafka_write_array_len(out, 0); /* offline_replicas */
  }
}

int sl_kafka_handle_metadata(sl_kafka_request_t *req) {
  sl_broker_t *b = req->broker;
  sl_reader_t *r = &req->body;
  int16_t v = req->api_version;
  int32_t topic_count = kafka_read_array_len(r, 2);
  size_t topics_start = r->pos;
  for (int32_t i = 0; i < topic_count && !r->err; i++) (void)kafka_read_string(r);
  bool allow_create = true;
  if (v >= 4) allow_create = kafka_read_bool(r);
  if (r->err) return -1;
  bool all = topic_count < 0 || (v == 0 && topic_count == 0);

  sl_buf_t *out = &req->resp;
  if (v >= 3) kafka_write_int32(out, 0); /* throttle_time_ms */
  kafka_write_array_len(out, 1);
  kafka_write_int32(out, b->node_id);
  kafka_write_cstring(out, b->advertised_host);
  kafka_write_int32(out, b->advertised_port);
  if (v >= 1) kafka_write_int16(out, -1); /* rack: null */
  if (v >= 2) kafka_write_cstring(out, b->cluster_id);
  if (v >= 1) kafka_write_int32(out, b->node_id); /* controller_id: admin clients send CreateTopics there */

  if (all) {
    size_t n = sl_topics_count(b->topics);
    kafka_write_array_len(out, (int32_t)n);
    for (size_t i = 0; i < n; i++) {
      sl_topic_t *t = sl_topics_at(b->topics, i);
      sl_slice_t name = {(const uint8_t *)t->name, strlen(t->name)};
      write_topic(out, v, KAFKA_NONE, name, t, b->node_id);
    }
  } else {
    kafka_write_array_len(out, topic_count);
    r->pos = topics_start;
    for (int32_t i = 0; i < topic_count; i++) {
      sl_slice_t name = kafka_read_string(r);
      int16_t error;
      sl_topic_t *t = sl_broker_topic(b, name, allow_create, &error);
      if (!name.ptr) name = (sl_slice_t){(const uint8_t *)"", 0};
      write_topic(out, v, error, name, t, b->node_id);
    }
  }
  sl_kafka_request_finish(req);
  return 0;
}
