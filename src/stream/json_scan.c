/* Single-pass JSON scanner with path extraction (see json_scan.h for what it accepts and why). */
#include "stream/json_scan.h"

#include <errno.h>
#include <float.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *key; /* NULL: an array index */
  size_t keylen, index;
  int slot;        /* -1: only on the way to deeper paths */
  int child, next; /* first child, next sibling; -1: none */
} jnode_t;

struct sl_jpaths {
  jnode_t *nodes; /* nodes[0]: the document (an object) */
  size_t n, cap;
  int nslots;
};

sl_jpaths_t *sl_jpaths_new(void) {
  sl_jpaths_t *t = calloc(1, sizeof *t);
  if (!t) abort();
  t->cap = 16;
  t->nodes = malloc(t->cap * sizeof *t->nodes);
  if (!t->nodes) abort();
  t->nodes[0] = (jnode_t){NULL, 0, 0, -1, -1, -1};
  t->n = 1;
  return t;
}

void sl_jpaths_free(sl_jpaths_t *t) {
  if (!t) return;
  for (size_t i = 0; i < t->n; i++) free(t->nodes[i].key);
  free(t->nodes);
  free(t);
}

size_t sl_jpaths_slots(const sl_jpaths_t *t) { return (size_t)t->nslots; }

int sl_jpaths_add(sl_jpaths_t *t, const sl_path_t *path) {
  int cur = 0;
  for (size_t i = 0; i < path->nsteps; i++) {
    const struct sl_path_step *st = &path->steps[i];
    size_t klen = st->key ? strlen(st->key) : 0;
    int c = t->nodes[cur].child, last = -1;
    for (; c >= 0; last = c, c = t->nodes[c].next) {
      const jnode_t *nd = &t->nodes[c];
      if (st->key ? nd->key && nd->keylen == klen && memcmp(nd->key, st->key, klen) == 0
                  : !nd->key && nd->index == st->index)
        break;
    }
    if (c < 0) {
      if (t->n == t->cap) {
        t->cap *= 2;
        jnode_t *nn = realloc(t->nodes, t->cap * sizeof *nn);
        if (!nn) abort();
        t->nodes = nn;
      }
      c = (int)t->n++;
      char *k = NULL;
      if (st->key) {
        k = malloc(klen + 1);
        if (!k) abort();
        memcpy(k, st->key, klen + 1);
      }
      t->nodes[c] = (jnode_t){k, klen, st->key ? 0 : st->index, -1, -1, -1};
      if (last < 0)
        t->nodes[cur].child = c;
      else
        t->nodes[last].next = c;
    }
    cur = c;
  }
  if (cur == 0) return -1;
  if (t->nodes[cur].slot < 0) {
    if (t->nslots >= SL_JSCAN_MAX_SLOTS) return -1;
    t->nodes[cur].slot = t->nslots++;
  }
  return t->nodes[cur].slot;
}

/* ------------------------------------------------------------------------------------------------ scanning */
typedef struct {
  const unsigned char *p, *end;
  const jnode_t *nodes;
  sl_jv_t *out;
  char *scratch;
  size_t scap, sused;
  int depth;
  size_t nkeys;
  struct {
    const unsigned char *s;
    size_t len;
  } keys[SL_JSCAN_MAX_KEYS];
} scan_t;

/* byte classes inside strings: 0 plain ASCII, 1 quote, 2 backslash, 3 control, 4 non-ASCII */
static const unsigned char str_class[256] = {
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

static inline void skip_ws(scan_t *sc) {
  while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\n' || *sc->p == '\r' || *sc->p == '\t')) sc->p++;
}

static inline bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, surrogates or code points above
 * U+10FFFF; jansson's utf8_check_first/utf8_check_full), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
  unsigned char c = p[0];
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c < 0xC2) return 0;
  if (c < 0xE0) {
    n = 2;
  } else if (c < 0xF0) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c < 0xF5) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if ((size_t)(end - p) < n) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return n;
}

