/* Unit tests for produce-side batch validation (src/kafka/record_batch.c) and payload decompression. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/crc32c.h"
#include "kafka/compression.h"
#include "kafka/errors.h"
#include "kafka/record_batch.h"
#include "log/partition.h"

/* Encodes `n` records "value-i" with no key and no headers. */
static void encode_records(sl_buf_t *out, int n) {
  for (int i = 0; i < n; i++) {
    char value[32];
    int vlen = snprintf(value, sizeof value, "value-%d", i);
    sl_buf_t rec;
    sl_buf_init(&rec);
    sl_buf_put_u8(&rec, 0);      /* attributes */
    sl_buf_put_varint(&rec, 0);  /* timestamp delta */
    sl_buf_put_varint(&rec, i);  /* offset delta */
    sl_buf_put_varint(&rec, -1); /* null key */
    sl_buf_put_varint(&rec, vlen);
    sl_buf_put(&rec, value, (size_t)vlen);
    sl_buf_put_varint(&rec, 0); /* headers */
    sl_buf_put_varint(out, (int64_t)rec.len);
    sl_buf_put(out, rec.data, rec.len);
    sl_buf_free(&rec);
  }
}

/* Builds a batch around an (optionally compressed) records payload. */
static void build_batch(sl_buf_t *out, int count, int codec, const uint8_t *payload, size_t len) {
  sl_buf_put_be64(out, 0);
  sl_buf_put_be32(out, (uint32_t)(SL_BATCH_HEADER_SIZE - SL_BATCH_LOG_OVERHEAD + len));
  sl_buf_put_be32(out, 0);
  sl_buf_put_u8(out, 2);
  sl_buf_put_be32(out, 0); /* crc, patched */
  sl_buf_put_be16(out, (uint16_t)codec);
  sl_buf_put_be32(out, (uint32_t)(count - 1));
  sl_buf_put_be64(out, 1000);
  sl_buf_put_be64(out, 1000);
  sl_buf_put_be64(out, (uint64_t)-1);
  sl_buf_put_be16(out, (uint16_t)-1);
  sl_buf_put_be32(out, (uint32_t)-1);
  sl_buf_put_be32(out, (uint32_t)count);
  sl_buf_put(out, payload, len);
  sl_store_be32(out->data + SL_BATCH_CRC, sl_crc32c(0, out->data + SL_BATCH_ATTRIBUTES, out->len - SL_BATCH_ATTRIBUTES));
}

static void test_valid_and_corrupt(void **state) {
  (void)state;
  sl_buf_t recs, batch;
  sl_buf_init(&recs);
  sl_buf_init(&batch);
  encode_records(&recs, 10);
  build_batch(&batch, 10, 0, recs.data, recs.len);
  const char *why = NULL;
  assert_int_equal(sl_batch_validate(batch.data, batch.len, 7, 1 << 20, &why), KAFKA_NONE);

  batch.data[batch.len - 3] ^= 0x40; /* flip a payload bit: CRC must catch it */
  assert_int_equal(sl_batch_validate(batch.data, batch.len, 7, 1 << 20, &why), KAFKA_CORRUPT_MESSAGE);
  assert_string_equal(why, "CRC-32C mismatch");
  batch.data[batch.len - 3] ^= 0x40;

  /* truncated: batchLength claims more than present */
  assert_int_equal(sl_batch_validate(batch.data, batch.len - 1, 7, 1 << 20, &why), KAFKA_CORRUPT_MESSAGE);
  /* too large for the limit */
  assert_int_equal(sl_batch_validate(batch.data, batch.len, 7, 64, &why), KAFKA_MESSAGE_TOO_LARGE);
  /* wrong count: lastOffsetDelta says 10 records, recordsCount 11 (CRC recomputed so only structure is wrong) */
  sl_store_be32(batch.data + SL_BATCH_RECORDS_COUNT, 11);
  sl_store_be32(batch.data + SL_BATCH_CRC, sl_crc32c(0, batch.data + 21, batch.len - 21));
  assert_int_equal(sl_batch_validate(batch.data, batch.len, 7, 1 << 20, &why), KAFKA_INVALID_RECORD);
  /* count agrees with the header but not with the records present */
  sl_store_be32(batch.data + SL_BATCH_LAST_OFFSET_DELTA, 10);
  sl_store_be32(batch.data + SL_BATCH_CRC, sl_crc32c(0, batch.data + 21, batch.len - 21));
  assert_int_equal(sl_batch_validate(batch.data, batch.len, 7, 1 << 20, &why), KAFKA_CORRUPT_MESSAGE);
  sl_buf_free(&recs);
  sl_buf_free(&batch);
}

static void test_compressed(void **state) {
  (void)state;
  sl_buf_t recs;
  sl_buf_init(&recs);
  encode_records(&recs, 100);

  /* gzip */
  uint8_t gz[8192];
  z_stream z;
  memset(&z, 0, sizeof z);
  assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = recs.data;
  z.avail_in = (uInt)recs.len;
  z.next_out = gz;
  z.avail_out = sizeof gz;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  size_t gz_len = sizeof gz - z.avail_out;
  deflateEnd(&z);
  sl_buf_t batch;
  sl_buf_init(&batch);
  build_batch(&batch, 100, SL_CODEC_GZIP, gz, gz_len);
  const char *why = NULL;
  assert_int_equal(sl_batch_validate(batch.data, batch.len, 7, 1 << 20, &why), KAFKA_NONE);
  sl_buf_free(&batch);
  /* a gzip stream cut short does not decompress */
  sl_buf_init(&batch);
  build_batch(&batch, 100, SL_CODEC_GZIP, gz, gz_len / 2);
  assert_int_equal(sl_batch_validate(batch.data, batch.len, 7, 1 << 20, &why), KAFKA_CORRUPT_MESSAGE);
  sl_buf_free(&batch);

  /* zstd: valid on Produce v7, refused below */
  uint8_t zs[8192];
  size_t zs_len = ZSTD_compress(zs, sizeof zs, recs.data, recs.len, 3);
  assert_false(ZSTD_isError(zs_len));
  sl_buf_init(&batch);
  build_batch(&batch, 100, SL_CODEC_ZSTD, zs, zs_len);
  assert_int_equal(sl_batch_validate(batch.data, batch.len, 7, 1 << 20, &why), KAFKA_NONE);
  assert_int_equal(sl_batch_validate(batch.data, batch.len, 6, 1 << 20, &why), KAFKA_UNSUPPORTED_COMPRESSION_TYPE);
  sl_buf_free(&batch);

  /* a decompression bomb stops at the bound */
  static uint8_t big[1 << 20];
  size_t bomb_len = ZSTD_compress(zs, sizeof zs, big, sizeof big, 3);
  assert_false(ZSTD_isError(bomb_len));
  sl_buf_t out;
  sl_buf_init(&out);
  assert_int_not_equal(sl_decompress(SL_CODEC_ZSTD, zs, bomb_len, &out, 64 * 1024), 0);
  assert_true(out.len <= 64 * 1024);
  sl_buf_free(&out);
  sl_buf_free(&recs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_and_corrupt),
      cmocka_unit_test(test_compressed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
