/* Sluice's CQL client: connections, handshake, stream-id multiplexing, pools, discovery, routing, retries.
 *
 * Pieces:
 *   client    the config, the hosts, the prepared cache, a pending queue (bounded by max_pending), one timer that
 *             expires requests (deadline-ordered list), the control connection.
 *   host      one node (from system.local / system.peers): a pool of connections_per_host connections and a
 *             reconnect timer with exponential backoff.
 *   conn      one TCP connection with up to max_requests_per_connection stream ids in flight. Writes coalesce: while
 *             one uv_write is in flight, new frames append to `out` and go in the next write. With TLS the
 *             connection also owns a client session (net/tls.h, memory BIOs): ciphertext read from the socket is fed
 *             to it and the plaintext lands in `rbuf`; `out` is encrypted into `tlsout` when it is flushed.
 *   req       one request: a user statement/batch/prepare, or an internal frame (handshake, system queries).
 *
 * Connection lifecycle (functions named on the transitions):
 *
 *   conn_open ──uv connect──> on_tcp_connect ─[TLS: tls_start ──ClientHello ... Finished, fed by tls_read]─┐
 *     ┌────────────────────────────────────────────────────────────────────────────────────────────────────┘
 *     └─> hs_start ──OPTIONS──> SUPPORTED ──STARTUP──> READY ──[USE ks]──> conn_ready
 *           │                             └─AUTHENTICATE─AUTH_RESPONSE─AUTH_SUCCESS┘
 *           └─ error / timeout / ERROR / TLS failure (tls_failed) ──> conn_close ──uv close cbs──> conn_free
 *              (in-flight requests are retried elsewhere if idempotent, else failed with
 *              SL_CQL_CLIENT_CONNECTION_CLOSED)
 *
 * States: CS_CONNECTING (TCP), CS_TLS (TLS handshake: nothing of CQL is sent), CS_HANDSHAKE (CQL handshake),
 * CS_READY, CS_CLOSING.
 *
 * The control connection additionally sends REGISTER, reads system.local, system.peers and
 * system_schema.keyspaces (refresh_topology) and answers schema-agreement checks after DDL.
 *
 * A request's life: sl_cql_execute ──> dispatch (plan: token-aware replicas in the local DC, then the others) ──>
 * conn_send (stream id, frame) ──> on_frame ──> deliver (or: UNPREPARED -> re-prepare on that connection and
 * replay; retryable error + idempotent -> next host; SCHEMA_CHANGE -> wait for agreement, then deliver). */
#include "cql/client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "cql/client_internal.h"
#include "cql/compress.h"
#include "cql/murmur3.h"
#include "cql/proto.h"
#include "net/tls.h"

#define MAX_PLAN 16
#define TICK_MS 10
#define DEFAULT_PAGE_SIZE 5000
#define RECONNECT_BASE_MS 100
#define RECONNECT_MAX_MS 2000
#define SCHEMA_WAIT_MS 10000
#define MAX_ATTEMPTS 3

typedef struct conn conn_t;
typedef struct host host_t;
typedef struct req req_t;

typedef struct {
  uint8_t kind; /* cql_value_kind_t */
  uint32_t off, len;
} value_t;

struct sl_cql_statement {
  char *query;
  sl_cql_prepared_t *p; /* reference held */
  size_t nvalues;
  value_t *values;
  sl_buf_t data;
  int consistency; /* -1: client default */
  int32_t page_size;
  uint8_t *paging_state;
  size_t paging_len;
  bool idempotent;
  bool has_ts;
  int64_t ts;
  int timeout_ms;
  char bad[200]; /* first binding error */
};

struct sl_cql_batch {
  sl_cql_batch_type_t type;
  sl_cql_statement_t **st;
  size_t n, cap;
  int consistency;
  bool idempotent;
};

struct sl_cql_prepared {
  int refs;
  char *query;
  char *keyspace; /* the connection's keyspace when prepared (NULL: none) */
  uint8_t *id;
  size_t id_len;
  sl_cql_result_t params; /* bind metadata: names, types, ks, table */
  uint16_t *pk;
  size_t npk;
};

typedef void (*internal_fn)(req_t *rq, conn_t *cn, uint8_t opcode, const uint8_t *body, size_t len,
                            const sl_cql_error_t *err);

struct req {
  sl_cql_client_t *c;
  req_t *tprev, *tnext; /* deadline list */
  bool in_tlist;
  req_t *qnext; /* pending queue */
  bool queued;
  uint8_t opcode;
  sl_cql_statement_t *st;
  sl_cql_batch_t *batch;
  char *query; /* PREPARE */
  sl_cql_result_cb cb;
  sl_cql_prepare_cb pcb;
  void *arg;
  internal_fn fn; /* internal request: body pre-encoded */
  void *fn_arg;
  sl_buf_t body;
  conn_t *pin; /* internal: must go on this connection */
  conn_t *conn;
  int stream;
  int64_t deadline;
  bool finished; /* the user callback ran (e.g. timed out while in flight) */
  bool routed;
  int64_t ts;
  uint32_t plan[MAX_PLAN];
  size_t nplan, plan_pos;
  int attempts, reprepares;
  req_t *replay; /* internal re-prepare: the request to resend afterwards */
  sl_cql_prepared_t *reprep; /* which prepared statement is being re-prepared */
};

enum { CS_CONNECTING, CS_TLS, CS_HANDSHAKE, CS_READY, CS_CLOSING };

struct conn {
  sl_cql_client_t *c;
  host_t *h; /* NULL for the control connection */
  bool control;
  int state;
  int version;
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_timer_t ctimer;
  int handles;
  uv_write_t wreq;
  bool writing;
  sl_buf_t out, wbuf, rbuf, dbuf, cbuf;
  sl_tls_conn_t *tls;     /* NULL without TLS; created on TCP connect */
  sl_buf_t tlsin, tlsout; /* ciphertext read from / to be written to the socket */
  char tls_sni[256];      /* "" = no SNI */
  char tls_name[256];     /* what the certificate must name ("" = not checked) */
  bool answered;          /* a frame has come back on this connection */
  cql_compression_t comp;
  req_t **streams;
  int16_t *free_ids;
  int nfree, max_streams;
  char peer[80];
  char why[300];
  bool auth_plain_start;
  conn_t *next_all; /* client's list of every connection */
};

struct host {
  sl_cql_client_t *c;
  sl_cql_host_info_t info;
  bool up, removed, is_local_dc;
  conn_t **pool;
  int npool;
  uv_timer_t rtimer;
  bool rtimer_init;
  int backoff_ms;
  int failures;
  bool reconnect_scheduled;
};

typedef struct {
  char host[256];
  int port;
} contact_t;

/* A contact point written as a DNS name and the address it resolved to: connections to that address check the
 * certificate against the name the user wrote (nodes are otherwise known by IP only, from system.local/peers). */
typedef struct {
  char ip[64];
  char name[256];
} tls_named_t;

struct sl_cql_client {
  uv_loop_t *loop;
  sl_cql_client_config_t cfg;
  char *contact_str, *username, *password, *local_dc, *keyspace, *tls_server_name;
  sl_tls_ctx_t *tls_ctx; /* NULL without TLS */
  bool tls_client_cert;  /* a client certificate is presented */
  tls_named_t *tls_named;
  size_t ntls_named;
  contact_t *contacts;
  size_t ncontacts, contact_next;
  int version;
  bool closing, connected, connect_failed;
  sl_cql_connect_cb connect_cb;
  void *connect_arg;
  void (*closed_cb)(void *);
  void *closed_arg;
  int handles;
  uv_timer_t tick;
  uv_timer_t ctl_timer;    /* control reconnect */
  uv_timer_t schema_timer; /* schema agreement polls */
  int ctl_backoff_ms;
  conn_t *control;
  conn_t *all_conns;
  host_t **hosts;
  size_t nhosts;
  sl_cql_host_info_t *infos; /* contiguous copy for the ring and plans */
  bool *up;
  sl_cql_ring_t ring;
  struct {
    char name[128];
    sl_cql_replication_t r;
  } *repl;
  size_t nrepl;
  size_t rotation;
  req_t *thead, *ttail;
  req_t *qhead, *qtail;
  size_t nqueued;
  size_t inflight;
  sl_cql_prepared_t **prepared;
  size_t nprepared, capprepared;
  int64_t last_ts;
  bool refreshing, refresh_again;
  req_t *schema_waiters; /* chained through qnext */
  int64_t schema_deadline;
  bool schema_checking;
  char last_error[300];
  sl_cql_client_stats_t stats;
};

/* ---------------------------------------------------------------- helpers */

static char *xstrdup(const char *s) {
  if (!s) return NULL;
  char *p = strdup(s);
  if (!p) abort();
  return p;
}

static void set_err(sl_cql_error_t *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(sl_cql_error_t *e, int code, const char *fmt, ...) {
  e->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Client-side monotonic µs timestamps: wall clock, but never equal to or below the previous one. */
static int64_t next_timestamp(sl_cql_client_t *c) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
  if (us <= c->last_ts) us = c->last_ts + 1;
  c->last_ts = us;
  return us;
}

static void handle_closed(uv_handle_t *h);
static void maybe_finish_close(sl_cql_client_t *c);
static int dispatch(req_t *rq);
static void drain_queue(sl_cql_client_t *c);
static void conn_close(conn_t *cn, const char *why);
static conn_t *conn_open(sl_cql_client_t *c, host_t *h, const struct sockaddr *sa, const char *peer, bool control);
static void refresh_topology(sl_cql_client_t *c);
static void schedule_host_reconnect(host_t *h);
static void update_host_state(host_t *h);
static void control_reconnect_later(sl_cql_client_t *c);
static void start_schema_check(sl_cql_client_t *c);

/* ---------------------------------------------------------------- config, create */

void sl_cql_client_config_defaults(sl_cql_client_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->contact_points = "127.0.0.1:9042";
  cfg->connections_per_host = 1;
  cfg->max_requests_per_connection = 1024;
  cfg->max_pending = 65536;
  cfg->request_timeout_ms = 12000;
  cfg->connect_timeout_ms = 5000;
  cfg->consistency = SL_CQL_LOCAL_ONE;
  cfg->tls_check_hostname = true;
}

/* "host[:port]" or "[v6]:port" or bare v6. */
static int parse_contact(const char *s, size_t len, contact_t *out) {
  out->port = 9042;
  while (len && (*s == ' ' || *s == '\t')) s++, len--;
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
  if (!len || len >= sizeof out->host) return -EINVAL;
  const char *host = s;
  size_t hlen = len;
  if (s[0] == '[') {
    const char *close = memchr(s, ']', len);
    if (!close) return -EINVAL;
    host = s + 1;
    hlen = (size_t)(close - s - 1);
    if ((size_t)(close - s) + 1 < len) {
      if (close[1] != ':') return -EINVAL;
      out->port = atoi(close + 2);
    }
  } else {
    const char *colon = memchr(s, ':', len);
    if (colon && !memchr(colon + 1, ':', len - (size_t)(colon - s) - 1)) {
      hlen = (size_t)(colon - s);
      char pbuf[16];
      size_t pl = len - hlen - 1;
      if (!pl || pl >= sizeof pbuf) return -EINVAL;
      memcpy(pbuf, colon + 1, pl);
      pbuf[pl] = 0;
      char *end;
      long p = strtol(pbuf, &end, 10);
      if (*end || p <= 0 || p > 65535) return -EINVAL;
      out->port = (int)p;
    }
  }
  if (!hlen || out->port <= 0 || out->port > 65535) return -EINVAL;
  memcpy(out->host, host, hlen);
  out->host[hlen] = 0;
  return 0;
}

/* Frees the copies of the configuration and the client itself (the last step of both teardown paths). */
static void free_config(sl_cql_client_t *c) {
  free(c->contacts);
  free(c->contact_str);
  free(c->username);
  free(c->password);
  free(c->local_dc);
  free(c->keyspace);
  free(c->tls_server_name);
  free(c->tls_named);
  sl_tls_ctx_free(c->tls_ctx); /* every connection (and its SSL) is gone by now */
  free(c);
}

static bool str_set(const char *s) { return s && *s; }

/* Loads the TLS files into a context (or checks that no TLS setting is given without cfg->tls). */
static int setup_tls(sl_cql_client_t *c, const sl_cql_client_config_t *cfg, char *err, size_t errlen) {
  if (!cfg->tls) {
    if (str_set(cfg->tls_ca_file) || str_set(cfg->tls_cert_file) || str_set(cfg->tls_key_file) ||
        str_set(cfg->tls_server_name)) {
      /* a CA file without TLS would silently connect in clear: refuse rather than guess */
      snprintf(err, errlen, "TLS files or a TLS server name are set but TLS is off");
      return -EINVAL;
    }
    return 0;
  }
  sl_tls_client_config_t tc = {.ca_file = cfg->tls_ca_file, .cert_file = cfg->tls_cert_file,
                               .key_file = cfg->tls_key_file};
  int rc = sl_tls_client_ctx_create(&tc, &c->tls_ctx, err, errlen);
  if (rc != 0) return rc;
  c->tls_client_cert = str_set(cfg->tls_cert_file);
  if (str_set(cfg->tls_server_name)) {
    if (strlen(cfg->tls_server_name) >= sizeof c->tls_named[0].name) {
      snprintf(err, errlen, "TLS server name too long");
      return -EINVAL;
    }
    c->tls_server_name = xstrdup(cfg->tls_server_name);
  }
  return 0;
}

int sl_cql_client_create(uv_loop_t *loop, const sl_cql_client_config_t *cfg, sl_cql_client_t **out) {
  char err[512];
  int rc = sl_cql_client_create_with_error(loop, cfg, out, err, sizeof err);
  if (rc != 0) SL_ERROR("cql-client", "%s", err);
  return rc;
}

int sl_cql_client_create_with_error(uv_loop_t *loop, const sl_cql_client_config_t *cfg, sl_cql_client_t **out,
                                    char *err, size_t errlen) {
  *out = NULL;
  sl_cql_client_config_t d;
  sl_cql_client_config_defaults(&d);
  if (!cfg) cfg = &d;
  sl_cql_client_t *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->loop = loop;
  c->cfg = *cfg;
  if (!c->cfg.contact_points) c->cfg.contact_points = d.contact_points;
  if (c->cfg.connections_per_host <= 0) c->cfg.connections_per_host = d.connections_per_host;
  if (c->cfg.connections_per_host > 64) c->cfg.connections_per_host = 64;
  if (c->cfg.max_requests_per_connection <= 0) c->cfg.max_requests_per_connection = d.max_requests_per_connection;
  if (c->cfg.max_requests_per_connection > 32768) c->cfg.max_requests_per_connection = 32768;
  if (c->cfg.max_pending <= 0) c->cfg.max_pending = d.max_pending;
  if (c->cfg.request_timeout_ms <= 0) c->cfg.request_timeout_ms = d.request_timeout_ms;
  if (c->cfg.connect_timeout_ms <= 0) c->cfg.connect_timeout_ms = d.connect_timeout_ms;
  if (c->cfg.consistency == SL_CQL_ANY && cfg == &d) c->cfg.consistency = d.consistency;
  c->contact_str = xstrdup(c->cfg.contact_points);
  c->username = xstrdup(cfg->username);
  c->password = xstrdup(cfg->password);
  c->local_dc = xstrdup(cfg->local_dc);
  c->keyspace = xstrdup(cfg->keyspace);
  c->cfg.contact_points = c->contact_str;
  c->cfg.username = c->username;
  c->cfg.password = c->password;
  c->cfg.local_dc = c->local_dc;
  c->cfg.keyspace = c->keyspace;
  c->version = CQL_VERSION_V4;
  /* contact points */
  const char *p = c->contact_str;
  while (*p) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (len) {
      contact_t ct;
      if (parse_contact(p, len, &ct) != 0) {
        snprintf(err, errlen, "bad contact point '%.*s'", (int)len, p);
        free_config(c);
        return -EINVAL;
      }
      contact_t *n = realloc(c->contacts, (c->ncontacts + 1) * sizeof *n);
      if (!n) abort();
      c->contacts = n;
      c->contacts[c->ncontacts++] = ct;
    }
    p += len;
    if (*p == ',') p++;
  }
  if (!c->ncontacts) {
    snprintf(err, errlen, "no contact point in '%s'", c->contact_str);
    free_config(c);
    return -EINVAL;
  }
  int rc = setup_tls(c, cfg, err, errlen);
  if (rc != 0) {
    free_config(c);
    return rc;
  }
  /* the files are loaded into tls_ctx; the caller's strings are not kept */
  c->cfg.tls_ca_file = c->cfg.tls_cert_file = c->cfg.tls_key_file = NULL;
  c->cfg.tls_server_name = c->tls_server_name;
  c->ctl_backoff_ms = RECONNECT_BASE_MS;
  *out = c;
  return 0;
}

