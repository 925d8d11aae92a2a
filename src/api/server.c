/* The API role: configuration, h2o on the libuv loop, routing, the life of a request (op_t) and shutdown.
 *
 * Role life:
 *
 *   sl_api_start ──tokens, TLS context, listen, ready file, sl_cql_client_connect──> SERVING (503 until the store
 *                  answers; /ready)
 *   SERVING ──sl_api_stop──> STOPPING: live streams end, the listener closes, idle keep-alive connections close
 *            (h2o_context_request_shutdown), the CQL client closes (waiting requests answer 503)
 *   STOPPING ──STOP_GRACE_MS later, connections still open (on_tick)──> their sockets shut down (shutdown(2)), so
 *            h2o sees them end: libh2o 2.2's shutdown request reaches only HTTP/2, and an idle HTTP/1.1 keep-alive
 *            client would hold the stop until h2o's own 10 s timeout
 *   STOPPING ──no connection left and the client closed (on_tick)──> h2o context disposed, timer closed, freed */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "api/api_internal.h"
#include "core/addr.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/log.h"

#ifndef SLUICE_WEB_DIR
#define SLUICE_WEB_DIR ""
#endif

#define F(key, type, field, def, min, max, help) {key, type, offsetof(sl_api_config_t, field), def, min, max, help}
const sl_config_field_t sl_api_config_fields[] = {
    F("api.listen", SL_CONFIG_STRING, listen, "127.0.0.1:8080", 0, 0, "HTTP listener host:port (port 0: any)"),
    F("api.ready_file", SL_CONFIG_STRING, ready_file, "", 0, 0, "written with host:port once listening"),
    F("api.cql", SL_CONFIG_STRING, cql, "127.0.0.1:9042", 0, 0, "CQL contact points (host:port,...)"),
    F("api.cql_username", SL_CONFIG_STRING, cql_username, "", 0, 0, "CQL user (PasswordAuthenticator)"),
    F("api.cql_password", SL_CONFIG_STRING, cql_password, "", 0, 0, "CQL password"),
    SL_CQL_TLS_SETTINGS_FIELDS("api", sl_api_config_t, cql_tls),
    F("api.web_dir", SL_CONFIG_STRING, web_dir, SLUICE_WEB_DIR, 0, 0, "the built dashboard (\"\": none)"),
    F("api.tokens", SL_CONFIG_STRING, tokens, "", 0, 0,
      "bearer tokens accepted, comma-separated (none here or in tokens_file: no authentication)"),
    F("api.tokens_file", SL_CONFIG_STRING, tokens_file, "", 0, 0,
      "file of accepted bearer tokens, one per line ('#' comments), added to api.tokens"),
    F("api.tls_cert_file", SL_CONFIG_STRING, tls_cert_file, "", 0, 0,
      "PEM certificate chain: with api.tls_key_file, the listener speaks HTTPS only (HTTP/2 by ALPN)"),
    F("api.tls_key_file", SL_CONFIG_STRING, tls_key_file, "", 0, 0, "PEM private key of api.tls_cert_file"),
    F("api.default_limit", SL_CONFIG_INT, default_limit, "100", 1, 100000, "rows per page by default"),
    F("api.max_limit", SL_CONFIG_INT, max_limit, "5000", 1, 100000, "largest page a request may ask for"),
    F("api.default_range_ms", SL_CONFIG_INT, default_range_ms, "3600000", 1, INT64_MAX,
      "time range when a request names no `from` (1h)"),
    F("api.max_range_ms", SL_CONFIG_INT, max_range_ms, "2678400000", 1, INT64_MAX,
      "largest from..to span of readings and rows requests (31d)"),
    F("api.max_agg_range_ms", SL_CONFIG_INT, max_agg_range_ms, "2678400000", 1, INT64_MAX,
      "largest from..to span of aggregate requests (31d)"),
    F("api.max_buckets", SL_CONFIG_INT, max_buckets, "10000", 1, 1000000, "largest number of aggregate intervals"),
    F("api.max_scan_rows", SL_CONFIG_INT, max_scan_rows, "2000000", 1, INT64_MAX,
      "rows one aggregate request may read"),
    F("api.lookback_days", SL_CONFIG_INT, lookback_days, "7", 0, 3660,
      "day partitions searched back for a device's latest reading"),
    F("api.device_cache_ms", SL_CONFIG_INT, device_cache_ms, "5000", 0, INT64_MAX,
      "how long the device and schema indexes are reused"),
    F("api.live_poll_ms", SL_CONFIG_INT, live_poll_ms, "500", 50, 60000, "live streams look for new rows this often"),
    F("api.live_max_clients", SL_CONFIG_INT, live_max_clients, "256", 1, 100000, "concurrent live streams"),
    F("api.live_max_pending", SL_CONFIG_INT, live_max_pending, "64", 1, 100000,
      "events held for one slow live client (older ones are dropped, the client is told)"),
};
const size_t sl_api_config_field_count = sizeof sl_api_config_fields / sizeof sl_api_config_fields[0];

