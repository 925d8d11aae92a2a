/* CQL literals and bind markers to serialized values, typed by the column they are assigned to or compared
 * with; plus the bind-marker specs that PREPARE returns. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "store/exec_internal.h"
#include "store/keycodec.h"

int sl_exec_fail(sl_exec_t *x, int code, const char *fmt, ...) {
  if (x->err_code == 0 && x->err_msg[0] == 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err_msg, sizeof x->err_msg, fmt, ap);
    va_end(ap);
    x->err_code = code;
  }
  return -1;
}

sl_slice_t sl_val_bytes(sl_arena_t *a, const void *p, size_t n) {
  sl_slice_t s = {sl_arena_memdup(a, p, n ? n : 1), n};
  return s;
}
sl_slice_t sl_val_text(sl_arena_t *a, const char *s) { return sl_val_bytes(a, s, strlen(s)); }
sl_slice_t sl_val_int(sl_arena_t *a, int32_t v) {
  uint8_t b[4];
  sl_store_be32(b, (uint32_t)v);
  return sl_val_bytes(a, b, 4);
}
sl_slice_t sl_val_bigint(sl_arena_t *a, int64_t v) {
  uint8_t b[8];
  sl_store_be64(b, (uint64_t)v);
  return sl_val_bytes(a, b, 8);
}
sl_slice_t sl_val_bool(sl_arena_t *a, bool v) {
  uint8_t b = v;
  return sl_val_bytes(a, &b, 1);
}
sl_slice_t sl_val_double(sl_arena_t *a, double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  return sl_val_bigint(a, (int64_t)u);
}
sl_slice_t sl_val_text_coll(sl_arena_t *a, const char *const *keys, const char *const *vals, size_t n) {
  sl_buf_t b;
  sl_buf_init(&b);
  sl_buf_put_be32(&b, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    cql_write_bytes(&b, keys[i], strlen(keys[i]));
    if (vals) cql_write_bytes(&b, vals[i], strlen(vals[i]));
  }
  sl_slice_t s = sl_val_bytes(a, b.data, b.len);
  sl_buf_free(&b);
  return s;
}

int64_t sl_exec_now_micros(sl_engine_t *e) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  int64_t us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
  if (us <= e->last_micros) us = e->last_micros + 1;
  e->last_micros = us;
  return us;
}

void sl_exec_random(sl_engine_t *e, uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    /* xorshift64*: ids, not secrets */
    e->rng ^= e->rng >> 12;
    e->rng ^= e->rng << 25;
    e->rng ^= e->rng >> 27;
    out[i] = (uint8_t)((e->rng * 0x2545F4914F6CDD1DULL) >> 56);
  }
}

static void make_timeuuid(sl_engine_t *e, int64_t micros, uint8_t u[16]) {
  /* 100ns intervals since 1582-10-15 */
  uint64_t t = (uint64_t)micros * 10 + 0x01B21DD213814000ULL;
  sl_exec_random(e, u + 8, 8);
  sl_store_be32(u, (uint32_t)t);
  u[4] = (uint8_t)(t >> 40);
  u[5] = (uint8_t)(t >> 32);
  u[6] = (uint8_t)(0x10 | ((t >> 56) & 0x0F));
  u[7] = (uint8_t)(t >> 48);
  u[8] = (uint8_t)((u[8] & 0x3F) | 0x80);
}

static const char *type_name(sl_exec_t *x, const sl_cql_type_t *t) {
  sl_buf_t b;
  sl_buf_init(&b);
  sl_cql_type_name(t, &b);
  char *s = sl_arena_strndup(x->a, (const char *)b.data, b.len);
  sl_buf_free(&b);
  return s;
}

static int invalid_literal(sl_exec_t *x, const cql_term_t *term, const sl_cql_type_t *t, const char *what) {
  return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid %s constant (%.*s) for \"value\" of type %s", what,
                      (int)(term->len > 100 ? 100 : term->len), term->text ? term->text : "", type_name(x, t));
}