/* ---------------------------------------------------------------- statements */

static sl_cql_statement_t *statement_alloc(size_t n) {
  sl_cql_statement_t *st = calloc(1, sizeof *st);
  if (!st) abort();
  st->nvalues = n;
  st->values = calloc(n ? n : 1, sizeof *st->values);
  if (!st->values) abort();
  for (size_t i = 0; i < n; i++) st->values[i].kind = CQL_VALUE_UNSET;
  st->consistency = -1;
  st->page_size = DEFAULT_PAGE_SIZE;
  sl_buf_init(&st->data);
  return st;
}

sl_cql_statement_t *sl_cql_statement_new(const char *query, size_t value_count) {
  if (!query) return NULL;
  sl_cql_statement_t *st = statement_alloc(value_count);
  st->query = xstrdup(query);
  return st;
}

sl_cql_statement_t *sl_cql_statement_new_prepared(sl_cql_prepared_t *p) {
  if (!p) return NULL;
  sl_cql_statement_t *st = statement_alloc(p->params.ncols);
  st->p = p;
  p->refs++;
  return st;
}

void sl_cql_statement_free(sl_cql_statement_t *st) {
  if (!st) return;
  free(st->query);
  if (st->p) sl_cql_prepared_release(st->p);
  free(st->values);
  sl_buf_free(&st->data);
  free(st->paging_state);
  free(st);
}

static void bad_bind(sl_cql_statement_t *st, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void bad_bind(sl_cql_statement_t *st, size_t i, const char *fmt, ...) {
  if (st->bad[0]) return;
  int n = snprintf(st->bad, sizeof st->bad, "bind value %zu: ", i);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->bad + n, sizeof st->bad - (size_t)n, fmt, ap);
  va_end(ap);
}

/* Where value i goes; NULL (and a recorded error) when out of range. */
static bool bind_index_ok(sl_cql_statement_t *st, size_t i) {
  if (!st) return false;
  if (i >= st->nvalues) {
    bad_bind(st, i, "index out of range (the statement has %zu)", st->nvalues);
    return false;
  }
  return true;
}

static void bind_bytes(sl_cql_statement_t *st, size_t i, const void *p, size_t len) {
  if (!bind_index_ok(st, i)) return;
  if (len > INT32_MAX) {
    bad_bind(st, i, "value too long (%zu bytes)", len);
    return;
  }
  st->values[i].kind = CQL_VALUE_SET;
  st->values[i].off = (uint32_t)st->data.len;
  st->values[i].len = (uint32_t)len;
  if (len) sl_buf_put(&st->data, p, len);
}

static const sl_cql_type_t *param_type(sl_cql_statement_t *st, size_t i) {
  return st->p && i < st->p->params.ncols ? st->p->params.types[i] : NULL;
}

static const char *type_label(const sl_cql_type_t *t, char *buf, size_t cap) {
  sl_buf_t b;
  sl_buf_init(&b);
  sl_cql_type_name(t, &b);
  snprintf(buf, cap, "%.*s", (int)b.len, b.len ? (const char *)b.data : "");
  sl_buf_free(&b);
  return buf;
}

static void type_mismatch(sl_cql_statement_t *st, size_t i, const char *what) {
  char tn[64];
  const char *name = st->p && i < st->p->params.ncols ? st->p->params.names[i] : "?";
  bad_bind(st, i, "cannot bind %s to column %s of type %s", what, name, type_label(param_type(st, i), tn, sizeof tn));
}

void sl_cql_statement_bind_null(sl_cql_statement_t *st, size_t i) {
  if (!bind_index_ok(st, i)) return;
  st->values[i].kind = CQL_VALUE_NULL;
}

void sl_cql_statement_bind_unset(sl_cql_statement_t *st, size_t i) {
  if (!bind_index_ok(st, i)) return;
  st->values[i].kind = CQL_VALUE_UNSET;
}

void sl_cql_statement_bind_bool(sl_cql_statement_t *st, size_t i, bool v) {
  const sl_cql_type_t *t = st ? param_type(st, i) : NULL;
  if (t && t->id != CQL_TYPE_BOOLEAN) return type_mismatch(st, i, "a boolean");
  uint8_t b = v ? 1 : 0;
  bind_bytes(st, i, &b, 1);
}

/* Integers convert to whichever integer type the column has, when the value fits. */
static void bind_integer(sl_cql_statement_t *st, size_t i, int64_t v, bool wide) {
  const sl_cql_type_t *t = st ? param_type(st, i) : NULL;
  uint8_t b[9];
  uint16_t id = t ? t->id : (wide ? CQL_TYPE_BIGINT : CQL_TYPE_INT);
  switch (id) {
    case CQL_TYPE_TINYINT:
      if (v < INT8_MIN || v > INT8_MAX) return bad_bind(st, i, "%lld does not fit a tinyint", (long long)v);
      b[0] = (uint8_t)(int8_t)v;
      return bind_bytes(st, i, b, 1);
    case CQL_TYPE_SMALLINT:
      if (v < INT16_MIN || v > INT16_MAX) return bad_bind(st, i, "%lld does not fit a smallint", (long long)v);
      b[0] = (uint8_t)((uint16_t)v >> 8);
      b[1] = (uint8_t)v;
      return bind_bytes(st, i, b, 2);
    case CQL_TYPE_INT:
      if (v < INT32_MIN || v > INT32_MAX) return bad_bind(st, i, "%lld does not fit an int", (long long)v);
      sl_store_be32(b, (uint32_t)(int32_t)v);
      return bind_bytes(st, i, b, 4);
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER:
    case CQL_TYPE_TIME:
      sl_store_be64(b, (uint64_t)v);
      return bind_bytes(st, i, b, 8);
    case CQL_TYPE_VARINT: {
      size_t n = sl_cql_varint_encode(v, b);
      return bind_bytes(st, i, b, n);
    }
    default: return type_mismatch(st, i, "an integer");
  }
}

void sl_cql_statement_bind_int32(sl_cql_statement_t *st, size_t i, int32_t v) { bind_integer(st, i, v, false); }
void sl_cql_statement_bind_int64(sl_cql_statement_t *st, size_t i, int64_t v) { bind_integer(st, i, v, true); }

void sl_cql_statement_bind_float(sl_cql_statement_t *st, size_t i, float v) {
  const sl_cql_type_t *t = st ? param_type(st, i) : NULL;
  if (t && t->id == CQL_TYPE_DOUBLE) return sl_cql_statement_bind_double(st, i, v);
  if (t && t->id != CQL_TYPE_FLOAT) return type_mismatch(st, i, "a float");
  uint32_t u;
  memcpy(&u, &v, 4);
  uint8_t b[4];
  sl_store_be32(b, u);
  bind_bytes(st, i, b, 4);
}

void sl_cql_statement_bind_double(sl_cql_statement_t *st, size_t i, double v) {
  const sl_cql_type_t *t = st ? param_type(st, i) : NULL;
  if (t && t->id != CQL_TYPE_DOUBLE) return type_mismatch(st, i, "a double");
  uint64_t u;
  memcpy(&u, &v, 8);
  uint8_t b[8];
  sl_store_be64(b, u);
  bind_bytes(st, i, b, 8);
}

void sl_cql_statement_bind_text(sl_cql_statement_t *st, size_t i, const char *s, size_t len) {
  const sl_cql_type_t *t = st ? param_type(st, i) : NULL;
  if (t && t->id != CQL_TYPE_VARCHAR && t->id != CQL_TYPE_ASCII) return type_mismatch(st, i, "text");
  bind_bytes(st, i, s, len);
}

void sl_cql_statement_bind_blob(sl_cql_statement_t *st, size_t i, const void *p, size_t len) {
  const sl_cql_type_t *t = st ? param_type(st, i) : NULL;
  if (t && t->id != CQL_TYPE_BLOB && t->id != CQL_TYPE_CUSTOM) return type_mismatch(st, i, "a blob");
  bind_bytes(st, i, p, len);
}

void sl_cql_statement_bind_uuid(sl_cql_statement_t *st, size_t i, const uint8_t uuid[16]) {
  const sl_cql_type_t *t = st ? param_type(st, i) : NULL;
  if (t && t->id != CQL_TYPE_UUID && t->id != CQL_TYPE_TIMEUUID) return type_mismatch(st, i, "a uuid");
  bind_bytes(st, i, uuid, 16);
}

void sl_cql_statement_bind_timestamp(sl_cql_statement_t *st, size_t i, int64_t ms_since_epoch) {
  const sl_cql_type_t *t = st ? param_type(st, i) : NULL;
  if (t && t->id != CQL_TYPE_TIMESTAMP && t->id != CQL_TYPE_BIGINT) return type_mismatch(st, i, "a timestamp");
  uint8_t b[8];
  sl_store_be64(b, (uint64_t)ms_since_epoch);
  bind_bytes(st, i, b, 8);
}

void sl_cql_statement_bind_raw(sl_cql_statement_t *st, size_t i, const void *p, size_t len) {
  bind_bytes(st, i, p, len);
}

void sl_cql_statement_set_consistency(sl_cql_statement_t *st, sl_cql_consistency_t cl) {
  if (st) st->consistency = (int)cl;
}
void sl_cql_statement_set_page_size(sl_cql_statement_t *st, int32_t rows) {
  if (st) st->page_size = rows;
}
void sl_cql_statement_set_paging_state(sl_cql_statement_t *st, const void *state, size_t len) {
  if (!st) return;
  free(st->paging_state);
  st->paging_state = NULL;
  st->paging_len = 0;
  if (state && len) {
    st->paging_state = malloc(len);
    if (!st->paging_state) abort();
    memcpy(st->paging_state, state, len);
    st->paging_len = len;
  }
}
void sl_cql_statement_set_idempotent(sl_cql_statement_t *st, bool idempotent) {
  if (st) st->idempotent = idempotent;
}
void sl_cql_statement_set_timestamp(sl_cql_statement_t *st, int64_t micros) {
  if (!st) return;
  st->has_ts = true;
  st->ts = micros;
}
void sl_cql_statement_set_timeout(sl_cql_statement_t *st, int timeout_ms) {
  if (st) st->timeout_ms = timeout_ms;
}

/* ---------------------------------------------------------------- batches */

sl_cql_batch_t *sl_cql_batch_new(sl_cql_batch_type_t type) {
  sl_cql_batch_t *b = calloc(1, sizeof *b);
  if (!b) abort();
  b->type = type;
  b->consistency = -1;
  return b;
}

void sl_cql_batch_add(sl_cql_batch_t *b, sl_cql_statement_t *st) {
  if (!b || !st) return;
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 8;
    sl_cql_statement_t **n = realloc(b->st, cap * sizeof *n);
    if (!n) abort();
    b->st = n;
    b->cap = cap;
  }
  b->st[b->n++] = st;
}

size_t sl_cql_batch_count(const sl_cql_batch_t *b) { return b ? b->n : 0; }
void sl_cql_batch_set_consistency(sl_cql_batch_t *b, sl_cql_consistency_t cl) {
  if (b) b->consistency = (int)cl;
}
void sl_cql_batch_set_idempotent(sl_cql_batch_t *b, bool idempotent) {
  if (b) b->idempotent = idempotent;
}
void sl_cql_batch_free(sl_cql_batch_t *b) {
  if (!b) return;
  for (size_t i = 0; i < b->n; i++) sl_cql_statement_free(b->st[i]);
  free(b->st);
  free(b);
}

/* ---------------------------------------------------------------- prepared statements */

static void prepared_clear_meta(sl_cql_prepared_t *p) {
  sl_cql_result_clear(&p->params);
  free(p->pk);
  p->pk = NULL;
  p->npk = 0;
}

