/* CQL native protocol v4 frame header and notations (see proto.h). */
#include "cql/proto.h"

#include <string.h>
#include <strings.h>

int cql_parse_header(const uint8_t *data, size_t len, uint32_t max_body, cql_header_t *out) {
  if (len < CQL_HEADER_LEN) return CQL_HEADER_NEED_MORE;
  out->version = data[0];
  out->flags = data[1];
  out->stream = (int16_t)sl_load_be16(data + 2);
  out->opcode = data[4];
  out->length = sl_load_be32(data + 5);
  if (out->length > max_body) return CQL_HEADER_TOO_LARGE;
  return CQL_HEADER_OK;
}

size_t cql_frame_begin(sl_buf_t *b, uint8_t version, uint8_t flags, int16_t stream, uint8_t opcode) {
  size_t start = b->len;
  sl_buf_put_u8(b, version);
  sl_buf_put_u8(b, flags);
  sl_buf_put_be16(b, (uint16_t)stream);
  sl_buf_put_u8(b, opcode);
  sl_buf_put_be32(b, 0);
  return start;
}

void cql_frame_finish(sl_buf_t *b, size_t frame_start) {
  sl_buf_patch_be32(b, frame_start + 5, (uint32_t)(b->len - frame_start - CQL_HEADER_LEN));
}

sl_slice_t cql_read_string(sl_reader_t *r) {
  sl_slice_t s = {NULL, 0};
  uint16_t n = sl_read_be16(r);
  const uint8_t *p = sl_read_bytes(r, n);
  if (!p) return s;
  s.ptr = p;
  s.len = n;
  return s;
}

sl_slice_t cql_read_long_string(sl_reader_t *r) {
  sl_slice_t s = {NULL, 0};
  int32_t n = (int32_t)sl_read_be32(r);
  if (r->err) return s;
  if (n < 0) {
    r->err = true;
    return s;
  }
  const uint8_t *p = sl_read_bytes(r, (size_t)n);
  if (!p) return s;
  s.ptr = p;
  s.len = (size_t)n;
  return s;
}

sl_slice_t cql_read_bytes(sl_reader_t *r, bool *is_null) {
  sl_slice_t s = {NULL, 0};
  int32_t n = (int32_t)sl_read_be32(r);
  if (is_null) *is_null = false;
  if (r->err) return s;
  if (n < 0) {
    if (is_null) *is_null = true;
    return s;
  }
  const uint8_t *p = sl_read_bytes(r, (size_t)n);
  if (!p) return s;
  s.ptr = p;
  s.len = (size_t)n;
  return s;
}

sl_slice_t cql_read_short_bytes(sl_reader_t *r) { return cql_read_string(r); }

cql_value_t cql_read_value(sl_reader_t *r) {
  cql_value_t v = {CQL_VALUE_NULL, {NULL, 0}};
  int32_t n = (int32_t)sl_read_be32(r);
  if (r->err) return v;
  if (n == -1) return v;
  if (n == -2) {
    v.kind = CQL_VALUE_UNSET;
    return v;
  }
  if (n < 0) {
    r->err = true;
    return v;
  }
  const uint8_t *p = sl_read_bytes(r, (size_t)n);
  if (!p) return v;
  v.kind = CQL_VALUE_SET;
  v.v.ptr = p;
  v.v.len = (size_t)n;
  return v;
}

uint16_t cql_read_list_count(sl_reader_t *r, size_t min_elem_size) {
  uint16_t n = sl_read_be16(r);
  if (r->err) return 0;
  if (min_elem_size && (size_t)n > sl_reader_remaining(r) / min_elem_size) {
    r->err = true;
    return 0;
  }
  return n;
}

bool cql_string_map_get(const sl_reader_t *map, const char *key, sl_slice_t *value) {
  sl_reader_t r = *map;
  uint16_t n = cql_read_list_count(&r, 4);
  for (uint16_t i = 0; i < n && !r.err; i++) {
    sl_slice_t k = cql_read_string(&r);
    sl_slice_t v = cql_read_string(&r);
    if (!r.err && cql_slice_eq(k, key)) {
      *value = v;
      return true;
    }
  }
  return false;
}

void cql_write_string(sl_buf_t *b, const char *s, size_t len) {
  if (len > UINT16_MAX) len = UINT16_MAX;
  sl_buf_put_be16(b, (uint16_t)len);
  sl_buf_put(b, s, len);
}

void cql_write_cstring(sl_buf_t *b, const char *s) { cql_write_string(b, s, strlen(s)); }

void cql_write_long_string(sl_buf_t *b, const char *s, size_t len) {
  sl_buf_put_be32(b, (uint32_t)len);
  sl_buf_put(b, s, len);
}

void cql_write_bytes(sl_buf_t *b, const void *p, size_t len) {
  if (!p) {
    sl_buf_put_be32(b, UINT32_MAX);
    return;
  }
  sl_buf_put_be32(b, (uint32_t)len);
  sl_buf_put(b, p, len);
}

void cql_write_short_bytes(sl_buf_t *b, const void *p, size_t len) {
  sl_buf_put_be16(b, (uint16_t)len);
  sl_buf_put(b, p, len);
}

void cql_write_string_list(sl_buf_t *b, const char *const *items, size_t n) {
  sl_buf_put_be16(b, (uint16_t)n);
  for (size_t i = 0; i < n; i++) cql_write_cstring(b, items[i]);
}

void cql_write_error_body(sl_buf_t *b, int32_t code, const char *msg) {
  cql_write_int(b, code);
  cql_write_cstring(b, msg);
}

bool cql_slice_eq(sl_slice_t s, const char *cstr) {
  size_t n = strlen(cstr);
  return s.len == n && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}

bool cql_slice_eq_nocase(sl_slice_t s, const char *cstr) {
  size_t n = strlen(cstr);
  return s.len == n && (n == 0 || strncasecmp((const char *)s.ptr, cstr, n) == 0);
}
