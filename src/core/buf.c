/* Byte reader and writer (see buf.h). */
#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool need(sl_reader_t *r, size_t n) {
  if (r->err || r->len - r->pos < n) {
    r->err = true;
    return false;
  }
  return true;
}

uint8_t sl_read_u8(sl_reader_t *r) { return need(r, 1) ? r->data[r->pos++] : 0; }

uint16_t sl_read_be16(sl_reader_t *r) {
  if (!need(r, 2)) return 0;
  uint16_t v = sl_load_be16(r->data + r->pos);
  r->pos += 2;
  return v;
}

uint32_t sl_read_be32(sl_reader_t *r) {
  if (!need(r, 4)) return 0;
  uint32_t v = sl_load_be32(r->data + r->pos);
  r->pos += 4;
  return v;
}

uint64_t sl_read_be64(sl_reader_t *r) {
  if (!need(r, 8)) return 0;
  uint64_t v = sl_load_be64(r->data + r->pos);
  r->pos += 8;
  return v;
}

const uint8_t *sl_read_bytes(sl_reader_t *r, size_t n) {
  if (!need(r, n)) return NULL;
  const uint8_t *p = r->data + r->pos;
  r->pos += n;
  return p;
}

static uint64_t read_uvarint(sl_reader_t *r, int max_bytes) {
  uint64_t v = 0;
  for (int i = 0; i < max_bytes; i++) {
    if (!need(r, 1)) return 0;
    uint8_t b = r->data[r->pos++];
    v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) return v;
  }
  r->err = true; /* too long: malformed */
  return 0;
}

uint32_t sl_read_uvarint32(sl_reader_t *r) { return (uint32_t)read_uvarint(r, 5); }
uint64_t sl_read_uvarint64(sl_reader_t *r) { return read_uvarint(r, 10); }

int32_t sl_read_varint32(sl_reader_t *r) {
  uint32_t u = (uint32_t)read_uvarint(r, 5);
  return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

int64_t sl_read_varint64(sl_reader_t *r) {
  uint64_t u = read_uvarint(r, 10);
  return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

void sl_buf_init(sl_buf_t *b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void sl_buf_free(sl_buf_t *b) {
  free(b->data);
  sl_buf_init(b);
}

void sl_buf_reserve(sl_buf_t *b, size_t extra) {
  if (b->cap - b->len >= extra) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < extra) cap *= 2;
  uint8_t *p = realloc(b->data, cap);
  if (!p) {
    fprintf(stderr, "sluice: out of memory growing a buffer to %zu bytes\n", cap);
    abort();
  }
  b->data = p;
  b->cap = cap;
}

uint8_t *sl_buf_extend(sl_buf_t *b, size_t n) {
  sl_buf_reserve(b, n);
  uint8_t *p = b->data + b->len;
  b->len += n;
  return p;
}

void sl_buf_put(sl_buf_t *b, const void *data, size_t n) {
  if (n) memcpy(sl_buf_extend(b, n), data, n);
}

void sl_buf_put_u8(sl_buf_t *b, uint8_t v) { *sl_buf_extend(b, 1) = v; }

void sl_buf_put_be16(sl_buf_t *b, uint16_t v) {
  uint8_t *p = sl_buf_extend(b, 2);
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

void sl_buf_put_be32(sl_buf_t *b, uint32_t v) { sl_store_be32(sl_buf_extend(b, 4), v); }
void sl_buf_put_be64(sl_buf_t *b, uint64_t v) { sl_store_be64(sl_buf_extend(b, 8), v); }

void sl_buf_put_uvarint(sl_buf_t *b, uint64_t v) {
  while (v >= 0x80) {
    sl_buf_put_u8(b, (uint8_t)(v | 0x80));
    v >>= 7;
  }
  sl_buf_put_u8(b, (uint8_t)v);
}

void sl_buf_put_varint(sl_buf_t *b, int64_t v) {
  sl_buf_put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void sl_buf_patch_be32(sl_buf_t *b, size_t pos, uint32_t v) { sl_store_be32(b->data + pos, v); }
