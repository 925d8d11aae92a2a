/* Pipelines: what the stream processor does with a topic, declared in YAML (examples/NAME.yaml):
 *
 *   pipelines:
 *     - name: vehicles                 # names the pipeline in logs, counters and dead-letter headers
 *       topics: [vehicles]             # source topics
 *       group: sluice-vehicles         # consumer group (default: sluice-<name>)
 *       format: json                   # decoding (json; the field is there for avro later)
 *       dead_letter: vehicles.dlq      # records that fail decoding, validation or coercion (default <topic>.dlq)
 *       keyspace: iot                  # created if missing (SimpleStrategy, replication_factor 1)
 *       table: vehicle_readings        # created if missing from the columns and the primary key
 *       columns:
 *         - {name: device_id, type: text, path: id, required: true}
 *         - {name: ts, type: timestamp, path: Timestamp}          # ISO-8601 or epoch, see coerce.h
 *         - {name: day, type: date, derive: day(ts)}              # derived from another column
 *         - {name: id, type: uuid, path: "results[0].login.uuid", derive: record_uuid}  # fallback when missing
 *         - {name: address, type: text, template: "{a.b} {a.c}"}  # text assembled from paths
 *         - {name: status, type: text, path: status, default: ok}
 *       primary_key: [[device_id, day], ts]   # partition key columns, then clustering columns
 *       clustering_order: {ts: desc}
 *       filters:                       # a record failing any filter is counted as filtered, not written
 *         - {column: speed, op: ">=", value: 0}
 *
 * Column types: text, int, bigint, double, float, boolean, timestamp, date, uuid.
 * Derivations: day(<column>) (the date of a timestamp column), record_uuid (a name-based UUID of the record's
 * topic, partition and offset: a replay derives the same key). Filter ops: == != < <= > >= exists missing. */
#ifndef SL_STREAM_PIPELINE_H
#define SL_STREAM_PIPELINE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef enum {
  SL_COL_TEXT,
  SL_COL_INT,
  SL_COL_BIGINT,
  SL_COL_DOUBLE,
  SL_COL_FLOAT,
  SL_COL_BOOLEAN,
  SL_COL_TIMESTAMP,
  SL_COL_DATE,
  SL_COL_UUID,
} sl_col_type_t;

typedef struct {
  size_t nsteps;
  struct sl_path_step {
    char *key; /* NULL: an array index */
    size_t index;
  } *steps;
  char *text; /* as written */
} sl_path_t;

typedef enum { SL_DERIVE_NONE, SL_DERIVE_DAY, SL_DERIVE_RECORD_UUID } sl_derive_t;

typedef struct {
  char *literal; /* NULL: a path part */
  sl_path_t path;
} sl_template_part_t;

typedef struct {
  char *name;
  sl_col_type_t type;
  bool has_path;
  sl_path_t path;
  bool required;
  char *default_value; /* coerced like a JSON string; NULL = none */
  sl_derive_t derive;
  size_t derive_src; /* column index for day() */
  char *derive_src_name;
  sl_template_part_t *tmpl;
  size_t ntmpl;
} sl_column_t;

typedef enum { SL_OP_EQ, SL_OP_NE, SL_OP_LT, SL_OP_LE, SL_OP_GT, SL_OP_GE, SL_OP_EXISTS, SL_OP_MISSING } sl_op_t;

typedef struct {
  size_t column;
  sl_op_t op;
  char *value; /* as written */
  double num;  /* value as a number, when numeric */
  bool is_num;
} sl_filter_t;

typedef struct {
  char *name;
  char **topics;
  size_t ntopics;
  char *group;
  char *format;
  char *dead_letter;
  char *keyspace, *table;
  char *replication;   /* the CREATE KEYSPACE replication map, as CQL ("{'class': ..., ...}") */
  char *table_options; /* appended to CREATE TABLE's WITH clause (NULL: none) */
  sl_column_t *cols;
  size_t ncols;
  size_t *partition_key, npartition_key; /* column indexes */
  size_t *clustering, nclustering;
  bool *clustering_desc;
  sl_filter_t *filters;
  size_t nfilters;
  struct sl_map_plan *plan; /* the single-pass decoder's path table (mapping.c); NULL: jansson only */
} sl_pipeline_t;

/* Parses a YAML document holding `pipelines: [...]` (or a single pipeline mapping). On success *out is an array
 * of *count pipelines (free with sl_pipelines_free); on error returns -EINVAL with a message in err. */
int sl_pipelines_parse(const char *yaml, size_t len, const char *origin, sl_pipeline_t **out, size_t *count,
                       char *err, size_t errlen);
void sl_pipelines_free(sl_pipeline_t *p, size_t count);
const char *sl_col_type_name(sl_col_type_t t);

/* CQL text: CREATE KEYSPACE IF NOT EXISTS ..., CREATE TABLE IF NOT EXISTS ..., INSERT INTO ... (every column,
 * in column order, as bind markers). */
void sl_pipeline_keyspace_cql(const sl_pipeline_t *p, sl_buf_t *out);
void sl_pipeline_table_cql(const sl_pipeline_t *p, sl_buf_t *out);
void sl_pipeline_insert_cql(const sl_pipeline_t *p, sl_buf_t *out);

/* ---------------------------------------------------------------------------------------------------- mapping */

/* One typed cell. Text lives in a caller-owned buffer (offset, length), so rows can be copied and moved. */
typedef struct {
  bool set; /* false: no value (bound as unset) */
  union {
    int64_t i; /* int, bigint, timestamp (ms), date (days since the epoch) */
    double d;  /* double, float */
    bool b;
    uint8_t uuid[16];
    struct {
      uint32_t off, len;
    } s;
  } v;
} sl_value_t;

typedef struct {
  char field[128];  /* column (or path) that failed; "" for the whole record */
  char value[256];  /* the offending value, truncated */
  char reason[256];
} sl_map_error_t;

enum { SL_MAP_ROW = 0, SL_MAP_FILTERED = 1, SL_MAP_ERROR = -1 };

/* Decodes one record and maps it to vals[0..p->ncols), appending text to `text`. Returns SL_MAP_ROW,
 * SL_MAP_FILTERED, or SL_MAP_ERROR with err filled (decoding, missing required field, coercion). */
int sl_pipeline_map(const sl_pipeline_t *p, const void *payload, size_t len, const char *topic, int32_t partition,
                    int64_t offset, sl_value_t *vals, sl_buf_t *text, sl_map_error_t *err);
/* The same mapping with every record decoded by jansson: the reference the single-pass decoder (json_scan.h), which
 * sl_pipeline_map tries first, is tested against (tests/unit/test_stream_json.c, tests/fuzz/fuzz_stream_json.c). */
int sl_pipeline_map_reference(const sl_pipeline_t *p, const void *payload, size_t len, const char *topic,
                              int32_t partition, int64_t offset, sl_value_t *vals, sl_buf_t *text,
                              sl_map_error_t *err);
/* Built by sl_pipelines_parse for each pipeline, freed by sl_pipelines_free; NULL when the paths do not fit. */
struct sl_map_plan *sl_map_plan_new(const sl_pipeline_t *p);
void sl_map_plan_free(struct sl_map_plan *plan);

#endif
