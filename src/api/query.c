/* CQL on behalf of requests: a prepared-statement cache (queries wait for their PREPARE), typed binding, the
 * schema cache read from system_schema.columns, and typed JSON for cells (numbers as numbers, timestamps in
 * ISO-8601, uuids as strings). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/clock.h"
#include "core/log.h"

enum { MAX_PREPS = 512 };

typedef struct pending {
  struct pending *next;
  op_t *op;
  api_bind_t *binds;
  size_t nbinds;
  int32_t page_size;
  uint8_t *paging;
  size_t paging_len;
  api_query_cb cb;
} pending_t;

struct prep {
  char *query;
  sl_cql_prepared_t *p;
  bool preparing;
  pending_t *waiting;
  sl_api_t *api;
};

typedef struct {
  op_t *op;
  api_query_cb cb;
} qctx_t;

static void deliver(op_t *op, api_query_cb cb, const sl_cql_result_t *res, const sl_cql_error_t *err) {
  op->queries--;
  if (!op->req && !op->internal) op->done = true; /* the client went away */
  if (!op->done) {
    op->in_cb++;
    cb(op, res, err);
    op->in_cb--;
  }
  op_maybe_free(op);
}

static void on_result(const sl_cql_result_t *res, const sl_cql_error_t *err, void *arg) {
  qctx_t q = *(qctx_t *)arg;
  free(arg);
  if (err) q.op->api->cql_errors++;
  deliver(q.op, q.cb, res, err);
}

static void fail_now(op_t *op, api_query_cb cb, int code, const char *msg) {
  sl_cql_error_t e = {.code = code};
  snprintf(e.message, sizeof e.message, "%s", msg);
  deliver(op, cb, NULL, &e);
}

static void execute(struct prep *pr, op_t *op, const api_bind_t *binds, size_t nbinds, int32_t page_size,
                    const void *paging, size_t paging_len, api_query_cb cb) {
  sl_api_t *api = op->api;
  if (!api->cql || api->stopping) {
    fail_now(op, cb, SL_CQL_CLIENT_CLOSING, "the server is shutting down");
    return;
  }
  sl_cql_statement_t *st = sl_cql_statement_new_prepared(pr->p);
  if (nbinds != sl_cql_prepared_param_count(pr->p)) {
    sl_cql_statement_free(st);
    fail_now(op, cb, SL_CQL_CLIENT_BAD_VALUE, "internal: wrong number of bound values");
    return;
  }
  for (size_t i = 0; i < nbinds; i++) {
    const api_bind_t *b = &binds[i];
    switch (b->kind) {
      case B_TEXT: sl_cql_statement_bind_text(st, i, b->s, b->len); break;
      case B_BIGINT: sl_cql_statement_bind_int64(st, i, b->i); break;
      case B_INT: sl_cql_statement_bind_int32(st, i, (int32_t)b->i); break;
      case B_TS: sl_cql_statement_bind_timestamp(st, i, b->i); break;
      case B_DATE: {
        uint8_t d[4];
        sl_store_be32(d, (uint32_t)(b->i + (INT64_C(1) << 31)));
        sl_cql_statement_bind_raw(st, i, d, 4);
        break;
      }
      case B_STR: {
        sl_buf_t v;
        sl_buf_init(&v);
        char why[200];
        if (api_encode_from_string(sl_cql_prepared_param_type(pr->p, i), b->s, b->len, &v, why, sizeof why) != 0) {
          sl_buf_free(&v);
          sl_cql_statement_free(st);
          char msg[300];
          snprintf(msg, sizeof msg, "%s: %s", sl_cql_prepared_param_name(pr->p, i), why);
          fail_now(op, cb, SL_CQL_CLIENT_BAD_VALUE, msg);
          return;
        }
        sl_cql_statement_bind_raw(st, i, v.data ? v.data : (const uint8_t *)"", v.len);
        sl_buf_free(&v);
        break;
      }
    }
  }
  if (page_size > 0) sl_cql_statement_set_page_size(st, page_size);
  if (paging_len) sl_cql_statement_set_paging_state(st, paging, paging_len);
  sl_cql_statement_set_idempotent(st, true);
  qctx_t *q = malloc(sizeof *q);
  q->op = op;
  q->cb = cb;
  api->cql_queries++;
  sl_cql_execute(api->cql, st, on_result, q);
}

static void on_prepared(sl_cql_prepared_t *p, const sl_cql_error_t *err, void *arg) {
  struct prep *pr = arg;
  pending_t *w = pr->waiting;
  pr->waiting = NULL;
  pr->preparing = false;
  sl_api_t *api = pr->api;
  if (!err && p) {
    pr->p = p;
    sl_cql_prepared_keep(p);
  } else {
    /* drop the entry: the next request prepares again */
    for (size_t i = 0; i < api->npreps; i++)
      if (api->preps[i] == pr) {
        api->preps[i] = api->preps[--api->npreps];
        break;
      }
  }
  while (w) {
    pending_t *next = w->next;
    if (pr->p)
      execute(pr, w->op, w->binds, w->nbinds, w->page_size, w->paging, w->paging_len, w->cb);
    else
      deliver(w->op, w->cb, NULL, err);
    free(w->binds);
    free(w->paging);
    free(w);
    w = next;
  }
  if (!pr->p) {
    free(pr->query);
    free(pr);
  }
}