void sl_cql_prepared_keep(sl_cql_prepared_t *p) {
  if (p) p->refs++;
}
void sl_cql_prepared_release(sl_cql_prepared_t *p) {
  if (!p || --p->refs > 0) return;
  prepared_clear_meta(p);
  free(p->query);
  free(p->keyspace);
  free(p->id);
  free(p);
}
size_t sl_cql_prepared_param_count(const sl_cql_prepared_t *p) { return p ? p->params.ncols : 0; }
const char *sl_cql_prepared_param_name(const sl_cql_prepared_t *p, size_t i) {
  return p && i < p->params.ncols ? p->params.names[i] : NULL;
}
const sl_cql_type_t *sl_cql_prepared_param_type(const sl_cql_prepared_t *p, size_t i) {
  return p && i < p->params.ncols ? p->params.types[i] : NULL;
}

/* Decodes a Prepared result into p (id, bind metadata, pk indexes). Returns 0 or -EPROTO. */
static int decode_prepared(const uint8_t *body, size_t len, int version, sl_cql_prepared_t *p) {
  sl_reader_t r;
  sl_reader_init(&r, body, len);
  if (cql_read_int(&r) != CQL_RESULT_PREPARED || r.err) return -EPROTO;
  sl_slice_t id = cql_read_short_bytes(&r);
  if (r.err || id.len == 0) return -EPROTO;
  prepared_clear_meta(p);
  if (sl_cql_read_metadata(&r, &p->params, version >= 4, &p->pk, &p->npk) != 0) {
    prepared_clear_meta(p);
    return -EPROTO;
  }
  for (size_t i = 0; i < p->npk; i++)
    if (p->pk[i] >= p->params.ncols) { /* nonsense index: no routing */
      free(p->pk);
      p->pk = NULL;
      p->npk = 0;
      break;
    }
  uint8_t *nid = malloc(id.len);
  if (!nid) abort();
  memcpy(nid, id.ptr, id.len);
  free(p->id);
  p->id = nid;
  p->id_len = id.len;
  return 0;
}

static sl_cql_prepared_t *cache_find(sl_cql_client_t *c, const char *query, const char *ks) {
  for (size_t i = 0; i < c->nprepared; i++) {
    sl_cql_prepared_t *p = c->prepared[i];
    if (!strcmp(p->query, query) && ((!ks && !p->keyspace) || (ks && p->keyspace && !strcmp(ks, p->keyspace))))
      return p;
  }
  return NULL;
}

static void cache_add(sl_cql_client_t *c, sl_cql_prepared_t *p) {
  if (c->nprepared == c->capprepared) {
    size_t cap = c->capprepared ? c->capprepared * 2 : 16;
    sl_cql_prepared_t **n = realloc(c->prepared, cap * sizeof *n);
    if (!n) abort();
    c->prepared = n;
    c->capprepared = cap;
  }
  p->refs++;
  c->prepared[c->nprepared++] = p;
}

/* ---------------------------------------------------------------- requests */

static req_t *req_new(sl_cql_client_t *c, uint8_t opcode) {
  req_t *rq = calloc(1, sizeof *rq);
  if (!rq) abort();
  rq->c = c;
  rq->opcode = opcode;
  rq->stream = -1;
  sl_buf_init(&rq->body);
  return rq;
}

static void tlist_remove(req_t *rq) {
  if (!rq->in_tlist) return;
  sl_cql_client_t *c = rq->c;
  if (rq->tprev) rq->tprev->tnext = rq->tnext;
  else c->thead = rq->tnext;
  if (rq->tnext) rq->tnext->tprev = rq->tprev;
  else c->ttail = rq->tprev;
  rq->tprev = rq->tnext = NULL;
  rq->in_tlist = false;
}

/* Deadline-ordered insert, from the tail (timeouts are mostly equal, so this is O(1) in practice). */
static void tlist_insert(req_t *rq) {
  sl_cql_client_t *c = rq->c;
  req_t *after = c->ttail;
  while (after && after->deadline > rq->deadline) after = after->tprev;
  rq->tprev = after;
  rq->tnext = after ? after->tnext : c->thead;
  if (rq->tnext) rq->tnext->tprev = rq;
  else c->ttail = rq;
  if (after) after->tnext = rq;
  else c->thead = rq;
  rq->in_tlist = true;
}

static void queue_remove(req_t *rq) {
  if (!rq->queued) return;
  sl_cql_client_t *c = rq->c;
  req_t **pp = &c->qhead, *prev = NULL;
  while (*pp && *pp != rq) {
    prev = *pp;
    pp = &(*pp)->qnext;
  }
  if (*pp) {
    *pp = rq->qnext;
    if (c->qtail == rq) c->qtail = prev;
    c->nqueued--;
  }
  rq->qnext = NULL;
  rq->queued = false;
}

static void req_free(req_t *rq) {
  tlist_remove(rq);
  queue_remove(rq);
  if (rq->st) sl_cql_statement_free(rq->st);
  if (rq->batch) sl_cql_batch_free(rq->batch);
  if (rq->reprep) sl_cql_prepared_release(rq->reprep);
  free(rq->query);
  sl_buf_free(&rq->body);
  free(rq);
}

/* Runs the user callback once with an error and forgets the request unless a connection still holds its stream. */
static void req_fail(req_t *rq, const sl_cql_error_t *err) {
  if (!rq->finished) {
    rq->finished = true;
    if (rq->fn) rq->fn(rq, rq->conn, CQL_OP_ERROR, NULL, 0, err);
    else if (rq->pcb) rq->pcb(NULL, err, rq->arg);
    else if (rq->cb) rq->cb(NULL, err, rq->arg);
  }
  if (rq->conn && rq->stream >= 0) { /* orphaned: freed when the response (or the connection's end) comes */
    tlist_remove(rq);
    if (rq->st) {
      sl_cql_statement_free(rq->st);
      rq->st = NULL;
    }
    if (rq->batch) {
      sl_cql_batch_free(rq->batch);
      rq->batch = NULL;
    }
    return;
  }
  req_free(rq);
}

static void req_fail_code(req_t *rq, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void req_fail_code(req_t *rq, int code, const char *fmt, ...) {
  sl_cql_error_t e;
  e.code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e.message, sizeof e.message, fmt, ap);
  va_end(ap);
  req_fail(rq, &e);
}

static bool req_idempotent(const req_t *rq) {
  if (rq->batch) return rq->batch->idempotent;
  if (rq->st) return rq->st->idempotent;
  return rq->opcode == CQL_OP_PREPARE;
}

static int req_timeout_ms(const req_t *rq) {
  if (rq->st && rq->st->timeout_ms > 0) return rq->st->timeout_ms;
  return rq->c->cfg.request_timeout_ms;
}

/* ---------------------------------------------------------------- encoding */

static int consistency_of(const sl_cql_client_t *c, int cl) { return cl >= 0 ? cl : (int)c->cfg.consistency; }

static int encode_values(sl_buf_t *b, const sl_cql_statement_t *st, int version, sl_cql_error_t *err) {
  cql_write_short(b, (uint16_t)st->nvalues);
  for (size_t i = 0; i < st->nvalues; i++) {
    const value_t *v = &st->values[i];
    if (v->kind == CQL_VALUE_SET) {
      cql_write_int(b, (int32_t)v->len);
      if (v->len) sl_buf_put(b, st->data.data + v->off, v->len);
    } else if (v->kind == CQL_VALUE_NULL || version < 4) {
      cql_write_int(b, -1);
    } else {
      cql_write_int(b, -2);
    }
  }
  (void)err;
  return 0;
}

/* Checks a statement before it is sent: binding errors, value count, values against the bind metadata. */
static int check_statement(const sl_cql_statement_t *st, sl_cql_error_t *err) {
  if (st->bad[0]) {
    set_err(err, SL_CQL_CLIENT_BAD_VALUE, "%s", st->bad);
    return -1;
  }
  if (st->nvalues > 65535) {
    set_err(err, SL_CQL_CLIENT_BAD_VALUE, "too many values (%zu)", st->nvalues);
    return -1;
  }
  if (st->p) {
    for (size_t i = 0; i < st->nvalues && i < st->p->params.ncols; i++) {
      const value_t *v = &st->values[i];
      if (v->kind != CQL_VALUE_SET) continue;
      const char *why = sl_cql_value_validate(st->p->params.types[i], st->data.data + v->off, v->len);
      if (why) {
        set_err(err, SL_CQL_CLIENT_BAD_VALUE, "bind value %zu (%s): %s", i, st->p->params.names[i], why);
        return -1;
      }
    }
  }
  return 0;
}

static void encode_params(sl_buf_t *b, sl_cql_client_t *c, const sl_cql_statement_t *st, int64_t ts, int version) {
  cql_write_short(b, (uint16_t)consistency_of(c, st->consistency));
  uint8_t flags = 0;
  if (st->nvalues) flags |= CQL_QFLAG_VALUES;
  if (st->page_size > 0) flags |= CQL_QFLAG_PAGE_SIZE;
  if (st->paging_state) flags |= CQL_QFLAG_PAGING_STATE;
  flags |= CQL_QFLAG_DEFAULT_TIMESTAMP;
  cql_write_byte(b, flags);
  if (st->nvalues) encode_values(b, st, version, NULL);
  if (st->page_size > 0) cql_write_int(b, st->page_size);
  if (st->paging_state) cql_write_bytes(b, st->paging_state, st->paging_len);
  cql_write_long(b, ts);
}

/* Appends rq's body for connection version. Returns 0, or -1 with err set (a value that cannot be sent). */
static int encode_request(req_t *rq, int version, sl_buf_t *b, sl_cql_error_t *err) {
  sl_cql_client_t *c = rq->c;
  if (rq->fn) {
    sl_buf_put(b, rq->body.data, rq->body.len);
    return 0;
  }
  switch (rq->opcode) {
    case CQL_OP_PREPARE: cql_write_long_string(b, rq->query, strlen(rq->query)); return 0;
    case CQL_OP_QUERY:
      cql_write_long_string(b, rq->st->query, strlen(rq->st->query));
      encode_params(b, c, rq->st, rq->ts, version);
      return 0;
    case CQL_OP_EXECUTE:
      cql_write_short_bytes(b, rq->st->p->id, rq->st->p->id_len);
      encode_params(b, c, rq->st, rq->ts, version);
      return 0;
    case CQL_OP_BATCH: {
      sl_cql_batch_t *bt = rq->batch;
      cql_write_byte(b, (uint8_t)bt->type);
      cql_write_short(b, (uint16_t)bt->n);
      for (size_t i = 0; i < bt->n; i++) {
        sl_cql_statement_t *st = bt->st[i];
        if (st->p) {
          cql_write_byte(b, 1);
          cql_write_short_bytes(b, st->p->id, st->p->id_len);
        } else {
          cql_write_byte(b, 0);
          cql_write_long_string(b, st->query, strlen(st->query));
        }
        encode_values(b, st, version, err);
      }
      cql_write_short(b, (uint16_t)consistency_of(c, bt->consistency));
      cql_write_byte(b, CQL_QFLAG_DEFAULT_TIMESTAMP);
      cql_write_long(b, rq->ts);
      return 0;
    }
    default: set_err(err, SL_CQL_CLIENT_PROTOCOL, "cannot encode opcode %d", rq->opcode); return -1;
  }
}

/* ---------------------------------------------------------------- connections: writing */

static void on_write(uv_write_t *w, int status);
static void tls_failed(conn_t *cn);

static void conn_flush(conn_t *cn) {
  if (cn->writing || cn->state == CS_CLOSING || cn->state == CS_CONNECTING) return;
  sl_buf_t *next = &cn->out;
  if (cn->tls) {
    /* Frames are encrypted only once the TLS handshake is done, so nothing of CQL (STARTUP, credentials) can leave
     * before the server is verified; until then only the handshake's own records in tlsout go out. */
    if (cn->out.len && sl_tls_conn_established(cn->tls)) {
      int rc = sl_tls_conn_encrypt(cn->tls, cn->out.data, cn->out.len, &cn->tlsout);
      cn->out.len = 0;
      if (rc != 0) {
        tls_failed(cn);
        return;
      }
    }
    next = &cn->tlsout;
  }
  if (next->len == 0) return;
  sl_buf_t tmp = cn->wbuf;
  cn->wbuf = *next;
  *next = tmp;
  next->len = 0;
  uv_buf_t ub = uv_buf_init((char *)cn->wbuf.data, (unsigned)cn->wbuf.len);
  cn->wreq.data = cn;
  int rc = uv_write(&cn->wreq, (uv_stream_t *)&cn->tcp, &ub, 1, on_write);
  if (rc != 0) {
    char why[128];
    snprintf(why, sizeof why, "write failed: %s", uv_strerror(rc));
    conn_close(cn, why);
    return;
  }
  cn->writing = true;
}

static void on_write(uv_write_t *w, int status) {
  conn_t *cn = w->data;
  cn->writing = false;
  cn->wbuf.len = 0;
  if (status != 0) {
    char why[128];
    snprintf(why, sizeof why, "write failed: %s", uv_strerror(status));
    conn_close(cn, why);
    return;
  }
  if (cn->wbuf.cap > (1u << 22)) { /* don't keep a huge buffer around after a burst */
    sl_buf_free(&cn->wbuf);
    sl_buf_init(&cn->wbuf);
  }
  conn_flush(cn);
}

