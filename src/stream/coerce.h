/* Type coercion rules of the stream processor, as pure functions (unit-tested in tests/unit/test_stream_coerce.c).
 *
 *   numbers   from JSON numbers or from strings holding a whole number ("42", " 3.5 "); an integer column takes a
 *             real only when it is integral (3.0) and refuses values out of the column's range
 *   booleans  true/false, strings true/false/yes/no/on/off/1/0 (any case), numbers 0 and 1
 *   timestamps ISO-8601 ("2024-05-01", "2024-05-01T12:00:00", fraction up to nanoseconds, "Z" or "+02:00"/"+0200",
 *             a space instead of "T") or epoch numbers, whose unit is told by magnitude: seconds below 1e11,
 *             milliseconds below 1e14, microseconds below 1e17, nanoseconds above (a real in seconds keeps its
 *             fraction); digit strings count as numbers
 *   uuid      the 36-character form or 32 hex digits, any case
 * Every failing function returns a negative value and leaves a reason in a static string. */
#ifndef SL_STREAM_COERCE_H
#define SL_STREAM_COERCE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses ISO-8601 into ms since the epoch. Returns 0 or -EINVAL. */
int sl_coerce_iso8601(const char *s, size_t len, int64_t *ms);
/* Epoch number (unit by magnitude) to ms. */
int64_t sl_coerce_epoch_int(int64_t v);
int sl_coerce_epoch_real(double v, int64_t *ms);
/* Whole string as an integer / a real (surrounding spaces allowed). Returns 0 or -EINVAL. */
int sl_coerce_parse_int(const char *s, size_t len, int64_t *out);
int sl_coerce_parse_real(const char *s, size_t len, double *out);
int sl_coerce_parse_bool(const char *s, size_t len, bool *out);
int sl_coerce_parse_uuid(const char *s, size_t len, uint8_t out[16]);
void sl_coerce_format_uuid(const uint8_t u[16], char out[37]);
/* Days since the epoch of a timestamp (floor), the `day(ts)` bucket. */
int32_t sl_coerce_day(int64_t ms);

/* The deterministic key of a record: a name-based (version 5, SHA-1) UUID of "topic/partition/offset" in Sluice's
 * namespace, so a replay of the same record derives the same key. */
void sl_coerce_record_uuid(const char *topic, int32_t partition, int64_t offset, uint8_t out[16]);

#endif
