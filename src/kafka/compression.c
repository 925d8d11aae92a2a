/* Batch payload decompression (see compression.h). */
#include "kafka/compression.h"

#include <errno.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

enum { CHUNK = 64 * 1024 };

static int gunzip(const uint8_t *in, size_t len, sl_buf_t *out, int64_t max_out) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 15 + 32) != Z_OK) return -ENOMEM; /* +32: accept gzip or zlib headers */
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)len;
  int rc;
  do {
    if ((int64_t)out->len + CHUNK > max_out) {
      inflateEnd(&z);
      return -E2BIG;
    }
    sl_buf_reserve(out, CHUNK);
    z.next_out = out->data + out->len;
    z.avail_out = CHUNK;
    rc = inflate(&z, Z_NO_FLUSH);
    out->len += CHUNK - z.avail_out;
    if (rc == Z_STREAM_END && z.avail_in > 0) {
      /* concatenated gzip members are legal */
      if (inflateReset(&z) != Z_OK) break;
      rc = Z_OK;
    }
  } while (rc == Z_OK);
  inflateEnd(&z);
  return rc == Z_STREAM_END ? 0 : -EINVAL;
}

static int unsnappy_block(const uint8_t *in, size_t len, sl_buf_t *out, int64_t max_out) {
  size_t n;
  if (snappy_uncompressed_length((const char *)in, len, &n) != SNAPPY_OK) return -EINVAL;
  if ((int64_t)(out->len + n) > max_out) return -E2BIG;
  uint8_t *dst = sl_buf_extend(out, n);
  size_t got = n;
  if (snappy_uncompress((const char *)in, len, (char *)dst, &got) != SNAPPY_OK || got != n) return -EINVAL;
  return 0;
}

/* Java's and kafka-python's snappy: "\x82SNAPPY\0", two big-endian int32 versions, then [int32 BE len][block]... */
static int unsnappy(const uint8_t *in, size_t len, sl_buf_t *out, int64_t max_out) {
  static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
  if (len < 16 || memcmp(in, xerial_magic, 8) != 0) return unsnappy_block(in, len, out, max_out);
  size_t pos = 16;
  while (pos < len) {
    if (len - pos < 4) return -EINVAL;
    uint32_t block = sl_load_be32(in + pos);
    pos += 4;
    if (block > len - pos) return -EINVAL;
    int rc = unsnappy_block(in + pos, block, out, max_out);
    if (rc != 0) return rc;
    pos += block;
  }
  return 0;
}

static int unlz4(const uint8_t *in, size_t len, sl_buf_t *out, int64_t max_out) {
  LZ4F_dctx *ctx;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION))) return -ENOMEM;
  int result = -EINVAL;
  size_t pos = 0;
  for (;;) {
    if ((int64_t)out->len + CHUNK > max_out) {
      result = -E2BIG;
      break;
    }
    sl_buf_reserve(out, CHUNK);
    size_t dst = CHUNK, src = len - pos;
    size_t hint = LZ4F_decompress(ctx, out->data + out->len, &dst, in + pos, &src, NULL);
    if (LZ4F_isError(hint)) break;
    out->len += dst;
    pos += src;
    if (hint == 0) {
      result = pos == len ? 0 : -EINVAL;
      break;
    }
    if (src == 0 && dst == 0) break; /* no progress: truncated frame */
  }
  LZ4F_freeDecompressionContext(ctx);
  return result;
}

static int unzstd(const uint8_t *in, size_t len, sl_buf_t *out, int64_t max_out) {
  ZSTD_DStream *ds = ZSTD_createDStream();
  if (!ds) return -ENOMEM;
  ZSTD_initDStream(ds);
  ZSTD_inBuffer ib = {in, len, 0};
  int result = -EINVAL;
  for (;;) {
    if ((int64_t)out->len + CHUNK > max_out) {
      result = -E2BIG;
      break;
    }
    sl_buf_reserve(out, CHUNK);
    ZSTD_outBuffer ob = {out->data + out->len, CHUNK, 0};
    size_t rc = ZSTD_decompressStream(ds, &ob, &ib);
    if (ZSTD_isError(rc)) break;
    out->len += ob.pos;
    if (rc == 0 && ib.pos == ib.size) {
      result = 0;
      break;
    }
    if (ob.pos == 0 && ib.pos == ib.size) break; /* input ended inside a frame */
  }
  ZSTD_freeDStream(ds);
  return result;
}

int sl_decompress(int codec, const uint8_t *in, size_t len, sl_buf_t *out, int64_t max_out) {
  switch (codec) {
    case 1: return gunzip(in, len, out, max_out);
    case 2: return unsnappy(in, len, out, max_out);
    case 3: return unlz4(in, len, out, max_out);
    case 4: return unzstd(in, len, out, max_out);
    default: return -EINVAL;
  }
}
