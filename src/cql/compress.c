/* CQL v4 frame body compression (see compress.h). */
#include "cql/compress.h"

#include <errno.h>
#include <lz4.h>
#include <snappy-c.h>

int cql_compress(cql_compression_t c, const uint8_t *in, size_t len, sl_buf_t *out) {
  if (c == CQL_COMPRESSION_LZ4) {
    if (len > (size_t)LZ4_MAX_INPUT_SIZE) return -EINVAL;
    int bound = LZ4_compressBound((int)len);
    size_t start = out->len;
    sl_buf_put_be32(out, (uint32_t)len);
    uint8_t *dst = sl_buf_extend(out, (size_t)bound);
    int n = LZ4_compress_default((const char *)in, (char *)dst, (int)len, bound);
    if (n <= 0 && len > 0) {
      out->len = start;
      return -EINVAL;
    }
    out->len = start + 4 + (size_t)n;
    return 0;
  }
  if (c == CQL_COMPRESSION_SNAPPY) {
    size_t bound = snappy_max_compressed_length(len), start = out->len;
    uint8_t *dst = sl_buf_extend(out, bound);
    size_t n = bound;
    if (snappy_compress((const char *)in, len, (char *)dst, &n) != SNAPPY_OK) {
      out->len = start;
      return -EINVAL;
    }
    out->len = start + n;
    return 0;
  }
  sl_buf_put(out, in, len);
  return 0;
}

int cql_decompress(cql_compression_t c, const uint8_t *in, size_t len, size_t max_out, sl_buf_t *out) {
  if (c == CQL_COMPRESSION_LZ4) {
    if (len < 4) return -EINVAL;
    uint32_t n = sl_load_be32(in);
    if (n > max_out || n > (uint32_t)LZ4_MAX_INPUT_SIZE) return -EINVAL;
    size_t start = out->len;
    uint8_t *dst = sl_buf_extend(out, n ? n : 1);
    int got = LZ4_decompress_safe((const char *)in + 4, (char *)dst, (int)(len - 4), (int)n);
    if (got < 0 || (uint32_t)got != n) {
      out->len = start;
      return -EINVAL;
    }
    out->len = start + n;
    return 0;
  }
  if (c == CQL_COMPRESSION_SNAPPY) {
    size_t n;
    if (snappy_uncompressed_length((const char *)in, len, &n) != SNAPPY_OK || n > max_out) return -EINVAL;
    size_t start = out->len;
    uint8_t *dst = sl_buf_extend(out, n ? n : 1);
    if (snappy_uncompress((const char *)in, len, (char *)dst, &n) != SNAPPY_OK) {
      out->len = start;
      return -EINVAL;
    }
    out->len = start + n;
    return 0;
  }
  if (len > max_out) return -EINVAL;
  sl_buf_put(out, in, len);
  return 0;
}
