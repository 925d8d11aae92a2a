/* Cells as text, the way cqlsh prints them (strings bare at the top level and quoted inside collections, floats
 * with 5 and doubles with 12 significant digits, timestamps as "2024-01-02 03:04:05.000000+0000", booleans as
 * True/False), and as JSON (numbers as numbers, collections as arrays/objects, other scalars as strings).
 *
 * Values come from the server and are read with bounds checks only: a malformed value prints as its hex bytes. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "cql/client.h"
#include "cql/proto.h"

static void puts_(sl_buf_t *o, const char *s) { sl_buf_put(o, s, strlen(s)); }

static void printf_(sl_buf_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(sl_buf_t *o, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) sl_buf_put(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void hex(const uint8_t *p, size_t n, sl_buf_t *o) {
  static const char d[] = "0123456789abcdef";
  puts_(o, "0x");
  for (size_t i = 0; i < n; i++) {
    char h[2] = {d[p[i] >> 4], d[p[i] & 15]};
    sl_buf_put(o, h, 2);
  }
}

/* Two's-complement big-endian integer of any length to decimal. */
static void varint_text(const uint8_t *p, size_t n, sl_buf_t *o) {
  if (n == 0) {
    puts_(o, "0");
    return;
  }
  if (n <= 8) {
    int64_t v;
    if (sl_cql_varint_decode(p, n, &v) == 0) {
      printf_(o, "%" PRId64, v);
      return;
    }
  }
  uint8_t mag[256];
  if (n > sizeof mag) {
    hex(p, n, o);
    return;
  }
  bool neg = p[0] & 0x80;
  memcpy(mag, p, n);
  if (neg) { /* magnitude = two's complement negation */
    for (size_t i = 0; i < n; i++) mag[i] = (uint8_t)~mag[i];
    for (size_t i = n; i-- > 0;)
      if (++mag[i] != 0) break;
  }
  char digits[700];
  size_t nd = 0;
  size_t start = 0;
  while (start < n) {
    unsigned rem = 0;
    for (size_t i = start; i < n; i++) {
      unsigned cur = rem * 256 + mag[i];
      mag[i] = (uint8_t)(cur / 10);
      rem = cur % 10;
    }
    digits[nd++] = (char)('0' + rem);
    while (start < n && mag[start] == 0) start++;
  }
  if (neg) puts_(o, "-");
  while (nd) sl_buf_put_u8(o, (uint8_t)digits[--nd]);
}

static void decimal_text(const uint8_t *p, size_t n, sl_buf_t *o) {
  if (n < 4) {
    hex(p, n, o);
    return;
  }
  int32_t scale = (int32_t)sl_load_be32(p);
  sl_buf_t u;
  sl_buf_init(&u);
  varint_text(p + 4, n - 4, &u);
  const char *d = (const char *)u.data;
  size_t len = u.len;
  bool neg = len && d[0] == '-';
  if (neg) d++, len--;
  if (neg) puts_(o, "-");
  if (scale <= 0) {
    sl_buf_put(o, d, len);
    if (scale < 0 && !(len == 1 && d[0] == '0')) printf_(o, "E+%d", -scale);
  } else if ((size_t)scale < len) {
    sl_buf_put(o, d, len - (size_t)scale);
    puts_(o, ".");
    sl_buf_put(o, d + len - (size_t)scale, (size_t)scale);
  } else if (scale <= 1000) {
    puts_(o, "0.");
    for (size_t i = len; i < (size_t)scale; i++) puts_(o, "0");
    sl_buf_put(o, d, len);
  } else {
    sl_buf_put(o, d, len);
    printf_(o, "E-%d", scale);
  }
  sl_buf_free(&u);
}

