/* Byte buffers: a bounds-checked big-endian reader over a borrowed slice, and a growable writer that owns its memory.
 *
 * The reader never reads past its end: a short read sets `err` and returns zero, so a decoder can read a whole
 * structure and check `err` once. The writer aborts on out-of-memory (like Redis' zmalloc) so callers stay simple. */
#ifndef SL_CORE_BUF_H
#define SL_CORE_BUF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  const uint8_t *ptr;
  size_t len;
} sl_slice_t;

typedef struct {
  const uint8_t *data;
  size_t len;
  size_t pos;
  bool err; /* set by any read past the end; sticky */
} sl_reader_t;

static inline void sl_reader_init(sl_reader_t *r, const void *data, size_t len) {
  r->data = (const uint8_t *)data;
  r->len = len;
  r->pos = 0;
  r->err = false;
}
static inline size_t sl_reader_remaining(const sl_reader_t *r) { return r->err ? 0 : r->len - r->pos; }

uint8_t sl_read_u8(sl_reader_t *r);
uint16_t sl_read_be16(sl_reader_t *r);
uint32_t sl_read_be32(sl_reader_t *r);
uint64_t sl_read_be64(sl_reader_t *r);
/* Returns a pointer to the next n bytes and advances, or NULL (and sets err) if fewer remain. */
const uint8_t *sl_read_bytes(sl_reader_t *r, size_t n);
/* LEB128 unsigned varint of at most 5 (u32) / 10 (u64) bytes. */
uint32_t sl_read_uvarint32(sl_reader_t *r);
uint64_t sl_read_uvarint64(sl_reader_t *r);
/* Zigzag-encoded signed varints (Kafka record fields). */
int32_t sl_read_varint32(sl_reader_t *r);
int64_t sl_read_varint64(sl_reader_t *r);

typedef struct {
  uint8_t *data; /* owned; free with sl_buf_free */
  size_t len;
  size_t cap;
} sl_buf_t;

void sl_buf_init(sl_buf_t *b);
void sl_buf_free(sl_buf_t *b);
void sl_buf_reserve(sl_buf_t *b, size_t extra);
/* Appends n uninitialised bytes and returns where they start. */
uint8_t *sl_buf_extend(sl_buf_t *b, size_t n);
void sl_buf_put(sl_buf_t *b, const void *data, size_t n);
void sl_buf_put_u8(sl_buf_t *b, uint8_t v);
void sl_buf_put_be16(sl_buf_t *b, uint16_t v);
void sl_buf_put_be32(sl_buf_t *b, uint32_t v);
void sl_buf_put_be64(sl_buf_t *b, uint64_t v);
void sl_buf_put_uvarint(sl_buf_t *b, uint64_t v);
void sl_buf_put_varint(sl_buf_t *b, int64_t v);
/* Overwrites 4 bytes at an earlier position (length prefixes written after the body). */
void sl_buf_patch_be32(sl_buf_t *b, size_t pos, uint32_t v);

static inline uint16_t sl_load_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t sl_load_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t sl_load_be64(const uint8_t *p) { return (uint64_t)sl_load_be32(p) << 32 | sl_load_be32(p + 4); }
static inline void sl_store_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline void sl_store_be64(uint8_t *p, uint64_t v) {
  sl_store_be32(p, (uint32_t)(v >> 32));
  sl_store_be32(p + 4, (uint32_t)v);
}

#endif