enum { TICK_MS = 50, STOP_GRACE_MS = 5000 };

int64_t api_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------------------------------- responses, metrics */

static const double hist_le_ms[HIST_BUCKETS] = {0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500};

void api_count(sl_api_t *api, api_route_t route, int status, int64_t started_us) {
  int cls = status / 100;
  if (cls < 1 || cls > 5) cls = 5;
  api->requests[route][cls]++;
  if (started_us <= 0) return;
  double ms = (double)(api_now_us() - started_us) / 1000.0;
  int b = 0;
  while (b < HIST_BUCKETS && ms > hist_le_ms[b]) b++;
  api->hist[route][b]++;
  api->hist_sum[route] += ms / 1000.0;
}

static const char *reason_of(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

/* text: JSON without its final newline, len bytes of it, with room for one more byte (the newline); NULL when the
 * answer could not be encoded. */
static void send_text(h2o_req_t *req, int status, char *text, size_t len) {
  req->res.status = status;
  req->res.reason = reason_of(status);
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
  if (!text) {
    static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"could not encode the answer\"}}";
    req->res.status = 500;
    req->res.reason = reason_of(500);
    h2o_send_inline(req, oom, sizeof oom - 1);
    return;
  }
  text[len++] = '\n'; /* h2o_send_inline copies len bytes */
  h2o_send_inline(req, text, len);
}

/* Buffers handed over with an answer, freed when h2o disposes the request (after the last byte is written). */
typedef struct {
  sl_buf_t bufs[OP_REPLY_MAX_IOV];
  size_t n;
} owned_bufs_t;

static void owned_dispose(void *p) {
  owned_bufs_t *o = p;
  for (size_t i = 0; i < o->n; i++) sl_buf_free(&o->bufs[i]);
}

/* The answer as h2o_send_inline sends it (no content length, HEAD without a body), from iov[0..n) without copying
 * the bytes: the buffers in owned[0..nowned) move into the request's pool. */
static void send_iov(h2o_req_t *req, int status, h2o_iovec_t *iov, size_t n, sl_buf_t *owned, size_t nowned) {
  static h2o_generator_t generator = {NULL, NULL};
  owned_bufs_t *o = h2o_mem_alloc_shared(&req->pool, sizeof *o, owned_dispose);
  o->n = 0;
  for (size_t i = 0; i < nowned && i < OP_REPLY_MAX_IOV; i++) {
    o->bufs[o->n++] = owned[i];
    sl_buf_init(&owned[i]);
  }
  req->res.status = status;
  req->res.reason = reason_of(status);
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
  h2o_start_response(req, &generator);
  if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD")))
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
  else
    h2o_send(req, iov, n, H2O_SEND_STATE_FINAL);
}

static void send_json(h2o_req_t *req, int status, json_t *body) {
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  send_text(req, status, text, text ? strlen(text) : 0); /* the newline replaces the NUL */
  free(text);
}

static json_t *error_body(const char *code, const char *msg) {
  return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
}

void api_reply_json(sl_api_t *api, h2o_req_t *req, api_route_t route, int status, json_t *body) {
  api_count(api, route, status, 0);
  send_json(req, status, body);
}

void api_reply_error(sl_api_t *api, h2o_req_t *req, api_route_t route, int status, const char *code,
                     const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  api_reply_json(api, req, route, status, error_body(code, msg));
}

/* ------------------------------------------------------------------------------------------------ request life */

struct op_guard {
  op_t *op;
};

static void guard_dispose(void *p) {
  struct op_guard *g = p;
  if (g->op) {
    g->op->req = NULL;
    g->op->guard = NULL;
  }
}

op_t *op_new(sl_api_t *api, h2o_req_t *req, api_route_t route, size_t size, op_free_fn free_fn) {
  op_t *op = calloc(1, size);
  if (!op) return NULL;
  op->api = api;
  op->route = route;
  op->free_fn = free_fn;
  op->started_us = api_now_us();
  if (req) {
    op->req = req;
    op->guard = h2o_mem_alloc_shared(&req->pool, sizeof *op->guard, guard_dispose);
    op->guard->op = op;
  } else {
    op->internal = true;
  }
  return op;
}

void op_maybe_free(op_t *op) {
  if (!op->done || op->queries > 0 || op->in_cb) return;
  if (op->guard) op->guard->op = NULL;
  if (op->free_fn) op->free_fn(op);
  free(op);
}

/* Detaches the op from its HTTP request (counting the answer) so the response can be sent once; NULL when the
 * client has already gone. */
static h2o_req_t *take_request(op_t *op, int status) {
  h2o_req_t *req = op->req;
  if (!req) return NULL;
  api_count(op->api, op->route, status, op->started_us);
  if (op->guard) op->guard->op = NULL;
  op->guard = NULL;
  op->req = NULL;
  return req;
}

void op_reply_json(op_t *op, int status, json_t *body) {
  if (op->done) {
    json_decref(body);
    return;
  }
  op->done = true;
  h2o_req_t *req = take_request(op, status);
  if (req) send_json(req, status, body);
  else json_decref(body);
  op_maybe_free(op);
}

void op_reply_iov(op_t *op, int status, h2o_iovec_t *iov, size_t n, sl_buf_t *owned, size_t nowned) {
  if (!op->done) {
    op->done = true;
    h2o_req_t *req = take_request(op, status);
    if (req && iov) send_iov(req, status, iov, n, owned, nowned);
    else if (req) send_text(req, status, NULL, 0);
  }
  for (size_t i = 0; i < nowned; i++) sl_buf_free(&owned[i]);
  op_maybe_free(op);
}

void op_reply_buf(op_t *op, int status, sl_buf_t *body) {
  if (!body) return op_reply_iov(op, status, NULL, 0, NULL, 0);
  sl_buf_put_u8(body, '\n');
  h2o_iovec_t iov = h2o_iovec_init(body->data, body->len);
  op_reply_iov(op, status, &iov, 1, body, 1);
}

void op_error(op_t *op, int status, const char *code, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  op_reply_json(op, status, error_body(code, msg));
}

void op_cql_error(op_t *op, const sl_cql_error_t *err) {
  op->api->cql_errors++;
  switch (err->code) {
    case SL_CQL_CLIENT_TIMEOUT: op_error(op, 504, "store_timeout", "the store did not answer in time"); break;
    case SL_CQL_CLIENT_OVERLOADED: op_error(op, 503, "overloaded", "too many store requests in flight"); break;
    case SL_CQL_CLIENT_BAD_VALUE: op_error(op, 400, "bad_value", "%s", err->message); break;
    case SL_CQL_CLIENT_NO_HOST:
    case SL_CQL_CLIENT_CONNECTION_CLOSED:
    case SL_CQL_CLIENT_CLOSING: op_error(op, 503, "store_unavailable", "%s", err->message); break;
    case 0x2200: op_error(op, 400, "invalid_query", "%s", err->message); break;
    default: op_error(op, 502, "store_error", "store error 0x%04x: %s", (unsigned)err->code, err->message); break;
  }
}

/* ------------------------------------------------------------------------------------------ parameters, times */

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decodes [s, s+n) into out (cap bytes incl. NUL); '+' is a space in query strings. Returns length or -1. */
static long url_decode(const char *s, size_t n, bool plus, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      if (i + 2 >= n) return -1;
      int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
      if (h < 0 || l < 0) return -1;
      c = h << 4 | l;
      i += 2;
    } else if (c == '+' && plus) {
      c = ' ';
    }
    if (c == 0) return -1;
    if (o + 1 >= cap) return -1;
    out[o++] = (char)c;
  }
  out[o] = 0;
  return (long)o;
}

