/* Validation of record batches (magic 2) arriving in Produce requests, mirroring Kafka's LogValidator. */
#ifndef SL_KAFKA_RECORD_BATCH_H
#define SL_KAFKA_RECORD_BATCH_H
#include <stddef.h>
#include <stdint.h>

enum { SL_CODEC_NONE = 0, SL_CODEC_GZIP = 1, SL_CODEC_SNAPPY = 2, SL_CODEC_LZ4 = 3, SL_CODEC_ZSTD = 4 };

/* Checks that `data` holds exactly one well-formed batch: lengths, magic 2, CRC-32C, offsets/count agreement, no
 * control flag, known codec, idempotence fields, and that the records tile the payload (after decompression for
 * compressed batches). Returns KAFKA_NONE or the Kafka error code for the produce response; *reason (static
 * string) says why, for the log. */
int16_t sl_batch_validate(const uint8_t *data, size_t len, int16_t produce_version, int64_t max_batch_bytes,
                          const char **reason);

/* Walks `count` records in an uncompressed records region; returns 0 if they tile it exactly. */
int sl_batch_walk_records(const uint8_t *records, size_t len, int32_t count);

#endif
