/* CQL data types: descriptors, their names (as system_schema.columns spells them), their [option] encoding in
 * result metadata (spec §4.2.5.2), validation of serialized values (spec §6), and the textual forms of the main
 * scalar types (uuid, timestamp, date, time, inet) shared by the server's literal parser and the client.
 *
 * Ownership: a sl_cql_type_t and its sub-types are one heap tree, freed with sl_cql_type_free. */
#ifndef SL_CQL_TYPES_H
#define SL_CQL_TYPES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum {
  CQL_TYPE_CUSTOM = 0x0000,
  CQL_TYPE_ASCII = 0x0001,
  CQL_TYPE_BIGINT = 0x0002,
  CQL_TYPE_BLOB = 0x0003,
  CQL_TYPE_BOOLEAN = 0x0004,
  CQL_TYPE_COUNTER = 0x0005,
  CQL_TYPE_DECIMAL = 0x0006,
  CQL_TYPE_DOUBLE = 0x0007,
  CQL_TYPE_FLOAT = 0x0008,
  CQL_TYPE_INT = 0x0009,
  CQL_TYPE_TIMESTAMP = 0x000B,
  CQL_TYPE_UUID = 0x000C,
  CQL_TYPE_VARCHAR = 0x000D, /* text */
  CQL_TYPE_VARINT = 0x000E,
  CQL_TYPE_TIMEUUID = 0x000F,
  CQL_TYPE_INET = 0x0010,
  CQL_TYPE_DATE = 0x0011,
  CQL_TYPE_TIME = 0x0012,
  CQL_TYPE_SMALLINT = 0x0013,
  CQL_TYPE_TINYINT = 0x0014,
  CQL_TYPE_DURATION = 0x0015, /* v5 id; sent as a custom type in v4 */
  CQL_TYPE_LIST = 0x0020,
  CQL_TYPE_MAP = 0x0021,
  CQL_TYPE_SET = 0x0022,
  CQL_TYPE_UDT = 0x0030,
  CQL_TYPE_TUPLE = 0x0031,
};

typedef struct sl_cql_type sl_cql_type_t;
struct sl_cql_type {
  uint16_t id;
  bool frozen;
  uint16_t nsub;        /* list/set: 1, map: 2, tuple: n */
  sl_cql_type_t **sub;  /* owned */
  char *custom;         /* CQL_TYPE_CUSTOM: the class name (owned) */
};

/* Parses a CQL type name ("int", "varchar", "frozen<map<text, int>>", "tuple<int, text>", "'java.class'").
 * Returns 0 or -EINVAL; on success *out is owned by the caller. */
int sl_cql_type_parse(const char *s, size_t len, sl_cql_type_t **out);
/* A type with no sub-types. */
sl_cql_type_t *sl_cql_type_new(uint16_t id);
sl_cql_type_t *sl_cql_type_copy(const sl_cql_type_t *t);
void sl_cql_type_free(sl_cql_type_t *t);
bool sl_cql_type_equal(const sl_cql_type_t *a, const sl_cql_type_t *b);
bool sl_cql_type_is_collection(const sl_cql_type_t *t);
/* Appends the type's CQL name, as Cassandra writes it in system_schema ("frozen<map<text, int>>"). */
void sl_cql_type_name(const sl_cql_type_t *t, sl_buf_t *out);
/* Appends the type's [option] for v4 result metadata. */
void sl_cql_type_write_option(sl_buf_t *b, const sl_cql_type_t *t);

/* Checks a serialized value against its type (lengths, element counts, utf-8/ascii). Returns NULL when valid,
 * else a Cassandra-style message (static storage). Empty values are valid for every type, as in Cassandra. */
const char *sl_cql_value_validate(const sl_cql_type_t *t, const uint8_t *p, size_t len);

/* Textual forms. Each returns 0 or -EINVAL. */
int sl_cql_parse_uuid(const char *s, size_t len, uint8_t out[16]);
void sl_cql_format_uuid(const uint8_t in[16], char out[37]);
/* "2024-01-02", "2024-01-02 03:04:05", "...T...", fractional seconds, "Z"/"+hhmm" zones; ms since the epoch. */
int sl_cql_parse_timestamp(const char *s, size_t len, int64_t *ms);
/* "YYYY-MM-DD" to the wire form (days since the epoch + 2^31). */
int sl_cql_parse_date(const char *s, size_t len, uint32_t *out);
/* "HH:MM:SS[.fffffffff]" to nanoseconds since midnight. */
int sl_cql_parse_time(const char *s, size_t len, int64_t *ns);
/* IPv4 or IPv6 text to 4 or 16 bytes; returns the length or -EINVAL. */
int sl_cql_parse_inet(const char *s, size_t len, uint8_t out[16]);
/* Days since 1970-01-01 for a proleptic Gregorian date (and back). */
int64_t sl_cql_days_from_civil(int64_t y, unsigned m, unsigned d);

/* duration: "1h30m", "2d", "-5s", "1y2mo3w4d5h6m7s8ms9us10ns", ISO "P1DT2H" / "P2W". Returns 0, -EINVAL or
 * -ERANGE. */
int sl_cql_parse_duration(const char *s, size_t len, int32_t *months, int32_t *days, int64_t *nanos);
/* The wire form: months, days, nanoseconds as zigzag vints (Cassandra's VIntCoding); returns the length. */
size_t sl_cql_duration_encode(int32_t months, int32_t days, int64_t nanos, uint8_t out[27]);
int sl_cql_duration_decode(const uint8_t *p, size_t len, int32_t *months, int32_t *days, int64_t *nanos);

/* Minimal two's-complement big-endian varint of v; returns its length (1..9). */
size_t sl_cql_varint_encode(int64_t v, uint8_t out[9]);
/* Reads a varint of at most 8 bytes; returns 0 or -ERANGE. */
int sl_cql_varint_decode(const uint8_t *p, size_t len, int64_t *out);

#endif
