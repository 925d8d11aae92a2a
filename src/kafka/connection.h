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

#endif
