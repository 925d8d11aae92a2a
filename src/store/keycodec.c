/* Order-preserving key encoding (see keycodec.h). */
#include "store/keycodec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fixed_width(uint16_t id) {
  switch (id) {
    case CQL_TYPE_TINYINT:
    case CQL_TYPE_BOOLEAN: return 1;
    case CQL_TYPE_SMALLINT: return 2;
    case CQL_TYPE_INT:
    case CQL_TYPE_DATE:
    case CQL_TYPE_FLOAT: return 4;
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER:
    case CQL_TYPE_TIMESTAMP:
    case CQL_TYPE_TIME:
    case CQL_TYPE_DOUBLE: return 8;
    default: return 0;
  }
}

static bool is_uuid(uint16_t id) { return id == CQL_TYPE_UUID || id == CQL_TYPE_TIMEUUID; }
static bool is_numeric(uint16_t id) { return id == CQL_TYPE_VARINT || id == CQL_TYPE_DECIMAL; }

/* ---- varint and decimal by value (marker 0x03; 0x02 + stuffed bytes is the older by-bytes form, still read) ----
 * varint: class (0x01 negative, 0x02 zero, 0x03 positive) | length u32 (complemented when negative) | the
 *   minimal two's-complement bytes. Within a class and length, two's-complement bytes memcmp in numeric order,
 *   and a longer minimal form is further from zero.
 * decimal: class | exponent E i64 (sign-flipped; complemented when negative) | digits (each + 1; complemented when
 *   negative) | end (0x00; 0xFF when negative), for the value 0.d1d2...dn x 10^E without trailing zeros. The
 *   scale is normalized (1.50 reads back as 1.5, equal as Cassandra compares decimals). */
enum { NUM_NEG = 0x01, NUM_ZERO = 0x02, NUM_POS = 0x03 };

static void varint_put(sl_buf_t *out, const uint8_t *v, size_t len) {
  bool neg = v[0] & 0x80;
  uint8_t pad = neg ? 0xFF : 0x00;
  size_t i = 0;
  while (i + 1 < len && v[i] == pad && (v[i + 1] & 0x80) == (pad & 0x80)) i++;
  size_t n = len - i;
  if (!neg && n == 1 && v[i] == 0) {
    sl_buf_put_u8(out, NUM_ZERO);
    return;
  }
  sl_buf_put_u8(out, neg ? NUM_NEG : NUM_POS);
  sl_buf_put_be32(out, neg ? ~(uint32_t)n : (uint32_t)n);
  sl_buf_put(out, v + i, n);
}

/* |two's complement| as big-endian magnitude bytes without leading zeros (malloc'd; *n 0 for zero). */
static uint8_t *magnitude(const uint8_t *v, size_t len, bool *neg, size_t *n) {
  uint8_t *m = malloc(len ? len : 1);
  if (!m) abort();
  *neg = len && (v[0] & 0x80);
  memcpy(m, v, len);
  if (*neg) { /* negate: invert and add one */
    for (size_t i = 0; i < len; i++) m[i] = (uint8_t)~m[i];
    for (size_t i = len; i-- > 0;)
      if (++m[i] != 0) break;
  }
  size_t i = 0;
  while (i < len && m[i] == 0) i++;
  memmove(m, m + i, len - i);
  *n = len - i;
  return m;
}

/* Decimal digits of a magnitude (malloc'd, no leading zeros); *nd 0 for zero. */
static char *mag_digits(const uint8_t *m, size_t n, size_t *nd) {
  size_t cap = n / 3 + 2; /* base-1e9 limbs, least significant first */
  uint32_t *limb = calloc(cap, sizeof *limb);
  if (!limb) abort();
  size_t nl = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t carry = m[i];
    for (size_t k = 0; k < nl; k++) {
      uint64_t x = (uint64_t)limb[k] * 256 + carry;
      limb[k] = (uint32_t)(x % 1000000000u);
      carry = x / 1000000000u;
    }
    while (carry) {
      limb[nl++] = (uint32_t)(carry % 1000000000u);
      carry /= 1000000000u;
    }
  }
  char *d = malloc(nl * 9 + 2);
  if (!d) abort();
  size_t o = 0;
  for (size_t k = nl; k-- > 0;) {
    char tmp[10];
    int w = snprintf(tmp, sizeof tmp, k == nl - 1 ? "%u" : "%09u", limb[k]);
    memcpy(d + o, tmp, (size_t)w);
    o += (size_t)w;
  }
  d[o] = 0;
  free(limb);
  *nd = o;
  return d;
}

