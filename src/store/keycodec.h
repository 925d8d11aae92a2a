/* Order-preserving, self-delimiting encoding of CQL values for RocksDB keys.
 *
 * memcmp over the encodings orders values as Cassandra's comparators do for the types that matter to time series
 * (signed integers, timestamps, floats, text/blob/inet by bytes, date, uuid by version then time, timeuuid by
 * time), so clustering slices and token-ordered scans are plain RocksDB range scans. Each component is
 *   marker (0x01 empty value, 0x02 value) + body
 * where the body is fixed-width for numbers and uuids and byte-stuffed (0x00 -> 0x00 0xFF, end 0x00 0x01) for
 * variable-width types; varint and decimal are ordered by numeric value (marker 0x03, see keycodec.c). A DESC
 * clustering column stores the bitwise complement of its encoding, which reverses the order because every
 * encoding is prefix-free. */
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
/* A varint or decimal as decimal text ("-12.50", "100"); malloc'd, NULL when malformed. */
char *sl_numeric_text(const sl_cql_type_t *t, const uint8_t *p, size_t len);
/* Decimal text ("-12.50", "1.5e-3"; integers only for varint) to the serialized varint / decimal, appended to out.
 * Returns 0 or -EINVAL. */
int sl_numeric_from_text(const sl_cql_type_t *t, const char *s, size_t len, sl_buf_t *out);
/* The signed token as 8 bytes that memcmp in numeric order. */
void sl_key_put_token(sl_buf_t *out, int64_t token);

#endif
