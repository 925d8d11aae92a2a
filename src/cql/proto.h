/* CQL native protocol v4: frame header and the notations of the spec (§3), read and written.
 *
 * Readers work on a core sl_reader_t and never read past its end: a short or malformed field sets r->err, so a
 * decoder reads a whole message and checks r->err once. Every length taken from the wire is checked against the
 * bytes left before it is used; lists and maps bound their element count by the bytes left (each element needs at
 * least its length prefix), so nothing a peer sends can make us allocate more than the frame it sent.
 *
 * This file is shared by the server (src/store) and the client; it knows nothing of either. */
#ifndef SL_CQL_PROTO_H
#define SL_CQL_PROTO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define CQL_HEADER_LEN 9
#define CQL_MAX_BODY (256u * 1024 * 1024) /* the spec's frame limit */

enum {
  CQL_VERSION_V4 = 0x04,
  CQL_RESPONSE_BIT = 0x80,
};

/* Frame header flags (spec §2.2). */
enum {
  CQL_FLAG_COMPRESSION = 0x01,
  CQL_FLAG_TRACING = 0x02,
  CQL_FLAG_CUSTOM_PAYLOAD = 0x04,
  CQL_FLAG_WARNING = 0x08,
  CQL_FLAG_USE_BETA = 0x10,
};

/* Opcodes (spec §2.4). */
enum {
  CQL_OP_ERROR = 0x00,
  CQL_OP_STARTUP = 0x01,
  CQL_OP_READY = 0x02,
  CQL_OP_AUTHENTICATE = 0x03,
  CQL_OP_OPTIONS = 0x05,
  CQL_OP_SUPPORTED = 0x06,
  CQL_OP_QUERY = 0x07,
  CQL_OP_RESULT = 0x08,
  CQL_OP_PREPARE = 0x09,
  CQL_OP_EXECUTE = 0x0A,
  CQL_OP_REGISTER = 0x0B,
  CQL_OP_EVENT = 0x0C,
  CQL_OP_BATCH = 0x0D,
  CQL_OP_AUTH_CHALLENGE = 0x0E,
  CQL_OP_AUTH_RESPONSE = 0x0F,
  CQL_OP_AUTH_SUCCESS = 0x10,
};

/* Error codes (spec §9). */
enum {
  CQL_ERR_SERVER = 0x0000,
  CQL_ERR_PROTOCOL = 0x000A,
  CQL_ERR_BAD_CREDENTIALS = 0x0100,
  CQL_ERR_UNAVAILABLE = 0x1000,
  CQL_ERR_OVERLOADED = 0x1001,
  CQL_ERR_IS_BOOTSTRAPPING = 0x1002,
  CQL_ERR_TRUNCATE = 0x1003,
  CQL_ERR_WRITE_TIMEOUT = 0x1100,
  CQL_ERR_READ_TIMEOUT = 0x1200,
  CQL_ERR_SYNTAX = 0x2000,
  CQL_ERR_UNAUTHORIZED = 0x2100,
  CQL_ERR_INVALID = 0x2200,
  CQL_ERR_CONFIG = 0x2300,
  CQL_ERR_ALREADY_EXISTS = 0x2400,
  CQL_ERR_UNPREPARED = 0x2500,
};

/* RESULT kinds (spec §4.2.5). */
enum {
  CQL_RESULT_VOID = 1,
  CQL_RESULT_ROWS = 2,
  CQL_RESULT_SET_KEYSPACE = 3,
  CQL_RESULT_PREPARED = 4,
  CQL_RESULT_SCHEMA_CHANGE = 5,
};

/* Query parameter flags (spec §4.1.4). */
enum {
  CQL_QFLAG_VALUES = 0x01,
  CQL_QFLAG_SKIP_METADATA = 0x02,
  CQL_QFLAG_PAGE_SIZE = 0x04,
  CQL_QFLAG_PAGING_STATE = 0x08,
  CQL_QFLAG_SERIAL_CONSISTENCY = 0x10,
  CQL_QFLAG_DEFAULT_TIMESTAMP = 0x20,
  CQL_QFLAG_NAMES_FOR_VALUES = 0x40,
};

/* Rows metadata flags (spec §4.2.5.2). */
enum {
  CQL_RFLAG_GLOBAL_TABLES_SPEC = 0x0001,
  CQL_RFLAG_HAS_MORE_PAGES = 0x0002,
  CQL_RFLAG_NO_METADATA = 0x0004,
};