static void decimal_put(sl_buf_t *out, const uint8_t *v, size_t len) {
  int32_t scale = (int32_t)sl_load_be32(v);
  bool neg;
  size_t n, nd;
  uint8_t *m = magnitude(v + 4, len - 4, &neg, &n);
  char *d = mag_digits(m, n, &nd);
  free(m);
  if (nd == 0) {
    sl_buf_put_u8(out, NUM_ZERO);
    free(d);
    return;
  }
  int64_t e = (int64_t)nd - scale;
  while (nd > 1 && d[nd - 1] == '0') nd--;
  uint8_t mask = neg ? 0xFF : 0x00;
  sl_buf_put_u8(out, neg ? NUM_NEG : NUM_POS);
  uint64_t ue = (uint64_t)e ^ 0x8000000000000000ULL;
  sl_buf_put_be64(out, neg ? ~ue : ue);
  for (size_t i = 0; i < nd; i++) sl_buf_put_u8(out, (uint8_t)((d[i] - '0' + 1) ^ mask));
  sl_buf_put_u8(out, mask);
  free(d);
}

/* Magnitude digits back to two's-complement bytes, appended to out. */
static void digits_to_twos(sl_buf_t *out, const uint8_t *dig, size_t nd, bool neg) {
  size_t cap = nd / 2 + 2;
  uint8_t *b = calloc(cap, 1); /* little-endian bytes */
  if (!b) abort();
  size_t nb = 0;
  for (size_t i = 0; i < nd; i++) {
    unsigned carry = dig[i];
    for (size_t k = 0; k < nb; k++) {
      unsigned x = b[k] * 10u + carry;
      b[k] = (uint8_t)x;
      carry = x >> 8;
    }
    while (carry) {
      b[nb++] = (uint8_t)carry;
      carry >>= 8;
    }
  }
  if (nb == 0) b[nb++] = 0;
  if (neg) { /* two's complement of the magnitude */
    for (size_t k = 0; k < nb; k++) b[k] = (uint8_t)~b[k];
    for (size_t k = 0; k < nb; k++)
      if (++b[k] != 0) break;
    if (!(b[nb - 1] & 0x80)) b[nb++] = 0xFF;
  } else if (b[nb - 1] & 0x80) {
    b[nb++] = 0x00;
  }
  for (size_t k = nb; k-- > 0;) sl_buf_put_u8(out, b[k]);
  free(b);
}

static int numeric_decode(sl_reader_t *r, const sl_cql_type_t *t, uint8_t mask, sl_buf_t *out) {
  uint8_t cls = (uint8_t)(sl_read_u8(r) ^ mask);
  if (r->err || (cls != NUM_NEG && cls != NUM_ZERO && cls != NUM_POS)) return -EINVAL;
  bool neg = cls == NUM_NEG;
  if (t->id == CQL_TYPE_VARINT) {
    if (cls == NUM_ZERO) {
      sl_buf_put_u8(out, 0);
      return 0;
    }
    const uint8_t *lp = sl_read_bytes(r, 4);
    if (!lp) return -EINVAL;
    uint32_t n = sl_load_be32(lp) ^ (mask ? 0xFFFFFFFFu : 0);
    if (neg) n = ~n;
    const uint8_t *p = sl_read_bytes(r, n);
    if (!p || n == 0) return -EINVAL;
    uint8_t *o = sl_buf_extend(out, n);
    for (uint32_t i = 0; i < n; i++) o[i] = (uint8_t)(p[i] ^ mask);
    return 0;
  }
  if (cls == NUM_ZERO) {
    sl_buf_put_be32(out, 0);
    sl_buf_put_u8(out, 0);
    return 0;
  }
  const uint8_t *ep = sl_read_bytes(r, 8);
  if (!ep) return -EINVAL;
  uint64_t ue = sl_load_be64(ep) ^ (mask ? ~0ULL : 0);
  if (neg) ue = ~ue;
  int64_t e = (int64_t)(ue ^ 0x8000000000000000ULL);
  uint8_t dmask = (uint8_t)(mask ^ (neg ? 0xFF : 0x00));
  size_t start = r->pos, nd = 0;
  for (;;) {
    uint8_t c = (uint8_t)(sl_read_u8(r) ^ dmask);
    if (r->err) return -EINVAL;
    if (c == 0) break;
    if (c < 1 || c > 10) return -EINVAL;
    nd++;
  }
  int64_t scale = (int64_t)nd - e;
  if (scale < INT32_MIN || scale > INT32_MAX) return -EINVAL;
  uint8_t *dig = malloc(nd ? nd : 1);
  if (!dig) abort();
  for (size_t i = 0; i < nd; i++) dig[i] = (uint8_t)((r->data[start + i] ^ dmask) - 1);
  sl_buf_put_be32(out, (uint32_t)(int32_t)scale);
  digits_to_twos(out, dig, nd, neg);
  free(dig);
  return 0;
}

