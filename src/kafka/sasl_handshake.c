/* SaslHandshake v0–1: picks the mechanism. v1 means the tokens follow in SaslAuthenticate requests; v0 (kafka-python)
 * means they follow as raw size-prefixed frames with no Kafka header (connection.c handles those). */
#include <string.h>

#include "core/log.h"
#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/connection.h"
#include "kafka/errors.h"

static void write_mechanisms(sl_buf_t *out, const char *enabled) {
  /* the configured list, in its order */
  int32_t n = 0;
  for (const char *p = enabled; *p;) {
    while (*p == ' ' || *p == ',') p++;
    size_t len = strcspn(p, ", ");
    if (len) n++;
    p += len;
  }
  kafka_write_array_len(out, n);
  for (const char *p = enabled; *p;) {
    while (*p == ' ' || *p == ',') p++;
    size_t len = strcspn(p, ", ");
    if (len) kafka_write_string(out, p, len);
    p += len;
  }
}

int sl_kafka_handle_sasl_handshake(sl_kafka_request_t *req) {
  sl_broker_t *b = req->broker;
  sl_slice_t mechanism = kafka_read_string(&req->body);
  if (req->body.err || !mechanism.ptr) return -1;
  const char *enabled = b->sasl_users ? b->cfg->sasl_mechanisms : "";
  int16_t error = KAFKA_NONE;
  sl_sasl_session_t *session = NULL;
  if (!req->conn || !sl_kafka_conn_sasl_expecting_handshake(req->conn)) {
    error = KAFKA_ILLEGAL_SASL_STATE;
  } else if (!sl_sasl_mechanism_enabled(enabled, (const char *)mechanism.ptr, mechanism.len) ||
             !(session = sl_sasl_session_new(b->sasl_users, (const char *)mechanism.ptr, mechanism.len))) {
    error = KAFKA_UNSUPPORTED_SASL_MECHANISM;
    SL_WARN("broker", "%s: SASL mechanism '%.*s' is not enabled", sl_kafka_request_peer(req), (int)mechanism.len,
            (const char *)mechanism.ptr);
  } else {
    sl_kafka_conn_sasl_begin(req->conn, session, req->api_version == 0);
  }
  kafka_write_int16(&req->resp, error);
  write_mechanisms(&req->resp, enabled);
  sl_kafka_request_finish(req);
  return 0;
}
