/* Record batch validation (see record_batch.h). Stored batches are never rewritten, so this is the broker's one
 * chance to refuse a batch that a consumer could not read. */
#include "kafka/record_batch.h"

#include "core/buf.h"
#include "core/crc32c.h"
#include "kafka/compression.h"
#include "kafka/errors.h"
#include "log/partition.h"

int sl_batch_walk_records(const uint8_t *records, size_t len, int32_t count) {
  sl_reader_t r;
  sl_reader_init(&r, records, len);
  for (int32_t i = 0; i < count; i++) {
    int32_t rec_len = sl_read_varint32(&r);
    if (r.err || rec_len < 0 || (size_t)rec_len > sl_reader_remaining(&r)) return -1;
    sl_reader_t rec;
    sl_reader_init(&rec, sl_read_bytes(&r, (size_t)rec_len), (size_t)rec_len);
    (void)sl_read_u8(&rec);          /* attributes */
    (void)sl_read_varint64(&rec);    /* timestamp delta */
    (void)sl_read_varint32(&rec);    /* offset delta */
    int32_t key_len = sl_read_varint32(&rec);
    if (key_len < -1 || (key_len > 0 && !sl_read_bytes(&rec, (size_t)key_len))) return -1;
    int32_t value_len = sl_read_varint32(&rec);
    if (value_len < -1 || (value_len > 0 && !sl_read_bytes(&rec, (size_t)value_len))) return -1;
    int32_t headers = sl_read_varint32(&rec);
    if (headers < 0) return -1;
    for (int32_t h = 0; h < headers && !rec.err; h++) {
      int32_t hk = sl_read_varint32(&rec);
      if (hk < 0 || !sl_read_bytes(&rec, (size_t)hk)) return -1;
      int32_t hv = sl_read_varint32(&rec);
      if (hv < -1 || (hv > 0 && !sl_read_bytes(&rec, (size_t)hv))) return -1;
    }
    if (rec.err || sl_reader_remaining(&rec) != 0) return -1;
  }
  return r.err || sl_reader_remaining(&r) != 0 ? -1 : 0;
}

int16_t sl_batch_validate(const uint8_t *data, size_t len, int16_t produce_version, int64_t max_batch_bytes,
                          const char **reason) {
  if (len < SL_BATCH_HEADER_SIZE) {
    *reason = "shorter than a record batch header";
    return KAFKA_CORRUPT_MESSAGE;
  }
  if (data[SL_BATCH_MAGIC] != 2) {
    *reason = "magic is not 2 (only record batch v2 is accepted on Produce v3+)";
    return data[SL_BATCH_MAGIC] < 2 ? KAFKA_UNSUPPORTED_FOR_MESSAGE_FORMAT : KAFKA_CORRUPT_MESSAGE;
  }
  int32_t batch_len = (int32_t)sl_load_be32(data + SL_BATCH_LENGTH);
  if (batch_len < SL_BATCH_HEADER_SIZE - SL_BATCH_LOG_OVERHEAD) {
    *reason = "batchLength too small";
    return KAFKA_CORRUPT_MESSAGE;
  }
  if ((size_t)batch_len + SL_BATCH_LOG_OVERHEAD != len) {
    *reason = (size_t)batch_len + SL_BATCH_LOG_OVERHEAD < len ? "more than one batch, or trailing bytes"
                                                              : "batchLength runs past the records";
    return (size_t)batch_len + SL_BATCH_LOG_OVERHEAD < len ? KAFKA_INVALID_RECORD : KAFKA_CORRUPT_MESSAGE;
  }
  if ((int64_t)len > max_batch_bytes) {
    *reason = "batch larger than message_max_bytes";
    return KAFKA_MESSAGE_TOO_LARGE;
  }
  uint32_t crc = sl_load_be32(data + SL_BATCH_CRC);
  if (sl_crc32c(0, data + SL_BATCH_ATTRIBUTES, len - SL_BATCH_ATTRIBUTES) != crc) {
    *reason = "CRC-32C mismatch";
    return KAFKA_CORRUPT_MESSAGE;
  }
  uint16_t attributes = sl_load_be16(data + SL_BATCH_ATTRIBUTES);
  int codec = attributes & 7;
  if (codec > SL_CODEC_ZSTD) {
    *reason = "unknown compression codec";
    return KAFKA_CORRUPT_MESSAGE;
  }
  if (codec == SL_CODEC_ZSTD && produce_version < 7) {
    *reason = "zstd needs Produce v7";
    return KAFKA_UNSUPPORTED_COMPRESSION_TYPE;
  }
  if (attributes & 0x20) {
    *reason = "clients may not produce control batches";
    return KAFKA_INVALID_RECORD;
  }
  int32_t last_delta = (int32_t)sl_load_be32(data + SL_BATCH_LAST_OFFSET_DELTA);
  int32_t count = (int32_t)sl_load_be32(data + SL_BATCH_RECORDS_COUNT);
  if (count <= 0 || last_delta != count - 1) {
    *reason = "lastOffsetDelta + 1 != recordsCount";
    return KAFKA_INVALID_RECORD;
  }
  int64_t producer_id = (int64_t)sl_load_be64(data + SL_BATCH_PRODUCER_ID);
  int32_t base_seq = (int32_t)sl_load_be32(data + SL_BATCH_BASE_SEQUENCE);
  if (producer_id >= 0 && base_seq < 0) {
    *reason = "idempotent batch without a base sequence";
    return KAFKA_INVALID_RECORD;
  }
  const uint8_t *records = data + SL_BATCH_HEADER_SIZE;
  size_t records_len = len - SL_BATCH_HEADER_SIZE;
  if (codec == SL_CODEC_NONE) {
    if (sl_batch_walk_records(records, records_len, count) != 0) {
      *reason = "records do not tile the batch";
      return KAFKA_CORRUPT_MESSAGE;
    }
    return KAFKA_NONE;
  }
  sl_buf_t plain;
  sl_buf_init(&plain);
  int rc = sl_decompress(codec, records, records_len, &plain, max_batch_bytes * 64 + 1024 * 1024);
  int16_t result = KAFKA_NONE;
  if (rc != 0) {
    *reason = "compressed payload does not decompress";
    result = KAFKA_CORRUPT_MESSAGE;
  } else if (sl_batch_walk_records(plain.data, plain.len, count) != 0) {
    *reason = "decompressed records do not tile the batch";
    result = KAFKA_CORRUPT_MESSAGE;
  }
  sl_buf_free(&plain);
  return result;
}