static bool parse_int64(const char *s, size_t len, int64_t *out) {
  char buf[40];
  if (len == 0 || len >= sizeof buf) return false;
  memcpy(buf, s, len);
  buf[len] = 0;
  char *end;
  errno = 0;
  long long v = strtoll(buf, &end, 10);
  if (*end || errno) return false;
  *out = v;
  return true;
}

static bool parse_double(const char *s, size_t len, double *out) {
  char buf[64];
  if (len == 0 || len >= sizeof buf) return false;
  memcpy(buf, s, len);
  buf[len] = 0;
  if (!strcasecmp(buf, "nan")) *out = NAN;
  else if (!strcasecmp(buf, "infinity")) *out = INFINITY;
  else if (!strcasecmp(buf, "-infinity")) *out = -INFINITY;
  else {
    char *end;
    *out = strtod(buf, &end);
    if (*end) return false;
  }
  return true;
}

static int set_bytes(sl_exec_t *x, cql_value_t *out, const void *p, size_t n) {
  out->kind = CQL_VALUE_SET;
  out->v = sl_val_bytes(x->a, p, n);
  return 0;
}

static int int_value(sl_exec_t *x, const cql_term_t *term, const sl_cql_type_t *t, int64_t v, cql_value_t *out) {
  uint8_t b[9];
  switch (t->id) {
    case CQL_TYPE_TINYINT:
      if (v < INT8_MIN || v > INT8_MAX) return invalid_literal(x, term, t, "INTEGER");
      b[0] = (uint8_t)v;
      return set_bytes(x, out, b, 1);
    case CQL_TYPE_SMALLINT:
      if (v < INT16_MIN || v > INT16_MAX) return invalid_literal(x, term, t, "INTEGER");
      sl_store_be32(b, (uint32_t)v);
      return set_bytes(x, out, b + 2, 2);
    case CQL_TYPE_INT:
      if (v < INT32_MIN || v > INT32_MAX) return invalid_literal(x, term, t, "INTEGER");
      sl_store_be32(b, (uint32_t)v);
      return set_bytes(x, out, b, 4);
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER:
    case CQL_TYPE_TIMESTAMP:
    case CQL_TYPE_TIME:
      sl_store_be64(b, (uint64_t)v);
      return set_bytes(x, out, b, 8);
    case CQL_TYPE_DATE:
      sl_store_be32(b, (uint32_t)v);
      return set_bytes(x, out, b, 4);
    case CQL_TYPE_VARINT: return set_bytes(x, out, b, sl_cql_varint_encode(v, b));
    case CQL_TYPE_DECIMAL: {
      uint8_t d[13];
      sl_store_be32(d, 0);
      size_t n = sl_cql_varint_encode(v, d + 4);
      return set_bytes(x, out, d, 4 + n);
    }
    case CQL_TYPE_DOUBLE: {
      double dv = (double)v;
      out->kind = CQL_VALUE_SET;
      out->v = sl_val_double(x->a, dv);
      return 0;
    }
    case CQL_TYPE_FLOAT: {
      float f = (float)v;
      uint32_t u;
      memcpy(&u, &f, 4);
      sl_store_be32(b, u);
      return set_bytes(x, out, b, 4);
    }
    default: return invalid_literal(x, term, t, "INTEGER");
  }
}

static int decimal_value(sl_exec_t *x, const cql_term_t *term, const sl_cql_type_t *t, cql_value_t *out) {
  sl_buf_t nb;
  sl_buf_init(&nb);
  int nrc = sl_numeric_from_text(t, term->text, term->len, &nb);
  if (nrc == 0) set_bytes(x, out, nb.data, nb.len);
  sl_buf_free(&nb);
  if (nrc == 0) return 0;
  return invalid_literal(x, term, t, t->id == CQL_TYPE_VARINT ? "INTEGER" : "FLOAT");
}

