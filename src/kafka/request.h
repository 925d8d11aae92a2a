/* One Kafka request on its way through the broker, and the handler contract.
 *
 * The connection parses the frame and header, then calls the handler for the API key. The handler reads
 * req->body, writes the response body into req->resp (the response header is already there), and calls
 * sl_kafka_request_finish() — at once, or later (a parked Fetch, a JoinGroup waiting for the rebalance, a Produce
 * waiting for fsync). Responses leave in request order whatever order handlers finish in.
 *
 * A handler returns 0 when it finished the request or took charge of finishing it later, or a negative value if
 * the request is malformed: the connection then closes (Kafka's behaviour for unparseable requests) and frees
 * the request, so a handler that returns an error must not have parked it anywhere.
 *
 * If the connection closes while a request is parked, req->conn becomes NULL; the owner of the parked request
 * still calls sl_kafka_request_finish(), which then just frees it. */
#ifndef SL_KAFKA_REQUEST_H
#define SL_KAFKA_REQUEST_H
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct sl_broker sl_broker_t;
typedef struct sl_kafka_conn sl_kafka_conn_t;

typedef struct sl_kafka_request {
  sl_kafka_conn_t *conn; /* NULL once the connection has gone */
  sl_broker_t *broker;
  int16_t api_key;
  int16_t api_version;
  int32_t correlation_id;
  bool flexible;       /* request header v2 / flexible body encoding */
  sl_slice_t client_id; /* points into frame */
  uint8_t *frame;      /* owned copy of the request bytes (after the size prefix) */
  size_t frame_len;
  sl_reader_t body;    /* positioned after the request header */
  sl_buf_t resp;       /* response: header written, handler appends the body */
  bool finished;
  bool no_response;    /* acks=0 produce: nothing is sent */
  bool close_after;    /* close the connection once this response is sent (failed authentication) */
  void *handler_state; /* for handlers that park requests */
  struct sl_kafka_request *next; /* the connection's in-order queue */
} sl_kafka_request_t;

typedef int (*sl_kafka_handler_fn)(sl_kafka_request_t *req);

/* Marks the response complete; it is sent as soon as every earlier response on the connection has been. */
void sl_kafka_request_finish(sl_kafka_request_t *req);
/* The client's "ip:port", or "" once the connection has gone. */
const char *sl_kafka_request_peer(const sl_kafka_request_t *req);
/* Completes the request without sending anything (Produce with acks=0). */
void sl_kafka_request_finish_silently(sl_kafka_request_t *req);

/* Handlers, one file each (src/kafka/<api>.c). */
int sl_kafka_handle_api_versions(sl_kafka_request_t *req);
int sl_kafka_handle_metadata(sl_kafka_request_t *req);
int sl_kafka_handle_produce(sl_kafka_request_t *req);
int sl_kafka_handle_fetch(sl_kafka_request_t *req);
int sl_kafka_handle_list_offsets(sl_kafka_request_t *req);
int sl_kafka_handle_find_coordinator(sl_kafka_request_t *req);
int sl_kafka_handle_join_group(sl_kafka_request_t *req);
int sl_kafka_handle_sync_group(sl_kafka_request_t *req);
int sl_kafka_handle_heartbeat(sl_kafka_request_t *req);
int sl_kafka_handle_leave_group(sl_kafka_request_t *req);
int sl_kafka_handle_offset_commit(sl_kafka_request_t *req);
int sl_kafka_handle_offset_fetch(sl_kafka_request_t *req);
int sl_kafka_handle_create_topics(sl_kafka_request_t *req);
int sl_kafka_handle_delete_topics(sl_kafka_request_t *req);
int sl_kafka_handle_init_producer_id(sl_kafka_request_t *req);
int sl_kafka_handle_describe_groups(sl_kafka_request_t *req);
int sl_kafka_handle_list_groups(sl_kafka_request_t *req);
int sl_kafka_handle_describe_configs(sl_kafka_request_t *req);
int sl_kafka_handle_alter_configs(sl_kafka_request_t *req);
int sl_kafka_handle_delete_groups(sl_kafka_request_t *req);
int sl_kafka_handle_create_partitions(sl_kafka_request_t *req);
int sl_kafka_handle_sasl_handshake(sl_kafka_request_t *req);
int sl_kafka_handle_sasl_authenticate(sl_kafka_request_t *req);

#endif