void api_query(op_t *op, const char *cql, const api_bind_t *binds, size_t nbinds, int32_t page_size,
               const void *paging, size_t paging_len, api_query_cb cb) {
  sl_api_t *api = op->api;
  op->queries++;
  if (!api->cql || api->stopping) {
    fail_now(op, cb, SL_CQL_CLIENT_CLOSING, "the server is shutting down");
    return;
  }
  struct prep *pr = NULL;
  for (size_t i = 0; i < api->npreps; i++)
    if (!strcmp(api->preps[i]->query, cql)) {
      pr = api->preps[i];
      break;
    }
  if (pr && pr->p) {
    execute(pr, op, binds, nbinds, page_size, paging, paging_len, cb);
    return;
  }
  if (!pr) {
    if (api->npreps >= MAX_PREPS) {
      /* evict a prepared entry nobody waits on */
      for (size_t i = 0; i < api->npreps; i++)
        if (api->preps[i]->p) {
          sl_cql_prepared_release(api->preps[i]->p);
          free(api->preps[i]->query);
          free(api->preps[i]);
          api->preps[i] = api->preps[--api->npreps];
          break;
        }
    }
    if (api->npreps == api->cap_preps) {
      size_t cap = api->cap_preps ? api->cap_preps * 2 : 32;
      struct prep **np = realloc(api->preps, cap * sizeof *np);
      if (!np) {
        fail_now(op, cb, SL_CQL_CLIENT_OVERLOADED, "out of memory");
        return;
      }
      api->preps = np;
      api->cap_preps = cap;
    }
    pr = calloc(1, sizeof *pr);
    pr->query = strdup(cql);
    pr->api = api;
    api->preps[api->npreps++] = pr;
  }
  pending_t *w = calloc(1, sizeof *w);
  w->op = op;
  w->cb = cb;
  w->nbinds = nbinds;
  if (nbinds) {
    w->binds = malloc(nbinds * sizeof *binds);
    memcpy(w->binds, binds, nbinds * sizeof *binds);
  }
  w->page_size = page_size;
  if (paging_len) {
    w->paging = malloc(paging_len);
    memcpy(w->paging, paging, paging_len);
    w->paging_len = paging_len;
  }
  w->next = pr->waiting;
  pr->waiting = w;
  if (!pr->preparing) {
    pr->preparing = true;
    sl_cql_prepare(api->cql, cql, on_prepared, pr);
  }
}

void api_preps_free(sl_api_t *api) {
  for (size_t i = 0; i < api->npreps; i++) {
    if (api->preps[i]->p) sl_cql_prepared_release(api->preps[i]->p);
    free(api->preps[i]->query);
    free(api->preps[i]);
  }
  free(api->preps);
  api->preps = NULL;
  api->npreps = api->cap_preps = 0;
}

void bind_text(api_bind_t *b, const char *s) {
  size_t n = strlen(s);
  if (n >= sizeof b->s) n = sizeof b->s - 1;
  b->kind = B_TEXT;
  memcpy(b->s, s, n);
  b->s[n] = 0;
  b->len = n;
}
void bind_i64(api_bind_t *b, int kind, int64_t v) {
  b->kind = kind;
  b->i = v;
  b->len = 0;
}

/* ------------------------------------------------------------------------------------------------- values */