/* Frames rq onto cn with a free stream id. Returns 0, or -1 with err set when the request cannot be encoded. */
static int conn_send(conn_t *cn, req_t *rq, sl_cql_error_t *err) {
  if (cn->nfree == 0) {
    set_err(err, SL_CQL_CLIENT_OVERLOADED, "no free stream id");
    return -1;
  }
  int16_t id = cn->free_ids[--cn->nfree];
  size_t start = cn->out.len;
  uint8_t opcode = rq->fn ? rq->opcode : rq->opcode;
  bool compress = cn->comp != CQL_COMPRESSION_NONE && opcode != CQL_OP_STARTUP && opcode != CQL_OP_OPTIONS;
  int rc;
  if (compress) {
    cn->cbuf.len = 0;
    rc = encode_request(rq, cn->version, &cn->cbuf, err);
    if (rc == 0) {
      size_t fs = cql_frame_begin(&cn->out, (uint8_t)cn->version, CQL_FLAG_COMPRESSION, id, opcode);
      if (cql_compress(cn->comp, cn->cbuf.data, cn->cbuf.len, &cn->out) != 0) {
        set_err(err, SL_CQL_CLIENT_PROTOCOL, "compression failed");
        rc = -1;
      } else {
        cql_frame_finish(&cn->out, fs);
      }
    }
  } else {
    size_t fs = cql_frame_begin(&cn->out, (uint8_t)cn->version, 0, id, opcode);
    rc = encode_request(rq, cn->version, &cn->out, err);
    if (rc == 0) cql_frame_finish(&cn->out, fs);
  }
  if (rc == 0 && cn->out.len - start - CQL_HEADER_LEN > CQL_MAX_BODY) {
    set_err(err, SL_CQL_CLIENT_BAD_VALUE, "request of %zu bytes exceeds the frame limit", cn->out.len - start);
    rc = -1;
  }
  if (rc != 0) {
    cn->out.len = start;
    cn->free_ids[cn->nfree++] = id;
    return -1;
  }
  cn->streams[id] = rq;
  rq->conn = cn;
  rq->stream = id;
  rq->c->inflight++;
  conn_flush(cn);
  return 0;
}

/* Gives the stream back and detaches rq from cn. */
static void conn_release(conn_t *cn, req_t *rq) {
  if (rq->stream >= 0 && rq->stream < cn->max_streams && cn->streams[rq->stream] == rq) {
    cn->streams[rq->stream] = NULL;
    cn->free_ids[cn->nfree++] = (int16_t)rq->stream;
    rq->c->inflight--;
  }
  rq->stream = -1;
  rq->conn = NULL;
}

/* An internal request pinned to cn, with a pre-encoded body. */
static req_t *internal_req(conn_t *cn, uint8_t opcode, internal_fn fn, void *arg) {
  req_t *rq = req_new(cn->c, opcode);
  rq->fn = fn;
  rq->fn_arg = arg;
  rq->pin = cn;
  rq->deadline = now_ms() + cn->c->cfg.request_timeout_ms;
  return rq;
}

static void internal_send(conn_t *cn, req_t *rq) {
  sl_cql_error_t err;
  tlist_insert(rq);
  if (conn_send(cn, rq, &err) != 0) req_fail(rq, &err);
}

static void internal_query(conn_t *cn, const char *query, internal_fn fn, void *arg) {
  req_t *rq = internal_req(cn, CQL_OP_QUERY, fn, arg);
  cql_write_long_string(&rq->body, query, strlen(query));
  cql_write_short(&rq->body, SL_CQL_ONE);
  cql_write_byte(&rq->body, 0);
  internal_send(cn, rq);
}

/* ---------------------------------------------------------------- connections: lifecycle */

static void conn_free(conn_t *cn) {
  sl_cql_client_t *c = cn->c;
  conn_t **pp = &c->all_conns;
  while (*pp && *pp != cn) pp = &(*pp)->next_all;
  if (*pp) *pp = cn->next_all;
  sl_buf_free(&cn->out);
  sl_buf_free(&cn->wbuf);
  sl_buf_free(&cn->rbuf);
  sl_buf_free(&cn->dbuf);
  sl_buf_free(&cn->cbuf);
  sl_buf_free(&cn->tlsin);
  sl_buf_free(&cn->tlsout);
  sl_tls_conn_free(cn->tls);
  free(cn->streams);
  free(cn->free_ids);
  free(cn);
  maybe_finish_close(c);
}

static void conn_handle_closed(uv_handle_t *h) {
  conn_t *cn = h->data;
  cn->c->handles--;
  if (--cn->handles == 0) conn_free(cn);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void hs_start(conn_t *cn);

static void on_connect_timeout(uv_timer_t *t) {
  conn_t *cn = t->data;
  if (cn->state == CS_CONNECTING || cn->state == CS_TLS || cn->state == CS_HANDSHAKE) {
    char why[200];
    if (cn->state == CS_TLS) /* e.g. a server that does not speak TLS and waits for the rest of a "frame" */
      snprintf(why, sizeof why, "TLS handshake with %s failed: no answer within %d ms", cn->peer,
               cn->c->cfg.connect_timeout_ms);
    else snprintf(why, sizeof why, "connect timeout (%d ms)", cn->c->cfg.connect_timeout_ms);
    conn_close(cn, why);
  }
}

/* ---------------------------------------------------------------- connections: TLS */

/* The names a connection to ip checks and sends (see tls_check_hostname in client.h). */
static void tls_names(const sl_cql_client_t *c, const char *ip, conn_t *cn) {
  const char *name = ip;
  if (c->tls_server_name) {
    name = c->tls_server_name;
  } else {
    for (size_t i = 0; i < c->ntls_named; i++)
      if (!strcmp(c->tls_named[i].ip, ip)) name = c->tls_named[i].name;
  }
  /* tls.c never sends an IP literal as SNI, so the IP fallback sends none */
  snprintf(cn->tls_sni, sizeof cn->tls_sni, "%s", name);
  snprintf(cn->tls_name, sizeof cn->tls_name, "%s", c->cfg.tls_check_hostname ? name : "");
}

/* Remembers that the contact point written as `name` resolved to ip. */
static void tls_remember_name(sl_cql_client_t *c, const char *name, const char *ip) {
  unsigned char a[16];
  if (!c->tls_ctx || uv_inet_pton(AF_INET, name, a) == 0 || uv_inet_pton(AF_INET6, name, a) == 0) return;
  if (strlen(name) >= sizeof c->tls_named[0].name || strlen(ip) >= sizeof c->tls_named[0].ip) return;
  for (size_t i = 0; i < c->ntls_named; i++)
    if (!strcmp(c->tls_named[i].ip, ip)) { /* the last name that resolved to ip wins */
      snprintf(c->tls_named[i].name, sizeof c->tls_named[i].name, "%s", name);
      return;
    }
  tls_named_t *n = realloc(c->tls_named, (c->ntls_named + 1) * sizeof *n);
  if (!n) abort();
  c->tls_named = n;
  snprintf(n[c->ntls_named].ip, sizeof n[0].ip, "%s", ip);
  snprintf(n[c->ntls_named].name, sizeof n[0].name, "%s", name);
  c->ntls_named++;
}

/* Closes cn with the TLS session's reason, worded so that a user sees which server and why. */
static void tls_failed(conn_t *cn) {
  const char *reason = cn->tls ? sl_tls_conn_error(cn->tls) : "";
  if (!reason[0]) reason = "TLS protocol error";
  /* what OpenSSL reports when the bytes that came back are not TLS at all */
  bool not_tls = strstr(reason, "wrong version number") || strstr(reason, "packet length too long") ||
                 strstr(reason, "record layer failure") || strstr(reason, "unknown protocol");
  char why[420];
  snprintf(why, sizeof why, "TLS %s with %s failed: %s%s", cn->state == CS_READY ? "session" : "handshake", cn->peer,
           reason, not_tls ? " (the server does not seem to speak TLS)" : "");
  conn_close(cn, why);
}

/* TCP is up: start the TLS handshake; the CQL handshake starts from on_read once it completes (tls_up). */
static void tls_start(conn_t *cn) {
  cn->state = CS_TLS;
  cn->tls = sl_tls_conn_new_client(cn->c->tls_ctx, cn->tls_sni, cn->tls_name);
  if (!cn->tls) {
    conn_close(cn, "cannot create a TLS session");
    return;
  }
  if (sl_tls_conn_start(cn->tls, &cn->tlsout) != 0) {
    tls_failed(cn);
    return;
  }
  conn_flush(cn);
}

static void on_tcp_connect(uv_connect_t *creq, int status) {
  conn_t *cn = creq->data;
  if (cn->state == CS_CLOSING) return;
  if (status != 0) {
    char why[160];
    snprintf(why, sizeof why, "connect to %s failed: %s", cn->peer, uv_strerror(status));
    conn_close(cn, why);
    return;
  }
  uv_tcp_nodelay(&cn->tcp, 1);
  cn->state = cn->c->tls_ctx ? CS_TLS : CS_HANDSHAKE;
  int rc = uv_read_start((uv_stream_t *)&cn->tcp, on_alloc, on_read);
  if (rc != 0) {
    conn_close(cn, uv_strerror(rc));
    return;
  }
  if (cn->c->tls_ctx) tls_start(cn);
  else hs_start(cn);
}

static conn_t *conn_open(sl_cql_client_t *c, host_t *h, const struct sockaddr *sa, const char *peer, bool control) {
  conn_t *cn = calloc(1, sizeof *cn);
  if (!cn) abort();
  cn->c = c;
  cn->h = h;
  cn->control = control;
  cn->version = c->version;
  cn->max_streams = c->cfg.max_requests_per_connection;
  cn->streams = calloc((size_t)cn->max_streams, sizeof *cn->streams);
  cn->free_ids = calloc((size_t)cn->max_streams, sizeof *cn->free_ids);
  if (!cn->streams || !cn->free_ids) abort();
  for (int i = 0; i < cn->max_streams; i++) cn->free_ids[i] = (int16_t)(cn->max_streams - 1 - i);
  cn->nfree = cn->max_streams;
  snprintf(cn->peer, sizeof cn->peer, "%s", peer);
  sl_buf_init(&cn->out);
  sl_buf_init(&cn->wbuf);
  sl_buf_init(&cn->rbuf);
  sl_buf_init(&cn->dbuf);
  sl_buf_init(&cn->cbuf);
  sl_buf_init(&cn->tlsin);
  sl_buf_init(&cn->tlsout);
  if (c->tls_ctx) {
    char ip[64] = "";
    if (sa->sa_family == AF_INET) uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof ip);
    else uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof ip);
    tls_names(c, ip, cn);
  }
  cn->next_all = c->all_conns;
  c->all_conns = cn;
  uv_tcp_init(c->loop, &cn->tcp);
  uv_timer_init(c->loop, &cn->ctimer);
  cn->tcp.data = cn->ctimer.data = cn;
  cn->handles = 2;
  c->handles += 2;
  cn->state = CS_CONNECTING;
  uv_timer_start(&cn->ctimer, on_connect_timeout, (uint64_t)c->cfg.connect_timeout_ms, 0);
  cn->creq.data = cn;
  int rc = uv_tcp_connect(&cn->creq, &cn->tcp, sa, on_tcp_connect);
  if (rc != 0) {
    char why[160];
    snprintf(why, sizeof why, "connect to %s failed: %s", peer, uv_strerror(rc));
    conn_close(cn, why);
  }
  return cn;
}

static void on_control_lost(sl_cql_client_t *c, const char *why);
static void on_pool_conn_lost(conn_t *cn);

/* Closes cn: every request it carries is retried elsewhere (idempotent ones) or failed. */
static void conn_close(conn_t *cn, const char *why) {
  if (cn->state == CS_CLOSING) return;
  sl_cql_client_t *c = cn->c;
  bool was_ready = cn->state == CS_READY;
  cn->state = CS_CLOSING;
  snprintf(cn->why, sizeof cn->why, "%s", why);
  snprintf(c->last_error, sizeof c->last_error, "%s", why);
  SL_DEBUG("cql-client", "connection to %s closed: %s", cn->peer, why);
  uv_timer_stop(&cn->ctimer);
  uv_close((uv_handle_t *)&cn->tcp, conn_handle_closed);
  uv_close((uv_handle_t *)&cn->ctimer, conn_handle_closed);
  for (int i = 0; i < cn->max_streams; i++) {
    req_t *rq = cn->streams[i];
    if (!rq) continue;
    conn_release(cn, rq);
    if (rq->finished) {
      req_free(rq);
    } else if (!rq->fn && !c->closing && req_idempotent(rq) && rq->attempts < MAX_ATTEMPTS) {
      c->stats.retries++;
      rq->plan_pos++;
      dispatch(rq);
    } else {
      req_fail_code(rq, c->closing ? SL_CQL_CLIENT_CLOSING : SL_CQL_CLIENT_CONNECTION_CLOSED,
                    "connection to %s closed: %s", cn->peer, why);
    }
  }
  if (cn->control) on_control_lost(c, why);
  else if (cn->h) {
    (void)was_ready;
    on_pool_conn_lost(cn);
  }
}

/* ---------------------------------------------------------------- connections: reading */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn_t *cn = h->data;
  (void)suggested;
  if (cn->tls) { /* ciphertext goes through the session; on_read decrypts it into rbuf */
    cn->tlsin.len = 0;
    sl_buf_reserve(&cn->tlsin, 65536);
    buf->base = (char *)cn->tlsin.data;
    buf->len = cn->tlsin.cap;
    return;
  }
  sl_buf_reserve(&cn->rbuf, 65536);
  buf->base = (char *)cn->rbuf.data + cn->rbuf.len;
  buf->len = cn->rbuf.cap - cn->rbuf.len;
}

static void on_frame(conn_t *cn, const cql_header_t *h, const uint8_t *body, size_t len);

/* The TLS session's share of a read: decrypts into rbuf, sends what the session answers, and moves on to the CQL
 * handshake once the TLS handshake completes. Returns false when the connection was closed. */
