/* Kafka wire primitives (see codec.h). */
#include "kafka/codec.h"

#include <string.h>

/* A length-prefixed field whose length was just read: -1 is null, other negatives are malformed. */
static sl_slice_t read_sized(sl_reader_t *r, int32_t len) {
  sl_slice_t s = {NULL, 0};
  if (len < 0) {
    if (len != -1) r->err = true;
    return s;
  }
  s.ptr = sl_read_bytes(r, (size_t)len);
  s.len = s.ptr ? (size_t)len : 0;
  return s;
}

sl_slice_t kafka_read_string(sl_reader_t *r) { return read_sized(r, kafka_read_int16(r)); }

sl_slice_t kafka_read_bytes(sl_reader_t *r) { return read_sized(r, kafka_read_int32(r)); }

sl_slice_t kafka_read_compact_string(sl_reader_t *r) {
  sl_slice_t s = {NULL, 0};
  uint32_t n = sl_read_uvarint32(r);
  if (n == 0) return s;
  s.ptr = sl_read_bytes(r, n - 1);
  s.len = s.ptr ? n - 1 : 0;
  return s;
}

static int32_t bound_count(sl_reader_t *r, int64_t n, size_t min_elem_size) {
  if (r->err) return 0;
  if (n < -1 || (n > 0 && (uint64_t)n * (min_elem_size ? min_elem_size : 1) > sl_reader_remaining(r))) {
    r->err = true;
    return 0;
  }
  return (int32_t)n;
}

int32_t kafka_read_array_len(sl_reader_t *r, size_t min_elem_size) {
  return bound_count(r, kafka_read_int32(r), min_elem_size);
}

int32_t kafka_read_compact_array_len(sl_reader_t *r, size_t min_elem_size) {
  uint32_t n = sl_read_uvarint32(r);
  return bound_count(r, (int64_t)n - 1, min_elem_size);
}

void kafka_skip_tags(sl_reader_t *r) {
  uint32_t count = sl_read_uvarint32(r);
  for (uint32_t i = 0; i < count && !r->err; i++) {
    (void)sl_read_uvarint32(r); /* tag */
    uint32_t size = sl_read_uvarint32(r);
    (void)sl_read_bytes(r, size);
  }
}

void kafka_write_string(sl_buf_t *b, const char *s, size_t len) {
  kafka_write_int16(b, (int16_t)len);
  sl_buf_put(b, s, len);
}

void kafka_write_cstring(sl_buf_t *b, const char *s) {
  if (!s) kafka_write_int16(b, -1);
  else kafka_write_string(b, s, strlen(s));
}

void kafka_write_nullable_string(sl_buf_t *b, const char *s, size_t len) {
  if (!s) kafka_write_int16(b, -1);
  else kafka_write_string(b, s, len);
}

void kafka_write_bytes(sl_buf_t *b, const void *p, size_t len) {
  if (!p) {
    kafka_write_int32(b, -1);
    return;
  }
  kafka_write_int32(b, (int32_t)len);
  sl_buf_put(b, p, len);
}

void kafka_write_compact_string(sl_buf_t *b, const char *s, size_t len) {
  sl_buf_put_uvarint(b, len + 1);
  sl_buf_put(b, s, len);
}

bool kafka_slice_eq(sl_slice_t s, const char *cstr) {
  size_t n = strlen(cstr);
  return s.ptr && s.len == n && memcmp(s.ptr, cstr, n) == 0;
}