static void timestamp_text(int64_t ms, sl_buf_t *o) {
  int64_t secs = ms / 1000, msr = ms % 1000;
  if (msr < 0) msr += 1000, secs--;
  time_t t = (time_t)secs;
  struct tm tm;
  if (!gmtime_r(&t, &tm)) {
    printf_(o, "%" PRId64, ms);
    return;
  }
  printf_(o, "%04d-%02d-%02d %02d:%02d:%02d.%06d+0000", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
          tm.tm_min, tm.tm_sec, (int)msr * 1000);
}

static void date_text(uint32_t d, sl_buf_t *o) {
  int64_t days = (int64_t)d - (int64_t)2147483648u;
  time_t t = (time_t)(days * 86400);
  struct tm tm;
  if (!gmtime_r(&t, &tm)) {
    printf_(o, "%" PRId64, days);
    return;
  }
  printf_(o, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static void float_text(double v, int precision, sl_buf_t *o) {
  if (isnan(v)) puts_(o, "NaN");
  else if (isinf(v)) puts_(o, v > 0 ? "Infinity" : "-Infinity");
  else printf_(o, "%.*g", precision, v);
}

/* Cassandra's vint: the count of leading 1 bits in the first byte is the number of extra bytes. */
static bool read_vint(const uint8_t **p, const uint8_t *end, int64_t *out) {
  if (*p >= end) return false;
  uint8_t first = **p;
  int extra = 0;
  while (extra < 8 && (first & (0x80 >> extra))) extra++;
  if (end - *p < extra + 1) return false;
  uint64_t v = extra == 8 ? 0 : (uint64_t)(first & (0xFF >> (extra + 1)));
  for (int i = 1; i <= extra; i++) v = v << 8 | (*p)[i];
  *p += extra + 1;
  *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
  return true;
}

static void duration_text(const uint8_t *p, size_t n, sl_buf_t *o) {
  const uint8_t *q = p, *end = p + n;
  int64_t months, days, nanos;
  if (!read_vint(&q, end, &months) || !read_vint(&q, end, &days) || !read_vint(&q, end, &nanos)) {
    hex(p, n, o);
    return;
  }
  if (months < 0 || days < 0 || nanos < 0) {
    puts_(o, "-");
    months = months < 0 ? -months : months;
    days = days < 0 ? -days : days;
    nanos = nanos < 0 ? -nanos : nanos;
  }
  bool any = false;
#define PART(v, unit)                                 \
  if (v) {                                            \
    printf_(o, "%" PRId64 "%s", (int64_t)(v), unit); \
    any = true;                                       \
  }
  PART(months / 12, "y")
  PART(months % 12, "mo")
  PART(days, "d")
  PART(nanos / 3600000000000LL, "h")
  PART(nanos / 60000000000LL % 60, "m")
  PART(nanos / 1000000000LL % 60, "s")
  PART(nanos / 1000000LL % 1000, "ms")
  PART(nanos / 1000LL % 1000, "us")
  PART(nanos % 1000, "ns")
#undef PART
  if (!any) puts_(o, "0s");
}

static void json_string(const uint8_t *p, size_t n, sl_buf_t *o) {
  puts_(o, "\"");
  for (size_t i = 0; i < n; i++) {
    uint8_t ch = p[i];
    if (ch == '"') puts_(o, "\\\"");
    else if (ch == '\\') puts_(o, "\\\\");
    else if (ch == '\n') puts_(o, "\\n");
    else if (ch == '\r') puts_(o, "\\r");
    else if (ch == '\t') puts_(o, "\\t");
    else if (ch < 0x20) printf_(o, "\\u%04x", ch);
    else sl_buf_put_u8(o, ch);
  }
  puts_(o, "\"");
}

static void quoted(const uint8_t *p, size_t n, sl_buf_t *o) {
  puts_(o, "'");
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\'') puts_(o, "'");
    sl_buf_put_u8(o, p[i]);
  }
  puts_(o, "'");
}

static void format_value(const sl_cql_type_t *t, const uint8_t *p, size_t n, bool is_null, bool json, bool nested,
                         int depth, sl_buf_t *o);