static bool tls_read(conn_t *cn, size_t n) {
  int rc = sl_tls_conn_feed(cn->tls, cn->tlsin.data, n, &cn->rbuf, &cn->tlsout);
  cn->tlsin.len = 0;
  if (rc != 0) {
    tls_failed(cn);
    return false;
  }
  if (cn->state == CS_TLS && sl_tls_conn_established(cn->tls)) {
    SL_DEBUG("cql-client", "TLS with %s established", cn->peer);
    cn->state = CS_HANDSHAKE;
    hs_start(cn); /* OPTIONS: the first CQL bytes, behind the handshake's last records in tlsout */
  }
  conn_flush(cn);
  return cn->state != CS_CLOSING;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *cn = s->data;
  (void)buf;
  if (nread < 0) {
    char why[200];
    const char *what = nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread);
    if (cn->state == CS_TLS) snprintf(why, sizeof why, "TLS handshake with %s failed: %s", cn->peer, what);
    else if (cn->tls && !cn->answered && nread == UV_EOF)
      /* TLS 1.3 lets the client finish its handshake before the server has checked the client's certificate: a
       * server that refuses it (or wants one) may just close after our first record, without an alert */
      snprintf(why, sizeof why, "TLS handshake with %s failed: %s before answering (%s a client certificate?)",
               cn->peer, what, cn->c->tls_client_cert ? "did it refuse" : "does it require");
    else if (!cn->tls && !cn->answered && nread == UV_EOF) /* what a TLS-only server does with a clear OPTIONS */
      snprintf(why, sizeof why, "%s before answering (if it requires TLS, turn TLS on in the client)", what);
    else snprintf(why, sizeof why, "%s", what);
    conn_close(cn, why);
    return;
  }
  if (cn->state == CS_CLOSING || nread == 0) return;
  if (cn->tls) {
    if (!tls_read(cn, (size_t)nread)) return;
  } else {
    cn->rbuf.len += (size_t)nread;
    /* A TLS record (alert 0x15 or handshake 0x16, then major version 3) where a CQL response was expected: the
     * server wants TLS. No CQL frame starts so (response versions have the 0x80 bit set). */
    if (cn->state == CS_HANDSHAKE && cn->rbuf.len >= 2 && (cn->rbuf.data[0] == 0x15 || cn->rbuf.data[0] == 0x16) &&
        cn->rbuf.data[1] == 0x03) {
      char why[200];
      snprintf(why, sizeof why, "%s answered with TLS: the server requires TLS (turn TLS on in the client)", cn->peer);
      conn_close(cn, why);
      return;
    }
  }
  size_t pos = 0;
  while (cn->state != CS_CLOSING) {
    cql_header_t h;
    int rc = cql_parse_header(cn->rbuf.data + pos, cn->rbuf.len - pos, CQL_MAX_BODY, &h);
    if (rc == CQL_HEADER_NEED_MORE) break;
    if (rc != CQL_HEADER_OK) {
      conn_close(cn, "frame larger than the protocol limit");
      return;
    }
    if (cn->rbuf.len - pos < CQL_HEADER_LEN + (size_t)h.length) {
      sl_buf_reserve(&cn->rbuf, CQL_HEADER_LEN + (size_t)h.length - (cn->rbuf.len - pos));
      break;
    }
    const uint8_t *body = cn->rbuf.data + pos + CQL_HEADER_LEN;
    size_t blen = h.length;
    pos += CQL_HEADER_LEN + (size_t)h.length;
    if (!(h.version & CQL_RESPONSE_BIT)) {
      conn_close(cn, "server sent a request frame");
      return;
    }
    if (h.flags & CQL_FLAG_COMPRESSION) {
      cn->dbuf.len = 0;
      if (cn->comp == CQL_COMPRESSION_NONE || cql_decompress(cn->comp, body, blen, CQL_MAX_BODY, &cn->dbuf) != 0) {
        conn_close(cn, "undecodable compressed frame");
        return;
      }
      body = cn->dbuf.data;
      blen = cn->dbuf.len;
    }
    on_frame(cn, &h, body, blen);
  }
  if (cn->state == CS_CLOSING) return; /* buffers are freed with the connection */
  if (pos) {
    memmove(cn->rbuf.data, cn->rbuf.data + pos, cn->rbuf.len - pos);
    cn->rbuf.len -= pos;
  }
}

/* Skips the optional header sections (tracing id, warnings, custom payload) at the start of a response body. */
static void skip_body_prefix(const cql_header_t *h, sl_reader_t *r) {
  if (h->flags & CQL_FLAG_TRACING) (void)sl_read_bytes(r, 16);
  if (h->flags & CQL_FLAG_WARNING) {
    uint16_t n = cql_read_list_count(r, 2);
    for (uint16_t i = 0; i < n; i++) (void)cql_read_string(r);
  }
  if (h->flags & CQL_FLAG_CUSTOM_PAYLOAD) {
    uint16_t n = cql_read_list_count(r, 6);
    for (uint16_t i = 0; i < n; i++) {
      bool null;
      (void)cql_read_string(r);
      (void)cql_read_bytes(r, &null);
    }
  }
}

static void decode_error(const uint8_t *body, size_t len, sl_cql_error_t *e, sl_slice_t *unprepared_id) {
  sl_reader_t r;
  sl_reader_init(&r, body, len);
  int32_t code = cql_read_int(&r);
  sl_slice_t msg = cql_read_string(&r);
  if (r.err) {
    set_err(e, SL_CQL_CLIENT_PROTOCOL, "malformed ERROR body (%zu bytes)", len);
    return;
  }
  e->code = code;
  snprintf(e->message, sizeof e->message, "%.*s", (int)msg.len, msg.len ? (const char *)msg.ptr : "");
  if (code == CQL_ERR_UNPREPARED && unprepared_id) {
    *unprepared_id = cql_read_short_bytes(&r);
    if (r.err) unprepared_id->len = 0;
  }
}

static void on_event(conn_t *cn, const uint8_t *body, size_t len);
static void on_user_response(conn_t *cn, req_t *rq, uint8_t opcode, const uint8_t *body, size_t len);

static void on_frame(conn_t *cn, const cql_header_t *h, const uint8_t *body, size_t len) {
  cn->answered = true;
  sl_reader_t r;
  sl_reader_init(&r, body, len);
  skip_body_prefix(h, &r);
  if (r.err) {
    conn_close(cn, "malformed response header sections");
    return;
  }
  body += r.pos;
  len -= r.pos;
  if (h->opcode == CQL_OP_EVENT) {
    on_event(cn, body, len);
    return;
  }
  if (h->stream < 0 || h->stream >= cn->max_streams || !cn->streams[h->stream]) {
    /* The server refused our protocol version before we had a stream to match (spec §1.2): it answers on the
     * stream we used, so it lands in the normal path; anything else unknown is dropped. */
    return;
  }
  req_t *rq = cn->streams[h->stream];
  int version = h->version & 0x7F;
  if (version != cn->version) {
    if (h->opcode == CQL_OP_ERROR && version >= 3 && version < cn->version && cn->state == CS_HANDSHAKE) {
      /* unsupported version: downgrade and reconnect (drivers do the same) */
      SL_INFO("cql-client", "%s does not speak protocol v%d; downgrading to v%d", cn->peer, cn->version, version);
      cn->c->version = version;
      conn_close(cn, "protocol version downgrade");
      return;
    }
    conn_close(cn, "response with an unexpected protocol version");
    return;
  }
  conn_release(cn, rq);
  tlist_remove(rq);
  if (rq->finished) { /* timed out earlier: drop */
    req_free(rq);
    drain_queue(cn->c);
    return;
  }
  if (rq->fn) {
    sl_cql_error_t err, *ep = NULL;
    if (h->opcode == CQL_OP_ERROR) {
      decode_error(body, len, &err, NULL);
      ep = &err;
    }
    rq->finished = true;
    rq->fn(rq, cn, h->opcode, body, len, ep);
    req_free(rq);
  } else {
    on_user_response(cn, rq, h->opcode, body, len);
  }
  drain_queue(cn->c);
}

/* ---------------------------------------------------------------- handshake */

static void conn_ready(conn_t *cn);

static void hs_fail(conn_t *cn, const sl_cql_error_t *err, const char *what) {
  char why[600];
  if (err) snprintf(why, sizeof why, "%s: %s (code=%04x)", what, err->message, (unsigned)err->code);
  else snprintf(why, sizeof why, "%s", what);
  conn_close(cn, why);
}

static void hs_on_use(req_t *rq, conn_t *cn, uint8_t opcode, const uint8_t *body, size_t len,
                      const sl_cql_error_t *err) {
  (void)rq, (void)body, (void)len;
  if (!cn || cn->state == CS_CLOSING) return;
  if (err || opcode != CQL_OP_RESULT) {
    hs_fail(cn, err, "USE failed");
    return;
  }
  conn_ready(cn);
}

static void hs_after_auth(conn_t *cn) {
  if (cn->c->keyspace && !cn->control) {
    char q[300];
    snprintf(q, sizeof q, "USE \"%s\"", cn->c->keyspace);
    internal_query(cn, q, hs_on_use, NULL);
    return;
  }
  conn_ready(cn);
}

static void hs_on_auth(req_t *rq, conn_t *cn, uint8_t opcode, const uint8_t *body, size_t len,
                       const sl_cql_error_t *err);

static void send_credentials(conn_t *cn) {
  req_t *rq = internal_req(cn, CQL_OP_AUTH_RESPONSE, hs_on_auth, NULL);
  const char *u = cn->c->username ? cn->c->username : "", *p = cn->c->password ? cn->c->password : "";
  size_t ul = strlen(u), pl = strlen(p);
  cql_write_int(&rq->body, (int32_t)(ul + pl + 2));
  cql_write_byte(&rq->body, 0);
  sl_buf_put(&rq->body, u, ul);
  cql_write_byte(&rq->body, 0);
  sl_buf_put(&rq->body, p, pl);
  internal_send(cn, rq);
}

static void hs_on_auth(req_t *rq, conn_t *cn, uint8_t opcode, const uint8_t *body, size_t len,
                       const sl_cql_error_t *err) {
  (void)rq;
  if (!cn || cn->state == CS_CLOSING) return;
  if (err) {
    if (err->code == CQL_ERR_BAD_CREDENTIALS) { /* worded as the Python driver (and so cqlsh) words it */
      char why[600];
      snprintf(why, sizeof why,
               "AuthenticationFailed('Failed to authenticate to %s: Error from server: code=0100 [Bad credentials] "
               "message=\"%.150s\"')",
               cn->peer, err->message);
      conn_close(cn, why);
      return;
    }
    hs_fail(cn, err, "authentication failed");
    return;
  }
  if (opcode == CQL_OP_AUTH_SUCCESS) {
    hs_after_auth(cn);
  } else if (opcode == CQL_OP_AUTH_CHALLENGE && cn->auth_plain_start) {
    cn->auth_plain_start = false;
    send_credentials(cn);
  } else {
    (void)body, (void)len;
    hs_fail(cn, NULL, "unexpected authentication challenge");
  }
}

static void hs_on_startup(req_t *rq, conn_t *cn, uint8_t opcode, const uint8_t *body, size_t len,
                          const sl_cql_error_t *err) {
  (void)rq;
  if (!cn || cn->state == CS_CLOSING) return;
  if (err) {
    hs_fail(cn, err, "STARTUP refused");
    return;
  }
  if (opcode == CQL_OP_READY) {
    hs_after_auth(cn);
    return;
  }
  if (opcode != CQL_OP_AUTHENTICATE) {
    hs_fail(cn, NULL, "unexpected answer to STARTUP");
    return;
  }
  sl_reader_t r;
  sl_reader_init(&r, body, len);
  sl_slice_t cls = cql_read_string(&r);
  if (!cn->c->username) { /* worded as the Python driver (and so cqlsh) words it */
    conn_close(cn, "AuthenticationFailed('Remote end requires authentication')");
    return;
  }
  if (!r.err && cls.len && memmem(cls.ptr, cls.len, "DseAuthenticator", 16)) {
    cn->auth_plain_start = true;
    req_t *a = internal_req(cn, CQL_OP_AUTH_RESPONSE, hs_on_auth, NULL);
    cql_write_bytes(&a->body, "PLAIN", 5);
    internal_send(cn, a);
    return;
  }
  send_credentials(cn);
}

static void hs_on_supported(req_t *rq, conn_t *cn, uint8_t opcode, const uint8_t *body, size_t len,
                            const sl_cql_error_t *err) {
  (void)rq;
  if (!cn || cn->state == CS_CLOSING) return;
  if (err || opcode != CQL_OP_SUPPORTED) {
    hs_fail(cn, err, "OPTIONS refused");
    return;
  }
  bool lz4 = false;
  if (cn->c->cfg.lz4) { /* [string multimap]: is "lz4" among COMPRESSION's values? */
    sl_reader_t r;
    sl_reader_init(&r, body, len);
    uint16_t n = cql_read_list_count(&r, 4);
    for (uint16_t i = 0; i < n && !r.err; i++) {
      sl_slice_t k = cql_read_string(&r);
      uint16_t m = cql_read_list_count(&r, 2);
      for (uint16_t j = 0; j < m && !r.err; j++) {
        sl_slice_t v = cql_read_string(&r);
        if (!r.err && cql_slice_eq(k, "COMPRESSION") && cql_slice_eq_nocase(v, "lz4")) lz4 = true;
      }
    }
  }
  req_t *s = internal_req(cn, CQL_OP_STARTUP, hs_on_startup, NULL);
  cql_write_short(&s->body, lz4 ? 3 : 2);
  cql_write_cstring(&s->body, "CQL_VERSION");
  cql_write_cstring(&s->body, "3.0.0");
  cql_write_cstring(&s->body, "DRIVER_NAME");
  cql_write_cstring(&s->body, "sluice-cql");
  if (lz4) {
    cql_write_cstring(&s->body, "COMPRESSION");
    cql_write_cstring(&s->body, "lz4");
  }
  internal_send(cn, s);
  /* bodies after STARTUP are compressed both ways; the STARTUP frame itself was framed above */
  if (lz4) cn->comp = CQL_COMPRESSION_LZ4;
}

static void hs_start(conn_t *cn) {
  req_t *rq = internal_req(cn, CQL_OP_OPTIONS, hs_on_supported, NULL);
  internal_send(cn, rq);
}

/* ---------------------------------------------------------------- pools and hosts */

static void update_up_cache(sl_cql_client_t *c) {
  for (size_t i = 0; i < c->nhosts; i++) c->up[i] = c->hosts[i]->up && !c->hosts[i]->removed;
}

static void update_host_state(host_t *h) {
  bool up = false;
  for (int i = 0; i < h->npool; i++)
    if (h->pool[i] && h->pool[i]->state == CS_READY) up = true;
  h->up = up;
  update_up_cache(h->c);
}

static void connect_done(sl_cql_client_t *c, const sl_cql_error_t *err) {
  if (c->connected || c->connect_failed || !c->connect_cb) return;
  if (err) c->connect_failed = true;
  else c->connected = true;
  sl_cql_connect_cb cb = c->connect_cb;
  c->connect_cb = NULL;
  if (err) {
    /* fail what was queued while connecting */
    while (c->qhead) {
      req_t *rq = c->qhead;
      queue_remove(rq);
      req_fail(rq, err);
    }
  }
  cb(c, err, c->connect_arg);
  if (!err) drain_queue(c);
}

