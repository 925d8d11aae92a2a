/* CQL data types (see types.h). */
#include "cql/types.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
  const char *name;
  uint16_t id;
} scalar_names[] = {
    {"ascii", CQL_TYPE_ASCII},       {"bigint", CQL_TYPE_BIGINT},     {"blob", CQL_TYPE_BLOB},
    {"boolean", CQL_TYPE_BOOLEAN},   {"counter", CQL_TYPE_COUNTER},   {"decimal", CQL_TYPE_DECIMAL},
    {"double", CQL_TYPE_DOUBLE},     {"float", CQL_TYPE_FLOAT},       {"int", CQL_TYPE_INT},
    {"timestamp", CQL_TYPE_TIMESTAMP}, {"uuid", CQL_TYPE_UUID},       {"text", CQL_TYPE_VARCHAR},
    {"varchar", CQL_TYPE_VARCHAR},   {"varint", CQL_TYPE_VARINT},     {"timeuuid", CQL_TYPE_TIMEUUID},
    {"inet", CQL_TYPE_INET},         {"date", CQL_TYPE_DATE},         {"time", CQL_TYPE_TIME},
    {"smallint", CQL_TYPE_SMALLINT}, {"tinyint", CQL_TYPE_TINYINT},   {"duration", CQL_TYPE_DURATION},
};

static const char *const duration_class = "org.apache.cassandra.db.marshal.DurationType";

sl_cql_type_t *sl_cql_type_new(uint16_t id) {
  sl_cql_type_t *t = calloc(1, sizeof *t);
  if (!t) abort();
  t->id = id;
  return t;
}

void sl_cql_type_free(sl_cql_type_t *t) {
  if (!t) return;
  for (uint16_t i = 0; i < t->nsub; i++) sl_cql_type_free(t->sub[i]);
  free(t->sub);
  free(t->custom);
  free(t);
}

static void add_sub(sl_cql_type_t *t, sl_cql_type_t *sub) {
  sl_cql_type_t **n = realloc(t->sub, (t->nsub + 1u) * sizeof *n);
  if (!n) abort();
  t->sub = n;
  t->sub[t->nsub++] = sub;
}

sl_cql_type_t *sl_cql_type_copy(const sl_cql_type_t *t) {
  sl_cql_type_t *c = sl_cql_type_new(t->id);
  c->frozen = t->frozen;
  if (t->custom) c->custom = strdup(t->custom);
  for (uint16_t i = 0; i < t->nsub; i++) add_sub(c, sl_cql_type_copy(t->sub[i]));
  return c;
}

bool sl_cql_type_equal(const sl_cql_type_t *a, const sl_cql_type_t *b) {
  if (a->id != b->id || a->nsub != b->nsub) return false;
  if (a->custom || b->custom) {
    if (!a->custom || !b->custom || strcmp(a->custom, b->custom) != 0) return false;
  }
  for (uint16_t i = 0; i < a->nsub; i++)
    if (!sl_cql_type_equal(a->sub[i], b->sub[i])) return false;
  return true;
}

bool sl_cql_type_is_collection(const sl_cql_type_t *t) {
  return t->id == CQL_TYPE_LIST || t->id == CQL_TYPE_SET || t->id == CQL_TYPE_MAP;
}

/* ---- parsing type names: a tiny recursive descent over "name [< type, ... >]" ---- */

typedef struct {
  const char *s;
  size_t len, pos;
  int depth;
} tparser_t;

static void skip_ws(tparser_t *p) {
  while (p->pos < p->len && isspace((unsigned char)p->s[p->pos])) p->pos++;
}

static int parse_type(tparser_t *p, sl_cql_type_t **out);

static int parse_args(tparser_t *p, sl_cql_type_t *t, int min, int max) {
  skip_ws(p);
  if (p->pos >= p->len || p->s[p->pos] != '<') return -EINVAL;
  p->pos++;
  for (;;) {
    sl_cql_type_t *sub;
    if (parse_type(p, &sub) != 0) return -EINVAL;
    add_sub(t, sub);
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ',') {
      p->pos++;
      continue;
    }
    if (p->pos < p->len && p->s[p->pos] == '>') {
      p->pos++;
      break;
    }
    return -EINVAL;
  }
  if (t->nsub < min || (max > 0 && t->nsub > max)) return -EINVAL;
  return 0;
}

