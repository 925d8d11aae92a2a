/* Kafka wire primitives, named after the protocol guide's types.
 *
 * Readers work on a core sl_reader_t and never read past its end; a short or malformed field sets r->err, so a
 * handler reads a whole request and checks r->err once. Array counts are bounded by the bytes left (each element
 * needs at least one byte), so no count read from the wire can make us allocate more than the request's size. */
#ifndef SL_KAFKA_CODEC_H
#define SL_KAFKA_CODEC_H
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"

static inline int8_t kafka_read_int8(sl_reader_t *r) { return (int8_t)sl_read_u8(r); }
static inline int16_t kafka_read_int16(sl_reader_t *r) { return (int16_t)sl_read_be16(r); }
static inline int32_t kafka_read_int32(sl_reader_t *r) { return (int32_t)sl_read_be32(r); }
static inline int64_t kafka_read_int64(sl_reader_t *r) { return (int64_t)sl_read_be64(r); }
static inline bool kafka_read_bool(sl_reader_t *r) { return sl_read_u8(r) != 0; }

/* STRING / NULLABLE_STRING (int16 length, -1 = null: ptr NULL). */
sl_slice_t kafka_read_string(sl_reader_t *r);
/* BYTES / NULLABLE_BYTES (int32 length, -1 = null). */
sl_slice_t kafka_read_bytes(sl_reader_t *r);
/* COMPACT_STRING / COMPACT_NULLABLE_STRING / COMPACT_BYTES (uvarint length + 1, 0 = null). */
sl_slice_t kafka_read_compact_string(sl_reader_t *r);
/* ARRAY count (int32, -1 = null returned as -1). Sets err if the count cannot fit in the remaining bytes when each
 * element takes at least min_elem_size bytes. */
int32_t kafka_read_array_len(sl_reader_t *r, size_t min_elem_size);
int32_t kafka_read_compact_array_len(sl_reader_t *r, size_t min_elem_size);
/* TAG_BUFFER: skips every tagged field. */
void kafka_skip_tags(sl_reader_t *r);

static inline void kafka_write_int8(sl_buf_t *b, int8_t v) { sl_buf_put_u8(b, (uint8_t)v); }
static inline void kafka_write_int16(sl_buf_t *b, int16_t v) { sl_buf_put_be16(b, (uint16_t)v); }
static inline void kafka_write_int32(sl_buf_t *b, int32_t v) { sl_buf_put_be32(b, (uint32_t)v); }
static inline void kafka_write_int64(sl_buf_t *b, int64_t v) { sl_buf_put_be64(b, (uint64_t)v); }
static inline void kafka_write_bool(sl_buf_t *b, bool v) { sl_buf_put_u8(b, v ? 1 : 0); }
void kafka_write_string(sl_buf_t *b, const char *s, size_t len);          /* int16 length */
void kafka_write_cstring(sl_buf_t *b, const char *s);                     /* NUL-terminated, NULL = null */
void kafka_write_nullable_string(sl_buf_t *b, const char *s, size_t len); /* s NULL = null */
void kafka_write_bytes(sl_buf_t *b, const void *p, size_t len);           /* int32 length; p NULL = null */
void kafka_write_compact_string(sl_buf_t *b, const char *s, size_t len);
static inline void kafka_write_array_len(sl_buf_t *b, int32_t n) { kafka_write_int32(b, n); }
static inline void kafka_write_compact_array_len(sl_buf_t *b, int32_t n) { sl_buf_put_uvarint(b, (uint64_t)(n + 1)); }
static inline void kafka_write_empty_tags(sl_buf_t *b) { sl_buf_put_u8(b, 0); }

/* A slice equal to a C string? */
bool kafka_slice_eq(sl_slice_t s, const char *cstr);

#endif