static int collection_value(sl_exec_t *x, const cql_term_t *term, const sl_cql_type_t *t, cql_value_t *out) {
  bool is_map = t->id == CQL_TYPE_MAP;
  size_t step = is_map ? 2 : 1;
  if (is_map && term->kind == TERM_SET && term->nitems == 0) { /* {} is an empty map */
  } else if (is_map && term->kind != TERM_MAP) {
    return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid collection literal for type %s", type_name(x, t));
  } else if (!is_map && t->id == CQL_TYPE_SET && term->kind != TERM_SET) {
    return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid collection literal for type %s", type_name(x, t));
  } else if (t->id == CQL_TYPE_LIST && term->kind != TERM_LIST) {
    return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid collection literal for type %s", type_name(x, t));
  }
  size_t n = term->nitems / step;
  cql_value_t *vals = sl_arena_alloc(x->a, (term->nitems + 1) * sizeof *vals);
  for (size_t i = 0; i < term->nitems; i++) {
    const sl_cql_type_t *et = t->sub[(is_map && (i & 1)) ? 1 : 0];
    if (sl_exec_term_value(x, term->items[i], et, &vals[i]) != 0) return -1;
    if (vals[i].kind != CQL_VALUE_SET)
      return sl_exec_fail(x, CQL_ERR_INVALID, "null is not supported inside collections");
  }
  /* sets and maps: sorted by (key) value, duplicates dropped (the last one wins for maps) */
  size_t *order = sl_arena_alloc(x->a, (n + 1) * sizeof *order);
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (t->id == CQL_TYPE_LIST) {
      order[m++] = i;
      continue;
    }
    const sl_cql_type_t *kt = t->sub[0];
    cql_value_t *k = &vals[i * step];
    size_t pos = m;
    bool dup = false;
    for (size_t j = 0; j < m; j++) {
      cql_value_t *o = &vals[order[j] * step];
      int c = sl_value_compare(kt, k->v.ptr, k->v.len, o->v.ptr, o->v.len);
      if (c == 0) {
        order[j] = i;
        dup = true;
        break;
      }
      if (c < 0) {
        pos = j;
        break;
      }
    }
    if (dup) continue;
    memmove(order + pos + 1, order + pos, (m - pos) * sizeof *order);
    order[pos] = i;
    m++;
  }
  sl_buf_t b;
  sl_buf_init(&b);
  sl_buf_put_be32(&b, (uint32_t)m);
  for (size_t j = 0; j < m; j++)
    for (size_t k = 0; k < step; k++) {
      cql_value_t *v = &vals[order[j] * step + k];
      cql_write_bytes(&b, v->v.ptr, v->v.len);
    }
  set_bytes(x, out, b.data, b.len);
  sl_buf_free(&b);
  return 0;
}

/* A bound set or map as Cassandra keeps it: elements (keys) in their type's order, duplicates dropped (the last
 * one wins for maps). The value is already validated. */
static int sort_bound_collection(sl_exec_t *x, const sl_cql_type_t *t, cql_value_t *v) {
  size_t per = t->id == CQL_TYPE_MAP ? 2 : 1;
  sl_reader_t r;
  sl_reader_init(&r, v->v.ptr, v->v.len);
  int32_t cnt = (int32_t)sl_read_be32(&r);
  if (r.err || cnt < 0 || (size_t)cnt * per * 4 > sl_reader_remaining(&r)) return 0;
  size_t n = (size_t)cnt;
  sl_slice_t *it = sl_arena_alloc(x->a, (n * per + 1) * sizeof *it);
  for (size_t i = 0; i < n * per; i++) {
    int32_t len = (int32_t)sl_read_be32(&r);
    if (len < 0) return sl_exec_fail(x, CQL_ERR_INVALID, "null is not supported inside collections");
    it[i].ptr = sl_read_bytes(&r, (size_t)len);
    it[i].len = (size_t)len;
    if (r.err) return 0;
  }
  size_t *order = sl_arena_alloc(x->a, (n + 1) * sizeof *order);
  size_t m = 0;
  bool changed = false;
  for (size_t i = 0; i < n; i++) { /* insertion sort: bound collections are small */
    const sl_slice_t *k = &it[i * per];
    size_t pos = m;
    while (pos > 0) {
      const sl_slice_t *o = &it[order[pos - 1] * per];
      int c = sl_value_compare(t->sub[0], k->ptr, k->len, o->ptr, o->len);
      if (c >= 0) {
        if (c == 0) {
          order[pos - 1] = i;
          changed = true;
          goto next;
        }
        break;
      }
      pos--;
      changed = true;
    }
    memmove(order + pos + 1, order + pos, (m - pos) * sizeof *order);
    order[pos] = i;
    m++;
  next:;
  }
  if (!changed) return 0;
  sl_buf_t b;
  sl_buf_init(&b);
  sl_buf_put_be32(&b, (uint32_t)m);
  for (size_t j = 0; j < m; j++)
    for (size_t k = 0; k < per; k++) cql_write_bytes(&b, it[order[j] * per + k].ptr, it[order[j] * per + k].len);
  v->v = sl_val_bytes(x->a, b.data, b.len);
  sl_buf_free(&b);
  return 0;
}

