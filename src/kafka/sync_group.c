/* SyncGroup v0–3 (api key 14): parses the request for the coordinator and writes its responses.
 *   request:  group_id, generation_id, member_id, group_instance_id (v3+), assignments[member_id, assignment]
 *   response: throttle_time_ms (v1+), error_code, assignment */
#include <errno.h>
#include <stdlib.h>

#include "kafka/codec.h"
#include "kafka/group_internal.h"

void sl_sync_group_write_response(sl_kafka_request_t *req, int16_t error, const uint8_t *assignment, size_t len) {
  if (req->api_version >= 1) kafka_write_int32(&req->resp, 0);
  kafka_write_int16(&req->resp, error);
  /* Non-nullable in v0–3: an absent assignment is empty bytes. */
  kafka_write_bytes(&req->resp, assignment ? (const void *)assignment : (const void *)"", assignment ? len : 0);
}

int sl_kafka_handle_sync_group(sl_kafka_request_t *req) {
  sl_reader_t *r = &req->body;
  sl_slice_t group_id = kafka_read_string(r);
  int32_t generation = kafka_read_int32(r);
  sl_slice_t member_id = kafka_read_string(r);
  if (req->api_version >= 3) (void)kafka_read_string(r); /* group_instance_id: static membership unsupported */
  /* member_id string (2) + assignment bytes (4). */
  int32_t n = kafka_read_array_len(r, 6);
  if (r->err) return -EBADMSG;
  sl_sync_assignment_t *a = calloc(n > 0 ? (size_t)n : 1, sizeof(*a));
  if (!a) return -ENOMEM;
  for (int32_t i = 0; i < n; i++) {
    a[i].member_id = kafka_read_string(r);
    a[i].assignment = kafka_read_bytes(r);
  }
  if (r->err || !group_id.ptr || !member_id.ptr) {
    free(a);
    return -EBADMSG;
  }
  sl_group_sync(sl_groups_of(req), req, group_id, generation, member_id, a, n > 0 ? (size_t)n : 0);
  free(a);
  return 0;
}