static bool host_addr(const host_t *h, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(h->info.ip, h->info.port, (struct sockaddr_in *)ss) == 0) return true;
  if (uv_ip6_addr(h->info.ip, h->info.port, (struct sockaddr_in6 *)ss) == 0) return true;
  return false;
}

static void host_fill_pool(host_t *h) {
  sl_cql_client_t *c = h->c;
  if (c->closing || h->removed || !h->is_local_dc) return;
  struct sockaddr_storage ss;
  if (!host_addr(h, &ss)) return;
  for (int i = 0; i < h->npool; i++)
    if (!h->pool[i]) h->pool[i] = conn_open(c, h, (const struct sockaddr *)&ss, h->info.addr, false);
}

static void on_host_reconnect(uv_timer_t *t) {
  host_t *h = t->data;
  h->reconnect_scheduled = false;
  h->c->stats.reconnects++;
  host_fill_pool(h);
}

static void schedule_host_reconnect(host_t *h) {
  if (h->c->closing || h->reconnect_scheduled || h->removed) return;
  if (!h->rtimer_init) {
    uv_timer_init(h->c->loop, &h->rtimer);
    h->rtimer.data = h;
    h->rtimer_init = true;
    h->c->handles++;
  }
  h->reconnect_scheduled = true;
  uv_timer_start(&h->rtimer, on_host_reconnect, (uint64_t)h->backoff_ms, 0);
  h->backoff_ms = h->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : h->backoff_ms * 2;
}

/* Whether any host still has a pool connection open or opening (the initial connect fails when none has). */
static bool any_pool_connection(const sl_cql_client_t *c) {
  for (size_t i = 0; i < c->nhosts; i++)
    for (int j = 0; j < c->hosts[i]->npool; j++)
      if (c->hosts[i]->pool[j]) return true;
  return false;
}

static void on_pool_conn_lost(conn_t *cn) {
  host_t *h = cn->h;
  sl_cql_client_t *c = cn->c;
  for (int i = 0; i < h->npool; i++)
    if (h->pool[i] == cn) h->pool[i] = NULL;
  update_host_state(h);
  if (c->closing) return;
  h->failures++;
  if (!c->connected && !c->connect_failed) {
    /* initial connect: fail once no local host can come up */
    if (!any_pool_connection(c)) {
      sl_cql_error_t e;
      set_err(&e, SL_CQL_CLIENT_NO_HOST, "no host could be reached: %s", cn->why);
      connect_done(c, &e);
    }
  }
  schedule_host_reconnect(h);
}

static void on_registered(req_t *rq, conn_t *cn, uint8_t opcode, const uint8_t *body, size_t len,
                          const sl_cql_error_t *err) {
  (void)rq, (void)opcode, (void)body, (void)len;
  if (!cn || cn->state == CS_CLOSING) return;
  if (err) SL_WARN("cql-client", "REGISTER refused by %s: %s", cn->peer, err->message);
  refresh_topology(cn->c);
}

static void conn_ready(conn_t *cn) {
  sl_cql_client_t *c = cn->c;
  cn->state = CS_READY;
  uv_timer_stop(&cn->ctimer);
  if (cn->control) {
    c->ctl_backoff_ms = RECONNECT_BASE_MS;
    req_t *rq = internal_req(cn, CQL_OP_REGISTER, on_registered, NULL);
    static const char *const events[] = {"TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"};
    cql_write_string_list(&rq->body, events, 3);
    internal_send(cn, rq);
    return;
  }
  host_t *h = cn->h;
  h->backoff_ms = RECONNECT_BASE_MS;
  h->failures = 0;
  update_host_state(h);
  connect_done(c, NULL);
  drain_queue(c);
}

/* ---------------------------------------------------------------- discovery (control connection) */

typedef struct {
  sl_cql_client_t *c;
  sl_buf_t local, peers;
} refresh_t;

static void refresh_done(sl_cql_client_t *c) {
  c->refreshing = false;
  if (c->refresh_again && !c->closing) {
    c->refresh_again = false;
    refresh_topology(c);
  }
}

static void refresh_free(refresh_t *rf) {
  sl_buf_free(&rf->local);
  sl_buf_free(&rf->peers);
  free(rf);
}

static host_t *host_by_addr(sl_cql_client_t *c, const char *addr) {
  for (size_t i = 0; i < c->nhosts; i++)
    if (!strcmp(c->hosts[i]->info.addr, addr)) return c->hosts[i];
  return NULL;
}

static void host_close_pool(host_t *h) {
  for (int i = 0; i < h->npool; i++)
    if (h->pool[i]) conn_close(h->pool[i], "host removed from the cluster");
}

/* Rebuilds hosts, ring and replication from the control connection's answers. */
static void apply_topology(sl_cql_client_t *c, const sl_cql_result_t *local, const sl_cql_result_t *peers,
                           const sl_cql_result_t *ks) {
  conn_t *ctl = c->control;
  char ip[64] = "";
  int port = 9042;
  if (ctl) {
    contact_t ct;
    if (parse_contact(ctl->peer, strlen(ctl->peer), &ct) == 0 && strlen(ct.host) < sizeof ip) {
      memcpy(ip, ct.host, strlen(ct.host) + 1);
      port = ct.port;
    }
  }
  sl_cql_host_info_t *infos = NULL;
  size_t n = sl_cql_discover(local, peers, ip, port, &infos);
  if (!c->local_dc && n > 0) c->local_dc = xstrdup(infos[0].dc); /* the DC of the node we reached first */
  for (size_t i = 0; i < c->nhosts; i++) c->hosts[i]->removed = true;
  for (size_t i = 0; i < n; i++) {
    host_t *h = host_by_addr(c, infos[i].addr);
    if (!h) {
      h = calloc(1, sizeof *h);
      if (!h) abort();
      h->c = c;
      h->npool = c->cfg.connections_per_host;
      h->pool = calloc((size_t)h->npool, sizeof *h->pool);
      if (!h->pool) abort();
      h->backoff_ms = RECONNECT_BASE_MS;
      host_t **nh = realloc(c->hosts, (c->nhosts + 1) * sizeof *nh);
      bool *nu = realloc(c->up, (c->nhosts + 1) * sizeof *nu);
      if (!nh || !nu) abort();
      c->hosts = nh;
      c->up = nu;
      c->hosts[c->nhosts++] = h;
    } else {
      free(h->info.tokens);
    }
    h->info = infos[i];
    infos[i].tokens = NULL;
    h->removed = false;
  }
  sl_cql_hosts_free(infos, n);
  bool any_local = false;
  for (size_t i = 0; i < c->nhosts; i++) {
    host_t *h = c->hosts[i];
    h->is_local_dc = !h->removed && (!c->local_dc || !strcmp(h->info.dc, c->local_dc));
    if (h->is_local_dc) any_local = true;
  }
  if (!any_local && c->local_dc) {
    SL_WARN("cql-client", "no node in data centre '%s'; using every data centre", c->local_dc);
    for (size_t i = 0; i < c->nhosts; i++) c->hosts[i]->is_local_dc = !c->hosts[i]->removed;
  }
  free(c->infos);
  c->infos = calloc(c->nhosts ? c->nhosts : 1, sizeof *c->infos);
  if (!c->infos) abort();
  for (size_t i = 0; i < c->nhosts; i++) {
    c->infos[i] = c->hosts[i]->info;
    if (!c->hosts[i]->is_local_dc) c->infos[i].dc[0] = c->infos[i].dc[0]; /* kept: plans use dc names */
  }
  sl_cql_ring_free(&c->ring);
  sl_cql_ring_build(&c->ring, c->infos, c->nhosts);
  /* keyspace replication */
  if (ks) {
    int kn = sl_cql_result_column_index(ks, "keyspace_name"), kr = sl_cql_result_column_index(ks, "replication");
    free(c->repl);
    c->repl = NULL;
    c->nrepl = 0;
    if (kn >= 0 && kr >= 0 && ks->nrows) {
      c->repl = calloc(ks->nrows, sizeof *c->repl);
      if (!c->repl) abort();
      for (size_t r = 0; r < ks->nrows; r++) {
        sl_slice_t name = ks->cells[r * ks->ncols + (size_t)kn], map = ks->cells[r * ks->ncols + (size_t)kr];
        if (!name.ptr || !map.ptr || name.len >= sizeof c->repl[0].name) continue;
        if (sl_cql_replication_parse(map, &c->repl[c->nrepl].r) != 0) continue;
        memcpy(c->repl[c->nrepl].name, name.ptr, name.len);
        c->repl[c->nrepl].name[name.len] = 0;
        c->nrepl++;
      }
    }
  }
  for (size_t i = 0; i < c->nhosts; i++) {
    host_t *h = c->hosts[i];
    if (h->removed || !h->is_local_dc) host_close_pool(h);
    else host_fill_pool(h);
  }
  update_up_cache(c);
  if (!c->connected && !c->connect_failed) {
    if (!any_pool_connection(c)) {
      sl_cql_error_t e;
      set_err(&e, SL_CQL_CLIENT_NO_HOST, "no usable host found in system.local/system.peers");
      connect_done(c, &e);
    }
  }
}

static void refresh_on_keyspaces(req_t *rq, conn_t *cn, uint8_t opcode, const uint8_t *body, size_t len,
                                 const sl_cql_error_t *err) {
  refresh_t *rf = rq->fn_arg;
  sl_cql_client_t *c = rf->c;
  (void)cn;
  sl_cql_result_t local, peers, ks;
  char why[128];
  bool have_ks = !err && opcode == CQL_OP_RESULT && sl_cql_result_decode(body, len, 4, &ks, why, sizeof why) == 0;
  if (c->closing || (!rf->local.len)) goto out;
  if (sl_cql_result_decode(rf->local.data, rf->local.len, 4, &local, why, sizeof why) != 0) goto out;
  if (rf->peers.len == 0 || sl_cql_result_decode(rf->peers.data, rf->peers.len, 4, &peers, why, sizeof why) != 0)
    memset(&peers, 0, sizeof peers);
  apply_topology(c, &local, &peers, have_ks ? &ks : NULL);
  sl_cql_result_clear(&local);
  sl_cql_result_clear(&peers);
out:
  if (have_ks) sl_cql_result_clear(&ks);
  refresh_free(rf);
  refresh_done(c);
}

static void refresh_on_peers(req_t *rq, conn_t *cn, uint8_t opcode, const uint8_t *body, size_t len,
                             const sl_cql_error_t *err) {
  refresh_t *rf = rq->fn_arg;
  if (!cn || cn->state == CS_CLOSING || rf->c->closing) {
    sl_cql_client_t *c = rf->c;
    refresh_free(rf);
    refresh_done(c);
    return;
  }
  if (!err && opcode == CQL_OP_RESULT) sl_buf_put(&rf->peers, body, len);
  internal_query(cn, "SELECT keyspace_name, replication FROM system_schema.keyspaces", refresh_on_keyspaces, rf);
}

static void refresh_on_local(req_t *rq, conn_t *cn, uint8_t opcode, const uint8_t *body, size_t len,
                             const sl_cql_error_t *err) {
  refresh_t *rf = rq->fn_arg;
  sl_cql_client_t *c = rf->c;
  if (!cn || cn->state == CS_CLOSING || c->closing) {
    refresh_free(rf);
    refresh_done(c);
    return;
  }
  if (err || opcode != CQL_OP_RESULT) {
    char why[600];
    snprintf(why, sizeof why, "reading system.local failed: %s", err ? err->message : "unexpected answer");
    refresh_free(rf);
    c->refreshing = false;
    conn_close(cn, why);
    return;
  }
  sl_buf_put(&rf->local, body, len);
  internal_query(cn, "SELECT * FROM system.peers", refresh_on_peers, rf);
}

static void refresh_topology(sl_cql_client_t *c) {
  if (c->closing || !c->control || c->control->state != CS_READY) return;
  if (c->refreshing) {
    c->refresh_again = true;
    return;
  }
  c->refreshing = true;
  refresh_t *rf = calloc(1, sizeof *rf);
  if (!rf) abort();
  rf->c = c;
  sl_buf_init(&rf->local);
  sl_buf_init(&rf->peers);
  internal_query(c->control, "SELECT * FROM system.local WHERE key='local'", refresh_on_local, rf);
}

static void on_event(conn_t *cn, const uint8_t *body, size_t len) {
  sl_cql_client_t *c = cn->c;
  sl_reader_t r;
  sl_reader_init(&r, body, len);
  sl_slice_t type = cql_read_string(&r);
  if (r.err) return;
  if (cql_slice_eq(type, "STATUS_CHANGE")) {
    sl_slice_t change = cql_read_string(&r);
    uint8_t alen = cql_read_byte(&r);
    const uint8_t *a = sl_read_bytes(&r, alen);
    (void)cql_read_int(&r);
    if (!r.err && cql_slice_eq(change, "UP") && (alen == 4 || alen == 16)) {
      char ip[64];
      uv_inet_ntop(alen == 4 ? AF_INET : AF_INET6, a, ip, sizeof ip);
      for (size_t i = 0; i < c->nhosts; i++) {
        host_t *h = c->hosts[i];
        if (!strcmp(h->info.ip, ip) && !h->up) {
          h->backoff_ms = RECONNECT_BASE_MS;
          if (h->reconnect_scheduled) uv_timer_stop(&h->rtimer), h->reconnect_scheduled = false;
          host_fill_pool(h);
        }
      }
    }
  }
  refresh_topology(c); /* topology, status and schema changes all re-read peers and keyspaces */
}

/* ---------------------------------------------------------------- control connection */

typedef struct {
  sl_cql_client_t *c;
  uv_getaddrinfo_t gai;
  int port;
  char host[256];
} resolve_t;