static int func_value(sl_exec_t *x, const cql_term_t *term, const sl_cql_type_t *t, cql_value_t *out) {
  const char *f = term->func;
  uint8_t u[16];
  if (!strcmp(f, "fromjson")) {
    if (term->nitems != 1) return sl_exec_fail(x, CQL_ERR_INVALID, "fromJson() takes one argument");
    return sl_exec_from_json(x, term->items[0], t, out);
  }
  if (!strcmp(f, "now") || !strcmp(f, "currenttimeuuid")) {
    make_timeuuid(x->e, sl_exec_now_micros(x->e), u);
    if (t->id != CQL_TYPE_TIMEUUID && t->id != CQL_TYPE_UUID)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Type error: now() cannot be passed as argument of type %s",
                          type_name(x, t));
    return set_bytes(x, out, u, 16);
  }
  if (!strcmp(f, "uuid")) {
    sl_exec_random(x->e, u, 16);
    u[6] = (uint8_t)((u[6] & 0x0F) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3F) | 0x80);
    return set_bytes(x, out, u, 16);
  }
  if (!strcmp(f, "currenttimestamp") || (!strcmp(f, "totimestamp") && term->nitems == 1 &&
                                         term->items[0]->kind == TERM_FUNC && !strcmp(term->items[0]->func, "now"))) {
    int64_t ms = sl_exec_now_micros(x->e) / 1000;
    if (t->id == CQL_TYPE_TIMESTAMP || t->id == CQL_TYPE_BIGINT) return int_value(x, term, t, ms, out);
  }
  if (!strcmp(f, "currentdate") || (!strcmp(f, "todate") && term->nitems == 1 && term->items[0]->kind == TERM_FUNC &&
                                    !strcmp(term->items[0]->func, "now"))) {
    int64_t days = sl_exec_now_micros(x->e) / 1000000 / 86400;
    if (t->id == CQL_TYPE_DATE) return int_value(x, term, t, days + (1LL << 31), out);
  }
  return sl_exec_fail(x, CQL_ERR_INVALID, "Unknown function or wrong type for %s()", f);
}