/* The 60-bit time of a version-1 uuid, most significant first. */
static uint64_t uuid_time(const uint8_t *u) {
  uint64_t hi = (uint64_t)(u[6] & 0x0F) << 8 | u[7];
  uint64_t mid = (uint64_t)u[4] << 8 | u[5];
  uint64_t lo = sl_load_be32(u);
  return hi << 48 | mid << 32 | lo;
}

void sl_key_encode(sl_buf_t *out, const sl_cql_type_t *t, const uint8_t *v, size_t len, bool desc) {
  size_t start = out->len;
  int w = fixed_width(t->id);
  if (len == 0) {
    sl_buf_put_u8(out, 0x01);
    if (!w && !is_uuid(t->id)) {
      sl_buf_put_u8(out, 0x00);
      sl_buf_put_u8(out, 0x01);
    }
  } else if (w && (size_t)w == len) {
    sl_buf_put_u8(out, 0x02);
    uint8_t *p = sl_buf_extend(out, len);
    memcpy(p, v, len);
    if (t->id == CQL_TYPE_FLOAT || t->id == CQL_TYPE_DOUBLE) {
      if (p[0] & 0x80) {
        for (size_t i = 0; i < len; i++) p[i] = (uint8_t)~p[i];
      } else {
        p[0] ^= 0x80;
      }
    } else if (t->id != CQL_TYPE_DATE && t->id != CQL_TYPE_BOOLEAN) {
      p[0] ^= 0x80;
    }
  } else if (t->id == CQL_TYPE_VARINT || (t->id == CQL_TYPE_DECIMAL && len >= 5)) {
    sl_buf_put_u8(out, 0x03);
    if (t->id == CQL_TYPE_VARINT) varint_put(out, v, len);
    else decimal_put(out, v, len);
  } else if (is_uuid(t->id) && len == 16) {
    sl_buf_put_u8(out, 0x02);
    int version = v[6] >> 4;
    sl_buf_put_u8(out, t->id == CQL_TYPE_TIMEUUID ? 1 : (uint8_t)version);
    if (version == 1) sl_buf_put_be64(out, uuid_time(v));
    sl_buf_put(out, v, 16);
  } else {
    /* variable width (or a fixed-width type with an unexpected length): byte-stuffed */
    sl_buf_put_u8(out, 0x02);
    for (size_t i = 0; i < len; i++) {
      sl_buf_put_u8(out, v[i]);
      if (v[i] == 0x00) sl_buf_put_u8(out, 0xFF);
    }
    sl_buf_put_u8(out, 0x00);
    sl_buf_put_u8(out, 0x01);
  }
  if (desc)
    for (size_t i = start; i < out->len; i++) out->data[i] = (uint8_t)~out->data[i];
}

static inline uint8_t rd(sl_reader_t *r, uint8_t mask) { return (uint8_t)(sl_read_u8(r) ^ mask); }

