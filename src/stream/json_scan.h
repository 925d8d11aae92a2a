/* A single-pass JSON scanner for the stream processor's hot path: it walks a record once, checks all of it, and
 * extracts only the values at paths known in advance (a pipeline's column and template paths, see pipeline.h),
 * without building a tree, allocating, or copying strings that have no escapes.
 *
 * It is a fast path in front of jansson, not a second decoder of record: it answers SL_JSCAN_OK only when it is
 * certain that jansson (json_loadb with JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, as mapping.c calls it) accepts
 * the document as a JSON object and decodes every extracted value to the same type and value. Anything else
 * answers SL_JSCAN_UNSURE and the caller decodes with jansson, which also words the dead-letter reason:
 *   - any invalid JSON (RFC 8259 grammar, numbers, escapes, UTF-8, control characters, trailing bytes), duplicate
 *     keys, a root that is not an object;
 *   - rarer valid inputs: keys with escapes, \u0000, nesting deeper than SL_JSCAN_MAX_DEPTH, more than
 *     SL_JSCAN_MAX_KEYS keys in open objects, integers of 19 digits or more, reals strtod reports out of range,
 *     escaped strings longer than the caller's scratch space.
 * Numbers: integers (no fraction or exponent) are exact int64s; reals use the exact fast path (at most 15
 * significant digits and a power of ten up to 22, one correctly rounded operation) or strtod otherwise, so they
 * equal jansson's strtod to the bit. Memory: the path table is built once; scanning uses the stack only. */
#ifndef SL_STREAM_JSON_SCAN_H
#define SL_STREAM_JSON_SCAN_H
#include <stddef.h>
#include <stdint.h>

#include "stream/pipeline.h"

enum { SL_JSCAN_MAX_DEPTH = 64, SL_JSCAN_MAX_KEYS = 256, SL_JSCAN_MAX_SLOTS = 64 };
enum { SL_JSCAN_UNSURE = 0, SL_JSCAN_OK = 1 };

typedef enum {
  SL_JV_ABSENT = 0, /* the path is not in the document */
  SL_JV_NULL,
  SL_JV_TRUE,
  SL_JV_FALSE,
  SL_JV_INT,
  SL_JV_REAL,
  SL_JV_STRING, /* s, len: decoded UTF-8 (in the document when it had no escapes, else in the scratch space) */
  SL_JV_OBJECT, /* s, len: the raw text */
  SL_JV_ARRAY,  /* s, len: the raw text */
} sl_jv_kind_t;

typedef struct {
  sl_jv_kind_t kind;
  size_t len;
  const char *s;
  int64_t i;
  double d;
} sl_jv_t;

typedef struct sl_jpaths sl_jpaths_t;

sl_jpaths_t *sl_jpaths_new(void);
void sl_jpaths_free(sl_jpaths_t *t);
/* Adds a path; returns its slot (the same slot for the same path added again), or -1 beyond
 * SL_JSCAN_MAX_SLOTS. */
int sl_jpaths_add(sl_jpaths_t *t, const sl_path_t *path);
size_t sl_jpaths_slots(const sl_jpaths_t *t);

/* A pipeline's path table (mapping.c builds it from the column and template paths). */
const sl_jpaths_t *sl_map_plan_paths(const struct sl_map_plan *plan);

/* Scans doc[0..len). On SL_JSCAN_OK out[slot] holds each path's value (SL_JV_ABSENT when missing); out has
 * sl_jpaths_slots(t) entries. */

int sl_json_scan(const sl_jpaths_t *t, const void *doc, size_t len, sl_jv_t *out, char *scratch, size_t scratch_cap);

#endif
