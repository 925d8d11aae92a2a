/* TCP listener and connections (see tcp.h). */
#include "net/tcp.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/tls.h"

struct sl_tcp_server {
  uv_tcp_t listener;
  uv_loop_t *loop;
  const sl_tcp_protocol_t *proto;
  void *arg;
  int port;
  bool closing;
  size_t handles_open; /* listener + connections; freed at zero once closing */
  sl_tcp_conn_t *conns; /* doubly-linked list of open connections */
  sl_tls_ctx_t *tls;     /* not owned; NULL for plaintext */
};

struct sl_tcp_conn {
  uv_tcp_t handle;
  sl_tcp_server_t *server;
  void *state;
  sl_buf_t in;      /* received bytes not yet consumed */
  size_t in_start;  /* consumed prefix of `in`, compacted lazily */
  bool closing;
  bool shutting_down; /* sl_tcp_conn_close_after_writes: no more reading */
  bool paused;
  bool in_callback; /* inside on_data: defer compaction */
  sl_tls_conn_t *tls; /* NULL for plaintext */
  sl_buf_t raw;       /* TLS: ciphertext just read, decrypted into `in` */
  sl_tcp_conn_t *prev, *next;
  char peer[64];
};

typedef struct {
  uv_write_t req;
  uint8_t *data;
} write_req_t;

static void server_handle_closed(sl_tcp_server_t *s) {
  if (--s->handles_open == 0 && s->closing) free(s);
}

static void on_listener_closed(uv_handle_t *h) { server_handle_closed(h->data); }

static void on_conn_closed(uv_handle_t *h) {
  sl_tcp_conn_t *c = h->data;
  sl_tcp_server_t *s = c->server;
  if (c->state) s->proto->on_close(c->state);
  sl_buf_free(&c->in);
  sl_buf_free(&c->raw);
  sl_tls_conn_free(c->tls);
  free(c);
  server_handle_closed(s);
}

void sl_tcp_conn_close(sl_tcp_conn_t *c) {
  if (c->closing) return;
  c->closing = true;
  if (c->prev) c->prev->next = c->next;
  else c->server->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  uv_read_stop((uv_stream_t *)&c->handle);
  uv_close((uv_handle_t *)&c->handle, on_conn_closed);
}

/* Drops the consumed prefix of the input buffer (outside on_data only). */
static void compact_input(sl_tcp_conn_t *c) {
  if (c->in_start == 0 || c->in_callback) return;
  memmove(c->in.data, c->in.data + c->in_start, c->in.len - c->in_start);
  c->in.len -= c->in_start;
  c->in_start = 0;
}

static void write_raw(sl_tcp_conn_t *c, sl_buf_t *buf);

typedef struct {
  uv_shutdown_t req;
  sl_tcp_conn_t *conn;
} shutdown_req_t;

static void on_shutdown(uv_shutdown_t *req, int status) {
  shutdown_req_t *s = (shutdown_req_t *)req;
  (void)status;
  sl_tcp_conn_close(s->conn);
  free(s);
}

void sl_tcp_conn_close_after_writes(sl_tcp_conn_t *c) {
  if (c->closing || c->shutting_down) return;
  c->shutting_down = true;
  uv_read_stop((uv_stream_t *)&c->handle);
  shutdown_req_t *s = malloc(sizeof *s);
  if (!s || uv_shutdown(&s->req, (uv_stream_t *)&c->handle, on_shutdown) != 0) {
    free(s);
    sl_tcp_conn_close(c);
    return;
  }
  s->conn = c;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  sl_tcp_conn_t *c = h->data;
  size_t want = suggested < 65536 ? 65536 : suggested;
  if (c->tls) {
    c->raw.len = 0;
    sl_buf_reserve(&c->raw, want);
    buf->base = (char *)c->raw.data;
    buf->len = c->raw.cap;
    return;
  }
  if (c->in_start > 0 && c->in_start == c->in.len) {
    c->in.len = 0;
    c->in_start = 0;
  } else if (c->in_start > 0 && c->in.cap - c->in.len < want) {
    memmove(c->in.data, c->in.data + c->in_start, c->in.len - c->in_start);
    c->in.len -= c->in_start;
    c->in_start = 0;
  }
  sl_buf_reserve(&c->in, want);
  buf->base = (char *)c->in.data + c->in.len;
  buf->len = c->in.cap - c->in.len;
}

static void deliver(sl_tcp_conn_t *c);

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  sl_tcp_conn_t *c = stream->data;
  (void)buf;
  if (nread < 0) {
    if (nread != UV_EOF) SL_DEBUG("net", "connection %s read error: %s", c->peer, uv_strerror((int)nread));
    sl_tcp_conn_close(c);
    return;
  }
  if (nread == 0 || c->closing) return;
  if (c->tls) {
    compact_input(c);
    sl_buf_t wire;
    sl_buf_init(&wire);
    int rc = sl_tls_conn_feed(c->tls, c->raw.data, (size_t)nread, &c->in, &wire);
    write_raw(c, &wire);
    if (rc != 0) {
      SL_DEBUG("net", "connection %s: TLS failed; closing", c->peer);
      sl_tcp_conn_close(c);
      return;
    }
  } else {
    c->in.len += (size_t)nread;
  }
  deliver(c);
}