bool api_param(h2o_req_t *req, const char *name, char *buf, size_t cap, bool *too_long) {
  if (too_long) *too_long = false;
  if (req->query_at == SIZE_MAX) return false;
  const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
  size_t nlen = strlen(name);
  while (q < end) {
    const char *amp = memchr(q, '&', (size_t)(end - q));
    if (!amp) amp = end;
    const char *eq = memchr(q, '=', (size_t)(amp - q));
    const char *kend = eq ? eq : amp;
    char key[128];
    long kl = url_decode(q, (size_t)(kend - q), true, key, sizeof key);
    if (kl == (long)nlen && memcmp(key, name, nlen) == 0) {
      const char *v = eq ? eq + 1 : amp;
      long vl = url_decode(v, (size_t)(amp - v), true, buf, cap);
      if (vl < 0) {
        if (too_long) *too_long = true;
        buf[0] = 0;
      }
      return true;
    }
    q = amp + 1;
  }
  return false;
}

/* Names every query parameter not in `allowed` (NULL-terminated), or any that does not decode. */
static bool params_check(h2o_req_t *req, const char *const *allowed, bool allow_any, char *bad, size_t cap) {
  if (req->query_at == SIZE_MAX) return true;
  const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
  while (q < end) {
    const char *amp = memchr(q, '&', (size_t)(end - q));
    if (!amp) amp = end;
    const char *eq = memchr(q, '=', (size_t)(amp - q));
    const char *kend = eq ? eq : amp;
    char key[128];
    if (kend > q) {
      if (url_decode(q, (size_t)(kend - q), true, key, sizeof key) < 0) {
        snprintf(bad, cap, "a query parameter name does not decode or is too long");
        return false;
      }
      bool ok = allow_any;
      for (size_t i = 0; !ok && allowed[i]; i++) ok = !strcmp(allowed[i], key);
      if (!ok) {
        snprintf(bad, cap, "unknown query parameter '%.100s'", key);
        return false;
      }
    }
    q = amp + 1;
  }
  return true;
}