/* Collections: [int] count + count × [bytes] (maps: key and value). */
static void format_collection(const sl_cql_type_t *t, const uint8_t *p, size_t n, bool json, int depth,
                              sl_buf_t *o) {
  sl_reader_t r;
  sl_reader_init(&r, p, n);
  bool is_map = t->id == CQL_TYPE_MAP, is_tuple = t->id == CQL_TYPE_TUPLE || t->id == CQL_TYPE_UDT;
  size_t count = 0;
  if (!is_tuple) {
    int32_t c = cql_read_int(&r);
    if (r.err || c < 0 || (size_t)c > sl_reader_remaining(&r) / 4) {
      hex(p, n, o);
      return;
    }
    count = (size_t)c;
  } else {
    count = t->nsub;
  }
  const char *open = json ? (is_map ? "{" : "[") : (is_map || t->id == CQL_TYPE_SET ? "{" : is_tuple ? "(" : "[");
  const char *close = json ? (is_map ? "}" : "]") : (is_map || t->id == CQL_TYPE_SET ? "}" : is_tuple ? ")" : "]");
  puts_(o, open);
  for (size_t i = 0; i < count; i++) {
    if (is_tuple && sl_reader_remaining(&r) == 0) break; /* UDTs may have fewer fields */
    if (i) puts_(o, ", ");
    bool null;
    sl_slice_t a = cql_read_bytes(&r, &null);
    if (r.err) break;
    const sl_cql_type_t *et = is_tuple ? t->sub[i] : t->nsub ? t->sub[0] : NULL;
    if (is_map) {
      if (json) { /* JSON object keys are strings */
        sl_buf_t k;
        sl_buf_init(&k);
        format_value(t->sub[0], a.ptr, a.len, null, false, false, depth + 1, &k);
        json_string(k.data, k.len, o);
        sl_buf_free(&k);
      } else {
        format_value(t->sub[0], a.ptr, a.len, null, false, true, depth + 1, o);
      }
      puts_(o, ": ");
      bool vnull;
      sl_slice_t v = cql_read_bytes(&r, &vnull);
      if (r.err) break;
      format_value(t->nsub > 1 ? t->sub[1] : NULL, v.ptr, v.len, vnull, json, true, depth + 1, o);
    } else {
      format_value(et, a.ptr, a.len, null, json, true, depth + 1, o);
    }
  }
  puts_(o, close);
}

