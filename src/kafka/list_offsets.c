/* ListOffsets v1–3: -2 earliest (log start), -1 latest (high watermark = last stable offset here), or the first
 * offset whose timestamp is at least the one given. */
#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/errors.h"

int sl_kafka_handle_list_offsets(sl_kafka_request_t *req) {
  sl_broker_t *b = req->broker;
  sl_reader_t *r = &req->body;
  int16_t v = req->api_version;
  (void)kafka_read_int32(r); /* replica_id */
  if (v >= 2) (void)kafka_read_int8(r); /* isolation_level: LSO == HWM without transactions */
  int32_t topic_count = kafka_read_array_len(r, 6);
  if (r->err) return -1;
  sl_buf_t *out = &req->resp;
  if (v >= 2) kafka_write_int32(out, 0); /* throttle_time_ms */
  kafka_write_array_len(out, topic_count);
  for (int32_t t = 0; t < topic_count; t++) {
    sl_slice_t name = kafka_read_string(r);
    int32_t parts = kafka_read_array_len(r, 12);
    if (r->err) return -1;
    int16_t topic_error;
    sl_topic_t *topic = sl_broker_topic(b, name, false, &topic_error);
    kafka_write_string(out, name.ptr ? (const char *)name.ptr : "", name.len);
    kafka_write_array_len(out, parts);
    for (int32_t i = 0; i < parts; i++) {
      int32_t index = kafka_read_int32(r);
      int64_t ts = kafka_read_int64(r);
      if (r->err) return -1;
      int16_t error = KAFKA_NONE;
      int64_t offset = -1, found_ts = -1;
      if (!topic) error = topic_error;
      else if (index < 0 || index >= topic->partition_count) error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
      else {
        sl_partition_t *p = topic->partitions[index];
        if (ts == -1) offset = sl_partition_log_end_offset(p);
        else if (ts == -2) offset = sl_partition_log_start_offset(p);
        else if (ts < 0) error = KAFKA_INVALID_REQUEST;
        else if (sl_partition_offset_for_time(p, ts, &offset, &found_ts) != 0) error = KAFKA_KAFKA_STORAGE_ERROR;
      }
      kafka_write_int32(out, index);
      kafka_write_int16(out, error);
      kafka_write_int64(out, error ? -1 : found_ts);
      kafka_write_int64(out, error ? -1 : offset);
    }
  }
  sl_kafka_request_finish(req);
  return 0;
}