static int parse_type(tparser_t *p, sl_cql_type_t **out) {
  *out = NULL;
  if (++p->depth > 32) return -EINVAL;
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == '\'') { /* custom: 'class.Name' */
    size_t start = ++p->pos;
    while (p->pos < p->len && p->s[p->pos] != '\'') p->pos++;
    if (p->pos >= p->len) return -EINVAL;
    size_t n = p->pos - start;
    p->pos++;
    p->depth--;
    if (n == strlen(duration_class) && memcmp(p->s + start, duration_class, n) == 0) {
      *out = sl_cql_type_new(CQL_TYPE_DURATION);
      return 0;
    }
    sl_cql_type_t *t = sl_cql_type_new(CQL_TYPE_CUSTOM);
    t->custom = strndup(p->s + start, n);
    *out = t;
    return 0;
  }
  size_t start = p->pos;
  while (p->pos < p->len && (isalnum((unsigned char)p->s[p->pos]) || p->s[p->pos] == '_')) p->pos++;
  size_t n = p->pos - start;
  if (n == 0) return -EINVAL;
  const char *name = p->s + start;
#define IS(word) (n == sizeof(word) - 1 && strncasecmp(name, word, n) == 0)
  sl_cql_type_t *t = NULL;
  int rc = 0;
  if (IS("frozen")) {
    skip_ws(p);
    if (p->pos >= p->len || p->s[p->pos] != '<') return -EINVAL;
    p->pos++;
    if (parse_type(p, &t) != 0) {
      sl_cql_type_free(t);
      return -EINVAL;
    }
    skip_ws(p);
    if (p->pos >= p->len || p->s[p->pos] != '>') {
      sl_cql_type_free(t);
      return -EINVAL;
    }
    p->pos++;
    t->frozen = true;
  } else if (IS("list") || IS("set")) {
    t = sl_cql_type_new(IS("list") ? CQL_TYPE_LIST : CQL_TYPE_SET);
    rc = parse_args(p, t, 1, 1);
  } else if (IS("map")) {
    t = sl_cql_type_new(CQL_TYPE_MAP);
    rc = parse_args(p, t, 2, 2);
  } else if (IS("tuple")) {
    t = sl_cql_type_new(CQL_TYPE_TUPLE);
    t->frozen = true;
    rc = parse_args(p, t, 1, 0);
  } else {
    for (size_t i = 0; i < sizeof scalar_names / sizeof scalar_names[0]; i++) {
      if (n == strlen(scalar_names[i].name) && strncasecmp(name, scalar_names[i].name, n) == 0) {
        t = sl_cql_type_new(scalar_names[i].id);
        break;
      }
    }
    if (!t) return -EINVAL; /* user types are not supported yet */
  }
#undef IS
  if (rc != 0) {
    sl_cql_type_free(t);
    return rc;
  }
  p->depth--;
  *out = t;
  return 0;
}

int sl_cql_type_parse(const char *s, size_t len, sl_cql_type_t **out) {
  tparser_t p = {s, len, 0, 0};
  sl_cql_type_t *t;
  if (parse_type(&p, &t) != 0) {
    sl_cql_type_free(t);
    *out = NULL;
    return -EINVAL;
  }
  skip_ws(&p);
  if (p.pos != p.len) {
    sl_cql_type_free(t);
    *out = NULL;
    return -EINVAL;
  }
  *out = t;
  return 0;
}

static const char *scalar_name(uint16_t id) {
  if (id == CQL_TYPE_VARCHAR) return "text";
  for (size_t i = 0; i < sizeof scalar_names / sizeof scalar_names[0]; i++)
    if (scalar_names[i].id == id) return scalar_names[i].name;
  return "blob";
}

static void put_str(sl_buf_t *b, const char *s) { sl_buf_put(b, s, strlen(s)); }