static void format_value(const sl_cql_type_t *t, const uint8_t *p, size_t n, bool is_null, bool json, bool nested,
                         int depth, sl_buf_t *o) {
  if (is_null) {
    puts_(o, "null");
    return;
  }
  if (!t || depth > 32) {
    hex(p, n, o);
    return;
  }
  char tmp[64];
  /* empty values of non-string types are legal and print as nothing (cqlsh) / null (JSON) */
  if (n == 0 && t->id != CQL_TYPE_VARCHAR && t->id != CQL_TYPE_ASCII && t->id != CQL_TYPE_BLOB) {
    if (json) puts_(o, "null");
    return;
  }
  sl_buf_t s; /* the text form, for JSON strings */
  switch (t->id) {
    case CQL_TYPE_ASCII:
    case CQL_TYPE_VARCHAR:
      if (json) json_string(p, n, o);
      else if (nested) quoted(p, n, o);
      else sl_buf_put(o, p, n);
      return;
    case CQL_TYPE_BOOLEAN:
      if (n != 1) break;
      puts_(o, json ? (p[0] ? "true" : "false") : (p[0] ? "True" : "False"));
      return;
    case CQL_TYPE_TINYINT:
      if (n != 1) break;
      printf_(o, "%d", (int8_t)p[0]);
      return;
    case CQL_TYPE_SMALLINT:
      if (n != 2) break;
      printf_(o, "%d", (int16_t)sl_load_be16(p));
      return;
    case CQL_TYPE_INT:
      if (n != 4) break;
      printf_(o, "%" PRId32, (int32_t)sl_load_be32(p));
      return;
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER:
      if (n != 8) break;
      printf_(o, "%" PRId64, (int64_t)sl_load_be64(p));
      return;
    case CQL_TYPE_VARINT: varint_text(p, n, o); return;
    case CQL_TYPE_DECIMAL:
      if (json) {
        sl_buf_init(&s);
        decimal_text(p, n, &s);
        sl_buf_put(o, s.data, s.len); /* a JSON number (exponent form is valid JSON too) */
        sl_buf_free(&s);
      } else {
        decimal_text(p, n, o);
      }
      return;
    case CQL_TYPE_FLOAT:
    case CQL_TYPE_DOUBLE: {
      double v;
      if (t->id == CQL_TYPE_FLOAT) {
        if (n != 4) break;
        uint32_t u = sl_load_be32(p);
        float f;
        memcpy(&f, &u, 4);
        v = f;
      } else {
        if (n != 8) break;
        uint64_t u = sl_load_be64(p);
        memcpy(&v, &u, 8);
      }
      if (json) {
        if (isnan(v) || isinf(v)) {
          sl_buf_init(&s);
          float_text(v, 17, &s);
          json_string(s.data, s.len, o);
          sl_buf_free(&s);
        } else {
          printf_(o, "%.*g", t->id == CQL_TYPE_FLOAT ? 9 : 17, v);
        }
      } else {
        float_text(v, t->id == CQL_TYPE_FLOAT ? 5 : 12, o);
      }
      return;
    }
    default: break;
  }
  /* scalars whose JSON form is a string */
  sl_buf_init(&s);
  bool ok = true;
  switch (t->id) {
    case CQL_TYPE_BLOB: hex(p, n, &s); break;
    case CQL_TYPE_UUID:
    case CQL_TYPE_TIMEUUID:
      if (n != 16) ok = false;
      else {
        sl_cql_format_uuid(p, tmp);
        puts_(&s, tmp);
      }
      break;
    case CQL_TYPE_TIMESTAMP:
      if (n != 8) ok = false;
      else timestamp_text((int64_t)sl_load_be64(p), &s);
      break;
    case CQL_TYPE_DATE:
      if (n != 4) ok = false;
      else date_text(sl_load_be32(p), &s);
      break;
    case CQL_TYPE_TIME:
      if (n != 8) ok = false;
      else {
        int64_t ns = (int64_t)sl_load_be64(p);
        printf_(&s, "%02d:%02d:%02d.%09d", (int)(ns / 3600000000000LL), (int)(ns / 60000000000LL % 60),
                (int)(ns / 1000000000LL % 60), (int)(ns % 1000000000LL));
      }
      break;
    case CQL_TYPE_INET:
      if ((n != 4 && n != 16) || uv_inet_ntop(n == 4 ? AF_INET : AF_INET6, p, tmp, sizeof tmp) != 0) ok = false;
      else puts_(&s, tmp);
      break;
    case CQL_TYPE_DURATION: duration_text(p, n, &s); break;
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
    case CQL_TYPE_MAP:
    case CQL_TYPE_TUPLE:
    case CQL_TYPE_UDT:
      sl_buf_free(&s);
      format_collection(t, p, n, json, depth, o);
      return;
    default: ok = false; break;
  }
  if (!ok) {
    s.len = 0;
    hex(p, n, &s);
  }
  if (json) json_string(s.data, s.len, o);
  else sl_buf_put(o, s.data, s.len);
  sl_buf_free(&s);
}

void sl_cql_format_cell(const sl_cql_type_t *t, sl_slice_t cell, sl_buf_t *out) {
  format_value(t, cell.ptr, cell.len, cell.ptr == NULL, false, false, 0, out);
}

void sl_cql_format_cell_json(const sl_cql_type_t *t, sl_slice_t cell, sl_buf_t *out) {
  format_value(t, cell.ptr, cell.len, cell.ptr == NULL, true, false, 0, out);
}
