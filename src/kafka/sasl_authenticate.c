/* SaslAuthenticate v0–1: one SASL token each way. A failure is answered with SASL_AUTHENTICATION_FAILED and the
 * connection closes once that answer is sent. */
#include "core/log.h"
#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/connection.h"
#include "kafka/errors.h"

int sl_kafka_handle_sasl_authenticate(sl_kafka_request_t *req) {
  sl_slice_t token = kafka_read_bytes(&req->body);
  if (req->body.err) return -1;
  sl_sasl_session_t *session = req->conn ? sl_kafka_conn_sasl_session(req->conn) : NULL;
  sl_buf_t answer;
  sl_buf_init(&answer);
  int16_t error = KAFKA_NONE;
  const char *reason = NULL;
  if (!session) {
    error = KAFKA_ILLEGAL_SASL_STATE;
    reason = "SaslAuthenticate before a SaslHandshake v1";
  } else {
    sl_sasl_status_t st = sl_sasl_step(session, token.ptr ? token.ptr : (const uint8_t *)"", token.len, &answer,
                                       &reason);
    if (st == SL_SASL_FAILED) {
      error = KAFKA_SASL_AUTHENTICATION_FAILED;
    } else if (st == SL_SASL_DONE) {
      SL_INFO("broker", "%s: authenticated as '%s'", sl_kafka_request_peer(req), sl_sasl_session_user(session));
      sl_kafka_conn_sasl_finish(req->conn, true);
    }
  }
  if (error != KAFKA_NONE) {
    SL_WARN("broker", "%s: SASL authentication failed: %s", sl_kafka_request_peer(req), reason);
    if (req->conn) sl_kafka_conn_sasl_finish(req->conn, false);
    req->close_after = true;
  }
  sl_buf_t *out = &req->resp;
  kafka_write_int16(out, error);
  kafka_write_cstring(out, error ? reason : NULL);
  kafka_write_bytes(out, answer.data ? answer.data : (const uint8_t *)"", answer.len);
  if (req->api_version >= 1) kafka_write_int64(out, 0); /* session_lifetime_ms: no re-authentication */
  sl_buf_free(&answer);
  sl_kafka_request_finish(req);
  return 0;
}
