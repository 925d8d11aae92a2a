/* Shared between the executor's files (exec.c, exec_select.c, values.c, systables.c). Not a public API. */
#ifndef SL_STORE_EXEC_INTERNAL_H
#define SL_STORE_EXEC_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cql/proto.h"
#include "cql/types.h"
#include "store/arena.h"
#include "store/cql_ast.h"
#include "store/engine.h"
#include "store/kv.h"
#include "store/rows.h"
#include "store/schema.h"

/* A prepared statement: its text, and its parse tree (in its own arena, with the prepared keyspace applied) so an
 * EXECUTE does not parse again. The tree holds names and terms only, nothing resolved against the schema, so
 * schema changes do not stale it. */
typedef struct {
  uint8_t id[16];
  char *query;
  char *keyspace;
  uint64_t last_used;
  sl_arena_t arena;
  cql_stmt_t *stmt; /* NULL if it could not be kept (then EXECUTE parses the text) */
} sl_prepared_t;

struct sl_engine {
  sl_engine_config_t cfg;
  char *data_dir, *cluster_name, *data_center, *rack, *address;
  sl_catalog_t cat;
  sl_kv_t *kv;
  sl_prepared_t *prepared;
  size_t nprepared;
  uint64_t use_clock;
  uint8_t host_id[16];
  uint64_t rng;
  int64_t last_micros; /* default timestamps are strictly increasing */
};

typedef struct {
  const char *ks, *table, *name;
  const sl_cql_type_t *type;
} sl_colspec_t;

/* One request's execution context. */
typedef struct {
  sl_engine_t *e;
  sl_session_t *sess;
  sl_arena_t *a;
  /* bound values */
  cql_value_t *values;
  size_t nvalues;
  sl_slice_t *value_names; /* with the names flag; NULL otherwise */
  /* bind marker specs, filled by sl_exec_collect_binds */
  sl_colspec_t *binds;
  int nbinds;
  /* query parameters */
  int64_t timestamp; /* INT64_MIN: none given */
  int32_t page_size; /* <= 0: no paging */
  sl_slice_t paging_state;
  bool has_paging_state;
  bool skip_metadata;
  /* outcome */
  sl_buf_t *out;
  sl_buf_t *event;
  int err_code;
  char err_msg[1024];
  sl_slice_t err_extra; /* extra error body bytes (Already_exists, Unprepared) */
} sl_exec_t;

int sl_exec_fail(sl_exec_t *x, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Converts a term to a serialized value of type t. Returns 0 (out filled; kind NULL/UNSET possible) or -1. */
int sl_exec_term_value(sl_exec_t *x, const cql_term_t *term, const sl_cql_type_t *t, cql_value_t *out);
/* An integer-valued term (LIMIT, TTL, TIMESTAMP): returns 0 with *out, 1 when null/unset, -1 on error. */
int sl_exec_term_int(sl_exec_t *x, const cql_term_t *term, int64_t *out);
/* Resolves bind marker specs for a statement (for PREPARE metadata and named values). */
int sl_exec_collect_binds(sl_exec_t *x, const cql_stmt_t *s);
const char *sl_exec_keyspace(sl_exec_t *x, const char *ks);
sl_table_t *sl_exec_table(sl_exec_t *x, const char *ks, const char *name);

int sl_exec_select(sl_exec_t *x, const cql_stmt_t *s);
/* Fills result column specs for a SELECT without running it (PREPARE). */
int sl_exec_select_columns(sl_exec_t *x, const cql_stmt_t *s, sl_colspec_t **cols, size_t *ncols);
void sl_exec_write_metadata(sl_buf_t *b, int flags, const sl_colspec_t *cols, size_t n, const sl_slice_t *paging);

/* System tables: creates the built-in keyspaces and tables in the catalogue, and generates rows. */
int sl_systables_init(sl_engine_t *e);
/* Appends every row of a virtual table to rows (sl_slice_t arrays indexed like t->cols). */
void sl_systables_rows(sl_engine_t *e, const sl_table_t *t, sl_arena_t *a, sl_vec_t *rows);
/* Builds a table from a CREATE TABLE statement (user DDL and system tables share this). */
int sl_exec_build_table(sl_exec_t *x, const cql_stmt_t *s, const char *ks, sl_table_t **out);

/* Value helpers (arena). */
sl_slice_t sl_val_text(sl_arena_t *a, const char *s);
sl_slice_t sl_val_int(sl_arena_t *a, int32_t v);
sl_slice_t sl_val_bigint(sl_arena_t *a, int64_t v);
sl_slice_t sl_val_bool(sl_arena_t *a, bool v);
sl_slice_t sl_val_double(sl_arena_t *a, double v);
sl_slice_t sl_val_bytes(sl_arena_t *a, const void *p, size_t n);
/* A collection of text values (list/set: vals NULL; map: keys and vals). */
sl_slice_t sl_val_text_coll(sl_arena_t *a, const char *const *keys, const char *const *vals, size_t n);
int64_t sl_exec_now_micros(sl_engine_t *e);

/* Reads one row (ck NULL: the partition's first row, with its statics); false when there is none. */
bool sl_exec_row_fetch(sl_exec_t *x, const sl_table_t *t, const sl_slice_t *pk, const sl_slice_t *ck, sl_row_t *row);

/* JSON (json.c): a value in Cassandra's JSON form; a column name as a JSON key; INSERT JSON rewritten as the
 * equivalent INSERT ... VALUES statement (arena). */
void sl_json_value(sl_buf_t *out, const sl_cql_type_t *t, const uint8_t *p, size_t len);
void sl_json_column_name(sl_buf_t *out, const char *name);
int sl_exec_json_insert(sl_exec_t *x, const cql_stmt_t *s, const sl_table_t *t, cql_stmt_t **out);
/* fromJson(arg): the JSON text arg evaluates to, as a value of type t (Cassandra's JSON forms). */
int sl_exec_from_json(sl_exec_t *x, const cql_term_t *arg, const sl_cql_type_t *t, cql_value_t *out);

/* A growable array of cell writes (arena). */
typedef struct {
  sl_cell_write_t *v;
  size_t n, cap;
} sl_cellv_t;
sl_cell_write_t *sl_cellv_push(sl_arena_t *a, sl_cellv_t *cv);
/* The cell writes of one operation on a non-frozen collection column (exec_coll.c). given: the already evaluated
 * whole value (INSERT), else valterm is evaluated; keyterm: m[k] / l[i]. DELETE c[k] is ASSIGN_ELEMENT with no
 * valterm. Returns 0 or -1 (x failed). */
int sl_exec_coll_cells(sl_exec_t *x, const sl_table_t *t, const sl_column_t *c, cql_assign_kind_t kind,
                       const cql_term_t *keyterm, const cql_term_t *valterm, const cql_value_t *given,
                       const sl_slice_t *pk, const sl_slice_t *ck, sl_cellv_t *out);
void sl_exec_random(sl_engine_t *e, uint8_t *out, size_t n);

#endif