static void control_try_next(sl_cql_client_t *c);

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res) {
  resolve_t *rs = g->data;
  sl_cql_client_t *c = rs->c;
  c->handles--;
  if (c->closing || status != 0 || !res) {
    if (status != 0 && !c->closing)
      snprintf(c->last_error, sizeof c->last_error, "cannot resolve %s: %s", rs->host, uv_strerror(status));
    if (res) uv_freeaddrinfo(res);
    free(rs);
    if (c->closing) maybe_finish_close(c);
    else control_try_next(c);
    return;
  }
  char ip[64] = "";
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  memcpy(&ss, res->ai_addr, res->ai_addrlen);
  if (res->ai_family == AF_INET) {
    ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)rs->port);
    uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
  } else {
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)rs->port);
    uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
  }
  uv_freeaddrinfo(res);
  tls_remember_name(c, rs->host, ip);
  char peer[96];
  if (strchr(ip, ':')) snprintf(peer, sizeof peer, "[%s]:%d", ip, rs->port);
  else snprintf(peer, sizeof peer, "%s:%d", ip, rs->port);
  free(rs);
  c->control = conn_open(c, NULL, (const struct sockaddr *)&ss, peer, true);
}

static void control_connect_contact(sl_cql_client_t *c, const contact_t *ct) {
  resolve_t *rs = calloc(1, sizeof *rs);
  if (!rs) abort();
  rs->c = c;
  rs->port = ct->port;
  snprintf(rs->host, sizeof rs->host, "%s", ct->host);
  rs->gai.data = rs;
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  c->handles++;
  int rc = uv_getaddrinfo(c->loop, &rs->gai, on_resolved, rs->host, NULL, &hints);
  if (rc != 0) {
    c->handles--;
    snprintf(c->last_error, sizeof c->last_error, "cannot resolve %s: %s", rs->host, uv_strerror(rc));
    free(rs);
    control_try_next(c);
  }
}

/* Initial connect: the contact points in order; afterwards, known hosts (up ones first), then contact points. */
static void control_try_next(sl_cql_client_t *c) {
  if (c->closing) return;
  if (!c->connected) {
    if (c->contact_next >= c->ncontacts) {
      sl_cql_error_t e;
      set_err(&e, SL_CQL_CLIENT_NO_HOST, "could not connect to any contact point (%s): %s", c->contact_str,
              c->last_error);
      connect_done(c, &e);
      return;
    }
    control_connect_contact(c, &c->contacts[c->contact_next++]);
    return;
  }
  control_reconnect_later(c);
}

static void on_control_timer(uv_timer_t *t) {
  sl_cql_client_t *c = t->data;
  if (c->closing || c->control) return;
  /* a host that is up (its pool works) first, else round robin over hosts and contact points */
  static size_t rr;
  for (size_t i = 0; i < c->nhosts; i++) {
    host_t *h = c->hosts[i];
    struct sockaddr_storage ss;
    if (h->up && !h->removed && host_addr(h, &ss)) {
      c->control = conn_open(c, NULL, (const struct sockaddr *)&ss, h->info.addr, true);
      return;
    }
  }
  size_t total = c->nhosts + c->ncontacts;
  size_t k = rr++ % (total ? total : 1);
  if (k < c->nhosts) {
    struct sockaddr_storage ss;
    if (host_addr(c->hosts[k], &ss)) {
      c->control = conn_open(c, NULL, (const struct sockaddr *)&ss, c->hosts[k]->info.addr, true);
      return;
    }
  }
  control_connect_contact(c, &c->contacts[(k - (k < c->nhosts ? 0 : c->nhosts)) % c->ncontacts]);
}

static void control_reconnect_later(sl_cql_client_t *c) {
  if (c->closing) return;
  uv_timer_start(&c->ctl_timer, on_control_timer, (uint64_t)c->ctl_backoff_ms, 0);
  c->ctl_backoff_ms = c->ctl_backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : c->ctl_backoff_ms * 2;
}

static void on_control_lost(sl_cql_client_t *c, const char *why) {
  (void)why;
  c->control = NULL;
  c->refreshing = false;
  if (c->closing) return;
  if (!c->connected && c->version != CQL_VERSION_V4 && !strcmp(why, "protocol version downgrade")) {
    c->contact_next = c->contact_next ? c->contact_next - 1 : 0; /* same contact point, lower version */
  }
  control_try_next(c);
}

/* ---------------------------------------------------------------- schema agreement */

static void release_schema_waiters(sl_cql_client_t *c, const sl_cql_error_t *err) {
  req_t *w = c->schema_waiters;
  c->schema_waiters = NULL;
  while (w) {
    req_t *next = w->qnext;
    w->qnext = NULL;
    sl_cql_result_t *res = w->fn_arg;
    w->fn_arg = NULL;
    if (!w->finished) {
      w->finished = true;
      if (err) w->cb(NULL, err, w->arg);
      else w->cb(res, NULL, w->arg);
    }
    if (res) {
      sl_cql_result_clear(res);
      free(res);
    }
    req_free(w);
    w = next;
  }
}

typedef struct {
  sl_cql_client_t *c;
  char local[64];
} agree_t;

static void on_schema_timer(uv_timer_t *t) {
  sl_cql_client_t *c = t->data;
  start_schema_check(c);
}

static void schema_check_again(sl_cql_client_t *c) {
  c->schema_checking = false;
  if (!c->schema_waiters) return;
  if (now_ms() >= c->schema_deadline || !c->control) {
    if (c->control) SL_WARN("cql-client", "schema agreement not reached within %d ms", SCHEMA_WAIT_MS);
    release_schema_waiters(c, NULL);
    return;
  }
  uv_timer_start(&c->schema_timer, on_schema_timer, 200, 0);
}

static void agree_on_peers(req_t *rq, conn_t *cn, uint8_t opcode, const uint8_t *body, size_t len,
                           const sl_cql_error_t *err) {
  agree_t *ag = rq->fn_arg;
  sl_cql_client_t *c = ag->c;
  (void)cn;
  bool agreed = false;
  sl_cql_result_t res;
  char why[128];
  if (!err && opcode == CQL_OP_RESULT && sl_cql_result_decode(body, len, 4, &res, why, sizeof why) == 0) {
    agreed = true;
    int iv = sl_cql_result_column_index(&res, "schema_version"), ia = sl_cql_result_column_index(&res, "rpc_address");
    for (size_t r = 0; iv >= 0 && r < res.nrows; r++) {
      sl_slice_t v = res.cells[r * res.ncols + (size_t)iv];
      if (!v.ptr) continue;
      /* only peers whose pool is up count (down nodes cannot agree) */
      bool peer_up = true;
      if (ia >= 0) {
        sl_slice_t a = res.cells[r * res.ncols + (size_t)ia];
        char ip[64] = "";
        if (a.ptr && (a.len == 4 || a.len == 16)) uv_inet_ntop(a.len == 4 ? AF_INET : AF_INET6, a.ptr, ip, sizeof ip);
        peer_up = false;
        for (size_t i = 0; i < c->nhosts; i++)
          if (!strcmp(c->hosts[i]->info.ip, ip) && c->hosts[i]->up) peer_up = true;
      }
      char s[64];
      snprintf(s, sizeof s, "%.*s", (int)(v.len < 16 ? v.len : 16), (const char *)v.ptr);
      if (peer_up && (v.len != 16 || memcmp(v.ptr, ag->local, 16) != 0)) agreed = false;
    }
    sl_cql_result_clear(&res);
  }
  free(ag);
  if (agreed && !c->closing) {
    c->schema_checking = false;
    release_schema_waiters(c, NULL);
    return;
  }
  if (!c->closing) schema_check_again(c);
}

static void agree_on_local(req_t *rq, conn_t *cn, uint8_t opcode, const uint8_t *body, size_t len,
                           const sl_cql_error_t *err) {
  agree_t *ag = rq->fn_arg;
  sl_cql_client_t *c = ag->c;
  sl_cql_result_t res;
  char why[128];
  if (c->closing || !cn || cn->state == CS_CLOSING || err || opcode != CQL_OP_RESULT ||
      sl_cql_result_decode(body, len, 4, &res, why, sizeof why) != 0) {
    free(ag);
    if (!c->closing) schema_check_again(c);
    return;
  }
  int iv = sl_cql_result_column_index(&res, "schema_version");
  if (iv >= 0 && res.nrows && res.cells[(size_t)iv].ptr && res.cells[(size_t)iv].len == 16)
    memcpy(ag->local, res.cells[(size_t)iv].ptr, 16);
  sl_cql_result_clear(&res);
  internal_query(cn, "SELECT peer, rpc_address, schema_version FROM system.peers", agree_on_peers, ag);
}

static void start_schema_check(sl_cql_client_t *c) {
  if (c->schema_checking || c->closing || !c->schema_waiters) return;
  if (!c->control || c->control->state != CS_READY) {
    schema_check_again(c);
    return;
  }
  c->schema_checking = true;
  agree_t *ag = calloc(1, sizeof *ag);
  if (!ag) abort();
  ag->c = c;
  internal_query(c->control, "SELECT schema_version FROM system.local WHERE key='local'", agree_on_local, ag);
}

/* ---------------------------------------------------------------- routing and dispatch */

static const sl_cql_replication_t *replication_of(const sl_cql_client_t *c, const char *ks) {
  if (!ks) return NULL;
  for (size_t i = 0; i < c->nrepl; i++)
    if (!strcmp(c->repl[i].name, ks)) return &c->repl[i].r;
  return NULL;
}

/* The statement that decides routing: the statement itself, or a batch's first prepared statement. */
static const sl_cql_statement_t *routing_statement(const req_t *rq) {
  if (rq->st) return rq->st;
  if (rq->batch)
    for (size_t i = 0; i < rq->batch->n; i++)
      if (rq->batch->st[i]->p) return rq->batch->st[i];
  return NULL;
}

static bool statement_token(const sl_cql_statement_t *st, int64_t *token) {
  const sl_cql_prepared_t *p = st ? st->p : NULL;
  if (!p || !p->npk || p->npk > 16) return false;
  sl_slice_t parts[16];
  for (size_t i = 0; i < p->npk; i++) {
    uint16_t idx = p->pk[i];
    if (idx >= st->nvalues || st->values[idx].kind != CQL_VALUE_SET) return false;
    parts[i].ptr = st->data.data + st->values[idx].off;
    parts[i].len = st->values[idx].len;
  }
  sl_buf_t key;
  sl_buf_init(&key);
  sl_cql_routing_key(parts, p->npk, &key);
  *token = sl_cql_murmur3_token(key.data, key.len);
  sl_buf_free(&key);
  return true;
}

bool sl_cql_statement_routing_token(const sl_cql_statement_t *st, int64_t *token) {
  return statement_token(st, token);
}

static void compute_plan(req_t *rq) {
  sl_cql_client_t *c = rq->c;
  uint32_t replicas[MAX_PLAN];
  size_t nrep = 0;
  int64_t token;
  const sl_cql_statement_t *st = routing_statement(rq);
  if (c->ring.n && statement_token(st, &token)) {
    const sl_cql_replication_t *repl = replication_of(c, st->p->params.ks);
    sl_cql_replication_t one = {.rf = 1};
    nrep = sl_cql_ring_replicas(&c->ring, c->infos, c->nhosts, repl ? repl : &one, token, replicas, MAX_PLAN);
  }
  rq->nplan = sl_cql_plan(c->infos, c->up, c->nhosts, c->local_dc, replicas, nrep, c->rotation++, false, rq->plan,
                          MAX_PLAN);
  rq->plan_pos = 0;
  if (nrep && rq->nplan) {
    for (size_t i = 0; i < nrep; i++)
      if (replicas[i] == rq->plan[0]) {
        c->stats.routed_to_replica++;
        break;
      }
  }
}

static void enqueue(req_t *rq, bool front) {
  sl_cql_client_t *c = rq->c;
  rq->queued = true;
  c->nqueued++;
  if (front) {
    rq->qnext = c->qhead;
    c->qhead = rq;
    if (!c->qtail) c->qtail = rq;
  } else {
    rq->qnext = NULL;
    if (c->qtail) c->qtail->qnext = rq;
    else c->qhead = rq;
    c->qtail = rq;
  }
}

static conn_t *host_best_conn(host_t *h) {
  conn_t *best = NULL;
  for (int i = 0; i < h->npool; i++) {
    conn_t *cn = h->pool[i];
    if (cn && cn->state == CS_READY && (!best || cn->nfree > best->nfree)) best = cn;
  }
  return best;
}

/* Sends rq to the first host of its plan that has a free stream. Returns 1 when rq had to be queued, 0 otherwise
 * (sent, or failed and gone). */
static int dispatch(req_t *rq) {
  sl_cql_client_t *c = rq->c;
  if (c->closing) {
    req_fail_code(rq, SL_CQL_CLIENT_CLOSING, "the client is closing");
    return 0;
  }
  if (!rq->routed || rq->nplan == 0) {
    compute_plan(rq);
    rq->routed = rq->nplan > 0;
  }
  if (rq->nplan && rq->plan_pos >= rq->nplan) rq->plan_pos %= rq->nplan;
  bool any_up = false;
  for (size_t k = 0; k < rq->nplan; k++) {
    size_t i = (rq->plan_pos + k) % rq->nplan;
    if (rq->plan[i] >= c->nhosts) continue;
    conn_t *cn = host_best_conn(c->hosts[rq->plan[i]]);
    if (!cn) continue;
    any_up = true;
    if (cn->nfree == 0) continue;
    rq->plan_pos = i;
    rq->attempts++;
    sl_cql_error_t err;
    if (conn_send(cn, rq, &err) != 0) req_fail(rq, &err);
    return 0;
  }
  bool connecting = !c->connected && !c->connect_failed;
  if (any_up || connecting) {
    if (c->nqueued >= (size_t)c->cfg.max_pending) {
      req_fail_code(rq, SL_CQL_CLIENT_OVERLOADED, "too many requests pending (max_pending=%d)", c->cfg.max_pending);
      return 0;
    }
    enqueue(rq, false);
    return 1;
  }
  req_fail_code(rq, SL_CQL_CLIENT_NO_HOST, "no host available%s%s", c->last_error[0] ? ": " : "", c->last_error);
  return 0;
}

static void drain_queue(sl_cql_client_t *c) {
  while (c->qhead && !c->closing) {
    req_t *rq = c->qhead;
    queue_remove(rq);
    if (dispatch(rq) == 1) { /* still no capacity: put it back first in line */
      queue_remove(rq);
      enqueue(rq, true);
      break;
    }
  }
}

