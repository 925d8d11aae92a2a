/* Order-preserving, self-delimiting encoding of CQL values for RocksDB keys.
 *
 * memcmp over the encodings orders values as Cassandra's comparators do for the types that matter to time series
 * (signed integers, timestamps, floats, text/blob/inet by bytes, date, uuid by version then time, timeuuid by
 * time), so clustering slices and token-ordered scans are plain RocksDB range scans. Each component is
 *   marker (0x01 empty value, 0x02 value) + body
 * where the body is fixed-width for numbers and uuids and byte-stuffed (0x00 -> 0x00 0xFF, end 0x00 0x01) for
 * variable-width types. A DESC clustering column stores the bitwise complement of its encoding, which reverses
 * the order because every encoding is prefix-free. Known gap: varint and decimal sort by bytes, not by value. */
#ifndef SL_STORE_KEYCODEC_H
#define SL_STORE_KEYCODEC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "cql/types.h"

void sl_key_encode(sl_buf_t *out, const sl_cql_type_t *t, const uint8_t *v, size_t len, bool desc);
/* Decodes one component at r; appends the serialized value to out (so the caller can slice it) and returns 0, or
 * -EINVAL on malformed input. *vlen receives the value's length (it starts at out->len before the call). */
int sl_key_decode(sl_reader_t *r, const sl_cql_type_t *t, bool desc, sl_buf_t *out, size_t *vlen);
/* Compares two serialized values of type t in Cassandra order (<0, 0, >0). */
int sl_value_compare(const sl_cql_type_t *t, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* The signed token as 8 bytes that memcmp in numeric order. */
void sl_key_put_token(sl_buf_t *out, int64_t token);

#endif
