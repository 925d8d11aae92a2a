/* The store role's network side: CQL v4 framing on the project's TCP layer, the connection-level messages
 * (OPTIONS, STARTUP, REGISTER) answered on the loop, everything else handed to the executor thread.
 *
 * Connection state machine:
 *
 *   open ──STARTUP (handle_startup)──> READY (or, with PasswordAuthenticator, AUTHENTICATE ──AUTH_RESPONSE
 *    │                                  (handle_auth_response)──> AUTH_SUCCESS, or ERROR 0x0100 and try again) ──QUERY/PREPARE/EXECUTE/BATCH (submit)──> job on the executor
 *    │  ^                                 │  <──────────── response written (on_job_done) ───────────┘
 *    │  └ OPTIONS (handle_options) at any time; REGISTER after READY (handle_register)
 *    └─ bad version / malformed frame / oversize ──> ERROR 0x000A, then closed (fail_and_close)
 *   Before READY / AUTH_SUCCESS every request but OPTIONS, STARTUP and AUTH_RESPONSE gets ERROR 0x000A.
 * With store.tls_cert_file / store.tls_key_file the TCP layer wraps every connection in TLS (net/tls.h).
 *
 * A connection is freed when the TCP layer has closed it (on_close) and no job refers to it (conn_unref). */
#include "store/store.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "core/fs.h"
#include "core/log.h"
#include "cql/compress.h"
#include "cql/proto.h"
#include "net/tcp.h"
#include "net/tls.h"
#include "store/auth.h"
#include "store/engine.h"
#include "store/worker.h"

#define F(key, type, field, def, min, max, help) {key, type, offsetof(sl_store_config_t, field), def, min, max, help}
const sl_config_field_t sl_store_config_fields[] = {
    F("store.listen", SL_CONFIG_STRING, listen, "127.0.0.1:9042", 0, 0, "host:port to listen on (port 0: any free)"),
    F("store.data_dir", SL_CONFIG_STRING, data_dir, "sluice-data/store", 0, 0, "directory for RocksDB and metadata"),
    F("store.ready_file", SL_CONFIG_STRING, ready_file, NULL, 0, 0, "file written with host:port once listening"),
    F("store.cluster_name", SL_CONFIG_STRING, cluster_name, "Sluice Cluster", 0, 0, "system.local cluster_name"),
    F("store.data_center", SL_CONFIG_STRING, data_center, "datacenter1", 0, 0,
      "system.local data_center (drivers' local data center)"),
    F("store.rack", SL_CONFIG_STRING, rack, "rack1", 0, 0, "system.local rack"),
    F("store.sync_writes", SL_CONFIG_BOOL, sync_writes, "true", 0, 0,
      "fsync the write-ahead log before acknowledging each write"),
    F("store.max_frame_bytes", SL_CONFIG_INT, max_frame_bytes, "268435456", 1024, 268435456,
      "largest frame body accepted"),
    F("store.max_prepared", SL_CONFIG_INT, max_prepared, "10000", 1, 10000000, "prepared statements kept (LRU)"),
    F("store.max_inflight", SL_CONFIG_INT, max_inflight, "256", 1, 1000000,
      "requests queued per connection before it stops reading"),
    F("store.max_queued", SL_CONFIG_INT, max_queued, "8192", 1, 10000000,
      "requests queued on the executor across all connections; beyond it a request gets Overloaded (0x1001)"),
    F("store.authenticator", SL_CONFIG_STRING, authenticator, "", 0, 0,
      "empty or AllowAllAuthenticator: no login; PasswordAuthenticator: clients log in as one of store.users"),
    F("store.users", SL_CONFIG_STRING, users, "", 0, 0,
      "PasswordAuthenticator's users, user:password[,user:password...] (kept only as salted hashes)"),
    F("store.tls_cert_file", SL_CONFIG_STRING, tls_cert_file, "", 0, 0,
      "PEM certificate chain: with store.tls_key_file, the CQL port speaks TLS"),
    F("store.tls_key_file", SL_CONFIG_STRING, tls_key_file, "", 0, 0, "PEM private key of store.tls_cert_file"),
};
#undef F
const size_t sl_store_config_field_count = sizeof sl_store_config_fields / sizeof sl_store_config_fields[0];

