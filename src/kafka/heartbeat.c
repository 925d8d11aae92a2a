/* Heartbeat v0–3 (api key 12): group_id, generation_id, member_id, group_instance_id (v3+)
 * -> throttle_time_ms (v1+), error_code. The error tells the member what to do next (REBALANCE_IN_PROGRESS:
 * rejoin); the coordinator decides it (sl_group_heartbeat). */
#include <errno.h>

#include "kafka/codec.h"
#include "kafka/group_internal.h"

int sl_kafka_handle_heartbeat(sl_kafka_request_t *req) {
  sl_reader_t *r = &req->body;
  sl_slice_t group_id = kafka_read_string(r);
  int32_t generation = kafka_read_int32(r);
  sl_slice_t member_id = kafka_read_string(r);
  if (req->api_version >= 3) (void)kafka_read_string(r); /* group_instance_id */
  if (r->err || !group_id.ptr || !member_id.ptr) return -EBADMSG;
  int16_t error = sl_group_heartbeat(sl_groups_of(req), group_id, generation, member_id);
  if (req->api_version >= 1) kafka_write_int32(&req->resp, 0);
  kafka_write_int16(&req->resp, error);
  sl_kafka_request_finish(req);
  return 0;
}