int api_encode_from_string(const sl_cql_type_t *t, const char *s, size_t len, sl_buf_t *out, char *err,
                           size_t errlen) {
  if (!t) return snprintf(err, errlen, "unknown type"), -EINVAL;
  char tmp[API_MAX_KEY];
  if (len >= sizeof tmp) return snprintf(err, errlen, "value too long"), -EINVAL;
  memcpy(tmp, s, len);
  tmp[len] = 0;
  char *end;
  switch (t->id) {
    case CQL_TYPE_VARCHAR:
    case CQL_TYPE_ASCII: sl_buf_put(out, s, len); return 0;
    case CQL_TYPE_INT:
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_SMALLINT:
    case CQL_TYPE_TINYINT:
    case CQL_TYPE_COUNTER: {
      errno = 0;
      long long v = strtoll(tmp, &end, 10);
      if (!len || *end || errno) return snprintf(err, errlen, "'%.60s' is not an integer", tmp), -EINVAL;
      if (t->id == CQL_TYPE_INT && (v < INT32_MIN || v > INT32_MAX)) goto range;
      if (t->id == CQL_TYPE_SMALLINT && (v < INT16_MIN || v > INT16_MAX)) goto range;
      if (t->id == CQL_TYPE_TINYINT && (v < INT8_MIN || v > INT8_MAX)) goto range;
      if (t->id == CQL_TYPE_INT) sl_buf_put_be32(out, (uint32_t)(int32_t)v);
      else if (t->id == CQL_TYPE_SMALLINT) sl_buf_put_be16(out, (uint16_t)(int16_t)v);
      else if (t->id == CQL_TYPE_TINYINT) sl_buf_put_u8(out, (uint8_t)(int8_t)v);
      else sl_buf_put_be64(out, (uint64_t)v);
      return 0;
    range:
      return snprintf(err, errlen, "'%.60s' is out of range", tmp), -ERANGE;
    }
    case CQL_TYPE_DOUBLE:
    case CQL_TYPE_FLOAT: {
      double v = strtod(tmp, &end);
      if (!len || *end) return snprintf(err, errlen, "'%.60s' is not a number", tmp), -EINVAL;
      uint64_t u;
      if (t->id == CQL_TYPE_DOUBLE) {
        memcpy(&u, &v, 8);
        sl_buf_put_be64(out, u);
      } else {
        float f = (float)v;
        uint32_t w;
        memcpy(&w, &f, 4);
        sl_buf_put_be32(out, w);
      }
      return 0;
    }
    case CQL_TYPE_BOOLEAN:
      if (!strcmp(tmp, "true")) sl_buf_put_u8(out, 1);
      else if (!strcmp(tmp, "false")) sl_buf_put_u8(out, 0);
      else return snprintf(err, errlen, "'%.60s' is not true or false", tmp), -EINVAL;
      return 0;
    case CQL_TYPE_TIMESTAMP: {
      int64_t ms;
      if (api_parse_time(tmp, &ms) != 0) return snprintf(err, errlen, "'%.60s' is not a timestamp", tmp), -EINVAL;
      sl_buf_put_be64(out, (uint64_t)ms);
      return 0;
    }
    case CQL_TYPE_DATE: {
      uint32_t d;
      if (sl_cql_parse_date(tmp, len, &d) != 0)
        return snprintf(err, errlen, "'%.60s' is not a date (YYYY-MM-DD)", tmp), -EINVAL;
      sl_buf_put_be32(out, d);
      return 0;
    }
    case CQL_TYPE_UUID:
    case CQL_TYPE_TIMEUUID: {
      uint8_t u[16];
      if (sl_cql_parse_uuid(tmp, len, u) != 0) return snprintf(err, errlen, "'%.60s' is not a uuid", tmp), -EINVAL;
      sl_buf_put(out, u, 16);
      return 0;
    }
    default: {
      sl_buf_t name;
      sl_buf_init(&name);
      sl_cql_type_name(t, &name);
      snprintf(err, errlen, "keys of type %.*s cannot be given in a URL", (int)name.len, (const char *)name.data);
      sl_buf_free(&name);
      return -EINVAL;
    }
  }
}

bool api_type_numeric(const sl_cql_type_t *t) {
  switch (t->id) {
    case CQL_TYPE_INT:
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_SMALLINT:
    case CQL_TYPE_TINYINT:
    case CQL_TYPE_COUNTER:
    case CQL_TYPE_DOUBLE:
    case CQL_TYPE_FLOAT: return true;
    default: return false;
  }
}

bool api_cell_number(const sl_cql_type_t *t, sl_slice_t c, double *out) {
  if (!c.ptr) return false;
  switch (t->id) {
    case CQL_TYPE_INT: if (c.len != 4) return false; *out = (int32_t)sl_load_be32(c.ptr); return true;
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER: if (c.len != 8) return false; *out = (double)(int64_t)sl_load_be64(c.ptr); return true;
    case CQL_TYPE_SMALLINT: if (c.len != 2) return false; *out = (int16_t)sl_load_be16(c.ptr); return true;
    case CQL_TYPE_TINYINT: if (c.len != 1) return false; *out = (int8_t)c.ptr[0]; return true;
    case CQL_TYPE_DOUBLE: {
      if (c.len != 8) return false;
      uint64_t u = sl_load_be64(c.ptr);
      double d;
      memcpy(&d, &u, 8);
      if (!isfinite(d)) return false;
      *out = d;
      return true;
    }
    case CQL_TYPE_FLOAT: {
      if (c.len != 4) return false;
      uint32_t u = sl_load_be32(c.ptr);
      float f;
      memcpy(&f, &u, 4);
      if (!isfinite(f)) return false;
      *out = f;
      return true;
    }
    default: return false;
  }
}

json_t *api_cell_json(const sl_cql_type_t *t, sl_slice_t c) {
  if (!c.ptr) return json_null();
  if (c.len == 0 && t->id != CQL_TYPE_VARCHAR && t->id != CQL_TYPE_ASCII && t->id != CQL_TYPE_BLOB) return json_null();
  char buf[64];
  switch (t->id) {
    case CQL_TYPE_BOOLEAN: return json_boolean(c.ptr[0] != 0);
    case CQL_TYPE_INT:
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER:
    case CQL_TYPE_SMALLINT:
    case CQL_TYPE_TINYINT: {
      double d;
      if (!api_cell_number(t, c, &d)) return json_null();
      if (t->id == CQL_TYPE_BIGINT || t->id == CQL_TYPE_COUNTER) return json_integer((json_int_t)(int64_t)sl_load_be64(c.ptr));
      return json_integer((json_int_t)d);
    }
    case CQL_TYPE_DOUBLE:
    case CQL_TYPE_FLOAT: {
      double d;
      if (!api_cell_number(t, c, &d)) return json_null(); /* NaN and infinities have no JSON form */
      return json_real(d);
    }
    case CQL_TYPE_VARINT: {
      int64_t v;
      if (sl_cql_varint_decode(c.ptr, c.len, &v) == 0) return json_integer((json_int_t)v);
      break;
    }
    case CQL_TYPE_TIMESTAMP:
      if (c.len != 8) return json_null();
      api_format_time((int64_t)sl_load_be64(c.ptr), buf);
      return json_string(buf);
    case CQL_TYPE_DATE:
      if (c.len != 4) return json_null();
      api_format_day((int64_t)sl_load_be32(c.ptr) - (INT64_C(1) << 31), buf);
      return json_string(buf);
    case CQL_TYPE_UUID:
    case CQL_TYPE_TIMEUUID:
      if (c.len != 16) return json_null();
      sl_cql_format_uuid(c.ptr, buf);
      return json_string(buf);
    case CQL_TYPE_VARCHAR:
    case CQL_TYPE_ASCII: {
      json_t *s = json_stringn((const char *)c.ptr, c.len);
      return s ? s : json_null();
    }
    default: break;
  }
  sl_buf_t b;
  sl_buf_init(&b);
  sl_cql_format_cell(t, c, &b);
  json_t *s = json_stringn(b.data ? (const char *)b.data : "", b.len);
  sl_buf_free(&b);
  return s ? s : json_null();
}