int api_parse_time(const char *s, int64_t *ms) {
  size_t n = strlen(s);
  if (n == 0 || n > 64) return -EINVAL;
  if (!strcmp(s, "now")) {
    *ms = sl_wall_ms();
    return 0;
  }
  size_t i = s[0] == '-' ? 1 : 0;
  bool digits = i < n;
  for (size_t j = i; j < n; j++) digits = digits && s[j] >= '0' && s[j] <= '9';
  if (digits) {
    if (n - i > 15) return -ERANGE;
    *ms = strtoll(s, NULL, 10);
    return 0;
  }
  if (n < 10 || s[4] != '-') return -EINVAL;
  if (sl_cql_parse_timestamp(s, n, ms) != 0) return -EINVAL;
  return 0;
}

static void put_digits(char *p, int v, int n);

/* days since 1970-01-01 (0 <= days) to the proleptic Gregorian date, as gmtime_r gives it */
static void civil_from_days(int64_t days, int *y, int *m, int *d) {
  int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400) + (*m <= 2);
}

void api_format_day(int64_t day, char out[16]) {
  if (day >= 0 && day < INT64_C(2932897)) { /* 1970 to 9999 */
    int y, m, d;
    civil_from_days(day, &y, &m, &d);
    put_digits(out, y, 4);
    out[4] = '-';
    put_digits(out + 5, m, 2);
    out[7] = '-';
    put_digits(out + 8, d, 2);
    out[10] = 0;
    return;
  }
  time_t t = (time_t)(day * 86400);
  struct tm tm;
  gmtime_r(&t, &tm);
  snprintf(out, 16, "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100);
}

static void put_digits(char *p, int v, int n) {
  for (int i = n - 1; i >= 0; i--) {
    p[i] = (char)('0' + v % 10);
    v /= 10;
  }
}

size_t api_format_time(int64_t ms, char out[32]) {
  if (ms >= 0 && ms < INT64_C(253402300800000)) { /* 1970 to 9999: the civil date by arithmetic, as gmtime_r gives it */
    int64_t sec = ms / 1000, days = sec / 86400;
    int sod = (int)(sec % 86400);
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    put_digits(out, y, 4);
    out[4] = '-';
    put_digits(out + 5, m, 2);
    out[7] = '-';
    put_digits(out + 8, d, 2);
    out[10] = 'T';
    put_digits(out + 11, sod / 3600, 2);
    out[13] = ':';
    put_digits(out + 14, sod / 60 % 60, 2);
    out[16] = ':';
    put_digits(out + 17, sod % 60, 2);
    out[19] = '.';
    put_digits(out + 20, (int)(ms % 1000), 3);
    out[23] = 'Z';
    out[24] = 0;
    return 24;
  }
  int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  int frac = (int)(ms - sec * 1000);
  time_t t = (time_t)sec;
  struct tm tm;
  if (!gmtime_r(&t, &tm)) {
    snprintf(out, 32, "%lld", (long long)ms);
    return strlen(out);
  }
  snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
           tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, (frac % 1000 + 1000) % 1000);
  return strlen(out);
}

/* -------------------------------------------------------------------------------------------------- routing */

typedef struct {
  h2o_handler_t super;
  sl_api_t *api;
} handler_t;

enum { MAX_SEGS = 8, SEG_CAP = 256 };