int sl_exec_term_value(sl_exec_t *x, const cql_term_t *term, const sl_cql_type_t *t, cql_value_t *out) {
  memset(out, 0, sizeof *out);
  out->kind = CQL_VALUE_NULL;
  switch (term->kind) {
    case TERM_NULL: return 0;
    case TERM_BIND: {
      int i = term->bind_index;
      if (x->value_names && x->binds) {
        /* named values: find the value whose name matches this marker's spec */
        const char *want = term->bind_name ? term->bind_name : x->binds[i].name;
        for (size_t k = 0; k < x->nvalues; k++) {
          sl_slice_t nm = x->value_names[k];
          if (nm.len == strlen(want) && !strncasecmp((const char *)nm.ptr, want, nm.len)) {
            *out = x->values[k];
            goto check;
          }
        }
        return sl_exec_fail(x, CQL_ERR_INVALID, "No value given for bind marker '%s'", want);
      }
      if ((size_t)i >= x->nvalues) {
        if (x->nvalues == 0)
          return sl_exec_fail(x, CQL_ERR_INVALID, "There were %d markers(?) in CQL but 0 bound variables",
                              i + 1);
        out->kind = CQL_VALUE_UNSET; /* missing trailing values are unset (v4) */
        return 0;
      }
      *out = x->values[i];
    check:
      if (out->kind == CQL_VALUE_SET) {
        const char *m = sl_cql_value_validate(t, out->v.ptr, out->v.len);
        if (m) return sl_exec_fail(x, CQL_ERR_INVALID, "%s (%zu)", m, out->v.len);
        if ((t->id == CQL_TYPE_SET || t->id == CQL_TYPE_MAP) && out->v.len) return sort_bound_collection(x, t, out);
      }
      return 0;
    }
    case TERM_STRING: {
      switch (t->id) {
        case CQL_TYPE_VARCHAR:
        case CQL_TYPE_ASCII: {
          const char *m = sl_cql_value_validate(t, (const uint8_t *)term->text, term->len);
          if (m) return sl_exec_fail(x, CQL_ERR_INVALID, "%s", m);
          return set_bytes(x, out, term->text, term->len);
        }
        case CQL_TYPE_TIMESTAMP: {
          int64_t ms;
          if (sl_cql_parse_timestamp(term->text, term->len, &ms) != 0) {
            if (!parse_int64(term->text, term->len, &ms))
              return sl_exec_fail(x, CQL_ERR_INVALID, "Unable to parse a date/time from '%.*s'", (int)term->len,
                                  term->text);
          }
          return int_value(x, term, t, ms, out);
        }
        case CQL_TYPE_DATE: {
          uint32_t d;
          if (sl_cql_parse_date(term->text, term->len, &d) != 0)
            return sl_exec_fail(x, CQL_ERR_INVALID, "Unable to coerce '%.*s' to a formatted date (long)",
                                (int)term->len, term->text);
          return int_value(x, term, t, d, out);
        }
        case CQL_TYPE_TIME: {
          int64_t ns;
          if (sl_cql_parse_time(term->text, term->len, &ns) != 0)
            return sl_exec_fail(x, CQL_ERR_INVALID, "Unable to coerce '%.*s' to a formatted time (long)",
                                (int)term->len, term->text);
          return int_value(x, term, t, ns, out);
        }
        case CQL_TYPE_INET: {
          uint8_t a[16];
          int n = sl_cql_parse_inet(term->text, term->len, a);
          if (n < 0) return sl_exec_fail(x, CQL_ERR_INVALID, "Unable to make inet address from '%.*s'",
                                         (int)term->len, term->text);
          return set_bytes(x, out, a, (size_t)n);
        }
        case CQL_TYPE_UUID:
        case CQL_TYPE_TIMEUUID: {
          uint8_t u[16];
          if (sl_cql_parse_uuid(term->text, term->len, u) != 0) return invalid_literal(x, term, t, "STRING");
          return set_bytes(x, out, u, 16);
        }
        default: return invalid_literal(x, term, t, "STRING");
      }
    }
    case TERM_INTEGER: {
      if (t->id == CQL_TYPE_DECIMAL || t->id == CQL_TYPE_VARINT) return decimal_value(x, term, t, out);
      int64_t v;
      if (!parse_int64(term->text, term->len, &v)) return invalid_literal(x, term, t, "INTEGER");
      return int_value(x, term, t, v, out);
    }
    case TERM_FLOAT: {
      if (t->id == CQL_TYPE_DECIMAL) return decimal_value(x, term, t, out);
      double d;
      if (!parse_double(term->text, term->len, &d)) return invalid_literal(x, term, t, "FLOAT");
      if (t->id == CQL_TYPE_DOUBLE) {
        out->kind = CQL_VALUE_SET;
        out->v = sl_val_double(x->a, d);
        return 0;
      }
      if (t->id == CQL_TYPE_FLOAT) {
        float f = (float)d;
        uint32_t u;
        uint8_t b[4];
        memcpy(&u, &f, 4);
        sl_store_be32(b, u);
        return set_bytes(x, out, b, 4);
      }
      return invalid_literal(x, term, t, "FLOAT");
    }
    case TERM_BOOL:
      if (t->id != CQL_TYPE_BOOLEAN) return invalid_literal(x, term, t, "BOOLEAN");
      out->kind = CQL_VALUE_SET;
      out->v = sl_val_bool(x->a, term->boolean);
      return 0;
    case TERM_UUID: {
      uint8_t u[16];
      if ((t->id != CQL_TYPE_UUID && t->id != CQL_TYPE_TIMEUUID) || sl_cql_parse_uuid(term->text, term->len, u) != 0)
        return invalid_literal(x, term, t, "UUID");
      if (t->id == CQL_TYPE_TIMEUUID && (u[6] >> 4) != 1)
        return sl_exec_fail(x, CQL_ERR_INVALID, "Unsupported UUID version for timeuuid");
      return set_bytes(x, out, u, 16);
    }
    case TERM_BLOB: {
      if (t->id != CQL_TYPE_BLOB || term->len % 2) return invalid_literal(x, term, t, "HEX");
      uint8_t *b = sl_arena_alloc(x->a, term->len / 2 + 1);
      for (size_t i = 0; i < term->len / 2; i++) {
        unsigned v;
        if (sscanf(term->text + 2 * i, "%2x", &v) != 1) return invalid_literal(x, term, t, "HEX");
        b[i] = (uint8_t)v;
      }
      out->kind = CQL_VALUE_SET;
      out->v.ptr = b;
      out->v.len = term->len / 2;
      return 0;
    }
    case TERM_LIST:
    case TERM_SET:
    case TERM_MAP:
      if (!sl_cql_type_is_collection(t)) return invalid_literal(x, term, t, "collection");
      return collection_value(x, term, t, out);
    case TERM_TUPLE: {
      if (t->id != CQL_TYPE_TUPLE || term->nitems > t->nsub) return invalid_literal(x, term, t, "tuple");
      sl_buf_t b;
      sl_buf_init(&b);
      for (size_t i = 0; i < term->nitems; i++) {
        cql_value_t v;
        if (sl_exec_term_value(x, term->items[i], t->sub[i], &v) != 0) {
          sl_buf_free(&b);
          return -1;
        }
        cql_write_bytes(&b, v.kind == CQL_VALUE_SET ? v.v.ptr : NULL, v.v.len);
      }
      set_bytes(x, out, b.data, b.len);
      sl_buf_free(&b);
      return 0;
    }
    case TERM_FUNC: return func_value(x, term, t, out);
    case TERM_DURATION: {
      int32_t mo, d;
      int64_t ns;
      if (t->id != CQL_TYPE_DURATION) return invalid_literal(x, term, t, "DURATION");
      int rc = sl_cql_parse_duration(term->text, term->len, &mo, &d, &ns);
      if (rc != 0)
        return sl_exec_fail(x, CQL_ERR_INVALID, "Unable to convert '%.*s' to a duration%s", (int)term->len,
                            term->text, rc == -ERANGE ? ": out of range" : "");
      uint8_t b[27];
      return set_bytes(x, out, b, sl_cql_duration_encode(mo, d, ns, b));
    }
  }
  return sl_exec_fail(x, CQL_ERR_INVALID, "unsupported term");
}

