/* DeleteTopics v0–3. The partitions' files go once nothing references them (a parked fetch or a pending fsync). */
#include "core/log.h"
#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/errors.h"
#include "kafka/producers.h"

int sl_kafka_handle_delete_topics(sl_kafka_request_t *req) {
  sl_broker_t *b = req->broker;
  sl_reader_t *r = &req->body;
  int32_t count = kafka_read_array_len(r, 2);
  size_t names_start = r->pos;
  for (int32_t i = 0; i < count && !r->err; i++) (void)kafka_read_string(r);
  (void)kafka_read_int32(r); /* timeout_ms */
  if (r->err) return -1;
  r->pos = names_start;
  sl_buf_t *out = &req->resp;
  if (req->api_version >= 1) kafka_write_int32(out, 0); /* throttle_time_ms */
  kafka_write_array_len(out, count);
  for (int32_t i = 0; i < count; i++) {
    sl_slice_t name = kafka_read_string(r);
    int16_t error = KAFKA_NONE;
    sl_topic_t *t = name.ptr ? sl_topics_find(b->topics, (const char *)name.ptr, name.len) : NULL;
    if (!t) {
      error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    } else {
      for (int32_t p = 0; p < t->partition_count; p++) sl_producers_forget_partition(b->producers, t->partitions[p]);
      if (sl_topics_delete(b->topics, (const char *)name.ptr, name.len) != 0) error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
      else SL_INFO("broker", "deleted topic '%.*s'", (int)name.len, (const char *)name.ptr);
    }
    kafka_write_string(out, name.ptr ? (const char *)name.ptr : "", name.len);
    kafka_write_int16(out, error);
  }
  sl_kafka_request_finish(req);
  return 0;
}