static const char *const P_NONE[] = {NULL};
static const char *const P_DEVICES[] = {"table", NULL};
static const char *const P_LATEST[] = {"table", "fields", NULL};
static const char *const P_READINGS[] = {"table", "from", "to", "fields", "limit", "cursor", "order", NULL};
static const char *const P_AGG[] = {"table", "from", "to", "fields", "interval", "agg", NULL};
static const char *const P_DLQ[] = {"limit", NULL};
/* access_token: EventSource cannot send an Authorization header (auth.c) */
static const char *const P_LIVE[] = {"table", "access_token", NULL};
static const char *const P_LIVE_TABLE[] = {"access_token", NULL};

static int on_req(h2o_handler_t *self, h2o_req_t *req) {
  sl_api_t *api = ((handler_t *)self)->api;
  char segs[MAX_SEGS][SEG_CAP];
  int nseg = 0;
  /* the raw path (before the query), split on '/', each segment percent-decoded */
  size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
  const char *p = req->path.base, *end = p + plen;
  bool bad = false;
  while (p < end) {
    while (p < end && *p == '/') p++;
    if (p >= end) break;
    const char *s = p;
    while (p < end && *p != '/') p++;
    if (nseg == MAX_SEGS || url_decode(s, (size_t)(p - s), false, segs[nseg], SEG_CAP) < 0) {
      bad = true;
      break;
    }
    nseg++;
  }
  bool is_get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
                h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
  if (bad) {
    api_reply_error(api, req, R_OTHER, 400, "bad_path", "the path does not decode or has too many segments");
    return 0;
  }
#define SEG(i, lit) (nseg > (i) && !strcmp(segs[i], lit))
  const char *const *allowed = P_NONE;
  bool any_params = false;
  api_route_t route = R_OTHER;
  int kind = -1;
  if (nseg == 1 && SEG(0, "health")) route = R_HEALTH, kind = 0;
  else if (nseg == 1 && SEG(0, "ready")) route = R_READY, kind = 1;
  else if (nseg == 1 && SEG(0, "metrics")) route = R_METRICS, kind = 2;
  else if ((nseg == 1 && SEG(0, "openapi.json")) || (nseg == 3 && SEG(0, "api") && SEG(1, "v1") && SEG(2, "openapi.json")))
    route = R_OPENAPI, kind = 3;
  else if (nseg >= 2 && SEG(0, "api") && SEG(1, "v1")) {
    if (nseg == 3 && SEG(2, "devices")) route = R_DEVICES, kind = 10, allowed = P_DEVICES;
    else if (nseg == 4 && SEG(2, "devices")) route = R_DEVICE_LATEST, kind = 11, allowed = P_LATEST;
    else if (nseg == 5 && SEG(2, "devices") && SEG(4, "latest")) route = R_DEVICE_LATEST, kind = 11, allowed = P_LATEST;
    else if (nseg == 5 && SEG(2, "devices") && SEG(4, "readings")) route = R_DEVICE_READINGS, kind = 12, allowed = P_READINGS;
    else if (nseg == 5 && SEG(2, "devices") && SEG(4, "aggregate")) route = R_DEVICE_AGG, kind = 13, allowed = P_AGG;
    else if (nseg == 3 && SEG(2, "tables")) route = R_TABLES, kind = 20;
    else if (nseg == 5 && SEG(2, "tables")) route = R_TABLES, kind = 21;
    else if (nseg == 6 && SEG(2, "tables") && SEG(5, "rows")) route = R_TABLE_ROWS, kind = 22, any_params = true;
    else if (nseg == 3 && SEG(2, "pipelines")) route = R_PIPELINES, kind = 30;
    else if (nseg == 5 && SEG(2, "pipelines") && SEG(4, "dead-letters")) route = R_DEAD_LETTERS, kind = 31, allowed = P_DLQ;
    else if (nseg == 5 && SEG(2, "live") && SEG(3, "devices")) route = R_LIVE, kind = 40, allowed = P_LIVE;
    else if (nseg == 6 && SEG(2, "live") && SEG(3, "tables")) route = R_LIVE, kind = 41, allowed = P_LIVE_TABLE;
  }
#undef SEG
  /* Before 404 and 405, so that without a token nothing tells which endpoints exist; /health and /ready stay open
   * for load balancers. */
  if (kind != 0 && kind != 1 && !api_auth_check(api, req, route, kind == 40 || kind == 41)) return 0;
  if (kind < 0) {
    api_reply_error(api, req, R_OTHER, 404, "not_found", "no such endpoint (see /openapi.json)");
    return 0;
  }
  if (!is_get) {
    api_reply_error(api, req, route, 405, "method_not_allowed", "only GET is served here");
    return 0;
  }
  char why[200];
  if (!params_check(req, allowed, any_params, why, sizeof why)) {
    api_reply_error(api, req, route, 400, "bad_parameter", "%s", why);
    return 0;
  }
  if (kind >= 10 && !api->cql_ready) {
    api_reply_error(api, req, route, 503, "store_unavailable", "not connected to the store yet");
    return 0;
  }
  if (api->stopping && kind >= 10) {
    api_reply_error(api, req, route, 503, "stopping", "the server is shutting down");
    return 0;
  }
  switch (kind) {
    case 0: api_reply_json(api, req, route, 200, json_pack("{s:s}", "status", "ok")); break;
    case 1:
      if (api->cql_ready && !api->stopping)
        api_reply_json(api, req, route, 200, json_pack("{s:s,s:b}", "status", "ready", "store", 1));
      else
        api_reply_json(api, req, route, 503, json_pack("{s:s,s:b}", "status", "not_ready", "store", 0));
      break;
    case 2: api_metrics(api, req); break;
    case 3: api_openapi(api, req); break;
    case 10: api_devices(api, req); break;
    case 11: api_device_latest(api, req, segs[3]); break;
    case 12: api_device_readings(api, req, segs[3]); break;
    case 13: api_device_aggregate(api, req, segs[3]); break;
    case 20: api_tables(api, req, NULL, NULL); break;
    case 21: api_tables(api, req, segs[3], segs[4]); break;
    case 22: api_table_rows(api, req, segs[3], segs[4]); break;
    case 30: api_pipelines(api, req); break;
    case 31: api_dead_letters(api, req, segs[3]); break;
    case 40: api_live_device(api, req, segs[4]); break;
    case 41: api_live_table(api, req, segs[4], segs[5]); break;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------- connections, CQL */

struct http_conn {
  uv_tcp_t tcp; /* first: h2o frees the handle through the close callback */
  sl_api_t *api;
  h2o_socket_t *sock; /* h2o's; valid until on_http_conn_closed (h2o frees it just before) */
  int stalled;        /* ticks in a row seen waiting on a write libuv refused (unstick_writes) */
  http_conn_t *next, **pprev; /* api->conn_list */
};

static void on_http_conn_closed(uv_handle_t *h) {
  http_conn_t *c = (http_conn_t *)h;
  c->api->conns--;
  *c->pprev = c->next;
  if (c->next) c->next->pprev = c->pprev;
  free(c);
}

/* libh2o 2.2's libuv binding ignores uv_write's result. Once the peer has reset the connection, libuv refuses a
 * write at once (the stream is no longer writable) and never calls back, so h2o waits for that write forever and
 * keeps the descriptor: a leak per connection, and a stop that never ends. TLS makes it common: closing a
 * connection writes a close_notify, and a client that closes with a session ticket unread sends a reset.
 * A write h2o waits for while the stream is not writable and libuv holds none of its bytes, seen on two ticks in
 * a row (libuv reports a write it took within one loop iteration), is completed here with an error, as libuv
 * would have: h2o then closes the socket. */
static void unstick_writes(sl_api_t *api) {
  for (http_conn_t *c = api->conn_list; c; c = c->next) {
    uv_stream_t *s = (uv_stream_t *)&c->tcp;
    if (!c->sock->_cb.write || uv_is_closing((uv_handle_t *)s) || uv_is_writable(s) ||
        uv_stream_get_write_queue_size(s) != 0) {
      c->stalled = 0;
      continue;
    }
    if (++c->stalled < 2) continue;
    c->stalled = 0;
    h2o_socket_cb cb = c->sock->_cb.write;
    c->sock->_cb.write = NULL;
    SL_DEBUG("api", "completing a write libuv refused (the peer reset the connection)");
    cb(c->sock, h2o_socket_error_io); /* may close the socket: c stays in the list until its close callback */
  }
}

/* The end of the grace period: the sockets of the connections still open are shut down, so h2o reads EOF (or fails
 * its write) and closes them. The handles stay h2o's. */
static void shutdown_conns(sl_api_t *api) {
  for (http_conn_t *c = api->conn_list; c; c = c->next) {
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) shutdown(fd, SHUT_RDWR);
  }
}

static void on_accept(uv_stream_t *listener, int status) {
  sl_api_t *api = listener->data;
  if (status != 0 || api->stopping) return;
  http_conn_t *c = calloc(1, sizeof *c);
  if (!c) return;
  c->api = api;
  uv_tcp_init(api->loop, &c->tcp);
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  api->conns++;
  c->next = api->conn_list;
  if (c->next) c->next->pprev = &c->next;
  c->pprev = &api->conn_list;
  api->conn_list = c;
  h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_http_conn_closed);
  c->sock = sock;
  h2o_accept(&api->accept_ctx, sock);
}