json_t *api_row_json(const sl_cql_result_t *res, size_t row, const bool *keep) {
  json_t *o = json_object();
  size_t n = sl_cql_result_column_count(res);
  for (size_t c = 0; c < n; c++) {
    if (keep && !keep[c]) continue;
    json_object_set_new(o, sl_cql_result_column_name(res, c),
                        api_cell_json(sl_cql_result_column_type(res, c), sl_cql_result_cell(res, row, c)));
  }
  return o;
}

/* ------------------------------------------------------------------------------------- direct JSON writing
 * The hot endpoints (device readings) write their answers straight into a buffer instead of building jansson
 * trees: the bytes are exactly those of json_dumps(api_row_json(...), JSON_COMPACT). Anything unusual (strings
 * needing escapes or UTF-8 checks, types without a fast form) goes through jansson itself, so it cannot differ. */

__extension__ typedef unsigned __int128 u128;

/* api_fmt_real: the bytes jansson's json_dumps writes for json_real(v) (precision 17: "%.17g", a ".0" appended when
 * neither '.' nor 'e' is present, '+' and leading zeros dropped from the exponent), without printf on the common
 * path: 1e-6 <= |v| < 1e16 is converted exactly in 128-bit integers (round half to even, as glibc does). */
static size_t fmt_real_slow(double v, char *out) {
  int n = snprintf(out, 40, "%.17g", v);
  if (n < 0 || n >= 40) return 0;
  size_t len = (size_t)n;
  if (!strchr(out, '.') && !strchr(out, 'e')) {
    memcpy(out + len, ".0", 3);
    len += 2;
  }
  char *start = strchr(out, 'e');
  if (start) {
    start++;
    char *end = start + 1;
    if (*start == '-') start++;
    while (*end == '0') end++;
    if (end != start) {
      memmove(start, end, len - (size_t)(end - out) + 1);
      len -= (size_t)(end - start);
    }
  }
  return len;
}

static const char digits2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* the eight decimal digits of v < 10^8 */
static inline void put8(char *p, uint32_t v) {
  uint32_t a = v / 10000, b = v % 10000;
  uint32_t a1 = a / 100, a2 = a % 100, b1 = b / 100, b2 = b % 100;
  memcpy(p, digits2 + 2 * a1, 2);
  memcpy(p + 2, digits2 + 2 * a2, 2);
  memcpy(p + 4, digits2 + 2 * b1, 2);
  memcpy(p + 6, digits2 + 2 * b2, 2);
}

size_t api_fmt_real(double v, char out[40]) {
  static const uint64_t p10[] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
                                 100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
                                 10000000000000ull, 100000000000000ull, 1000000000000000ull,
                                 10000000000000000ull, 100000000000000000ull, 1000000000000000000ull,
                                 10000000000000000000ull};
  uint64_t bits;
  memcpy(&bits, &v, 8);
  bool neg = bits >> 63;
  int bexp = (int)((bits >> 52) & 0x7ff);
  uint64_t m = bits & ((UINT64_C(1) << 52) - 1);
  double a = neg ? -v : v;
  if (bexp == 0 || bexp == 0x7ff || !(a >= 1e-6 && a < 1e16)) return fmt_real_slow(v, out);
  m |= UINT64_C(1) << 52;
  int e = bexp - 1075;
  int x = (int)floor((bexp - 1023) * 0.30102999566398119521); /* decimal exponent, maybe one low: corrected below */
  u128 q = 0;
  for (int tries = 0; tries < 3; tries++) {
    int k = 16 - x; /* q = a * 10^k has 17 digits */
    if (k < 0 || k > 22) return fmt_real_slow(v, out);
    u128 pk = k > 19 ? (u128)p10[19] * p10[k - 19] : p10[k];
    u128 num, rem = 0, half = 0;
    int s = 0;
    if (e >= 0) {
      if (e > 10) return fmt_real_slow(v, out);
      num = ((u128)m << e) * pk;
      q = num;
    } else {
      s = -e;
      if (s > 126) return fmt_real_slow(v, out);
      num = (u128)m * pk;
      q = num >> s;
      rem = num & ((((u128)1) << s) - 1);
      half = ((u128)1) << (s - 1);
    }
    if (q >= p10[17]) { x++; continue; }
    if (q < p10[16]) { x--; continue; }
    if (s && (rem > half || (rem == half && (q & 1)))) q++;
    if (q == p10[17]) {
      q = p10[16];
      x++;
    }
    goto digits;
  }
  return fmt_real_slow(v, out);