typedef struct conn conn_t;

struct sl_store {
  uv_loop_t *loop;
  const sl_store_config_t *cfg;
  sl_engine_t *engine;
  sl_worker_t *worker;
  sl_tcp_server_t *server;
  sl_store_users_t *users; /* non-NULL: PasswordAuthenticator */
  sl_tls_ctx_t *tls;
  char host[256];
  conn_t *conns; /* every open connection (SCHEMA_CHANGE events go to the registered ones) */
  bool stopping;
  int64_t queued; /* jobs submitted and not yet done (the executor queue is bounded by cfg->max_queued) */
};

struct conn {
  sl_store_t *st;
  sl_tcp_conn_t *tcp; /* NULL once closed */
  int refs;           /* 1 for the open socket + 1 per job in flight */
  int inflight;
  bool started, registered_schema, closing_after_write, paused;
  bool authenticating; /* AUTHENTICATE sent, waiting for a good AUTH_RESPONSE (started stays false until then) */
  cql_compression_t compression;
  sl_session_t session;
  conn_t *prev, *next;
};

static void conn_unref(conn_t *c) {
  if (--c->refs > 0) return;
  free(c);
}

static void *on_open(sl_tcp_conn_t *tcp, void *arg) {
  sl_store_t *st = arg;
  if (st->stopping) return NULL;
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->st = st;
  c->tcp = tcp;
  c->refs = 1;
  c->next = st->conns;
  if (st->conns) st->conns->prev = c;
  st->conns = c;
  return c;
}

static void on_close(void *state) {
  conn_t *c = state;
  sl_store_t *st = c->st; /* NULL once the store has stopped (the close callback runs after sl_store_stop) */
  if (st) {
    if (c->prev) c->prev->next = c->next;
    else st->conns = c->next;
    if (c->next) c->next->prev = c->prev;
  }
  c->tcp = NULL;
  conn_unref(c);
}

/* Writes one response frame, compressing the body when negotiated and worthwhile. */
static void send_frame(conn_t *c, int16_t stream, uint8_t opcode, const uint8_t *body, size_t len, bool compress) {
  if (!c->tcp) return;
  sl_buf_t b;
  sl_buf_init(&b);
  uint8_t flags = 0;
  if (compress && c->compression != CQL_COMPRESSION_NONE && len > 0) flags = CQL_FLAG_COMPRESSION;
  size_t f = cql_frame_begin(&b, CQL_VERSION_V4 | CQL_RESPONSE_BIT, flags, stream, opcode);
  if (flags) {
    if (cql_compress(c->compression, body, len, &b) != 0) {
      b.data[f + 1] = 0;
      b.len = f + CQL_HEADER_LEN;
      sl_buf_put(&b, body, len);
    }
  } else {
    sl_buf_put(&b, body, len);
  }
  cql_frame_finish(&b, f);
  sl_tcp_conn_write(c->tcp, &b);
}

static void send_error(conn_t *c, int16_t stream, int32_t code, const char *msg) {
  sl_buf_t b;
  sl_buf_init(&b);
  cql_write_error_body(&b, code, msg);
  send_frame(c, stream, CQL_OP_ERROR, b.data, b.len, true);
  sl_buf_free(&b);
}

static void handle_options(conn_t *c, int16_t stream) {
  sl_buf_t b;
  sl_buf_init(&b);
  cql_write_short(&b, 3);
  static const char *const cql_versions[] = {"3.4.5"};
  static const char *const compressions[] = {"lz4", "snappy"};
  static const char *const protocol_versions[] = {"4/v4"};
  cql_write_cstring(&b, "CQL_VERSION");
  cql_write_string_list(&b, cql_versions, 1);
  cql_write_cstring(&b, "COMPRESSION");
  cql_write_string_list(&b, compressions, 2);
  cql_write_cstring(&b, "PROTOCOL_VERSIONS");
  cql_write_string_list(&b, protocol_versions, 1);
  send_frame(c, stream, CQL_OP_SUPPORTED, b.data, b.len, c->started);
  sl_buf_free(&b);
}