int sl_exec_term_int(sl_exec_t *x, const cql_term_t *term, int64_t *out) {
  static sl_cql_type_t bigint = {.id = CQL_TYPE_BIGINT};
  static sl_cql_type_t i32 = {.id = CQL_TYPE_INT};
  cql_value_t v;
  /* bind markers for LIMIT/TTL are int, for TIMESTAMP bigint: accept either width */
  if (term->kind == TERM_BIND) {
    if (sl_exec_term_value(x, term, &bigint, &v) != 0) {
      x->err_code = 0;
      x->err_msg[0] = 0;
      if (sl_exec_term_value(x, term, &i32, &v) != 0) return -1;
    }
  } else if (sl_exec_term_value(x, term, &bigint, &v) != 0) {
    return -1;
  }
  if (v.kind != CQL_VALUE_SET) return 1;
  if (v.v.len == 8) *out = (int64_t)sl_load_be64(v.v.ptr);
  else if (v.v.len == 4) *out = (int32_t)sl_load_be32(v.v.ptr);
  else return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid integer value");
  return 0;
}

/* ---- bind marker specs ---- */

static sl_cql_type_t int_type = {.id = CQL_TYPE_INT};
static sl_cql_type_t bigint_type = {.id = CQL_TYPE_BIGINT};