digits:;
  char d[17];
  uint64_t qq = (uint64_t)q; /* 17 digits: one, then two independent runs of eight (two digits per step) */
  uint64_t hi = qq / 100000000;
  put8(d + 9, (uint32_t)(qq - hi * 100000000));
  d[0] = (char)('0' + hi / 100000000);
  put8(d + 1, (uint32_t)(hi % 100000000));
  int nd = 17;
  while (nd > 1 && d[nd - 1] == '0') nd--;
  char *p = out;
  if (neg) *p++ = '-';
  if (x < -4 || x >= 17) {
    *p++ = d[0];
    if (nd > 1) {
      *p++ = '.';
      memcpy(p, d + 1, (size_t)nd - 1);
      p += nd - 1;
    }
    *p++ = 'e';
    int ax = x;
    if (ax < 0) {
      *p++ = '-';
      ax = -ax;
    }
    if (ax >= 100) *p++ = (char)('0' + ax / 100);
    if (ax >= 10) *p++ = (char)('0' + ax / 10 % 10);
    *p++ = (char)('0' + ax % 10);
  } else if (x >= 0) {
    memcpy(p, d, (size_t)x + 1);
    p += x + 1;
    *p++ = '.';
    if (nd > x + 1) {
      memcpy(p, d + x + 1, (size_t)(nd - x - 1));
      p += nd - x - 1;
    } else {
      *p++ = '0'; /* jansson's ".0" */
    }
  } else {
    *p++ = '0';
    *p++ = '.';
    for (int i = 0; i < -x - 1; i++) *p++ = '0';
    memcpy(p, d, (size_t)nd);
    p += nd;
  }
  *p = 0;
  return (size_t)(p - out);
}

static bool dump_via_jansson(sl_buf_t *b, json_t *j) {
  if (!j) return false;
  char *t = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
  json_decref(j);
  if (!t) return false;
  sl_buf_put(b, t, strlen(t));
  free(t);
  return true;
}

bool api_json_str(sl_buf_t *b, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  /* controls, DEL and non-ASCII, '"', '\\': left to jansson (a false alarm would only cost time) */
  uint64_t bad = 0;
  size_t i = 0;
  const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  for (; i + 8 <= n; i += 8) { /* eight bytes at a time: any byte >= 0x80, < 0x20, == 0x7f, '"' or '\\' */
    uint64_t w;
    memcpy(&w, u + i, 8);
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\'), del = w ^ (ones * 0x7f);
    bad |= (w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs) | ((del - ones) & ~del)) & high;
  }
  for (; i < n; i++)
    bad |= (uint64_t)((unsigned)u[i] - 0x20u >= 0x5fu) | (uint64_t)(u[i] == '"') | (uint64_t)(u[i] == '\\');
  if (bad) return dump_via_jansson(b, json_stringn(s, n));
  uint8_t *p = sl_buf_extend(b, n + 2);
  p[0] = '"';
  if (n) memcpy(p + 1, s, n);
  p[n + 1] = '"';
  return true;
}

void api_json_i64(sl_buf_t *b, int64_t v) {
  char tmp[24];
  int i = 24;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) tmp[--i] = '-';
  sl_buf_put(b, tmp + i, (size_t)(24 - i));
}

void api_json_real(sl_buf_t *b, double v) {
  char tmp[40];
  size_t n = api_fmt_real(v, tmp);
  if (n) sl_buf_put(b, tmp, n);
  else dump_via_jansson(b, json_real(v)); /* not reached: snprintf of a double fits */
}

/* A string of digits, '-', ':', '.', 'T', 'Z' (formatted times and dates): nothing to escape. */
static bool put_plain_str(sl_buf_t *b, const char *s, size_t n) {
  uint8_t *p = sl_buf_extend(b, n + 2);
  p[0] = '"';
  memcpy(p + 1, s, n);
  p[n + 1] = '"';
  return true;
}