/* Returns 0, or -1 after sending a protocol error. */
static int handle_startup(conn_t *c, int16_t stream, const uint8_t *body, size_t len) {
  sl_reader_t r;
  sl_reader_init(&r, body, len);
  sl_reader_t map = r;
  uint16_t n = cql_read_list_count(&r, 4);
  for (uint16_t i = 0; i < n && !r.err; i++) {
    cql_read_string(&r);
    cql_read_string(&r);
  }
  if (r.err) {
    send_error(c, stream, CQL_ERR_PROTOCOL, "Invalid STARTUP message body");
    return -1;
  }
  sl_slice_t v;
  if (!cql_string_map_get(&map, "CQL_VERSION", &v)) {
    send_error(c, stream, CQL_ERR_PROTOCOL, "CQL_VERSION is mandatory");
    return -1;
  }
  if (v.len < 2 || v.ptr[0] != '3' || v.ptr[1] != '.') {
    send_error(c, stream, CQL_ERR_PROTOCOL, "Invalid or unsupported CQL version");
    return -1;
  }
  cql_compression_t comp = CQL_COMPRESSION_NONE;
  if (cql_string_map_get(&map, "COMPRESSION", &v)) {
    if (cql_slice_eq_nocase(v, "lz4")) comp = CQL_COMPRESSION_LZ4;
    else if (cql_slice_eq_nocase(v, "snappy")) comp = CQL_COMPRESSION_SNAPPY;
    else {
      send_error(c, stream, CQL_ERR_PROTOCOL, "Unknown compression algorithm");
      return -1;
    }
  }
  if (c->st->users && !c->started) {
    c->authenticating = true;
    sl_buf_t b;
    sl_buf_init(&b);
    cql_write_cstring(&b, SL_STORE_PASSWORD_AUTHENTICATOR);
    send_frame(c, stream, CQL_OP_AUTHENTICATE, b.data, b.len, false);
    sl_buf_free(&b);
    c->compression = comp; /* bodies after AUTHENTICATE may be compressed */
    return 0;
  }
  c->started = true;
  send_frame(c, stream, CQL_OP_READY, NULL, 0, false);
  c->compression = comp; /* bodies after READY may be compressed */
  return 0;
}

/* AUTH_RESPONSE [bytes] = SASL PLAIN. A failure leaves the connection open for another try, as Cassandra does. */
static void handle_auth_response(conn_t *c, int16_t stream, const uint8_t *body, size_t len) {
  if (!c->authenticating) {
    send_error(c, stream, CQL_ERR_PROTOCOL,
               c->started ? "Unexpected AUTH_RESPONSE: the connection is already authenticated"
                          : "Unexpected AUTH_RESPONSE: authentication is not enabled, or STARTUP was not sent");
    return;
  }
  sl_reader_t r;
  sl_reader_init(&r, body, len);
  bool is_null = false;
  sl_slice_t tok = cql_read_bytes(&r, &is_null);
  if (r.err) {
    send_error(c, stream, CQL_ERR_PROTOCOL, "Invalid AUTH_RESPONSE message body");
    return;
  }
  char msg[400];
  if (is_null || sl_store_users_check_plain(c->st->users, tok.ptr, tok.len, msg, sizeof msg) != 0) {
    if (is_null) snprintf(msg, sizeof msg, "Password must not be null");
    send_error(c, stream, CQL_ERR_BAD_CREDENTIALS, msg);
    return;
  }
  c->authenticating = false;
  c->started = true;
  sl_buf_t b;
  sl_buf_init(&b);
  cql_write_int(&b, -1); /* [bytes] null, as Cassandra sends */
  send_frame(c, stream, CQL_OP_AUTH_SUCCESS, b.data, b.len, true);
  sl_buf_free(&b);
}

static void handle_register(conn_t *c, int16_t stream, const uint8_t *body, size_t len) {
  sl_reader_t r;
  sl_reader_init(&r, body, len);
  uint16_t n = cql_read_list_count(&r, 2);
  for (uint16_t i = 0; i < n && !r.err; i++) {
    sl_slice_t ev = cql_read_string(&r);
    if (cql_slice_eq(ev, "SCHEMA_CHANGE")) c->registered_schema = true;
    else if (!cql_slice_eq(ev, "TOPOLOGY_CHANGE") && !cql_slice_eq(ev, "STATUS_CHANGE") && !r.err) {
      send_error(c, stream, CQL_ERR_PROTOCOL, "Invalid event type in REGISTER");
      return;
    }
  }
  if (r.err) {
    send_error(c, stream, CQL_ERR_PROTOCOL, "Invalid REGISTER message body");
    return;
  }
  send_frame(c, stream, CQL_OP_READY, NULL, 0, true);
}

