/* Order-preserving key encoding (see keycodec.h). */
#include "store/keycodec.h"

#include <errno.h>
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
  if (!w && !is_uuid(t->id)) return cmp_raw(a, alen, b, blen);
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
