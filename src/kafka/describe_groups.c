/* DescribeGroups v0–4 (api key 15): a group's state and members, as the coordinator sees them. kafkajs's
 * admin.setOffsets() calls it (through consumer.describeGroup()) to check that the group is not running.
 *   request:  groups[string], include_authorized_operations (v3+)
 *   response: throttle_time_ms (v1+), groups[error_code, group_id, group_state, protocol_type, protocol_data,
 *             members[member_id, group_instance_id (v4+), client_id, client_host, member_metadata,
 *             member_assignment], authorized_operations (v3+)]
 * Like Kafka, metadata and assignments are shown only for a Stable group, and an unknown group is "Dead". */
#include <errno.h>
#include <string.h>

#include "kafka/codec.h"
#include "kafka/errors.h"
#include "kafka/group_internal.h"

static void write_group(sl_buf_t *b, int16_t v, sl_group_coordinator_t *gc, sl_slice_t id) {
  sl_group_t *g = gc && !gc->closing ? sl_group_find(gc, id) : NULL;
  bool stable = g && g->state == SL_GROUP_STABLE;
  kafka_write_int16(b, gc && !gc->closing ? KAFKA_NONE : KAFKA_COORDINATOR_NOT_AVAILABLE);
  kafka_write_string(b, (const char *)id.ptr, id.len);
  kafka_write_cstring(b, sl_group_state_name(g ? g->state : SL_GROUP_DEAD));
  kafka_write_cstring(b, g && g->protocol_type ? g->protocol_type : "");
  kafka_write_cstring(b, stable && g->protocol_name ? g->protocol_name : "");
  kafka_write_array_len(b, g ? (int32_t)g->n_members : 0);
  for (size_t i = 0; g && i < g->n_members; i++) {
    const sl_group_member_t *m = g->members[i];
    kafka_write_cstring(b, m->member_id);
    if (v >= 4) kafka_write_cstring(b, m->group_instance_id);
    kafka_write_cstring(b, m->client_id);
    kafka_write_cstring(b, m->client_host);
    const sl_group_protocol_t *p = NULL;
    for (size_t k = 0; stable && k < m->n_protocols && !p; k++)
      if (strcmp(m->protocols[k].name, g->protocol_name) == 0) p = &m->protocols[k];
    kafka_write_bytes(b, p ? (const void *)p->metadata : (const void *)"", p ? p->metadata_len : 0);
    kafka_write_bytes(b, stable && m->assignment ? (const void *)m->assignment : (const void *)"",
                      stable && m->assignment ? m->assignment_len : 0);
  }
  if (v >= 3) kafka_write_int32(b, INT32_MIN); /* authorized operations not computed */
}

int sl_kafka_handle_describe_groups(sl_kafka_request_t *req) {
  sl_reader_t *r = &req->body;
  int16_t v = req->api_version;
  int32_t n = kafka_read_array_len(r, 2);
  if (r->err || n < 0) return -EBADMSG;
  sl_group_coordinator_t *gc = sl_groups_of(req);
  sl_buf_t *b = &req->resp;
  size_t start = b->len;
  if (v >= 1) kafka_write_int32(b, 0);
  kafka_write_array_len(b, n);
  for (int32_t i = 0; i < n; i++) {
    sl_slice_t id = kafka_read_string(r);
    if (r->err || !id.ptr) {
      b->len = start;
      return -EBADMSG;
    }
    write_group(b, v, gc, id);
  }
  if (v >= 3) (void)kafka_read_bool(r); /* include_authorized_operations */
  if (r->err) {
    b->len = start;
    return -EBADMSG;
  }
  sl_kafka_request_finish(req);
  return 0;
}
