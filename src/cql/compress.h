/* Frame body compression negotiated in STARTUP (v4): "lz4" bodies are a 4-byte big-endian uncompressed length
 * followed by a raw LZ4 block; "snappy" bodies are raw snappy. */
#ifndef SL_CQL_COMPRESS_H
#define SL_CQL_COMPRESS_H
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef enum { CQL_COMPRESSION_NONE = 0, CQL_COMPRESSION_LZ4 = 1, CQL_COMPRESSION_SNAPPY = 2 } cql_compression_t;

/* Appends the compressed body to out. Returns 0 or -EINVAL. */
int cql_compress(cql_compression_t c, const uint8_t *in, size_t len, sl_buf_t *out);
/* Appends the decompressed body to out, refusing anything that would exceed max_out. Returns 0 or -EINVAL. */
int cql_decompress(cql_compression_t c, const uint8_t *in, size_t len, size_t max_out, sl_buf_t *out);

#endif