static void on_cql_connected(sl_cql_client_t *c, const sl_cql_error_t *err, void *arg) {
  sl_api_t *api = arg;
  api->connecting = false;
  if (api->stopping) return;
  if (err) {
    SL_WARN("api", "store not reachable (%s): retrying", err->message);
    api->next_connect_ms = sl_monotonic_ms() + 1000;
    return;
  }
  api->cql_ready = true;
  SL_INFO("api", "connected to the store");
}

static int cql_open(sl_api_t *api) {
  sl_cql_client_config_t cc;
  sl_cql_client_config_defaults(&cc);
  cc.contact_points = api->cfg.cql;
  if (api->cfg.cql_username[0]) {
    cc.username = api->cfg.cql_username;
    cc.password = api->cfg.cql_password;
  }
  cc.request_timeout_ms = 10000;
  cc.connect_timeout_ms = 2000;
  sl_cql_tls_settings_apply(&api->cfg.cql_tls, &cc);
  char why[400];
  int rc = sl_cql_client_create_with_error(api->loop, &cc, &api->cql, why, sizeof why);
  if (rc != 0) {
    SL_ERROR("api", "cannot create the CQL client for %s: %s", api->cfg.cql, why);
    return rc;
  }
  api->connecting = true;
  sl_cql_client_connect(api->cql, on_cql_connected, api);
  return 0;
}