static void deliver(sl_tcp_conn_t *c) {
  if (c->in.len == c->in_start || c->closing || c->shutting_down) return;
  c->in_callback = true;
  ssize_t used = c->server->proto->on_data(c->state, c->in.data + c->in_start, c->in.len - c->in_start);
  c->in_callback = false;
  if (used < 0) {
    sl_tcp_conn_close(c);
    return;
  }
  c->in_start += (size_t)used;
}

static void on_connection(uv_stream_t *listener, int status) {
  sl_tcp_server_t *s = listener->data;
  if (status < 0) {
    SL_WARN("net", "accept failed: %s", uv_strerror(status));
    return;
  }
  sl_tcp_conn_t *c = calloc(1, sizeof *c);
  if (!c) return;
  c->server = s;
  uv_tcp_init(s->loop, &c->handle);
  c->handle.data = c;
  s->handles_open++;
  if (uv_accept(listener, (uv_stream_t *)&c->handle) != 0) {
    c->closing = true;
    uv_close((uv_handle_t *)&c->handle, on_conn_closed);
    return;
  }
  uv_tcp_nodelay(&c->handle, 1);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&c->handle, (struct sockaddr *)&ss, &len) == 0) {
    char ip[48] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
  }
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  if (s->tls && !(c->tls = sl_tls_conn_new(s->tls))) {
    sl_tcp_conn_close(c);
    return;
  }
  c->state = s->proto->on_open(c, s->arg);
  if (!c->state) {
    sl_tcp_conn_close(c);
    return;
  }
  uv_read_start((uv_stream_t *)&c->handle, on_alloc, on_read);
}

int sl_tcp_listen(uv_loop_t *loop, const char *host, int port, const sl_tcp_protocol_t *proto, void *server_arg,
                  sl_tcp_server_t **out) {
  struct sockaddr_storage addr;
  int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
  if (rc != 0) rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
  if (rc != 0) return rc;
  sl_tcp_server_t *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->loop = loop;
  s->proto = proto;
  s->arg = server_arg;
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  s->handles_open = 1;
  rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
  if (rc != 0) {
    s->closing = true;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    return rc;
  }
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
  s->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&bound)->sin_port);
  *out = s;
  return 0;
}

int sl_tcp_server_port(const sl_tcp_server_t *s) { return s->port; }

void sl_tcp_server_set_tls(sl_tcp_server_t *s, sl_tls_ctx_t *tls) { s->tls = tls; }

void sl_tcp_server_close(sl_tcp_server_t *s) {
  s->closing = true;
  while (s->conns) sl_tcp_conn_close(s->conns);
  uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

static void on_write_done(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  (void)status; /* a failed write shows up as a read error and closes the connection */
  free(w->data);
  free(w);
}

void sl_tcp_conn_write(sl_tcp_conn_t *c, sl_buf_t *buf) {
  if (c->tls && !c->closing && buf->len) {
    sl_buf_t wire;
    sl_buf_init(&wire);
    int rc = sl_tls_conn_encrypt(c->tls, buf->data, buf->len, &wire);
    sl_buf_free(buf);
    write_raw(c, &wire);
    if (rc != 0) sl_tcp_conn_close(c);
    return;
  }
  write_raw(c, buf);
}

/* Queues bytes for the socket as they are (ciphertext for TLS connections). */
static void write_raw(sl_tcp_conn_t *c, sl_buf_t *buf) {
  if (c->closing || buf->len == 0) {
    sl_buf_free(buf);
    return;
  }
  write_req_t *w = malloc(sizeof *w);
  if (!w) abort();
  w->data = buf->data;
  uv_buf_t ub = uv_buf_init((char *)buf->data, (unsigned)buf->len);
  sl_buf_init(buf);
  if (uv_write(&w->req, (uv_stream_t *)&c->handle, &ub, 1, on_write_done) != 0) {
    free(w->data);
    free(w);
    sl_tcp_conn_close(c);
  }
}

void sl_tcp_conn_pause(sl_tcp_conn_t *c) {
  if (c->paused || c->closing) return;
  c->paused = true;
  uv_read_stop((uv_stream_t *)&c->handle);
}

void sl_tcp_conn_resume(sl_tcp_conn_t *c) {
  if (!c->paused || c->closing || c->shutting_down) return;
  c->paused = false;
  uv_read_start((uv_stream_t *)&c->handle, on_alloc, on_read);
  /* Frames that arrived before the pause are still buffered: offer them now, unless we are inside on_data. */
  if (!c->in_callback) deliver(c);
}

size_t sl_tcp_conn_write_queue_bytes(const sl_tcp_conn_t *c) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)&c->handle);
}

const char *sl_tcp_conn_peer(const sl_tcp_conn_t *c) { return c->peer; }