int sl_key_decode(sl_reader_t *r, const sl_cql_type_t *t, bool desc, sl_buf_t *out, size_t *vlen) {
  uint8_t mask = desc ? 0xFF : 0x00;
  size_t start = out->len;
  int w = fixed_width(t->id);
  uint8_t marker = rd(r, mask);
  if (r->err) return -EINVAL;
  if (marker == 0x01) {
    if (!w && !is_uuid(t->id)) {
      if (rd(r, mask) != 0x00 || rd(r, mask) != 0x01) return -EINVAL;
    }
    *vlen = 0;
    return r->err ? -EINVAL : 0;
  }
  if (marker == 0x03 && is_numeric(t->id)) {
    if (numeric_decode(r, t, mask, out) != 0) return -EINVAL;
    *vlen = out->len - start;
    return 0;
  }
  if (marker != 0x02) return -EINVAL;
  /* A fixed-width type is only stored fixed-width if it had that width; peek is not possible, so such values
   * (which validation rejects anyway) are never written by the executor. */
  if (w) {
    const uint8_t *p = sl_read_bytes(r, (size_t)w);
    if (!p) return -EINVAL;
    uint8_t *o = sl_buf_extend(out, (size_t)w);
    for (int i = 0; i < w; i++) o[i] = (uint8_t)(p[i] ^ mask);
    if (t->id == CQL_TYPE_FLOAT || t->id == CQL_TYPE_DOUBLE) {
      if (o[0] & 0x80) {
        o[0] ^= 0x80;
      } else {
        for (int i = 0; i < w; i++) o[i] = (uint8_t)~o[i];
      }
    } else if (t->id != CQL_TYPE_DATE && t->id != CQL_TYPE_BOOLEAN) {
      o[0] ^= 0x80;
    }
    *vlen = (size_t)w;
    return 0;
  }
  if (is_uuid(t->id)) {
    uint8_t version = rd(r, mask);
    if (version == 1 && !sl_read_bytes(r, 8)) return -EINVAL;
    const uint8_t *p = sl_read_bytes(r, 16);
    if (!p) return -EINVAL;
    uint8_t *o = sl_buf_extend(out, 16);
    for (int i = 0; i < 16; i++) o[i] = (uint8_t)(p[i] ^ mask);
    *vlen = 16;
    return 0;
  }
  for (;;) {
    uint8_t c = rd(r, mask);
    if (r->err) return -EINVAL;
    if (c == 0x00) {
      uint8_t n = rd(r, mask);
      if (r->err) return -EINVAL;
      if (n == 0x01) break;
      if (n != 0xFF) return -EINVAL;
    }
    sl_buf_put_u8(out, c);
  }
  *vlen = out->len - start;
  return 0;
}

/* The encoding of a fixed-width or uuid value into a small array (no allocation); 0 when not such a value. */
static size_t encode_small(const sl_cql_type_t *t, const uint8_t *v, size_t len, uint8_t out[32]) {
  int w = fixed_width(t->id);
  if (len == 0 || !((w && (size_t)w == len) || (is_uuid(t->id) && len == 16))) return 0;
  size_t n = 0;
  out[n++] = 0x02;
  if (w) {
    memcpy(out + n, v, len);
    uint8_t *p = out + n;
    if (t->id == CQL_TYPE_FLOAT || t->id == CQL_TYPE_DOUBLE) {
      if (p[0] & 0x80) {
        for (size_t i = 0; i < len; i++) p[i] = (uint8_t)~p[i];
      } else {
        p[0] ^= 0x80;
      }
    } else if (t->id != CQL_TYPE_DATE && t->id != CQL_TYPE_BOOLEAN) {
      p[0] ^= 0x80;
    }
    return n + len;
  }
  int version = v[6] >> 4;
  out[n++] = t->id == CQL_TYPE_TIMEUUID ? 1 : (uint8_t)version;
  if (version == 1) {
    sl_store_be64(out + n, uuid_time(v));
    n += 8;
  }
  memcpy(out + n, v, 16);
  return n + 16;
}

static int cmp_raw(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c = n ? memcmp(a, b, n) : 0;
  if (c == 0) c = alen < blen ? -1 : alen > blen ? 1 : 0;
  return c;
}

int sl_value_compare(const sl_cql_type_t *t, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  /* Byte-stuffed encodings order exactly as the raw bytes do (a prefix first), so variable-width values compare
   * raw; fixed-width ones through their small encodings. Only unusual lengths take the general path. */
  int w = fixed_width(t->id);
  if (!w && !is_uuid(t->id) && !is_numeric(t->id)) return cmp_raw(a, alen, b, blen);
  uint8_t xa[32], xb[32];
  size_t na = encode_small(t, a, alen, xa), nb = encode_small(t, b, blen, xb);
  if (na && nb) return cmp_raw(xa, na, xb, nb);
  sl_buf_t x, y;
  sl_buf_init(&x);
  sl_buf_init(&y);
  sl_key_encode(&x, t, a, alen, false);
  sl_key_encode(&y, t, b, blen, false);
  size_t n = x.len < y.len ? x.len : y.len;
  int c = memcmp(x.data, y.data, n);
  if (c == 0) c = x.len < y.len ? -1 : x.len > y.len ? 1 : 0;
  sl_buf_free(&x);
  sl_buf_free(&y);
  return c;
}