static void on_cql_closed(void *arg) {
  sl_api_t *api = arg;
  api->cql = NULL;
  api->cql_closed = true;
}

static void on_timer_closed(uv_handle_t *h) {
  sl_api_t *api = h->data;
  void (*stopped)(void *) = api->stopped;
  void *arg = api->stopped_arg;
  free(api);
  if (stopped) stopped(arg);
}

static void finish_stop(sl_api_t *api) {
  api_live_free(api);
  api_preps_free(api);
  api_schema_free(api);
  api_devidx_free(api);
  if (api->ctx_inited) {
    /* h2o_context_request_shutdown leaves its HTTP/2 GOAWAY re-send entry on the one-second timeout */
    if (h2o_timeout_is_linked(&api->ctx.http2._graceful_shutdown_timeout))
      h2o_timeout_unlink(&api->ctx.http2._graceful_shutdown_timeout);
    h2o_context_dispose(&api->ctx);
  }
  h2o_config_dispose(&api->conf);
  api->ctx_inited = false;
  SSL_CTX_free(api->ssl_ctx); /* connections still closing hold their own reference */
  api->ssl_ctx = NULL;
  api_auth_free(api);
  uv_close((uv_handle_t *)&api->timer, on_timer_closed);
}

static void on_tick(uv_timer_t *t) {
  sl_api_t *api = t->data;
  int64_t now = sl_monotonic_ms();
  unstick_writes(api);
  if (api->stopping) {
    if (api->conns > 0) h2o_context_request_shutdown(&api->ctx);
    if (api->conns == 0 && api->cql_closed && !api->live) {
      uv_timer_stop(t);
      finish_stop(api);
    } else if (now > api->stop_deadline_ms) {
      SL_WARN("api", "%d connection(s) still open %d ms after the stop: shutting their sockets down", api->conns,
              STOP_GRACE_MS);
      shutdown_conns(api);
      api->stop_deadline_ms = now + STOP_GRACE_MS;
    }
    return;
  }
  if (!api->cql_ready && !api->connecting && now >= api->next_connect_ms) {
    /* a failed connect leaves the client usable: try again */
    api->connecting = true;
    sl_cql_client_connect(api->cql, on_cql_connected, api);
  }
  api_live_tick(api);
}

static void on_listener_closed(uv_handle_t *h) { (void)h; }