static int hex4(const unsigned char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = p[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v << 4 | d;
  }
  return v;
}

/* Checks the escape at p (just after the backslash); returns its length after the backslash, or 0. */
static size_t check_escape(const unsigned char *p, const unsigned char *end, uint32_t *cp) {
  if (p >= end) return 0;
  switch (*p) {
    case '"': *cp = '"'; return 1;
    case '\\': *cp = '\\'; return 1;
    case '/': *cp = '/'; return 1;
    case 'b': *cp = '\b'; return 1;
    case 'f': *cp = '\f'; return 1;
    case 'n': *cp = '\n'; return 1;
    case 'r': *cp = '\r'; return 1;
    case 't': *cp = '\t'; return 1;
    case 'u': {
      if (end - p < 5) return 0;
      int u = hex4(p + 1);
      if (u <= 0) return 0; /* invalid, or \u0000 (left to jansson) */
      if (u >= 0xDC00 && u <= 0xDFFF) return 0;
      if (u >= 0xD800 && u <= 0xDBFF) {
        if (end - p < 11 || p[5] != '\\' || p[6] != 'u') return 0;
        int lo = hex4(p + 7);
        if (lo < 0xDC00 || lo > 0xDFFF) return 0;
        *cp = 0x10000 + (((uint32_t)u - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
        return 11;
      }
      *cp = (uint32_t)u;
      return 5;
    }
    default: return 0;
  }
}

static size_t utf8_put(uint32_t cp, char *o) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12);
    o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18);
  o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* At the opening quote. Sets *s and *len to the raw contents; *escaped when there are escapes. */
static bool scan_string(scan_t *sc, const unsigned char **s, size_t *len, bool *escaped) {
  const unsigned char *p = sc->p + 1, *end = sc->end;
  *s = p;
  *escaped = false;
  for (;;) {
    while (p < end && str_class[*p] == 0) p++;
    if (p >= end) return false;
    switch (str_class[*p]) {
      case 1:
        *len = (size_t)(p - *s);
        sc->p = p + 1;
        return true;
      case 2: {
        uint32_t cp;
        size_t n = check_escape(p + 1, end, &cp);
        if (!n) return false;
        *escaped = true;
        p += 1 + n;
        break;
      }
      case 3: return false;
      default: {
        size_t n = utf8_seq(p, end);
        if (!n) return false;
        p += n;
      }
    }
  }
}

