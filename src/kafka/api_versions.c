/* ApiVersions v0–3, answered from the dispatch table. A version above our max gets a v0-format body with
 * UNSUPPORTED_VERSION and our ApiVersions range, so librdkafka and kafkajs retry with a version we speak. */
#include "kafka/codec.h"
#include "kafka/dispatch.h"
#include "kafka/errors.h"

int sl_kafka_handle_api_versions(sl_kafka_request_t *req) {
  sl_buf_t *out = &req->resp;
  const sl_kafka_api_t *self = sl_kafka_api_find(KAFKA_API_API_VERSIONS);
  if (req->api_version > self->max_version) {
    kafka_write_int16(out, KAFKA_UNSUPPORTED_VERSION);
    kafka_write_array_len(out, 1);
    kafka_write_int16(out, self->api_key);
    kafka_write_int16(out, self->min_version);
    kafka_write_int16(out, self->max_version);
    sl_kafka_request_finish(req);
    return 0;
  }
  if (req->api_version >= 3) {
    /* client_software_name and _version: informational only; a lenient broker accepts any value */
    (void)kafka_read_compact_string(&req->body);
    (void)kafka_read_compact_string(&req->body);
    kafka_skip_tags(&req->body);
    if (req->body.err) return -1;
  }
  bool flexible = req->api_version >= 3;
  kafka_write_int16(out, KAFKA_NONE);
  if (flexible) kafka_write_compact_array_len(out, (int32_t)sl_kafka_api_count);
  else kafka_write_array_len(out, (int32_t)sl_kafka_api_count);
  for (size_t i = 0; i < sl_kafka_api_count; i++) {
    kafka_write_int16(out, sl_kafka_apis[i].api_key);
    kafka_write_int16(out, sl_kafka_apis[i].min_version);
    kafka_write_int16(out, sl_kafka_apis[i].max_version);
    if (flexible) kafka_write_empty_tags(out);
  }
  if (req->api_version >= 1) kafka_write_int32(out, 0); /* throttle_time_ms */
  if (flexible) kafka_write_empty_tags(out);
  sl_kafka_request_finish(req);
  return 0;
}