/* One cell as api_cell_json would dump it; false when api_cell_json would give NULL (the member is left out). */
static bool cell_write(sl_buf_t *b, const sl_cql_type_t *t, sl_slice_t c) {
  if (!c.ptr || (c.len == 0 && t->id != CQL_TYPE_VARCHAR && t->id != CQL_TYPE_ASCII && t->id != CQL_TYPE_BLOB)) {
    sl_buf_put(b, "null", 4);
    return true;
  }
  char buf[64];
  double d;
  switch (t->id) {
    case CQL_TYPE_BOOLEAN:
      if (c.ptr[0]) sl_buf_put(b, "true", 4);
      else sl_buf_put(b, "false", 5);
      return true;
    case CQL_TYPE_INT:
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER:
    case CQL_TYPE_SMALLINT:
    case CQL_TYPE_TINYINT:
      if (!api_cell_number(t, c, &d)) sl_buf_put(b, "null", 4);
      else if (t->id == CQL_TYPE_BIGINT || t->id == CQL_TYPE_COUNTER) api_json_i64(b, (int64_t)sl_load_be64(c.ptr));
      else api_json_i64(b, (int64_t)d);
      return true;
    case CQL_TYPE_DOUBLE:
    case CQL_TYPE_FLOAT:
      if (!api_cell_number(t, c, &d)) sl_buf_put(b, "null", 4);
      else api_json_real(b, d);
      return true;
    case CQL_TYPE_TIMESTAMP:
      if (c.len != 8) {
        sl_buf_put(b, "null", 4);
        return true;
      }
      return put_plain_str(b, buf, api_format_time((int64_t)sl_load_be64(c.ptr), buf));
    case CQL_TYPE_DATE:
      if (c.len != 4) {
        sl_buf_put(b, "null", 4);
        return true;
      }
      api_format_day((int64_t)sl_load_be32(c.ptr) - (INT64_C(1) << 31), buf);
      return put_plain_str(b, buf, strlen(buf));
    case CQL_TYPE_VARCHAR:
    case CQL_TYPE_ASCII:
      if (!api_json_str(b, (const char *)c.ptr, c.len)) sl_buf_put(b, "null", 4);
      return true;
    default: return dump_via_jansson(b, api_cell_json(t, c));
  }
}

bool api_result_names_unique(const sl_cql_result_t *res) {
  size_t n = sl_cql_result_column_count(res);
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      if (!strcmp(sl_cql_result_column_name(res, i), sl_cql_result_column_name(res, j))) return false;
  return true;
}

void api_rowfmt_init(api_rowfmt_t *f, const sl_cql_result_t *res, const bool *keep) {
  f->res = res;
  f->n = sl_cql_result_column_count(res);
  f->fallback = f->n > API_MAX_COLS || !api_result_names_unique(res);
  f->keep = keep;
  sl_buf_init(&f->keys);
  if (f->fallback) return;
  for (size_t c = 0; c < f->n; c++) {
    f->koff[c] = (uint32_t)f->keys.len;
    f->type[c] = sl_cql_result_column_type(res, c);
    f->use[c] = false;
    f->memo[c].outlen = 0;
    f->memo[c].misses = 0;
    if (keep && !keep[c]) continue;
    const char *name = sl_cql_result_column_name(res, c);
    sl_buf_put_u8(&f->keys, ',');
    if (!api_json_str(&f->keys, name, strlen(name))) { /* a name jansson refuses: the member is left out */
      f->keys.len = f->koff[c];
      continue;
    }
    sl_buf_put_u8(&f->keys, ':');
    f->use[c] = true;
  }
  f->koff[f->n] = (uint32_t)f->keys.len;
}

void api_rowfmt_free(api_rowfmt_t *f) { sl_buf_free(&f->keys); }

static inline bool memo_same(const uint8_t *a, const uint8_t *b, size_t n) {
  if (n == 8) { /* doubles, bigints, timestamps */
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    return x == y;
  }
  if (n == 4) {
    uint32_t x, y;
    memcpy(&x, a, 4);
    memcpy(&y, b, 4);
    return x == y;
  }
  return !memcmp(a, b, n);
}

void api_rowfmt_write(sl_buf_t *b, api_rowfmt_t *f, size_t row, int mark_col, size_t span[2]) {
  if (f->fallback) { /* jansson keeps the last value of a repeated name in the first place: let it */
    dump_via_jansson(b, api_row_json(f->res, row, f->keep));
    return;
  }
  sl_buf_put_u8(b, '{');
  bool first = true;
  for (size_t c = 0; c < f->n; c++) {
    if (!f->use[c]) continue;
    size_t mark = b->len;
    size_t skip = first ? 1 : 0; /* the key's leading comma */
    sl_buf_put(b, f->keys.data + f->koff[c] + skip, f->koff[c + 1] - f->koff[c] - skip);
    size_t vstart = b->len;
    sl_slice_t cell = sl_cql_result_cell(f->res, row, c);
    api_cellmemo_t *m = &f->memo[c];
    if (m->outlen && cell.ptr && cell.len == m->rawlen && memo_same(m->raw, cell.ptr, cell.len)) {
      sl_buf_put(b, m->out, m->outlen); /* cell_write is a function of the type and the bytes */
      m->misses = 0;
    } else {
      if (!cell_write(b, f->type[c], cell)) {
        b->len = mark;
        continue;
      }
      size_t outlen = b->len - vstart;
      if (m->misses < 4 && cell.ptr && cell.len <= API_MEMO_RAW && outlen > 0 && outlen <= API_MEMO_OUT) {
        /* a column that keeps changing (a timestamp, a measurement) soon stops being remembered */
        if (m->outlen) m->misses++;
        m->rawlen = (uint8_t)cell.len;
        if (cell.len) memcpy(m->raw, cell.ptr, cell.len);
        memcpy(m->out, b->data + vstart, outlen);
        m->outlen = (uint8_t)outlen;
      } else {
        m->outlen = 0;
      }
    }
    if ((int)c == mark_col && span) {
      span[0] = vstart;
      span[1] = b->len;
    }
    first = false;
  }
  sl_buf_put_u8(b, '}');
}

