/* Decompression of Kafka batch payloads (gzip, snappy raw or xerial-framed, lz4 frame, zstd), used only to
 * validate what producers send: batches are stored and served compressed, exactly as received. */
#ifndef SL_KAFKA_COMPRESSION_H
#define SL_KAFKA_COMPRESSION_H
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Appends the decompressed bytes to out. Fails (-EINVAL) on corrupt input and (-E2BIG) past max_out bytes, so a
 * small "bomb" cannot make us allocate without bound. codec: 1 gzip, 2 snappy, 3 lz4, 4 zstd. */
int sl_decompress(int codec, const uint8_t *in, size_t len, sl_buf_t *out, int64_t max_out);

#endif
