/* FindCoordinator v0–2 (api key 10): key, key_type (v1+) -> throttle_time_ms (v1+), error_code,
 * error_message (v1+), node_id, host, port. On a single broker the coordinator of every group is this broker,
 * at the same advertised address as in Metadata. */
#include <errno.h>
#include <string.h>

#include "kafka/codec.h"
#include "kafka/errors.h"
#include "kafka/group_internal.h"

int sl_kafka_handle_find_coordinator(sl_kafka_request_t *req) {
  sl_reader_t *r = &req->body;
  int16_t v = req->api_version;
  sl_slice_t key = kafka_read_string(r);
  int8_t key_type = v >= 1 ? kafka_read_int8(r) : 0;
  if (r->err || !key.ptr) return -EBADMSG;
  sl_broker_t *b = req->broker;
  int16_t error = KAFKA_NONE;
  const char *message = NULL;
  if (!b || !b->groups || b->groups->closing) {
    error = KAFKA_COORDINATOR_NOT_AVAILABLE; /* not loaded yet, or shutting down: clients retry */
  } else if (key_type != 0) {
    error = KAFKA_COORDINATOR_NOT_AVAILABLE;
    message = "transactions are not supported";
  }
  sl_buf_t *out = &req->resp;
  if (v >= 1) kafka_write_int32(out, 0);
  kafka_write_int16(out, error);
  if (v >= 1) kafka_write_cstring(out, message);
  if (error) {
    kafka_write_int32(out, -1);
    kafka_write_cstring(out, "");
    kafka_write_int32(out, -1);
  } else {
    kafka_write_int32(out, b->node_id);
    kafka_write_cstring(out, b->advertised_host);
    kafka_write_int32(out, b->advertised_port);
  }
  sl_kafka_request_finish(req);
  return 0;
}