/* ------------------------------------------------------------------------------------------------- schema */

struct schema_wait {
  struct schema_wait *next;
  op_t *op;
  api_schema_cb cb;
};

const api_table_t *api_table_find(const sl_api_t *api, const char *ks, const char *name) {
  for (int i = 0; i < api->ntables; i++)
    if (!strcmp(api->tables[i].ks, ks) && !strcmp(api->tables[i].name, name)) return &api->tables[i];
  return NULL;
}

int api_col_index(const api_table_t *t, const char *name) {
  for (int i = 0; i < t->ncols; i++)
    if (!strcmp(t->cols[i].name, name)) return i;
  return -1;
}

static void tables_clear(api_table_t *tables, int n) {
  for (int i = 0; i < n; i++)
    for (int c = 0; c < tables[i].ncols; c++) sl_cql_type_free(tables[i].cols[c].ctype);
  free(tables);
}

void api_schema_free(sl_api_t *api) {
  tables_clear(api->tables, api->ntables);
  api->tables = NULL;
  api->ntables = 0;
  while (api->schema_waiters) {
    struct schema_wait *w = api->schema_waiters;
    api->schema_waiters = w->next;
    free(w);
  }
}

static bool system_keyspace(const char *ks) {
  return !strncmp(ks, "system", 6);
}

static void text_cell(const sl_cql_result_t *r, size_t row, int col, char *out, size_t cap) {
  out[0] = 0;
  if (col < 0) return;
  sl_slice_t s = sl_cql_result_cell(r, row, (size_t)col);
  if (!s.ptr) return;
  size_t n = s.len < cap - 1 ? s.len : cap - 1;
  memcpy(out, s.ptr, n);
  out[n] = 0;
}

static int result_col(const sl_cql_result_t *r, const char *name) {
  for (size_t i = 0; i < sl_cql_result_column_count(r); i++)
    if (!strcmp(sl_cql_result_column_name(r, i), name)) return (int)i;
  return -1;
}

static void finish_table(api_table_t *t) {
  /* key order */
  t->npk = t->nck = 0;
  for (int pos = 0; pos < API_MAX_COLS; pos++)
    for (int c = 0; c < t->ncols; c++) {
      if (t->cols[c].position != pos) continue;
      if (t->cols[c].kind == 0 && t->npk < 8) t->pk[t->npk++] = c;
      if (t->cols[c].kind == 1 && t->nck < 8) t->ck[t->nck++] = c;
    }
  t->device_table = t->npk == 2 && t->nck >= 1 && !strcmp(t->cols[t->pk[0]].name, "device_id") &&
                    !strcmp(t->cols[t->pk[1]].name, "day") && t->cols[t->pk[0]].ctype->id == CQL_TYPE_VARCHAR &&
                    t->cols[t->pk[1]].ctype->id == CQL_TYPE_DATE && !strcmp(t->cols[t->ck[0]].name, "ts") &&
                    t->cols[t->ck[0]].ctype->id == CQL_TYPE_TIMESTAMP && t->nck == 1;
}

static int cmp_tables(const void *a, const void *b) {
  const api_table_t *x = a, *y = b;
  int c = strcmp(x->ks, y->ks);
  return c ? c : strcmp(x->name, y->name);
}

static void on_schema(op_t *op, const sl_cql_result_t *res, const sl_cql_error_t *err) {
  sl_api_t *api = op->api;
  api->tables_loading = false;
  if (!err) {
    api_table_t *tables = calloc(API_MAX_TABLES, sizeof *tables);
    int n = 0;
    int cks = result_col(res, "keyspace_name"), ctb = result_col(res, "table_name"),
        ccol = result_col(res, "column_name"), ckind = result_col(res, "kind"), cpos = result_col(res, "position"),
        cord = result_col(res, "clustering_order"), ctype = result_col(res, "type");
    for (size_t r = 0; r < sl_cql_result_row_count(res); r++) {
      char ks[64], tb[128], col[128], kind[32], ord[16], type[128];
      text_cell(res, r, cks, ks, sizeof ks);
      if (system_keyspace(ks)) continue;
      text_cell(res, r, ctb, tb, sizeof tb);
      text_cell(res, r, ccol, col, sizeof col);
      text_cell(res, r, ckind, kind, sizeof kind);
      text_cell(res, r, cord, ord, sizeof ord);
      text_cell(res, r, ctype, type, sizeof type);
      api_table_t *t = NULL;
      for (int i = 0; i < n; i++)
        if (!strcmp(tables[i].ks, ks) && !strcmp(tables[i].name, tb)) t = &tables[i];
      if (!t) {
        if (n == API_MAX_TABLES) continue;
        t = &tables[n++];
        snprintf(t->ks, sizeof t->ks, "%s", ks);
        snprintf(t->name, sizeof t->name, "%s", tb);
      }
      if (t->ncols == API_MAX_COLS) continue;
      api_col_t *c = &t->cols[t->ncols];
      if (sl_cql_type_parse(type, strlen(type), &c->ctype) != 0) c->ctype = sl_cql_type_new(CQL_TYPE_BLOB);
      t->ncols++;
      snprintf(c->name, sizeof c->name, "%s", col);
      snprintf(c->type, sizeof c->type, "%s", type);
      c->kind = !strcmp(kind, "partition_key") ? 0 : !strcmp(kind, "clustering") ? 1 : 2;
      sl_slice_t p = cpos >= 0 ? sl_cql_result_cell(res, r, (size_t)cpos) : (sl_slice_t){0};
      c->position = p.ptr && p.len == 4 ? (int32_t)sl_load_be32(p.ptr) : -1;
      c->desc = !strcmp(ord, "desc");
    }
    for (int i = 0; i < n; i++) finish_table(&tables[i]);
    qsort(tables, (size_t)n, sizeof *tables, cmp_tables);
    tables_clear(api->tables, api->ntables);
    api->tables = tables;
    api->ntables = n;
    api->tables_at_ms = sl_monotonic_ms();
  }
  struct schema_wait *w = api->schema_waiters;
  api->schema_waiters = NULL;
  op->done = true;
  /* callers may run queries from their callback: each waiter's op is its own */
  while (w) {
    struct schema_wait *next = w->next;
    op_t *o = w->op;
    o->queries--;
    if (!o->req && !o->internal) o->done = true;
    if (!o->done) {
      o->in_cb++;
      w->cb(o, err);
      o->in_cb--;
    }
    op_maybe_free(o);
    free(w);
    w = next;
  }
}