int sl_api_start(uv_loop_t *loop, const sl_api_config_t *cfg, sl_api_t **out) {
  char host[256];
  int port;
  if (sl_addr_split(cfg->listen, host, sizeof host, &port) != 0) {
    SL_ERROR("api", "bad listen address '%s' (HOST:PORT)", cfg->listen);
    return -EINVAL;
  }
  sl_api_t *api = calloc(1, sizeof *api);
  if (!api) return -ENOMEM;
  api->loop = loop;
  api->cfg = *cfg;
  int rc = api_auth_load(api);
  if (rc == 0) rc = api_https_create(cfg, &api->ssl_ctx);
  if (rc != 0) { /* nothing on the loop yet */
    api_auth_free(api);
    free(api);
    return rc;
  }
  h2o_config_init(&api->conf);
  api->conf.server_name = h2o_iovec_init(H2O_STRLIT("sluice"));
  h2o_hostconf_t *hostconf = h2o_config_register_host(&api->conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  const char *api_paths[] = {"/api", "/metrics", "/health", "/ready", "/openapi.json"};
  for (size_t i = 0; i < sizeof api_paths / sizeof api_paths[0]; i++) {
    h2o_pathconf_t *pc = h2o_config_register_path(hostconf, api_paths[i], 0);
    handler_t *h = (handler_t *)h2o_create_handler(pc, sizeof *h);
    h->super.on_req = on_req;
    h->api = api;
  }
  h2o_pathconf_t *root = h2o_config_register_path(hostconf, "/", 0);
  if (cfg->web_dir[0]) {
    static const char *index_files[] = {"index.html", NULL};
    h2o_file_register(root, cfg->web_dir, index_files, NULL, 0);
  } else {
    handler_t *h = (handler_t *)h2o_create_handler(root, sizeof *h);
    h->super.on_req = on_req;
    h->api = api;
  }
  h2o_context_init(&api->ctx, loop, &api->conf);
  api->ctx_inited = true;
  api->accept_ctx.ctx = &api->ctx;
  api->accept_ctx.hosts = api->conf.hosts;
  api->accept_ctx.ssl_ctx = api->ssl_ctx;

  struct sockaddr_storage sa;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 && uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0) {
    SL_ERROR("api", "bad listen host '%s' (an IP address)", host);
    rc = -EINVAL;
    goto fail_ctx;
  }
  uv_tcp_init(loop, &api->listener);
  api->listener.data = api;
  if ((rc = uv_tcp_bind(&api->listener, (struct sockaddr *)&sa, 0)) != 0 ||
      (rc = uv_listen((uv_stream_t *)&api->listener, 1024, on_accept)) != 0) {
    SL_ERROR("api", "cannot listen on %s: %s", cfg->listen, uv_strerror(rc));
    uv_close((uv_handle_t *)&api->listener, NULL);
    goto fail_ctx;
  }
  api->listening = true;
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_tcp_getsockname(&api->listener, (struct sockaddr *)&bound, &blen);
  api->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
  if ((rc = cql_open(api)) != 0) {
    SL_ERROR("api", "cannot create the CQL client: %d", rc);
    uv_close((uv_handle_t *)&api->listener, NULL);
    goto fail_ctx;
  }
  uv_timer_init(loop, &api->timer);
  api->timer.data = api;
  uv_timer_start(&api->timer, on_tick, TICK_MS, TICK_MS);
  if (cfg->ready_file[0]) {
    rc = sl_fs_write_ready_file(cfg->ready_file, host, api->port);
    if (rc != 0) SL_WARN("api", "cannot write the ready file %s: %s", cfg->ready_file, strerror(-rc));
  }
  SL_INFO("api", "listening on %s://%s:%d (store %s, dashboard %s, %zu bearer token(s)%s)",
          api->ssl_ctx ? "https" : "http", host, api->port, cfg->cql, cfg->web_dir[0] ? cfg->web_dir : "none",
          api->ntokens, api->ntokens ? "" : ": no authentication");
  *out = api;
  return 0;

fail_ctx:
  /* the context's timers close asynchronously; the api is freed from a closed handle like in stop */
  h2o_context_dispose(&api->ctx);
  h2o_config_dispose(&api->conf);
  api->ctx_inited = false;
  SSL_CTX_free(api->ssl_ctx);
  api->ssl_ctx = NULL;
  api_auth_free(api);
  uv_timer_init(loop, &api->timer);
  api->timer.data = api;
  uv_close((uv_handle_t *)&api->timer, on_timer_closed);
  return rc < 0 ? rc : -EINVAL;
}

void sl_api_stop(sl_api_t *api) {
  if (api->stopping) return;
  api->stopping = true;
  api->cql_ready = false;
  api->stop_deadline_ms = sl_monotonic_ms() + STOP_GRACE_MS;
  if (api->listening) uv_close((uv_handle_t *)&api->listener, on_listener_closed);
  api->listening = false;
  api_live_stop_all(api);
  h2o_context_request_shutdown(&api->ctx);
  sl_cql_client_close(api->cql, on_cql_closed, api);
}

int sl_api_port(const sl_api_t *api) { return api->port; }

void sl_api_on_stopped(sl_api_t *api, void (*stopped)(void *arg), void *arg) {
  api->stopped = stopped;
  api->stopped_arg = arg;
}