/* Decodes a checked string with escapes into the scratch space. */
static bool decode_string(scan_t *sc, const unsigned char *s, size_t len, sl_jv_t *v) {
  if (sc->scap - sc->sused < len) return false; /* decoding never grows a string */
  char *o = sc->scratch + sc->sused, *start = o;
  const unsigned char *end = s + len;
  while (s < end) {
    if (*s != '\\') {
      *o++ = (char)*s++;
      continue;
    }
    uint32_t cp = 0;
    size_t n = check_escape(s + 1, end, &cp);
    s += 1 + n;
    o += utf8_put(cp, o);
  }
  v->s = start;
  v->len = (size_t)(o - start);
  sc->sused += v->len;
  return true;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* RFC 8259 number at sc->p; checked the way jansson's lexer does, valued the way jansson values it. */
static bool scan_number(scan_t *sc, sl_jv_t *v) {
  const unsigned char *start = sc->p, *p = start, *end = sc->end;
  bool neg = false;
  if (*p == '-') neg = true, p++;
  if (p >= end) return false;
  const unsigned char *int_start = p;
  if (*p == '0') {
    p++;
    if (p < end && is_digit(*p)) return false;
  } else if (is_digit(*p)) {
    while (p < end && is_digit(*p)) p++;
  } else {
    return false;
  }
  const unsigned char *int_end = p, *frac_start = p, *frac_end = p;
  bool real = false;
  if (p < end && *p == '.') {
    real = true;
    frac_start = ++p;
    if (p >= end || !is_digit(*p)) return false;
    while (p < end && is_digit(*p)) p++;
    frac_end = p;
  }
  int64_t ex = 0;
  if (p < end && (*p == 'e' || *p == 'E')) {
    real = true;
    p++;
    bool eneg = false;
    if (p < end && (*p == '+' || *p == '-')) eneg = *p == '-', p++;
    if (p >= end || !is_digit(*p)) return false;
    while (p < end && is_digit(*p)) {
      if (ex < 100000) ex = ex * 10 + (*p - '0');
      p++;
    }
    if (eneg) ex = -ex;
  }
  sc->p = p;
  if (!real) {
    size_t nd = (size_t)(int_end - int_start);
    if (nd > 18) return false; /* may be out of range: jansson decides */
    int64_t x = 0;
    for (const unsigned char *q = int_start; q < int_end; q++) x = x * 10 + (*q - '0');
    v->kind = SL_JV_INT;
    v->i = neg ? -x : x;
    return true;
  }
  v->kind = SL_JV_REAL;
  uint64_t m = 0;
  int nd = 0;
  int64_t e10 = ex;
  for (const unsigned char *q = int_start; q < int_end; q++) {
    if (m == 0 && *q == '0') continue;
    if (nd < 19) m = m * 10 + (uint64_t)(*q - '0'), nd++;
    else nd = 99, e10++;
  }
  for (const unsigned char *q = frac_start; q < frac_end; q++) {
    if (m == 0 && *q == '0') {
      e10--;
      continue;
    }
    if (nd < 19) m = m * 10 + (uint64_t)(*q - '0'), nd++, e10--;
    else nd = 99;
  }
#if FLT_EVAL_METHOD == 0
  if (m == 0) {
    v->d = neg ? -0.0 : 0.0;
    return true;
  }
  if (nd <= 15 && e10 >= -22 && e10 <= 22) {
    double d = (double)m;
    d = e10 < 0 ? d / pow10_exact[-e10] : d * pow10_exact[e10];
    v->d = neg ? -d : d;
    return true;
  }
#endif
  char tmp[128];
  size_t n = (size_t)(p - start);
  if (n >= sizeof tmp) return false;
  memcpy(tmp, start, n);
  tmp[n] = 0;
  errno = 0;
  double d = strtod(tmp, NULL);
  if (errno == ERANGE) return false; /* overflow is an error for jansson; underflow is left to it too */
  v->d = d;
  return true;
}

static bool scan_value(scan_t *sc, int node);

static inline int find_key(const scan_t *sc, int node, const unsigned char *k, size_t len) {
  if (node < 0) return -1;
  for (int c = sc->nodes[node].child; c >= 0; c = sc->nodes[c].next) {
    const jnode_t *nd = &sc->nodes[c];
    if (nd->key && nd->keylen == len && memcmp(nd->key, k, len) == 0) return c;
  }
  return -1;
}

static inline int find_index(const scan_t *sc, int node, size_t idx) {
  if (node < 0) return -1;
  for (int c = sc->nodes[node].child; c >= 0; c = sc->nodes[c].next)
    if (!sc->nodes[c].key && sc->nodes[c].index == idx) return c;
  return -1;
}

static bool scan_object(scan_t *sc, int node) {
  if (++sc->depth > SL_JSCAN_MAX_DEPTH) return false;
  size_t kbase = sc->nkeys;
  sc->p++;
  skip_ws(sc);
  if (sc->p < sc->end && *sc->p == '}') {
    sc->p++;
    sc->depth--;
    return true;
  }
  for (;;) {
    if (sc->p >= sc->end || *sc->p != '"') return false;
    const unsigned char *k;
    size_t klen;
    bool esc;
    if (!scan_string(sc, &k, &klen, &esc) || esc) return false;
    for (size_t i = kbase; i < sc->nkeys; i++)
      if (sc->keys[i].len == klen && memcmp(sc->keys[i].s, k, klen) == 0) return false; /* duplicate */
    if (sc->nkeys == SL_JSCAN_MAX_KEYS) return false;
    sc->keys[sc->nkeys].s = k;
    sc->keys[sc->nkeys++].len = klen;
    int child = find_key(sc, node, k, klen);
    skip_ws(sc);
    if (sc->p >= sc->end || *sc->p != ':') return false;
    sc->p++;
    skip_ws(sc);
    if (!scan_value(sc, child)) return false;
    skip_ws(sc);
    if (sc->p >= sc->end) return false;
    if (*sc->p == ',') {
      sc->p++;
      skip_ws(sc);
      continue;
    }
    if (*sc->p != '}') return false;
    sc->p++;
    break;
  }
  sc->nkeys = kbase;
  sc->depth--;
  return true;
}

static bool scan_array(scan_t *sc, int node) {
  if (++sc->depth > SL_JSCAN_MAX_DEPTH) return false;
  sc->p++;
  skip_ws(sc);
  if (sc->p < sc->end && *sc->p == ']') {
    sc->p++;
    sc->depth--;
    return true;
  }
  for (size_t idx = 0;; idx++) {
    if (!scan_value(sc, find_index(sc, node, idx))) return false;
    skip_ws(sc);
    if (sc->p >= sc->end) return false;
    if (*sc->p == ',') {
      sc->p++;
      skip_ws(sc);
      continue;
    }
    if (*sc->p != ']') return false;
    sc->p++;
    break;
  }
  sc->depth--;
  return true;
}

static bool literal(scan_t *sc, const char *word, size_t n) {
  if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, word, n) != 0) return false;
  sc->p += n;
  return true;
}