void api_with_schema(op_t *op, api_schema_cb cb) {
  sl_api_t *api = op->api;
  int64_t now = sl_monotonic_ms();
  if (api->tables && now - api->tables_at_ms < (api->cfg.device_cache_ms > 0 ? api->cfg.device_cache_ms : 1) &&
      !api->tables_loading) {
    cb(op, NULL);
    return;
  }
  struct schema_wait *w = calloc(1, sizeof *w);
  w->op = op;
  w->cb = cb;
  w->next = api->schema_waiters;
  api->schema_waiters = w;
  op->queries++; /* the wait counts as a query: the op stays alive */
  if (api->tables_loading) return;
  api->tables_loading = true;
  op_t *loader = op_new(api, NULL, R_OTHER, sizeof(op_t), NULL);
  api_query(loader,
            "SELECT keyspace_name, table_name, column_name, clustering_order, kind, position, type "
            "FROM system_schema.columns",
            NULL, 0, 0, NULL, 0, on_schema);
}

json_t *api_table_json(const api_table_t *t) {
  json_t *cols = json_array(), *pk = json_array(), *ck = json_array();
  for (int i = 0; i < t->npk; i++) json_array_append_new(pk, json_string(t->cols[t->pk[i]].name));
  for (int i = 0; i < t->nck; i++) json_array_append_new(ck, json_string(t->cols[t->ck[i]].name));
  /* key columns first, in key order, then the others by name (as cqlsh DESCRIBE shows them) */
  for (int i = 0; i < t->npk; i++) {
    const api_col_t *c = &t->cols[t->pk[i]];
    json_array_append_new(cols, json_pack("{s:s,s:s,s:s}", "name", c->name, "type", c->type, "kind", "partition_key"));
  }
  for (int i = 0; i < t->nck; i++) {
    const api_col_t *c = &t->cols[t->ck[i]];
    json_array_append_new(cols, json_pack("{s:s,s:s,s:s,s:s}", "name", c->name, "type", c->type, "kind", "clustering",
                                          "order", c->desc ? "desc" : "asc"));
  }
  for (int i = 0; i < t->ncols; i++) {
    const api_col_t *c = &t->cols[i];
    if (c->kind != 2) continue;
    json_array_append_new(cols, json_pack("{s:s,s:s,s:s}", "name", c->name, "type", c->type, "kind", "regular"));
  }
  return json_pack("{s:s,s:s,s:o,s:o,s:o,s:b}", "keyspace", t->ks, "table", t->name, "partition_key", pk,
                   "clustering", ck, "columns", cols, "device_table", t->device_table);
}

int api_fields_parse(const api_table_t *t, const char *list, bool *keep, char *err, size_t errlen) {
  for (int i = 0; i < t->ncols; i++) keep[i] = false;
  const char *p = list;
  int n = 0;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char name[128];
    if (len == 0 || len >= sizeof name) {
      snprintf(err, errlen, "fields: empty or too long name");
      return -EINVAL;
    }
    memcpy(name, p, len);
    name[len] = 0;
    int c = api_col_index(t, name);
    if (c < 0) {
      snprintf(err, errlen, "fields: unknown column '%.100s' in %s.%s", name, t->ks, t->name);
      return -EINVAL;
    }
    keep[c] = true;
    n++;
    p = e ? e + 1 : p + len;
  }
  if (!n) {
    snprintf(err, errlen, "fields: no column named");
    return -EINVAL;
  }
  return 0;
}

void api_keep_for_result(const sl_cql_result_t *res, const api_table_t *t, const bool *keep_tbl, bool *out) {
  size_t n = sl_cql_result_column_count(res);
  for (size_t c = 0; c < n && c < API_MAX_COLS; c++) {
    int i = api_col_index(t, sl_cql_result_column_name(res, c));
    out[c] = i >= 0 && keep_tbl[i];
  }
}
