/* The Kafka protocol plugged into the TCP layer (connection.c). */
#ifndef SL_KAFKA_CONNECTION_H
#define SL_KAFKA_CONNECTION_H
#include "kafka/dispatch.h"
#include "net/tcp.h"

extern const sl_tcp_protocol_t sl_kafka_protocol;

/* Parses a frame (without its size prefix) into a request with its response header written, checking the API key
 * and version against the dispatch table. Returns NULL (logged, with `peer` naming the client) when the
 * connection should close. The request has no connection yet; the fuzzer runs handlers on such requests. */
sl_kafka_request_t *sl_kafka_request_parse(sl_broker_t *b, const char *peer, const uint8_t *frame, size_t len,
                                           const sl_kafka_api_t **api_out);
void sl_kafka_request_free(sl_kafka_request_t *req);

/* SASL state of a connection (diagram in connection.c), driven by the SaslHandshake/SaslAuthenticate handlers. */
typedef struct sl_sasl_session sl_sasl_session_t;
bool sl_kafka_conn_sasl_expecting_handshake(const sl_kafka_conn_t *c);
/* Takes ownership of the session; raw_tokens after a v0 handshake. */
void sl_kafka_conn_sasl_begin(sl_kafka_conn_t *c, sl_sasl_session_t *session, bool raw_tokens);
/* The session SaslAuthenticate should step, or NULL when none is expected. */
sl_sasl_session_t *sl_kafka_conn_sasl_session(sl_kafka_conn_t *c);
void sl_kafka_conn_sasl_finish(sl_kafka_conn_t *c, bool authenticated);

#endif