/* A value for the path node `node` (-1: not wanted, only checked). */
static bool scan_value(scan_t *sc, int node) {
  if (sc->p >= sc->end) return false;
  sl_jv_t tmp, *v = node >= 0 && sc->nodes[node].slot >= 0 ? &sc->out[sc->nodes[node].slot] : &tmp;
  const unsigned char *start = sc->p;
  switch (*sc->p) {
    case '{':
      if (!scan_object(sc, node)) return false;
      v->kind = SL_JV_OBJECT;
      break;
    case '[':
      if (!scan_array(sc, node)) return false;
      v->kind = SL_JV_ARRAY;
      break;
    case '"': {
      const unsigned char *s;
      size_t len;
      bool esc;
      if (!scan_string(sc, &s, &len, &esc)) return false;
      v->kind = SL_JV_STRING;
      if (esc && v != &tmp) return decode_string(sc, s, len, v);
      v->s = (const char *)s;
      v->len = len;
      return true;
    }
    case 't':
      if (!literal(sc, "true", 4)) return false;
      v->kind = SL_JV_TRUE;
      break;
    case 'f':
      if (!literal(sc, "false", 5)) return false;
      v->kind = SL_JV_FALSE;
      break;
    case 'n':
      if (!literal(sc, "null", 4)) return false;
      v->kind = SL_JV_NULL;
      break;
    default: return scan_number(sc, v);
  }
  v->s = (const char *)start;
  v->len = (size_t)(sc->p - start);
  return true;
}

int sl_json_scan(const sl_jpaths_t *t, const void *doc, size_t len, sl_jv_t *out, char *scratch,
                 size_t scratch_cap) {
  scan_t sc;
  sc.p = doc;
  sc.end = sc.p + len;
  sc.nodes = t->nodes;
  sc.out = out;
  sc.scratch = scratch;
  sc.scap = scratch_cap;
  sc.sused = 0;
  sc.depth = 0;
  sc.nkeys = 0;
  for (int i = 0; i < t->nslots; i++) out[i].kind = SL_JV_ABSENT;
  skip_ws(&sc);
  if (sc.p >= sc.end || *sc.p != '{') return SL_JSCAN_UNSURE;
  if (!scan_object(&sc, 0)) return SL_JSCAN_UNSURE;
  skip_ws(&sc);
  return sc.p == sc.end ? SL_JSCAN_OK : SL_JSCAN_UNSURE;
}
