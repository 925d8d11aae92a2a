/* JoinGroup v0–5 (api key 11): parses the request for the coordinator (group_coordinator.c) and writes its
 * responses. Field layout per version (apache/kafka JoinGroupRequest/Response.json @ 3.7.0):
 *   request:  group_id, session_timeout_ms, rebalance_timeout_ms (v1+), member_id, group_instance_id (v5+),
 *             protocol_type, protocols[name, metadata]
 *   response: throttle_time_ms (v2+), error_code, generation_id, protocol_name, leader, member_id,
 *             members[member_id, group_instance_id (v5+), metadata] */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/codec.h"
#include "kafka/errors.h"
#include "kafka/group_internal.h"

void sl_join_group_write_response(sl_kafka_request_t *req, int16_t error, const sl_group_t *g, const char *member_id,
                                  bool with_members) {
  sl_buf_t *b = &req->resp;
  int16_t v = req->api_version;
  if (v >= 2) kafka_write_int32(b, 0);
  kafka_write_int16(b, error);
  kafka_write_int32(b, g ? g->generation : -1);
  kafka_write_cstring(b, g && g->protocol_name ? g->protocol_name : "");
  kafka_write_cstring(b, g && g->leader ? g->leader->member_id : "");
  kafka_write_cstring(b, member_id ? member_id : "");
  if (!g || !with_members) {
    kafka_write_array_len(b, 0);
    return;
  }
  kafka_write_array_len(b, (int32_t)g->n_members);
  for (size_t i = 0; i < g->n_members; i++) {
    const sl_group_member_t *m = g->members[i];
    kafka_write_cstring(b, m->member_id);
    if (v >= 5) kafka_write_cstring(b, m->group_instance_id);
    const sl_group_protocol_t *p = NULL;
    for (size_t k = 0; k < m->n_protocols && !p; k++)
      if (strcmp(m->protocols[k].name, g->protocol_name) == 0) p = &m->protocols[k];
    if (p)
      kafka_write_bytes(b, p->metadata, p->metadata_len);
    else
      kafka_write_bytes(b, "", 0);
  }
}

int sl_kafka_handle_join_group(sl_kafka_request_t *req) {
  sl_reader_t *r = &req->body;
  int16_t v = req->api_version;
  sl_join_params_t p;
  memset(&p, 0, sizeof(p));
  p.group_id = kafka_read_string(r);
  p.session_timeout_ms = kafka_read_int32(r);
  /* v0 has no rebalance timeout: the session timeout bounds the rebalance (pitfall 5: never -1). */
  p.rebalance_timeout_ms = v >= 1 ? kafka_read_int32(r) : p.session_timeout_ms;
  if (p.rebalance_timeout_ms <= 0) p.rebalance_timeout_ms = p.session_timeout_ms;
  p.member_id = kafka_read_string(r);
  if (v >= 5) p.group_instance_id = kafka_read_string(r);
  p.protocol_type = kafka_read_string(r);
  /* Each protocol is at least an empty name (2) and empty metadata (4). */
  int32_t n = kafka_read_array_len(r, 6);
  if (r->err) return -EBADMSG;
  sl_join_protocol_t *protocols = calloc(n > 0 ? (size_t)n : 1, sizeof(*protocols));
  if (!protocols) return -ENOMEM;
  for (int32_t i = 0; i < n; i++) {
    protocols[i].name = kafka_read_string(r);
    protocols[i].metadata = kafka_read_bytes(r);
  }
  if (r->err || !p.group_id.ptr || !p.member_id.ptr || !p.protocol_type.ptr) {
    free(protocols);
    return -EBADMSG;
  }
  for (int32_t i = 0; i < n; i++) {
    if (!protocols[i].name.ptr) {
      free(protocols);
      return -EBADMSG;
    }
  }
  p.protocols = protocols;
  p.n_protocols = n > 0 ? (size_t)n : 0;
  sl_group_join(sl_groups_of(req), req, &p);
  free(protocols);
  return 0;
}