void sl_cql_type_name(const sl_cql_type_t *t, sl_buf_t *out) {
  bool frozen = t->frozen && (sl_cql_type_is_collection(t) || t->id == CQL_TYPE_TUPLE || t->id == CQL_TYPE_UDT);
  if (frozen) put_str(out, "frozen<");
  switch (t->id) {
    case CQL_TYPE_LIST: put_str(out, "list<"); break;
    case CQL_TYPE_SET: put_str(out, "set<"); break;
    case CQL_TYPE_MAP: put_str(out, "map<"); break;
    case CQL_TYPE_TUPLE: put_str(out, "tuple<"); break;
    case CQL_TYPE_CUSTOM:
      sl_buf_put_u8(out, '\'');
      put_str(out, t->custom ? t->custom : "");
      sl_buf_put_u8(out, '\'');
      break;
    default: put_str(out, scalar_name(t->id)); break;
  }
  if (t->id == CQL_TYPE_LIST || t->id == CQL_TYPE_SET || t->id == CQL_TYPE_MAP || t->id == CQL_TYPE_TUPLE) {
    for (uint16_t i = 0; i < t->nsub; i++) {
      if (i) put_str(out, ", ");
      sl_cql_type_name(t->sub[i], out);
    }
    sl_buf_put_u8(out, '>');
  }
  if (frozen) sl_buf_put_u8(out, '>');
}

void sl_cql_type_write_option(sl_buf_t *b, const sl_cql_type_t *t) {
  if (t->id == CQL_TYPE_DURATION) {
    sl_buf_put_be16(b, CQL_TYPE_CUSTOM);
    sl_buf_put_be16(b, (uint16_t)strlen(duration_class));
    put_str(b, duration_class);
    return;
  }
  sl_buf_put_be16(b, t->id);
  switch (t->id) {
    case CQL_TYPE_CUSTOM:
      sl_buf_put_be16(b, (uint16_t)strlen(t->custom ? t->custom : ""));
      put_str(b, t->custom ? t->custom : "");
      break;
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET: sl_cql_type_write_option(b, t->sub[0]); break;
    case CQL_TYPE_MAP:
      sl_cql_type_write_option(b, t->sub[0]);
      sl_cql_type_write_option(b, t->sub[1]);
      break;
    case CQL_TYPE_TUPLE:
      sl_buf_put_be16(b, t->nsub);
      for (uint16_t i = 0; i < t->nsub; i++) sl_cql_type_write_option(b, t->sub[i]);
      break;
    default: break;
  }
}

/* ---- validation ---- */