static void spec(sl_exec_t *x, const cql_term_t *term, const sl_table_t *t, const char *name,
                 const sl_cql_type_t *type) {
  if (!term) return;
  if (term->kind == TERM_BIND && term->bind_index < x->nbinds) {
    sl_colspec_t *s = &x->binds[term->bind_index];
    s->ks = t ? t->keyspace : "";
    s->table = t ? t->name : "";
    s->name = term->bind_name ? term->bind_name : name;
    s->type = type;
    return;
  }
  if (term->kind == TERM_FUNC && !strcmp(term->func, "fromjson")) { /* fromJson(?): the marker is the JSON text */
    static sl_cql_type_t json_text = {.id = CQL_TYPE_VARCHAR};
    for (size_t i = 0; i < term->nitems; i++) spec(x, term->items[i], t, name, &json_text);
    return;
  }
  /* markers nested in literals: collections take the element type */
  for (size_t i = 0; i < term->nitems; i++) {
    const sl_cql_type_t *et = type;
    if (type && (type->id == CQL_TYPE_LIST || type->id == CQL_TYPE_SET)) et = type->sub[0];
    else if (type && type->id == CQL_TYPE_MAP) et = type->sub[i & 1];
    else if (type && type->id == CQL_TYPE_TUPLE && i < type->nsub) et = type->sub[i];
    spec(x, term->items[i], t, name, et);
  }
}

static int where_binds(sl_exec_t *x, const sl_table_t *t, const sl_vec_t *where) {
  for (size_t i = 0; i < where->n; i++) {
    const cql_relation_t *r = where->items[i];
    if (r->token) {
      spec(x, r->value, t, "partition key token", &bigint_type);
      continue;
    }
    for (size_t k = 0; k < r->ncolumns; k++) {
      const sl_column_t *c = sl_table_column(t, r->columns[k]);
      if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s", r->columns[k]);
      const cql_term_t *v = r->value;
      if (r->tuple && v->kind == TERM_TUPLE && k < v->nitems) v = v->items[k];
      else if (r->tuple) continue;
      if (r->op == OP_IN && v->kind == TERM_BIND) {
        sl_cql_type_t *lt = sl_cql_type_new(CQL_TYPE_LIST);
        /* the list type must outlive the request: keep it in the arena via a copy registry */
        sl_cql_type_t **sub = sl_arena_alloc(x->a, sizeof *sub);
        sub[0] = c->type;
        sl_cql_type_t *al = sl_arena_alloc(x->a, sizeof *al);
        al->id = CQL_TYPE_LIST;
        al->nsub = 1;
        al->sub = sub;
        sl_cql_type_free(lt);
        spec(x, v, t, sl_arena_strndup(x->a, "in(", 3), al);
        if (v->bind_index < x->nbinds && !v->bind_name) {
          char buf[300];
          snprintf(buf, sizeof buf, "in(%s)", c->name);
          x->binds[v->bind_index].name = sl_arena_strndup(x->a, buf, strlen(buf));
        }
      } else if (r->op == OP_IN) {
        for (size_t j = 0; j < v->nitems; j++) spec(x, v->items[j], t, c->name, c->type);
      } else {
        spec(x, v, t, c->name, c->type);
      }
    }
  }
  return 0;
}

