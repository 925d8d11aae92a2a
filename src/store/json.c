/* SELECT JSON and INSERT JSON.
 *
 * SELECT JSON: each result row becomes one text column "[json]" holding an object of the selected columns, values
 * in Cassandra's JSON forms (numbers for integer, float and decimal types; strings for text, uuid, inet, dates
 * ("2024-01-02 03:04:05.123Z"), times, durations and blobs ("0x..."); arrays for lists, sets and tuples; objects
 * for maps, a non-text key written as the string of its JSON form).
 *
 * INSERT JSON: the text is parsed (bounded depth) into literal terms typed by the table's columns, so the insert
 * then runs exactly like INSERT ... VALUES; columns the object leaves out are set to null (DEFAULT NULL) or left
 * alone (DEFAULT UNSET). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/exec_internal.h"
#include "store/keycodec.h"

/* ---- output ---- */

static void json_string(sl_buf_t *out, const char *s, size_t n) {
  sl_buf_put_u8(out, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      sl_buf_put_u8(out, '\\');
      sl_buf_put_u8(out, c);
    } else if (c < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", c);
      sl_buf_put(out, e, 6);
    } else {
      sl_buf_put_u8(out, c);
    }
  }
  sl_buf_put_u8(out, '"');
}

static void civil(int64_t days, int64_t *y, unsigned *m, unsigned *d) {
  days += 719468;
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  unsigned doe = (unsigned)(days - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put_text(sl_buf_t *out, const char *s) { sl_buf_put(out, s, strlen(s)); }

static int64_t be_int(const uint8_t *p, size_t len) {
  uint64_t v = (len && (p[0] & 0x80)) ? UINT64_MAX : 0;
  for (size_t i = 0; i < len; i++) v = v << 8 | p[i];
  return (int64_t)v;
}

static void duration_text(sl_buf_t *out, const uint8_t *p, size_t len) {
  int32_t mo, d;
  int64_t ns;
  char tmp[160];
  if (sl_cql_duration_decode(p, len, &mo, &d, &ns) != 0) {
    put_text(out, "null");
    return;
  }
  size_t o = 0;
  bool neg = mo < 0 || d < 0 || ns < 0;
  uint64_t um = (uint64_t)(mo < 0 ? -(int64_t)mo : mo), ud = (uint64_t)(d < 0 ? -(int64_t)d : d);
  uint64_t un = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
  o += (size_t)snprintf(tmp + o, sizeof tmp - o, "\"%s", neg ? "-" : "");
  if (um / 12) o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%lluy", (unsigned long long)(um / 12));
  if (um % 12) o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%llumo", (unsigned long long)(um % 12));
  if (ud) o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%llud", (unsigned long long)ud);
  static const struct {
    uint64_t ns;
    const char *u;
  } units[] = {{3600000000000ULL, "h"}, {60000000000ULL, "m"}, {1000000000ULL, "s"},
               {1000000ULL, "ms"},      {1000ULL, "us"},       {1, "ns"}};
  for (size_t i = 0; i < 6; i++)
    if (un / units[i].ns) {
      o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%llu%s", (unsigned long long)(un / units[i].ns), units[i].u);
      un %= units[i].ns;
    }
  if (!um && !ud && !ns) o += (size_t)snprintf(tmp + o, sizeof tmp - o, "0s");
  snprintf(tmp + o, sizeof tmp - o, "\"");
  put_text(out, tmp);
}

void sl_json_value(sl_buf_t *out, const sl_cql_type_t *t, const uint8_t *p, size_t len) {
  char tmp[96];
  if (!p) {
    put_text(out, "null");
    return;
  }
  if (len == 0 && t->id != CQL_TYPE_VARCHAR && t->id != CQL_TYPE_ASCII && t->id != CQL_TYPE_BLOB) {
    put_text(out, "null");
    return;
  }
  switch (t->id) {
    case CQL_TYPE_VARCHAR:
    case CQL_TYPE_ASCII: json_string(out, (const char *)p, len); return;
    case CQL_TYPE_BOOLEAN: put_text(out, p[0] ? "true" : "false"); return;
    case CQL_TYPE_TINYINT:
    case CQL_TYPE_SMALLINT:
    case CQL_TYPE_INT:
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER:
      snprintf(tmp, sizeof tmp, "%lld", (long long)be_int(p, len));
      put_text(out, tmp);
      return;
    case CQL_TYPE_FLOAT:
    case CQL_TYPE_DOUBLE: {
      double d;
      if (len == 4) {
        uint32_t u = sl_load_be32(p);
        float f;
        memcpy(&f, &u, 4);
        d = f;
        snprintf(tmp, sizeof tmp, "%.9g", d);
      } else if (len == 8) {
        uint64_t u = sl_load_be64(p);
        memcpy(&d, &u, 8);
        snprintf(tmp, sizeof tmp, "%.17g", d);
      } else {
        break;
      }
      if (isnan(d)) put_text(out, "NaN");
      else if (isinf(d)) put_text(out, d > 0 ? "Infinity" : "-Infinity");
      else put_text(out, tmp);
      return;
    }
    case CQL_TYPE_VARINT:
    case CQL_TYPE_DECIMAL: {
      char *s = sl_numeric_text(t, p, len);
      put_text(out, s ? s : "null");
      free(s);
      return;
    }
    case CQL_TYPE_TIMESTAMP: {
      int64_t ms = be_int(p, len), days = ms / 86400000, rem = ms % 86400000;
      if (rem < 0) {
        rem += 86400000;
        days--;
      }
      int64_t y;
      unsigned m, d;
      civil(days, &y, &m, &d);
      snprintf(tmp, sizeof tmp, "\"%04lld-%02u-%02u %02lld:%02lld:%02lld.%03lldZ\"", (long long)y, m, d,
               (long long)(rem / 3600000), (long long)(rem / 60000 % 60), (long long)(rem / 1000 % 60),
               (long long)(rem % 1000));
      put_text(out, tmp);
      return;
    }
    case CQL_TYPE_DATE: {
      if (len != 4) break;
      int64_t y;
      unsigned m, d;
      civil((int64_t)sl_load_be32(p) - (1LL << 31), &y, &m, &d);
      snprintf(tmp, sizeof tmp, "\"%04lld-%02u-%02u\"", (long long)y, m, d);
      put_text(out, tmp);
      return;
    }
    case CQL_TYPE_TIME: {
      int64_t ns = be_int(p, len);
      snprintf(tmp, sizeof tmp, "\"%02lld:%02lld:%02lld.%09lld\"", (long long)(ns / 3600000000000LL),
               (long long)(ns / 60000000000LL % 60), (long long)(ns / 1000000000LL % 60),
               (long long)(ns % 1000000000LL));
      put_text(out, tmp);
      return;
    }
    case CQL_TYPE_UUID:
    case CQL_TYPE_TIMEUUID: {
      char u[37];
      if (len != 16) break;
      sl_cql_format_uuid(p, u);
      json_string(out, u, 36);
      return;
    }
    case CQL_TYPE_INET: {
      char a[64];
      if (len == 4) {
        snprintf(a, sizeof a, "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
      } else if (len == 16) {
        size_t o = 0;
        for (int i = 0; i < 8; i++)
          o += (size_t)snprintf(a + o, sizeof a - o, i ? ":%x" : "%x", sl_load_be16(p + 2 * i));
      } else {
        break;
      }
      json_string(out, a, strlen(a));
      return;
    }
    case CQL_TYPE_DURATION: duration_text(out, p, len); return;
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
    case CQL_TYPE_MAP:
    case CQL_TYPE_TUPLE: {
      sl_reader_t r;
      sl_reader_init(&r, p, len);
      bool map = t->id == CQL_TYPE_MAP, tuple = t->id == CQL_TYPE_TUPLE;
      size_t n = tuple ? t->nsub : sl_read_be32(&r);
      sl_buf_put_u8(out, map ? '{' : '[');
      for (size_t i = 0; i < n && !r.err; i++) {
        if (tuple && sl_reader_remaining(&r) == 0) break;
        if (i) sl_buf_put_u8(out, ',');
        for (int k = 0; k < (map ? 2 : 1); k++) {
          int32_t el = (int32_t)sl_read_be32(&r);
          const uint8_t *e = el >= 0 ? sl_read_bytes(&r, (size_t)el) : NULL;
          if (r.err) break;
          if (e && !el) e = (const uint8_t *)"";
          const sl_cql_type_t *et = tuple ? t->sub[i] : t->sub[map ? k : 0];
          if (map && k == 0) { /* object keys are strings */
            sl_buf_t kb;
            sl_buf_init(&kb);
            sl_json_value(&kb, et, e, e ? (size_t)el : 0);
            if (kb.len && kb.data[0] == '"') sl_buf_put(out, kb.data, kb.len);
            else json_string(out, (const char *)kb.data, kb.len);
            sl_buf_free(&kb);
            sl_buf_put_u8(out, ':');
          } else {
            sl_json_value(out, et, e, e ? (size_t)el : 0);
          }
        }
      }
      sl_buf_put_u8(out, map ? '}' : ']');
      return;
    }
    default: break;
  }
  /* blobs and anything else: hex */
  sl_buf_put(out, "\"0x", 3);
  for (size_t i = 0; i < len; i++) {
    snprintf(tmp, sizeof tmp, "%02x", p[i]);
    sl_buf_put(out, tmp, 2);
  }
  sl_buf_put_u8(out, '"');
}

/* A column name as Cassandra writes it in JSON: quoted when it is not all lower case. */
void sl_json_column_name(sl_buf_t *out, const char *name) {
  bool plain = true;
  for (const char *c = name; *c; c++)
    if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_')) plain = false;
  if (plain) {
    json_string(out, name, strlen(name));
    return;
  }
  sl_buf_t q;
  sl_buf_init(&q);
  sl_buf_put_u8(&q, '"');
  put_text(&q, name);
  sl_buf_put_u8(&q, '"');
  json_string(out, (const char *)q.data, q.len);
  sl_buf_free(&q);
}

/* ---- input ---- */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jkind_t;
typedef struct jval jval_t;
struct jval {
  jkind_t kind;
  const char *s; /* J_STR: unescaped; J_NUM: the literal */
  size_t len;
  bool b;
  jval_t **items; /* J_ARR: values; J_OBJ: key (J_STR), value alternating */
  size_t n;
};

typedef struct {
  sl_arena_t *a;
  const char *p, *end;
  const char *err;
} jp_t;

static void jws(jp_t *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static void put_utf8(sl_buf_t *b, uint32_t c) {
  if (c < 0x80) {
    sl_buf_put_u8(b, (uint8_t)c);
  } else if (c < 0x800) {
    sl_buf_put_u8(b, (uint8_t)(0xC0 | c >> 6));
    sl_buf_put_u8(b, (uint8_t)(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    sl_buf_put_u8(b, (uint8_t)(0xE0 | c >> 12));
    sl_buf_put_u8(b, (uint8_t)(0x80 | ((c >> 6) & 0x3F)));
    sl_buf_put_u8(b, (uint8_t)(0x80 | (c & 0x3F)));
  } else {
    sl_buf_put_u8(b, (uint8_t)(0xF0 | c >> 18));
    sl_buf_put_u8(b, (uint8_t)(0x80 | ((c >> 12) & 0x3F)));
    sl_buf_put_u8(b, (uint8_t)(0x80 | ((c >> 6) & 0x3F)));
    sl_buf_put_u8(b, (uint8_t)(0x80 | (c & 0x3F)));
  }
}

static int hex4(const char *p, uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return -1;
    v = v << 4 | (uint32_t)d;
  }
  *out = v;
  return 0;
}

static bool jstring(jp_t *j, jval_t *v) {
  j->p++; /* the opening quote */
  sl_buf_t b;
  sl_buf_init(&b);
  static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
  for (;;) {
    if (j->p >= j->end) {
      j->err = "unterminated string";
      break;
    }
    char c = *j->p++;
    if (c == '"') {
      v->kind = J_STR;
      v->s = sl_arena_strndup(j->a, b.data ? (const char *)b.data : "", b.len);
      v->len = b.len;
      sl_buf_free(&b);
      return true;
    }
    if ((unsigned char)c < 0x20) {
      j->err = "control character in string";
      break;
    }
    if (c != '\\') {
      sl_buf_put_u8(&b, (uint8_t)c);
      continue;
    }
    if (j->p >= j->end) {
      j->err = "bad escape";
      break;
    }
    c = *j->p++;
    const char *simple = c ? strchr(esc_in, c) : NULL;
    if (simple) {
      sl_buf_put_u8(&b, (uint8_t)esc_out[simple - esc_in]);
      continue;
    }
    uint32_t u;
    if (c != 'u' || j->end - j->p < 4 || hex4(j->p, &u) != 0) {
      j->err = "bad escape";
      break;
    }
    j->p += 4;
    if (u >= 0xD800 && u < 0xDC00) { /* a surrogate pair */
      uint32_t lo;
      if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || hex4(j->p + 2, &lo) != 0 || lo < 0xDC00 ||
          lo > 0xDFFF) {
        j->err = "bad surrogate pair";
        break;
      }
      j->p += 6;
      u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    } else if (u >= 0xDC00 && u < 0xE000) {
      j->err = "bad surrogate pair";
      break;
    }
    put_utf8(&b, u);
  }
  sl_buf_free(&b);
  return false;
}

static jval_t *jparse(jp_t *j, int depth) {
  jws(j);
  if (depth > 32) {
    j->err = "too deeply nested";
    return NULL;
  }
  if (j->p >= j->end) {
    j->err = "unexpected end";
    return NULL;
  }
  jval_t *v = sl_arena_alloc(j->a, sizeof *v);
  char c = *j->p;
  if (c == '"') return jstring(j, v) ? v : NULL;
  if (c == '[' || c == '{') {
    bool obj = c == '{';
    j->p++;
    v->kind = obj ? J_OBJ : J_ARR;
    sl_vec_t items = {0};
    jws(j);
    if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
      j->p++;
    } else {
      for (;;) {
        jws(j);
        if (obj) {
          if (j->p >= j->end || *j->p != '"') {
            j->err = "expected a string key";
            return NULL;
          }
          jval_t *k = sl_arena_alloc(j->a, sizeof *k);
          if (!jstring(j, k)) return NULL;
          jws(j);
          if (j->p >= j->end || *j->p != ':') {
            j->err = "expected ':'";
            return NULL;
          }
          j->p++;
          sl_vec_push(j->a, &items, k);
        }
        jval_t *e = jparse(j, depth + 1);
        if (!e) return NULL;
        sl_vec_push(j->a, &items, e);
        jws(j);
        if (j->p < j->end && *j->p == ',') {
          j->p++;
          continue;
        }
        if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
          j->p++;
          break;
        }
        j->err = obj ? "expected ',' or '}'" : "expected ',' or ']'";
        return NULL;
      }
    }
    v->items = (jval_t **)items.items;
    v->n = items.n;
    return v;
  }
  if (c == '-' || isdigit((unsigned char)c)) {
    const char *s = j->p;
    j->p++;
    while (j->p < j->end && (isdigit((unsigned char)*j->p) || (*j->p && strchr(".eE+-", *j->p)))) j->p++;
    v->kind = J_NUM;
    v->s = s;
    v->len = (size_t)(j->p - s);
    return v;
  }
  static const struct {
    const char *w;
    jkind_t k;
    bool b;
  } words[] = {{"null", J_NULL, false}, {"true", J_BOOL, true}, {"false", J_BOOL, false}};
  for (size_t i = 0; i < 3; i++) {
    size_t n = strlen(words[i].w);
    if ((size_t)(j->end - j->p) >= n && !memcmp(j->p, words[i].w, n)) {
      j->p += n;
      v->kind = words[i].k;
      v->b = words[i].b;
      return v;
    }
  }
  j->err = "unexpected character";
  return NULL;
}

static bool is_number_text(const char *s, size_t n, bool *is_float) {
  *is_float = false;
  if (!n) return false;
  size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
  if (i >= n) return false;
  bool digit = false;
  for (; i < n; i++) {
    if (isdigit((unsigned char)s[i])) digit = true;
    else if (s[i] && strchr(".eE+-", s[i])) *is_float = true;
    else return false;
  }
  return digit;
}

/* A JSON value as a literal term of type t (NULL with x failed). */
static cql_term_t *to_term(sl_exec_t *x, const jval_t *v, const sl_cql_type_t *t, const char *col) {
  cql_term_t *term = sl_arena_alloc(x->a, sizeof *term);
  bool fl;
  switch (v->kind) {
    case J_NULL: term->kind = TERM_NULL; return term;
    case J_BOOL:
      term->kind = TERM_BOOL;
      term->boolean = v->b;
      return term;
    case J_NUM:
      if (!is_number_text(v->s, v->len, &fl)) break;
      term->kind = fl ? TERM_FLOAT : TERM_INTEGER;
      term->text = v->s;
      term->len = v->len;
      return term;
    case J_STR:
      term->text = v->s;
      term->len = v->len;
      switch (t->id) {
        case CQL_TYPE_BLOB:
          if (v->len < 2 || v->s[0] != '0' || (v->s[1] != 'x' && v->s[1] != 'X')) break;
          term->kind = TERM_BLOB;
          term->text = v->s + 2;
          term->len = v->len - 2;
          return term;
        case CQL_TYPE_DURATION: term->kind = TERM_DURATION; return term;
        case CQL_TYPE_BOOLEAN:
          term->kind = TERM_BOOL;
          if (v->len == 4 && !strncasecmp(v->s, "true", 4)) term->boolean = true;
          else if (!(v->len == 5 && !strncasecmp(v->s, "false", 5))) break;
          return term;
        case CQL_TYPE_TINYINT:
        case CQL_TYPE_SMALLINT:
        case CQL_TYPE_INT:
        case CQL_TYPE_BIGINT:
        case CQL_TYPE_VARINT:
        case CQL_TYPE_FLOAT:
        case CQL_TYPE_DOUBLE:
        case CQL_TYPE_DECIMAL:
          if (!is_number_text(v->s, v->len, &fl)) break;
          term->kind = fl ? TERM_FLOAT : TERM_INTEGER;
          return term;
        default: term->kind = TERM_STRING; return term;
      }
      break;
    case J_ARR:
      if (t->id != CQL_TYPE_LIST && t->id != CQL_TYPE_SET && t->id != CQL_TYPE_TUPLE) break;
      if (t->id == CQL_TYPE_TUPLE && v->n > t->nsub) break;
      term->kind = t->id == CQL_TYPE_LIST ? TERM_LIST : t->id == CQL_TYPE_SET ? TERM_SET : TERM_TUPLE;
      term->items = sl_arena_alloc(x->a, (v->n + 1) * sizeof *term->items);
      term->nitems = v->n;
      for (size_t i = 0; i < v->n; i++)
        if (!(term->items[i] = to_term(x, v->items[i], t->sub[t->id == CQL_TYPE_TUPLE ? i : 0], col))) return NULL;
      return term;
    case J_OBJ:
      if (t->id != CQL_TYPE_MAP) break;
      term->kind = TERM_MAP;
      term->items = sl_arena_alloc(x->a, (v->n + 1) * sizeof *term->items);
      term->nitems = v->n;
      for (size_t i = 0; i + 1 < v->n; i += 2) {
        const jval_t *k = v->items[i];
        const sl_cql_type_t *kt = t->sub[0];
        if (kt->id != CQL_TYPE_VARCHAR && kt->id != CQL_TYPE_ASCII) { /* "1" for an int key: its JSON form */
          jp_t kj = {.a = x->a, .p = k->s, .end = k->s + k->len};
          jval_t *kv = jparse(&kj, 1);
          jws(&kj);
          if (kv && !kj.err && kj.p == kj.end) k = kv;
        }
        if (!(term->items[i] = to_term(x, k, kt, col)) ||
            !(term->items[i + 1] = to_term(x, v->items[i + 1], t->sub[1], col)))
          return NULL;
      }
      return term;
  }
  sl_exec_fail(x, CQL_ERR_INVALID, "Error decoding JSON value for %s: invalid value for its type", col);
  return NULL;
}

/* A whole JSON document (nothing after it but spaces), or NULL after failing the request with the reason. */
static jval_t *parse_document(sl_exec_t *x, sl_slice_t text) {
  jp_t j = {.a = x->a, .p = (const char *)text.ptr, .end = (const char *)text.ptr + text.len};
  jval_t *root = jparse(&j, 0);
  if (root) {
    jws(&j);
    if (j.p != j.end) j.err = "trailing characters";
  }
  if (!root || j.err) {
    sl_exec_fail(x, CQL_ERR_INVALID, "Could not decode JSON string: %s", j.err ? j.err : "?");
    return NULL;
  }
  return root;
}

int sl_exec_json_insert(sl_exec_t *x, const cql_stmt_t *s, const sl_table_t *t, cql_stmt_t **out) {
  static sl_cql_type_t text = {.id = CQL_TYPE_VARCHAR};
  cql_value_t jv;
  if (sl_exec_term_value(x, s->json_value, &text, &jv) != 0) return -1;
  if (jv.kind != CQL_VALUE_SET) return sl_exec_fail(x, CQL_ERR_INVALID, "Got null for INSERT JSON values");
  jval_t *root = parse_document(x, jv.v);
  if (!root) return -1;
  if (root->kind != J_OBJ) return sl_exec_fail(x, CQL_ERR_INVALID, "Could not decode JSON string as a map");
  cql_stmt_t *n = sl_arena_alloc(x->a, sizeof *n);
  *n = *s;
  n->json = false;
  memset(&n->columns, 0, sizeof n->columns);
  memset(&n->values, 0, sizeof n->values);
  bool *seen = sl_arena_alloc(x->a, t->ncols + 1);
  for (size_t i = 0; i + 1 < root->n; i += 2) {
    const jval_t *k = root->items[i];
    /* "\"Name\"" names a case-sensitive column; other names are folded like unquoted identifiers */
    char *name;
    if (k->len >= 2 && k->s[0] == '"' && k->s[k->len - 1] == '"') {
      name = sl_arena_strndup(x->a, k->s + 1, k->len - 2);
    } else {
      name = sl_arena_strndup(x->a, k->s, k->len);
      for (char *c = name; *c; c++) *c = (char)tolower((unsigned char)*c);
    }
    const sl_column_t *c = sl_table_column(t, name);
    if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "JSON values map contains unrecognized column: %s", name);
    size_t ci = (size_t)(c - t->cols);
    if (seen[ci]) return sl_exec_fail(x, CQL_ERR_INVALID, "JSON values map contains column %s twice", name);
    seen[ci] = true;
    cql_term_t *term = to_term(x, root->items[i + 1], c->type, c->name);
    if (!term) return -1;
    sl_vec_push(x->a, &n->columns, (void *)c->name);
    sl_vec_push(x->a, &n->values, term);
  }
  if (!s->json_default_unset)
    for (size_t ci = t->npk + t->nck; ci < t->ncols; ci++)
      if (!seen[ci]) {
        cql_term_t *null = sl_arena_alloc(x->a, sizeof *null);
        null->kind = TERM_NULL;
        sl_vec_push(x->a, &n->columns, (void *)t->cols[ci].name);
        sl_vec_push(x->a, &n->values, null);
      }
  *out = n;
  return 0;
}

int sl_exec_from_json(sl_exec_t *x, const cql_term_t *arg, const sl_cql_type_t *t, cql_value_t *out) {
  static sl_cql_type_t text = {.id = CQL_TYPE_VARCHAR};
  cql_value_t jv;
  if (sl_exec_term_value(x, arg, &text, &jv) != 0) return -1;
  if (jv.kind != CQL_VALUE_SET) {
    *out = jv; /* fromJson(null) is null */
    return 0;
  }
  jval_t *root = parse_document(x, jv.v);
  if (!root) return -1;
  cql_term_t *term = to_term(x, root, t, "fromJson()");
  if (!term) return -1;
  return sl_exec_term_value(x, term, t, out);
}
