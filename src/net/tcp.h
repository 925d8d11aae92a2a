/* TCP listener and connections on a libuv loop, independent of any protocol.
 *
 * A protocol plugs in with three callbacks. Incoming bytes accumulate in a per-connection buffer and are offered
 * to on_data, which returns how many it consumed (a whole number of frames); the rest waits for more bytes.
 *
 * Connection lifecycle:
 *
 *   accept ──on_open──> OPEN ──sl_tcp_conn_close() or peer EOF/error──> CLOSING ──uv close cb──> on_close, freed
 *
 * After sl_tcp_conn_close() no more on_data calls happen and writes are dropped; on_close runs exactly once. */
#ifndef SL_NET_TCP_H
#define SL_NET_TCP_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "core/buf.h"
#include "net/tls.h"

typedef struct sl_tcp_conn sl_tcp_conn_t;
typedef struct sl_tcp_server sl_tcp_server_t;

typedef struct {
  /* Returns the protocol's per-connection state, or NULL to refuse the connection. */
  void *(*on_open)(sl_tcp_conn_t *conn, void *server_arg);
  /* Consumes complete frames from data; returns bytes consumed, or a negative value to close the connection. */
  ssize_t (*on_data)(void *state, const uint8_t *data, size_t len);
  /* The connection is gone; free the state. */
  void (*on_close)(void *state);
} sl_tcp_protocol_t;

/* Listens on host:port (port 0 picks a free one). Returns 0 or a negative errno / libuv error. */
int sl_tcp_listen(uv_loop_t *loop, const char *host, int port, const sl_tcp_protocol_t *proto, void *server_arg,
                  sl_tcp_server_t **out);
int sl_tcp_server_port(const sl_tcp_server_t *s);
/* Every connection accepted from now on speaks TLS with this context (which must outlive the server). */
void sl_tcp_server_set_tls(sl_tcp_server_t *s, sl_tls_ctx_t *tls);
/* Closes the listener and every connection; the server is freed once all handles have closed (run the loop). */
void sl_tcp_server_close(sl_tcp_server_t *s);

/* Queues buf for writing and takes ownership of its memory (buf is reset to empty). */
void sl_tcp_conn_write(sl_tcp_conn_t *c, sl_buf_t *buf);
void sl_tcp_conn_close(sl_tcp_conn_t *c);
/* Stops reading, lets queued writes reach the peer, then closes (an error answer before hanging up). */
void sl_tcp_conn_close_after_writes(sl_tcp_conn_t *c);
/* Backpressure: stop/restart reading from the socket. */
void sl_tcp_conn_pause(sl_tcp_conn_t *c);
void sl_tcp_conn_resume(sl_tcp_conn_t *c);
size_t sl_tcp_conn_write_queue_bytes(const sl_tcp_conn_t *c);
const char *sl_tcp_conn_peer(const sl_tcp_conn_t *c);

#endif