/* Accepts a new user request: deadline, then dispatch. */
static void submit(req_t *rq) {
  sl_cql_client_t *c = rq->c;
  c->stats.requests++;
  rq->deadline = now_ms() + req_timeout_ms(rq);
  tlist_insert(rq);
  dispatch(rq);
}

/* ---------------------------------------------------------------- responses */

static void on_reprepared(req_t *rq, conn_t *cn, uint8_t opcode, const uint8_t *body, size_t len,
                          const sl_cql_error_t *err) {
  req_t *replay = rq->replay;
  sl_cql_client_t *c = rq->c;
  rq->replay = NULL;
  tlist_insert(replay);
  if (err || opcode != CQL_OP_RESULT) {
    if (err && cn) {
      req_fail(replay, err);
      return;
    }
    dispatch(replay); /* the connection went away: try again elsewhere */
    return;
  }
  if (decode_prepared(body, len, cn ? cn->version : c->version, rq->reprep) != 0) {
    req_fail_code(replay, SL_CQL_CLIENT_PROTOCOL, "malformed PREPARED result while re-preparing");
    return;
  }
  sl_cql_error_t e;
  if (cn && cn->state == CS_READY && cn->nfree > 0) {
    if (conn_send(cn, replay, &e) != 0) req_fail(replay, &e);
  } else {
    dispatch(replay);
  }
}

/* The server lost a prepared statement (restart, cache eviction): prepare it again on the same connection and
 * replay the request (spec §8: UNPREPARED). */
static bool reprepare(conn_t *cn, req_t *rq, sl_slice_t id) {
  sl_cql_prepared_t *p = NULL;
  if (rq->st && rq->st->p) p = rq->st->p;
  if (rq->batch)
    for (size_t i = 0; i < rq->batch->n && !p; i++) {
      sl_cql_prepared_t *q = rq->batch->st[i]->p;
      if (q && q->id_len == id.len && !memcmp(q->id, id.ptr, id.len)) p = q;
    }
  if (!p || cn->state != CS_READY) return false;
  rq->reprepares++;
  cn->c->stats.reprepares++;
  tlist_remove(rq);
  req_t *pr = internal_req(cn, CQL_OP_PREPARE, on_reprepared, NULL);
  pr->replay = rq;
  pr->reprep = p;
  p->refs++;
  cql_write_long_string(&pr->body, p->query, strlen(p->query));
  internal_send(cn, pr);
  return true;
}

static bool retryable(int code) {
  return code == CQL_ERR_SERVER || code == CQL_ERR_OVERLOADED || code == CQL_ERR_IS_BOOTSTRAPPING ||
         code == CQL_ERR_UNAVAILABLE || code == CQL_ERR_TRUNCATE || code == CQL_ERR_READ_TIMEOUT ||
         code == CQL_ERR_WRITE_TIMEOUT;
}

static void on_prepare_result(conn_t *cn, req_t *rq, const uint8_t *body, size_t len) {
  sl_cql_client_t *c = rq->c;
  sl_cql_prepared_t *p = cache_find(c, rq->query, c->keyspace);
  bool fresh = !p;
  if (fresh) {
    p = calloc(1, sizeof *p);
    if (!p) abort();
    p->query = xstrdup(rq->query);
    p->keyspace = xstrdup(c->keyspace);
  }
  if (decode_prepared(body, len, cn->version, p) != 0) {
    if (fresh) sl_cql_prepared_release((p->refs = 1, p));
    req_fail_code(rq, SL_CQL_CLIENT_PROTOCOL, "malformed PREPARED result from %s", cn->peer);
    return;
  }
  if (fresh) cache_add(c, p);
  rq->finished = true;
  rq->pcb(p, NULL, rq->arg);
  req_free(rq);
}

static void use_keyspace_everywhere(sl_cql_client_t *c, const char *ks, conn_t *except) {
  free(c->keyspace);
  c->keyspace = xstrdup(ks);
  c->cfg.keyspace = c->keyspace;
  char q[300];
  snprintf(q, sizeof q, "USE \"%s\"", ks);
  for (conn_t *cn = c->all_conns; cn; cn = cn->next_all)
    if (cn != except && !cn->control && cn->state == CS_READY && cn->nfree > 0) internal_query(cn, q, NULL, NULL);
}

static void on_user_response(conn_t *cn, req_t *rq, uint8_t opcode, const uint8_t *body, size_t len) {
  sl_cql_client_t *c = rq->c;
  if (opcode == CQL_OP_ERROR) {
    sl_cql_error_t err;
    sl_slice_t uid = {NULL, 0};
    decode_error(body, len, &err, &uid);
    if (err.code == CQL_ERR_UNPREPARED && rq->reprepares < 2 && reprepare(cn, rq, uid)) return;
    if (err.code == CQL_ERR_PROTOCOL) SL_WARN("cql-client", "protocol error from %s: %s", cn->peer, err.message);
    if (retryable(err.code) && req_idempotent(rq) && rq->attempts < MAX_ATTEMPTS && !c->closing) {
      c->stats.retries++;
      if (err.code != CQL_ERR_READ_TIMEOUT && err.code != CQL_ERR_WRITE_TIMEOUT) rq->plan_pos++;
      dispatch(rq);
      return;
    }
    req_fail(rq, &err);
    return;
  }
  if (opcode != CQL_OP_RESULT) {
    req_fail_code(rq, SL_CQL_CLIENT_PROTOCOL, "unexpected opcode 0x%02x from %s", opcode, cn->peer);
    return;
  }
  if (rq->opcode == CQL_OP_PREPARE) {
    on_prepare_result(cn, rq, body, len);
    return;
  }
  sl_cql_result_t res;
  char why[160];
  if (sl_cql_result_decode(body, len, cn->version, &res, why, sizeof why) != 0) {
    req_fail_code(rq, SL_CQL_CLIENT_PROTOCOL, "%s from %s", why, cn->peer);
    return;
  }
  if (res.kind == CQL_RESULT_SET_KEYSPACE && res.keyspace) use_keyspace_everywhere(c, res.keyspace, cn);
  if (res.kind == CQL_RESULT_SCHEMA_CHANGE) {
    /* DDL: answer once every node agrees on the schema (or the wait times out) */
    sl_cql_result_t *held = malloc(sizeof *held);
    if (!held) abort();
    *held = res;
    tlist_remove(rq);
    rq->fn_arg = held;
    rq->qnext = c->schema_waiters;
    c->schema_waiters = rq;
    c->stats.schema_waits++;
    if (!c->schema_checking) c->schema_deadline = now_ms() + SCHEMA_WAIT_MS;
    start_schema_check(c);
    return;
  }
  rq->finished = true;
  rq->cb(&res, NULL, rq->arg);
  sl_cql_result_clear(&res);
  req_free(rq);
}

/* ---------------------------------------------------------------- timeouts */

static void on_tick(uv_timer_t *t) {
  sl_cql_client_t *c = t->data;
  int64_t now = now_ms();
  while (c->thead && c->thead->deadline <= now) {
    req_t *rq = c->thead;
    tlist_remove(rq);
    if (rq->fn) { /* an internal request got no answer: the connection is unusable */
      conn_t *cn = rq->conn ? rq->conn : rq->pin;
      if (cn && cn->state != CS_CLOSING) {
        conn_close(cn, "no answer to an internal request");
        continue;
      }
      if (!rq->conn) req_fail_code(rq, SL_CQL_CLIENT_TIMEOUT, "internal request timed out");
      continue;
    }
    c->stats.timeouts++;
    queue_remove(rq);
    req_fail_code(rq, SL_CQL_CLIENT_TIMEOUT, "no response %s%s within %d ms", rq->conn ? "from " : "",
                  rq->conn ? rq->conn->peer : "(not sent: no free connection)", req_timeout_ms(rq));
  }
}

/* ---------------------------------------------------------------- public: connect, close */

void sl_cql_client_connect(sl_cql_client_t *c, sl_cql_connect_cb cb, void *arg) {
  c->connect_cb = cb;
  c->connect_arg = arg;
  uv_timer_init(c->loop, &c->tick);
  uv_timer_init(c->loop, &c->ctl_timer);
  uv_timer_init(c->loop, &c->schema_timer);
  c->tick.data = c->ctl_timer.data = c->schema_timer.data = c;
  c->handles += 3;
  uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
  control_try_next(c);
}

static void handle_closed(uv_handle_t *h) {
  sl_cql_client_t *c = h->data;
  if (h->type == UV_TIMER && h != (uv_handle_t *)&c->tick && h != (uv_handle_t *)&c->ctl_timer &&
      h != (uv_handle_t *)&c->schema_timer) {
    host_t *host = (host_t *)h->data;
    c = host->c;
  }
  c->handles--;
  maybe_finish_close(c);
}

static void host_timer_closed(uv_handle_t *h) {
  host_t *host = h->data;
  sl_cql_client_t *c = host->c;
  c->handles--;
  maybe_finish_close(c);
}

static void client_free(sl_cql_client_t *c) {
  for (size_t i = 0; i < c->nhosts; i++) {
    free(c->hosts[i]->info.tokens);
    free(c->hosts[i]->pool);
    free(c->hosts[i]);
  }
  free(c->hosts);
  free(c->up);
  free(c->infos);
  sl_cql_ring_free(&c->ring);
  free(c->repl);
  for (size_t i = 0; i < c->nprepared; i++) sl_cql_prepared_release(c->prepared[i]);
  free(c->prepared);
  free_config(c);
}

static void maybe_finish_close(sl_cql_client_t *c) {
  if (!c->closing || c->handles > 0 || c->all_conns) return;
  void (*cb)(void *) = c->closed_cb;
  void *arg = c->closed_arg;
  c->handles = -1000; /* guard against re-entry */
  client_free(c);
  if (cb) cb(arg);
}

void sl_cql_client_close(sl_cql_client_t *c, void (*closed)(void *arg), void *arg) {
  if (!c || c->closing) return;
  c->closing = true;
  c->closed_cb = closed;
  c->closed_arg = arg;
  sl_cql_error_t e;
  set_err(&e, SL_CQL_CLIENT_CLOSING, "the client is closing");
  if (c->connect_cb) {
    c->connect_failed = true;
    sl_cql_connect_cb cb = c->connect_cb;
    c->connect_cb = NULL;
    cb(c, &e, c->connect_arg);
  }
  release_schema_waiters(c, &e);
  while (c->qhead) {
    req_t *rq = c->qhead;
    queue_remove(rq);
    req_fail(rq, &e);
  }
  for (conn_t *cn = c->all_conns; cn; cn = cn->next_all) conn_close(cn, "the client is closing");
  /* timers */
  bool timers = c->tick.loop != NULL;
  if (timers) {
    uv_close((uv_handle_t *)&c->tick, handle_closed);
    uv_close((uv_handle_t *)&c->ctl_timer, handle_closed);
    uv_close((uv_handle_t *)&c->schema_timer, handle_closed);
  }
  for (size_t i = 0; i < c->nhosts; i++)
    if (c->hosts[i]->rtimer_init) uv_close((uv_handle_t *)&c->hosts[i]->rtimer, host_timer_closed);
  /* requests still timed (internal ones on closed connections are freed by conn_close) */
  maybe_finish_close(c);
}

/* ---------------------------------------------------------------- public: prepare, execute */

void sl_cql_prepare(sl_cql_client_t *c, const char *query, sl_cql_prepare_cb cb, void *arg) {
  req_t *rq = req_new(c, CQL_OP_PREPARE);
  rq->query = xstrdup(query ? query : "");
  rq->pcb = cb;
  rq->arg = arg;
  submit(rq);
}

void sl_cql_execute(sl_cql_client_t *c, sl_cql_statement_t *st, sl_cql_result_cb cb, void *arg) {
  sl_cql_error_t err;
  if (!st) {
    set_err(&err, SL_CQL_CLIENT_BAD_VALUE, "no statement");
    cb(NULL, &err, arg);
    return;
  }
  req_t *rq = req_new(c, st->p ? CQL_OP_EXECUTE : CQL_OP_QUERY);
  rq->st = st;
  rq->cb = cb;
  rq->arg = arg;
  rq->ts = st->has_ts ? st->ts : next_timestamp(c);
  if (check_statement(st, &err) != 0) {
    rq->finished = true;
    cb(NULL, &err, arg);
    req_free(rq);
    return;
  }
  submit(rq);
}

void sl_cql_execute_batch(sl_cql_client_t *c, sl_cql_batch_t *b, sl_cql_result_cb cb, void *arg) {
  sl_cql_error_t err;
  if (!b || b->n == 0 || b->n > 65535) {
    set_err(&err, SL_CQL_CLIENT_BAD_VALUE, "a batch needs 1 to 65535 statements (has %zu)", b ? b->n : 0);
    sl_cql_batch_free(b);
    cb(NULL, &err, arg);
    return;
  }
  req_t *rq = req_new(c, CQL_OP_BATCH);
  rq->batch = b;
  rq->cb = cb;
  rq->arg = arg;
  rq->ts = next_timestamp(c);
  for (size_t i = 0; i < b->n; i++) {
    if (b->st[i]->has_ts) rq->ts = b->st[i]->ts;
    if (check_statement(b->st[i], &err) != 0) {
      rq->finished = true;
      cb(NULL, &err, arg);
      req_free(rq);
      return;
    }
  }
  submit(rq);
}

/* ---------------------------------------------------------------- public: metadata */

size_t sl_cql_client_host_count(const sl_cql_client_t *c) { return c ? c->nhosts : 0; }
const char *sl_cql_client_host_address(const sl_cql_client_t *c, size_t i) {
  return c && i < c->nhosts ? c->hosts[i]->info.addr : NULL;
}
const char *sl_cql_client_host_dc(const sl_cql_client_t *c, size_t i) {
  return c && i < c->nhosts ? c->hosts[i]->info.dc : NULL;
}
bool sl_cql_client_host_up(const sl_cql_client_t *c, size_t i) {
  return c && i < c->nhosts && c->hosts[i]->up && !c->hosts[i]->removed;
}
void sl_cql_client_get_stats(const sl_cql_client_t *c, sl_cql_client_stats_t *out) { *out = c->stats; }
int sl_cql_client_protocol_version(const sl_cql_client_t *c) { return c->version; }