static bool valid_utf8(const uint8_t *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t c = p[i];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= len) return false; /* truncated sequence */
    for (size_t k = 1; k <= n; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

static const char *validate_elems(const sl_cql_type_t *t, const uint8_t *p, size_t len) {
  sl_reader_t r;
  sl_reader_init(&r, p, len);
  int32_t n = (int32_t)sl_read_be32(&r);
  if (r.err || n < 0) return "Invalid collection: bad element count";
  size_t per = t->id == CQL_TYPE_MAP ? 8 : 4;
  if ((size_t)n > sl_reader_remaining(&r) / per) return "Invalid collection: not enough bytes for its elements";
  for (int32_t i = 0; i < n; i++) {
    for (int k = 0; k < (t->id == CQL_TYPE_MAP ? 2 : 1); k++) {
      int32_t el = (int32_t)sl_read_be32(&r);
      if (r.err || el < 0) return "Invalid collection: null or truncated element";
      const uint8_t *e = sl_read_bytes(&r, (size_t)el);
      if (!e) return "Invalid collection: truncated element";
      const char *m = sl_cql_value_validate(t->sub[k], e, (size_t)el);
      if (m) return m;
    }
  }
  if (sl_reader_remaining(&r) != 0) return "Invalid collection: trailing bytes";
  return NULL;
}

const char *sl_cql_value_validate(const sl_cql_type_t *t, const uint8_t *p, size_t len) {
  if (len == 0 && !sl_cql_type_is_collection(t)) return NULL;
  switch (t->id) {
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER: return len == 8 ? NULL : "Expected 8 or 0 byte long";
    case CQL_TYPE_TIMESTAMP: return len == 8 ? NULL : "Expected 8 or 0 byte long for date";
    case CQL_TYPE_DOUBLE: return len == 8 ? NULL : "Expected 8 or 0 byte value for a double";
    case CQL_TYPE_FLOAT: return len == 4 ? NULL : "Expected 4 or 0 byte value for a float";
    case CQL_TYPE_INT: return len == 4 ? NULL : "Expected 4 or 0 byte int";
    case CQL_TYPE_DATE: return len == 4 ? NULL : "Expected 4 byte long for date";
    case CQL_TYPE_SMALLINT: return len == 2 ? NULL : "Expected 2 bytes for a smallint";
    case CQL_TYPE_TINYINT: return len == 1 ? NULL : "Expected 1 byte for a tinyint";
    case CQL_TYPE_BOOLEAN: return len == 1 ? NULL : "Expected 1 or 0 byte value";
    case CQL_TYPE_UUID: return len == 16 ? NULL : "UUID should be 16 or 0 bytes";
    case CQL_TYPE_TIMEUUID:
      if (len != 16) return "UUID should be 16 or 0 bytes";
      return (p[6] >> 4) == 1 ? NULL : "Unsupported UUID version (timeuuid must be version 1)";
    case CQL_TYPE_INET: return len == 4 || len == 16 ? NULL : "Expected 4 or 16 byte inetaddress";
    case CQL_TYPE_DECIMAL: return len >= 4 ? NULL : "Expected at least 4 bytes for a decimal";
    case CQL_TYPE_TIME: {
      if (len != 8) return "Expected 8 byte long for time";
      int64_t ns = (int64_t)sl_load_be64(p);
      return ns >= 0 && ns <= 86399999999999LL ? NULL : "Time value out of range";
    }
    case CQL_TYPE_ASCII:
      for (size_t i = 0; i < len; i++)
        if (p[i] > 127) return "Invalid ASCII character";
      return NULL;
    case CQL_TYPE_VARCHAR: return valid_utf8(p, len) ? NULL : "Invalid UTF-8 bytes";
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
    case CQL_TYPE_MAP:
      if (len == 0) return NULL;
      return validate_elems(t, p, len);
    case CQL_TYPE_TUPLE: {
      sl_reader_t r;
      sl_reader_init(&r, p, len);
      for (uint16_t i = 0; i < t->nsub && sl_reader_remaining(&r) > 0; i++) {
        int32_t el = (int32_t)sl_read_be32(&r);
        if (r.err) return "Invalid tuple: truncated";
        if (el < 0) continue;
        const uint8_t *e = sl_read_bytes(&r, (size_t)el);
        if (!e) return "Invalid tuple: truncated element";
        const char *m = sl_cql_value_validate(t->sub[i], e, (size_t)el);
        if (m) return m;
      }
      return sl_reader_remaining(&r) == 0 ? NULL : "Invalid tuple: trailing bytes";
    }
    case CQL_TYPE_DURATION: {
      if (len == 0) return NULL;
      int32_t mo, d;
      int64_t ns;
      return sl_cql_duration_decode(p, len, &mo, &d, &ns) == 0 ? NULL : "Invalid duration value";
    }
    default: return NULL; /* blob, varint, custom */
  }
}

/* ---- textual forms ---- */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int sl_cql_parse_uuid(const char *s, size_t len, uint8_t out[16]) {
  if (len != 36) return -EINVAL;
  size_t o = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return -EINVAL;
      i++;
      continue;
    }
    int hi = hexval(s[i]), lo = hexval(s[i + 1]);
    if (hi < 0 || lo < 0) return -EINVAL;
    out[o++] = (uint8_t)(hi << 4 | lo);
    i += 2;
  }
  return 0;
}

void sl_cql_format_uuid(const uint8_t in[16], char out[37]) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[in[i] >> 4];
    out[o++] = hex[in[i] & 15];
  }
  out[o] = 0;
}