static void on_job_done(void *arg, sl_store_job_t *j) {
  sl_store_t *st = arg;
  conn_t *c = j->conn;
  if (!st->stopping) send_frame(c, j->stream, j->res.opcode, j->res.body.data, j->res.body.len, true);
  if (j->res.event.len && !st->stopping) {
    sl_buf_t ev;
    sl_buf_init(&ev);
    cql_write_cstring(&ev, "SCHEMA_CHANGE");
    sl_buf_put(&ev, j->res.event.data, j->res.event.len);
    for (conn_t *o = st->conns; o; o = o->next)
      if (o != c && o->registered_schema) send_frame(o, -1, CQL_OP_EVENT, ev.data, ev.len, true);
    sl_buf_free(&ev);
  }
  sl_buf_free(&j->res.body);
  sl_buf_free(&j->res.event);
  free(j->body);
  free(j);
  st->queued--;
  c->inflight--;
  if (c->paused && c->tcp && c->inflight < st->cfg->max_inflight / 2) {
    c->paused = false;
    sl_tcp_conn_resume(c->tcp);
  }
  conn_unref(c);
}

static void submit(conn_t *c, int16_t stream, uint8_t opcode, sl_buf_t *body) {
  if (c->st->queued >= c->st->cfg->max_queued) { /* bounded executor queue: shed load, as Cassandra does */
    send_error(c, stream, CQL_ERR_OVERLOADED, "Server is in overloaded state. Cannot accept more requests at this "
                                             "point");
    sl_buf_free(body);
    return;
  }
  c->st->queued++;
  sl_store_job_t *j = calloc(1, sizeof *j);
  if (!j) abort();
  j->conn = c;
  j->session = &c->session;
  j->opcode = opcode;
  j->stream = stream;
  j->body = body->data; /* ownership moves to the job */
  j->len = body->len;
  sl_buf_init(body);
  sl_buf_init(&j->res.body);
  sl_buf_init(&j->res.event);
  c->refs++;
  c->inflight++;
  if (!c->paused && c->inflight >= c->st->cfg->max_inflight) {
    c->paused = true;
    sl_tcp_conn_pause(c->tcp);
  }
  sl_worker_submit(c->st->worker, j);
}

/* The version refusal drivers negotiate with: their substring checks need exactly this wording. */
static void refuse_version(conn_t *c, int16_t stream, uint8_t version) {
  char msg[160];
  snprintf(msg, sizeof msg, "Invalid or unsupported protocol version (%u); supported versions are (4/v4)",
           version & 0x7Fu);
  sl_buf_t b;
  sl_buf_init(&b);
  cql_write_error_body(&b, CQL_ERR_PROTOCOL, msg);
  send_frame(c, stream, CQL_OP_ERROR, b.data, b.len, false);
  sl_buf_free(&b);
}

