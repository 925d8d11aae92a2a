/* LeaveGroup v0–1 (api key 13): group_id, member_id -> throttle_time_ms (v1+), error_code. The member is removed
 * at once and the others rebalance without waiting for its session to expire. (v3+ batches members[]; we do not
 * advertise it, so kafkajs stays on v1.) */
#include <errno.h>

#include "kafka/codec.h"
#include "kafka/group_internal.h"

int sl_kafka_handle_leave_group(sl_kafka_request_t *req) {
  sl_reader_t *r = &req->body;
  sl_slice_t group_id = kafka_read_string(r);
  sl_slice_t member_id = kafka_read_string(r);
  if (r->err || !group_id.ptr || !member_id.ptr) return -EBADMSG;
  int16_t error = sl_group_leave(sl_groups_of(req), group_id, member_id);
  if (req->api_version >= 1) kafka_write_int32(&req->resp, 0);
  kafka_write_int16(&req->resp, error);
  sl_kafka_request_finish(req);
  return 0;
}