typedef struct {
  uint8_t version; /* including the response bit */
  uint8_t flags;
  int16_t stream;
  uint8_t opcode;
  uint32_t length; /* body length */
} cql_header_t;

/* Result of cql_parse_header. */
enum {
  CQL_HEADER_OK = 0,
  CQL_HEADER_NEED_MORE = 1,   /* fewer than 9 bytes */
  CQL_HEADER_TOO_LARGE = -1,  /* body length above max_body */
};

/* Decodes the 9-byte v4 header from data (any version byte: the caller decides what it accepts). */
int cql_parse_header(const uint8_t *data, size_t len, uint32_t max_body, cql_header_t *out);
/* Appends a 9-byte header with a zero length; cql_frame_finish patches the length once the body is written. */
size_t cql_frame_begin(sl_buf_t *b, uint8_t version, uint8_t flags, int16_t stream, uint8_t opcode);
void cql_frame_finish(sl_buf_t *b, size_t frame_start);

/* [value]: a [bytes] that may also be "unset" (-2). */
typedef enum { CQL_VALUE_SET = 0, CQL_VALUE_NULL = 1, CQL_VALUE_UNSET = 2 } cql_value_kind_t;
typedef struct {
  cql_value_kind_t kind;
  sl_slice_t v; /* valid when kind == CQL_VALUE_SET (may be empty) */
} cql_value_t;

static inline int32_t cql_read_int(sl_reader_t *r) { return (int32_t)sl_read_be32(r); }
static inline int64_t cql_read_long(sl_reader_t *r) { return (int64_t)sl_read_be64(r); }
static inline uint16_t cql_read_short(sl_reader_t *r) { return sl_read_be16(r); }
static inline uint8_t cql_read_byte(sl_reader_t *r) { return sl_read_u8(r); }
/* [string]: [short] n + n bytes. */
sl_slice_t cql_read_string(sl_reader_t *r);
/* [long string]: [int] n + n bytes (n < 0 is an error). */
sl_slice_t cql_read_long_string(sl_reader_t *r);
/* [bytes]: [int] n + n bytes; n < 0 is null (ptr NULL, *is_null set). */
sl_slice_t cql_read_bytes(sl_reader_t *r, bool *is_null);
/* [short bytes]: [short] n + n bytes. */
sl_slice_t cql_read_short_bytes(sl_reader_t *r);
/* [value]: like [bytes], with -2 = unset; other negative lengths are errors. */
cql_value_t cql_read_value(sl_reader_t *r);
/* [string list] / [string map]: the count, bounded by the bytes left. Read the elements with cql_read_string. */
uint16_t cql_read_list_count(sl_reader_t *r, size_t min_elem_size);

/* Finds key in a [string map] body (a reader positioned at the map); returns true and the value. Reads a copy of
 * the reader so the caller's position is unchanged. */
bool cql_string_map_get(const sl_reader_t *map, const char *key, sl_slice_t *value);

static inline void cql_write_byte(sl_buf_t *b, uint8_t v) { sl_buf_put_u8(b, v); }
static inline void cql_write_short(sl_buf_t *b, uint16_t v) { sl_buf_put_be16(b, v); }
static inline void cql_write_int(sl_buf_t *b, int32_t v) { sl_buf_put_be32(b, (uint32_t)v); }
static inline void cql_write_long(sl_buf_t *b, int64_t v) { sl_buf_put_be64(b, (uint64_t)v); }
void cql_write_string(sl_buf_t *b, const char *s, size_t len);
void cql_write_cstring(sl_buf_t *b, const char *s);
void cql_write_long_string(sl_buf_t *b, const char *s, size_t len);
void cql_write_bytes(sl_buf_t *b, const void *p, size_t len); /* p NULL = null ([int] -1) */
void cql_write_short_bytes(sl_buf_t *b, const void *p, size_t len);
void cql_write_string_list(sl_buf_t *b, const char *const *items, size_t n);

/* An ERROR body: [int] code + [string] message (no extra fields). */
void cql_write_error_body(sl_buf_t *b, int32_t code, const char *msg);

bool cql_slice_eq(sl_slice_t s, const char *cstr);
bool cql_slice_eq_nocase(sl_slice_t s, const char *cstr);

#endif