int64_t sl_cql_days_from_civil(int64_t y, unsigned m, unsigned d) {
  /* Howard Hinnant's days_from_civil algorithm. */
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* Reads exactly n digits at *i. */
static int digits(const char *s, size_t len, size_t *i, int n, int64_t *out) {
  int64_t v = 0;
  for (int k = 0; k < n; k++) {
    if (*i >= len || !isdigit((unsigned char)s[*i])) return -EINVAL;
    v = v * 10 + (s[(*i)++] - '0');
  }
  *out = v;
  return 0;
}

static int parse_ymd(const char *s, size_t len, size_t *i, int64_t *days) {
  int64_t y, m, d;
  bool neg = false;
  if (*i < len && (s[*i] == '-' || s[*i] == '+')) neg = s[(*i)++] == '-';
  size_t start = *i;
  y = 0;
  while (*i < len && isdigit((unsigned char)s[*i]) && *i - start < 9) y = y * 10 + (s[(*i)++] - '0');
  if (*i - start < 1) return -EINVAL;
  if (neg) y = -y;
  if (*i >= len || s[(*i)++] != '-') return -EINVAL;
  if (digits(s, len, i, 2, &m) != 0 || m < 1 || m > 12) return -EINVAL;
  if (*i >= len || s[(*i)++] != '-') return -EINVAL;
  if (digits(s, len, i, 2, &d) != 0 || d < 1 || d > 31) return -EINVAL;
  *days = sl_cql_days_from_civil(y, (unsigned)m, (unsigned)d);
  return 0;
}

/* HH:MM[:SS[.f{1,9}]] to ns. */
static int parse_hms(const char *s, size_t len, size_t *i, int64_t *ns) {
  int64_t h, mi, sec = 0, frac = 0;
  if (digits(s, len, i, 2, &h) != 0 || h > 23) return -EINVAL;
  if (*i >= len || s[(*i)++] != ':') return -EINVAL;
  if (digits(s, len, i, 2, &mi) != 0 || mi > 59) return -EINVAL;
  if (*i < len && s[*i] == ':') {
    (*i)++;
    if (digits(s, len, i, 2, &sec) != 0 || sec > 59) return -EINVAL;
    if (*i < len && s[*i] == '.') {
      (*i)++;
      int nd = 0;
      while (*i < len && isdigit((unsigned char)s[*i])) {
        if (nd < 9) {
          frac = frac * 10 + (s[*i] - '0');
          nd++;
        }
        (*i)++;
      }
      if (nd == 0) return -EINVAL;
      while (nd++ < 9) frac *= 10;
    }
  }
  *ns = ((h * 60 + mi) * 60 + sec) * 1000000000LL + frac;
  return 0;
}

int sl_cql_parse_timestamp(const char *s, size_t len, int64_t *ms) {
  size_t i = 0;
  int64_t days, ns = 0, offset_min = 0;
  if (parse_ymd(s, len, &i, &days) != 0) return -EINVAL;
  if (i < len && (s[i] == ' ' || s[i] == 'T')) {
    i++;
    if (parse_hms(s, len, &i, &ns) != 0) return -EINVAL;
  }
  while (i < len && s[i] == ' ') i++;
  if (i < len) {
    if (s[i] == 'Z' && i + 1 == len) {
      i++;
    } else if (s[i] == '+' || s[i] == '-') {
      int sign = s[i++] == '-' ? -1 : 1;
      int64_t hh, mm = 0;
      if (digits(s, len, &i, 2, &hh) != 0) return -EINVAL;
      if (i < len && s[i] == ':') i++;
      if (i < len && digits(s, len, &i, 2, &mm) != 0) return -EINVAL;
      offset_min = sign * (hh * 60 + mm);
    } else {
      return -EINVAL;
    }
  }
  if (i != len) return -EINVAL;
  *ms = days * 86400000LL + ns / 1000000 - offset_min * 60000;
  return 0;
}

int sl_cql_parse_date(const char *s, size_t len, uint32_t *out) {
  size_t i = 0;
  int64_t days;
  if (parse_ymd(s, len, &i, &days) != 0 || i != len) return -EINVAL;
  int64_t v = days + (1LL << 31);
  if (v < 0 || v > (int64_t)UINT32_MAX) return -EINVAL;
  *out = (uint32_t)v;
  return 0;
}

int sl_cql_parse_time(const char *s, size_t len, int64_t *ns) {
  size_t i = 0;
  if (parse_hms(s, len, &i, ns) != 0 || i != len) return -EINVAL;
  return 0;
}

int sl_cql_parse_inet(const char *s, size_t len, uint8_t out[16]) {
  char tmp[64];
  if (len == 0 || len >= sizeof tmp) return -EINVAL;
  memcpy(tmp, s, len);
  tmp[len] = 0;
  if (inet_pton(AF_INET, tmp, out) == 1) return 4;
  if (inet_pton(AF_INET6, tmp, out) == 1) return 16;
  return -EINVAL;
}

size_t sl_cql_varint_encode(int64_t v, uint8_t out[9]) {
  uint8_t tmp[8];
  sl_store_be64(tmp, (uint64_t)v);
  size_t i = 0;
  /* Drop leading bytes that only repeat the sign of the next one. */
  while (i < 7 && ((tmp[i] == 0x00 && !(tmp[i + 1] & 0x80)) || (tmp[i] == 0xFF && (tmp[i + 1] & 0x80)))) i++;
  memcpy(out, tmp + i, 8 - i);
  return 8 - i;
}

int sl_cql_varint_decode(const uint8_t *p, size_t len, int64_t *out) {
  if (len == 0 || len > 8) return -ERANGE;
  uint64_t v = (p[0] & 0x80) ? UINT64_MAX : 0;
  for (size_t i = 0; i < len; i++) v = v << 8 | p[i];
  *out = (int64_t)v;
  return 0;
}

/* ---- duration: three signed vints (months, days, nanoseconds), zigzag then Cassandra's unsigned vint ---- */

static size_t uvint_put(uint64_t v, uint8_t *out) {
  int lz = v ? __builtin_clzll(v) : 63;
  if (lz == 64) lz = 63;
  size_t size = (size_t)((639 - lz * 9) >> 6); /* 1..9 */
  if (size == 1) {
    out[0] = (uint8_t)v;
    return 1;
  }
  if (size > 9) size = 9; /* cannot happen (lz is 0..63); the bound lets gcc -O3 see out (27 bytes) is enough */
  for (size_t i = size; i > 0; i--) {
    out[i - 1] = (uint8_t)v;
    v >>= 8;
  }
  out[0] |= (uint8_t)~(0xFFu >> (size - 1));
  return size;
}

static int uvint_get(sl_reader_t *r, uint64_t *out) {
  uint8_t b = sl_read_u8(r);
  if (r->err) return -EINVAL;
  int extra = 0;
  while (extra < 8 && (b & (0x80 >> extra))) extra++;
  uint64_t v = extra == 8 ? 0 : (uint64_t)(b & (0xFF >> extra));
  for (int i = 0; i < extra; i++) {
    uint8_t c = sl_read_u8(r);
    if (r->err) return -EINVAL;
    v = v << 8 | c;
  }
  *out = v;
  return 0;
}

size_t sl_cql_duration_encode(int32_t months, int32_t days, int64_t nanos, uint8_t out[27]) {
  size_t n = 0;
  int64_t v[3] = {months, days, nanos};
  for (int i = 0; i < 3; i++) n += uvint_put(((uint64_t)v[i] << 1) ^ (uint64_t)(v[i] >> 63), out + n);
  return n;
}

int sl_cql_duration_decode(const uint8_t *p, size_t len, int32_t *months, int32_t *days, int64_t *nanos) {
  sl_reader_t r;
  sl_reader_init(&r, p, len);
  int64_t v[3];
  for (int i = 0; i < 3; i++) {
    uint64_t u;
    if (uvint_get(&r, &u) != 0) return -EINVAL;
    v[i] = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
  }
  if (sl_reader_remaining(&r) != 0 || v[0] < INT32_MIN || v[0] > INT32_MAX || v[1] < INT32_MIN || v[1] > INT32_MAX)
    return -EINVAL;
  /* the three parts share one sign */
  if ((v[0] < 0 || v[1] < 0 || v[2] < 0) && (v[0] > 0 || v[1] > 0 || v[2] > 0)) return -EINVAL;
  *months = (int32_t)v[0];
  *days = (int32_t)v[1];
  *nanos = v[2];
  return 0;
}

static int dur_add(int64_t *acc, int64_t n, int64_t unit) {
  if (n > INT64_MAX / unit || *acc > INT64_MAX - n * unit) return -ERANGE;
  *acc += n * unit;
  return 0;
}

int sl_cql_parse_duration(const char *s, size_t len, int32_t *months, int32_t *days, int64_t *nanos) {
  size_t i = 0;
  bool neg = false;
  if (i < len && s[i] == '-') {
    neg = true;
    i++;
  }
  int64_t mo = 0, d = 0, ns = 0;
  /* ISO 8601's alternative format, P0001-02-03T04:05:06 (years, months, days, hours, minutes, seconds) */
  if (len - i == 20 && (s[i] == 'P' || s[i] == 'p') && s[i + 5] == '-' && s[i + 8] == '-' && s[i + 11] == 'T' &&
      s[i + 14] == ':' && s[i + 17] == ':') {
    static const int at[6] = {1, 6, 9, 12, 15, 18}, width[6] = {4, 2, 2, 2, 2, 2};
    int64_t f[6];
    for (int k = 0; k < 6; k++) {
      f[k] = 0;
      for (int j = 0; j < width[k]; j++) {
        char c = s[i + (size_t)at[k] + (size_t)j];
        if (!isdigit((unsigned char)c)) return -EINVAL;
        f[k] = f[k] * 10 + (c - '0');
      }
    }
    mo = f[0] * 12 + f[1];
    d = f[2];
    ns = ((f[3] * 60 + f[4]) * 60 + f[5]) * 1000000000LL;
  } else if (i < len && (s[i] == 'P' || s[i] == 'p')) { /* ISO 8601: PnYnMnDTnHnMnS or PnW */
    i++;
    bool time = false, any = false;
    while (i < len) {
      if (s[i] == 'T' || s[i] == 't') {
        if (time) return -EINVAL;
        time = true;
        i++;
        continue;
      }
      if (!isdigit((unsigned char)s[i])) return -EINVAL;
      int64_t n = 0;
      while (i < len && isdigit((unsigned char)s[i])) {
        if (n > (INT64_MAX - 9) / 10) return -ERANGE;
        n = n * 10 + (s[i++] - '0');
      }
      if (i >= len) return -EINVAL;
      char u = (char)toupper((unsigned char)s[i++]);
      int rc;
      if (!time && u == 'Y') rc = dur_add(&mo, n, 12);
      else if (!time && u == 'M') rc = dur_add(&mo, n, 1);
      else if (!time && u == 'W') rc = dur_add(&d, n, 7);
      else if (!time && u == 'D') rc = dur_add(&d, n, 1);
      else if (time && u == 'H') rc = dur_add(&ns, n, 3600000000000LL);
      else if (time && u == 'M') rc = dur_add(&ns, n, 60000000000LL);
      else if (time && u == 'S') rc = dur_add(&ns, n, 1000000000LL);
      else return -EINVAL;
      if (rc) return rc;
      any = true;
    }
    if (!any) return -EINVAL;
  } else { /* 1y2mo3w4d5h6m7s8ms9us10ns (µs too) */
    if (i >= len) return -EINVAL;
    while (i < len) {
      if (!isdigit((unsigned char)s[i])) return -EINVAL;
      int64_t n = 0;
      while (i < len && isdigit((unsigned char)s[i])) {
        if (n > (INT64_MAX - 9) / 10) return -ERANGE;
        n = n * 10 + (s[i++] - '0');
      }
      size_t u0 = i;
      while (i < len && !isdigit((unsigned char)s[i])) i++;
      size_t ul = i - u0;
      char u[4] = {0};
      if (ul == 0 || ul > 3) return -EINVAL;
      for (size_t k = 0; k < ul; k++) u[k] = (char)tolower((unsigned char)s[u0 + k]);
      int rc;
      if (!strcmp(u, "y")) rc = dur_add(&mo, n, 12);
      else if (!strcmp(u, "mo")) rc = dur_add(&mo, n, 1);
      else if (!strcmp(u, "w")) rc = dur_add(&d, n, 7);
      else if (!strcmp(u, "d")) rc = dur_add(&d, n, 1);
      else if (!strcmp(u, "h")) rc = dur_add(&ns, n, 3600000000000LL);
      else if (!strcmp(u, "m")) rc = dur_add(&ns, n, 60000000000LL);
      else if (!strcmp(u, "s")) rc = dur_add(&ns, n, 1000000000LL);
      else if (!strcmp(u, "ms")) rc = dur_add(&ns, n, 1000000LL);
      else if (!strcmp(u, "us") || !strcmp(u, "\xc2\xb5s")) rc = dur_add(&ns, n, 1000LL);
      else if (!strcmp(u, "ns")) rc = dur_add(&ns, n, 1);
      else return -EINVAL;
      if (rc) return rc;
    }
  }
  if (mo > INT32_MAX || d > INT32_MAX) return -ERANGE;
  *months = (int32_t)(neg ? -mo : mo);
  *days = (int32_t)(neg ? -d : d);
  *nanos = neg ? -ns : ns;
  return 0;
}