int sl_exec_collect_binds(sl_exec_t *x, const cql_stmt_t *s) {
  if (s->nbind == 0) return 0;
  if (!x->binds || x->nbinds < s->nbind) {
    x->binds = sl_arena_alloc(x->a, (size_t)s->nbind * sizeof *x->binds);
    x->nbinds = s->nbind;
  }
  const sl_table_t *t = NULL;
  if (s->table) {
    t = sl_exec_table(x, s->keyspace, s->table);
    if (!t) return -1;
  }
  for (int i = 0; i < x->nbinds; i++) {
    x->binds[i].ks = t ? t->keyspace : "";
    x->binds[i].table = t ? t->name : "";
    x->binds[i].name = "?";
    x->binds[i].type = &bigint_type;
  }
  spec(x, s->ttl, t, "[ttl]", &int_type);
  spec(x, s->timestamp, t, "[timestamp]", &bigint_type);
  spec(x, s->limit, t, "[limit]", &int_type);
  spec(x, s->per_partition_limit, t, "[per_partition_limit]", &int_type);
  switch (s->kind) {
    case STMT_INSERT:
      if (s->json) {
        static sl_cql_type_t text_type = {.id = CQL_TYPE_VARCHAR};
        spec(x, s->json_value, t, "[json]", &text_type);
      }
      for (size_t i = 0; i < s->values.n && i < s->columns.n; i++) {
        const sl_column_t *c = sl_table_column(t, s->columns.items[i]);
        if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s", (char *)s->columns.items[i]);
        spec(x, s->values.items[i], t, c->name, c->type);
      }
      break;
    case STMT_UPDATE:
      for (size_t i = 0; i < s->assignments.n; i++) {
        const cql_assignment_t *as = s->assignments.items[i];
        const sl_column_t *c = sl_table_column(t, as->column);
        if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s", as->column);
        if (as->kind == ASSIGN_ELEMENT && c->type->nsub) {
          const sl_cql_type_t *kt = c->type->id == CQL_TYPE_MAP ? c->type->sub[0] : &int_type;
          spec(x, as->key, t, c->name, kt);
          spec(x, as->value, t, c->name, c->type->sub[c->type->id == CQL_TYPE_MAP ? 1 : 0]);
        } else if (as->kind == ASSIGN_SUB && c->type->id == CQL_TYPE_MAP && !c->type->frozen) {
          sl_cql_type_t *st = sl_arena_alloc(x->a, sizeof *st); /* m = m - {keys}: a set of the key type */
          sl_cql_type_t **sub = sl_arena_alloc(x->a, sizeof *sub);
          sub[0] = c->type->sub[0];
          st->id = CQL_TYPE_SET;
          st->nsub = 1;
          st->sub = sub;
          spec(x, as->value, t, c->name, st);
        } else {
          spec(x, as->value, t, c->name, c->type);
        }
      }
      if (where_binds(x, t, &s->where) != 0) return -1;
      if (where_binds(x, t, &s->conditions) != 0) return -1;
      break;
    case STMT_DELETE:
      for (size_t i = 0; i < s->column_keys.n && i < s->columns.n; i++) {
        const cql_term_t *k = s->column_keys.items[i];
        const sl_column_t *c = sl_table_column(t, s->columns.items[i]);
        if (!k || !c || !c->type->nsub) continue;
        spec(x, k, t, c->name, c->type->id == CQL_TYPE_MAP ? c->type->sub[0] : &int_type);
      }
      /* fall through */
    case STMT_SELECT:
      if (where_binds(x, t, &s->where) != 0) return -1;
      if (where_binds(x, t, &s->conditions) != 0) return -1;
      break;
    default: break;
  }
  return 0;
}