static ssize_t on_data(void *state, const uint8_t *data, size_t len) {
  conn_t *c = state;
  size_t used = 0;
  while (used < len && c->tcp && !c->closing_after_write) {
    if (c->paused) break;
    cql_header_t h;
    int rc = cql_parse_header(data + used, len - used, (uint32_t)c->st->cfg->max_frame_bytes, &h);
    if (len - used >= 1 && (data[used] & 0x7F) < 3 && (data[used] & 0x7F) != 0) {
      /* v1/v2 use an 8-byte header we do not speak: just close */
      return -1;
    }
    if (rc == CQL_HEADER_NEED_MORE) break;
    if ((h.version & 0x7F) != CQL_VERSION_V4) {
      refuse_version(c, h.stream, h.version);
      c->closing_after_write = true;
      return -1;
    }
    if (rc == CQL_HEADER_TOO_LARGE) {
      send_error(c, h.stream, CQL_ERR_PROTOCOL, "Request is too big");
      return -1;
    }
    if (h.version & CQL_RESPONSE_BIT) {
      send_error(c, h.stream, CQL_ERR_PROTOCOL, "Invalid frame direction (a response sent to the server)");
      return -1;
    }
    if (len - used < CQL_HEADER_LEN + (size_t)h.length) break;
    const uint8_t *body = data + used + CQL_HEADER_LEN;
    used += CQL_HEADER_LEN + (size_t)h.length;
    sl_buf_t plain;
    sl_buf_init(&plain);
    if (h.flags & CQL_FLAG_COMPRESSION) {
      if (c->compression == CQL_COMPRESSION_NONE ||
          cql_decompress(c->compression, body, h.length, (size_t)c->st->cfg->max_frame_bytes, &plain) != 0) {
        sl_buf_free(&plain);
        send_error(c, h.stream, CQL_ERR_PROTOCOL, "Cannot decompress the frame body");
        return -1;
      }
    } else {
      sl_buf_put(&plain, body, h.length);
    }
    /* a custom payload (flag 0x04) precedes the body; we do not use it: skip its [bytes map] */
    size_t off = 0;
    if (h.flags & CQL_FLAG_CUSTOM_PAYLOAD) {
      sl_reader_t r;
      sl_reader_init(&r, plain.data, plain.len);
      uint16_t n = cql_read_list_count(&r, 6);
      for (uint16_t i = 0; i < n && !r.err; i++) {
        cql_read_string(&r);
        cql_read_bytes(&r, NULL);
      }
      if (r.err) {
        sl_buf_free(&plain);
        send_error(c, h.stream, CQL_ERR_PROTOCOL, "Invalid custom payload");
        return -1;
      }
      off = r.pos;
      memmove(plain.data, plain.data + off, plain.len - off);
      plain.len -= off;
    }
    switch (h.opcode) {
      case CQL_OP_OPTIONS: handle_options(c, h.stream); break;
      case CQL_OP_STARTUP:
        if (handle_startup(c, h.stream, plain.data, plain.len) != 0) {
          sl_buf_free(&plain);
          return -1;
        }
        break;
      case CQL_OP_REGISTER:
        if (!c->started) goto not_started;
        handle_register(c, h.stream, plain.data, plain.len);
        break;
      case CQL_OP_QUERY:
      case CQL_OP_PREPARE:
      case CQL_OP_EXECUTE:
      case CQL_OP_BATCH:
        if (!c->started) goto not_started;
        submit(c, h.stream, h.opcode, &plain);
        break;
      case CQL_OP_AUTH_RESPONSE: handle_auth_response(c, h.stream, plain.data, plain.len); break;
      default: {
        char msg[80];
        snprintf(msg, sizeof msg, "Unknown or unexpected opcode 0x%02x", h.opcode);
        send_error(c, h.stream, CQL_ERR_PROTOCOL, msg);
        break;
      }
    }
    sl_buf_free(&plain);
    continue;
  not_started:
    sl_buf_free(&plain);
    send_error(c, h.stream, CQL_ERR_PROTOCOL,
               c->authenticating ? "Unexpected message, expecting AUTH_RESPONSE: the connection is not authenticated"
               : c->st->users    ? "Unexpected message, expecting STARTUP or OPTIONS: the connection is not authenticated"
                                 : "Unexpected message, expecting STARTUP or OPTIONS");
  }
  return (ssize_t)used;
}

static const sl_tcp_protocol_t cql_protocol = {on_open, on_data, on_close};