void sl_key_put_token(sl_buf_t *out, int64_t token) { sl_buf_put_be64(out, (uint64_t)token ^ 0x8000000000000000ULL); }

char *sl_numeric_text(const sl_cql_type_t *t, const uint8_t *p, size_t len) {
  const uint8_t *v = p;
  size_t vl = len;
  int64_t scale = 0;
  if (t->id == CQL_TYPE_DECIMAL) {
    if (len < 4) return NULL;
    scale = (int32_t)sl_load_be32(p);
    v = p + 4;
    vl = len - 4;
  }
  bool neg;
  size_t n, nd;
  uint8_t *m = magnitude(v, vl, &neg, &n);
  char *d = mag_digits(m, n, &nd);
  free(m);
  if (nd == 0) {
    d[0] = '0';
    d[1] = 0;
    nd = 1;
  }
  sl_buf_t b;
  sl_buf_init(&b);
  if (neg) sl_buf_put_u8(&b, '-');
  if (scale <= 0 && scale >= -1000) {
    sl_buf_put(&b, d, nd);
    for (int64_t i = 0; i < -scale && !(nd == 1 && d[0] == '0'); i++) sl_buf_put_u8(&b, '0');
  } else if (scale < 0) {
    char e[32];
    sl_buf_put(&b, d, nd);
    snprintf(e, sizeof e, "E+%lld", (long long)-scale);
    sl_buf_put(&b, e, strlen(e));
  } else if ((int64_t)nd > scale) {
    sl_buf_put(&b, d, nd - (size_t)scale);
    sl_buf_put_u8(&b, '.');
    sl_buf_put(&b, d + nd - (size_t)scale, (size_t)scale);
  } else if (scale - (int64_t)nd <= 1000) {
    sl_buf_put(&b, "0.", 2);
    for (int64_t i = 0; i < scale - (int64_t)nd; i++) sl_buf_put_u8(&b, '0');
    sl_buf_put(&b, d, nd);
  } else {
    char e[32];
    sl_buf_put(&b, d, nd);
    snprintf(e, sizeof e, "E-%lld", (long long)scale);
    sl_buf_put(&b, e, strlen(e));
  }
  free(d);
  sl_buf_put_u8(&b, 0);
  return (char *)b.data;
}

int sl_numeric_from_text(const sl_cql_type_t *t, const char *s, size_t len, sl_buf_t *out) {
  size_t i = 0;
  bool neg = false;
  if (i < len && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  uint8_t *dig = malloc(len + 1);
  if (!dig) abort();
  size_t nd = 0;
  int64_t scale = 0;
  bool frac = false, any = false;
  for (; i < len; i++) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      any = true;
      if (nd || c != '0') dig[nd++] = (uint8_t)(c - '0');
      if (frac) scale++;
    } else if (c == '.' && !frac && t->id == CQL_TYPE_DECIMAL) {
      frac = true;
    } else if ((c == 'e' || c == 'E') && t->id == CQL_TYPE_DECIMAL && any) {
      size_t k = i + 1;
      bool eneg = false;
      if (k < len && (s[k] == '-' || s[k] == '+')) eneg = s[k++] == '-';
      int64_t ex = 0;
      if (k >= len) break;
      for (; k < len && s[k] >= '0' && s[k] <= '9'; k++)
        if ((ex = ex * 10 + (s[k] - '0')) > 100000000) break;
      if (k != len) break;
      scale -= eneg ? -ex : ex;
      i = len;
      break;
    } else {
      break;
    }
  }
  int rc = 0;
  if (i != len || !any || scale > INT32_MAX || scale < INT32_MIN) {
    rc = -EINVAL;
  } else {
    if (t->id == CQL_TYPE_DECIMAL) sl_buf_put_be32(out, (uint32_t)(int32_t)scale);
    digits_to_twos(out, dig, nd, neg && nd > 0);
  }
  free(dig);
  return rc;
}