int sl_store_start(uv_loop_t *loop, const sl_store_config_t *cfg, sl_store_t **out) {
  sl_store_t *st = calloc(1, sizeof *st);
  if (!st) return -ENOMEM;
  st->loop = loop;
  st->cfg = cfg;
  int port, rc;
  if (sl_addr_split(cfg->listen, st->host, sizeof st->host, &port) != 0) {
    SL_ERROR("store", "store.listen '%s' is not host:port", cfg->listen);
    free(st);
    return -EINVAL;
  }
  bool password_auth = false;
  if (cfg->authenticator && cfg->authenticator[0]) {
    const char *a = cfg->authenticator, *dot = strrchr(a, '.');
    if (dot) a = dot + 1; /* org.apache.cassandra.auth.PasswordAuthenticator works too */
    if (strcmp(a, "PasswordAuthenticator") == 0) password_auth = true;
    else if (strcmp(a, "AllowAllAuthenticator") != 0) {
      SL_ERROR("store", "store.authenticator '%s' is not PasswordAuthenticator or AllowAllAuthenticator",
               cfg->authenticator);
      free(st);
      return -EINVAL;
    }
  }
  if (password_auth) {
    const char *why = NULL;
    if (!cfg->users || !cfg->users[0]) {
      SL_ERROR("store", "store.authenticator is PasswordAuthenticator but store.users is empty");
      free(st);
      return -EINVAL;
    }
    if ((rc = sl_store_users_create(cfg->users, &st->users, &why)) != 0) {
      SL_ERROR("store", "store.users: %s", why ? why : strerror(-rc));
      free(st);
      return rc;
    }
  }
  bool has_cert = cfg->tls_cert_file && cfg->tls_cert_file[0], has_key = cfg->tls_key_file && cfg->tls_key_file[0];
  if (has_cert != has_key) {
    SL_ERROR("store", "TLS needs both store.tls_cert_file and store.tls_key_file");
    sl_store_users_free(st->users);
    free(st);
    return -EINVAL;
  }
  if (has_cert) {
    char why[512];
    if ((rc = sl_tls_ctx_create(cfg->tls_cert_file, cfg->tls_key_file, &st->tls, why, sizeof why)) != 0) {
      SL_ERROR("store", "%s", why);
      sl_store_users_free(st->users);
      free(st);
      return rc;
    }
  }
  sl_engine_config_t ecfg = {.data_dir = cfg->data_dir,
                             .sync_writes = cfg->sync_writes,
                             .cluster_name = cfg->cluster_name,
                             .data_center = cfg->data_center,
                             .rack = cfg->rack,
                             .address = st->host,
                             .port = port,
                             .max_prepared = cfg->max_prepared};
  if ((rc = sl_engine_open(&ecfg, &st->engine)) != 0) {
    sl_store_users_free(st->users);
    sl_tls_ctx_free(st->tls);
    free(st);
    return rc;
  }
  if ((rc = sl_worker_start(loop, st->engine, on_job_done, st, &st->worker)) != 0) {
    SL_ERROR("store", "cannot start the executor thread: %s", strerror(-rc));
    sl_engine_close(st->engine);
    sl_store_users_free(st->users);
    sl_tls_ctx_free(st->tls);
    free(st);
    return rc;
  }
  if ((rc = sl_tcp_listen(loop, st->host, port, &cql_protocol, st, &st->server)) != 0) {
    SL_ERROR("store", "cannot listen on %s: %s", cfg->listen, uv_strerror(rc));
    sl_worker_stop(st->worker);
    sl_engine_close(st->engine);
    sl_store_users_free(st->users);
    sl_tls_ctx_free(st->tls);
    free(st);
    return rc;
  }
  if (st->tls) sl_tcp_server_set_tls(st->server, st->tls);
  int bound = sl_tcp_server_port(st->server);
  SL_INFO("store", "listening on %s:%d (CQL native protocol v4%s%s), data in %s", st->host, bound,
          st->tls ? ", TLS" : "", st->users ? ", PasswordAuthenticator" : "", cfg->data_dir);
  if (cfg->ready_file && cfg->ready_file[0] && (rc = sl_fs_write_ready_file(cfg->ready_file, st->host, bound)) != 0)
    SL_WARN("store", "cannot write ready file %s: %s", cfg->ready_file, strerror(-rc));
  *out = st;
  return 0;
}

int sl_store_port(const sl_store_t *s) { return sl_tcp_server_port(s->server); }

void sl_store_stop(sl_store_t *st) {
  st->stopping = true;
  sl_tcp_server_close(st->server); /* connections close; their on_close runs from the loop */
  sl_worker_stop(st->worker);      /* joins the executor; remaining completions release their connections */
  sl_engine_close(st->engine);
  for (conn_t *c = st->conns; c; c = c->next) c->st = NULL;
  sl_store_users_free(st->users);
  sl_tls_ctx_free(st->tls); /* connections still closing hold their own reference (SSL_new) to the context */
  SL_INFO("store", "stopped");
  free(st);
}
