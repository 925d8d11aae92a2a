/* The schema catalogue: keyspaces, tables and their columns, with the storage ids the RocksDB layer uses.
 *
 * The catalogue is owned by the store's executor thread (see worker.h); nothing else reads or writes it, so it
 * needs no locks. It is persisted by schema_store.c as one record per keyspace and per table; the schema version
 * (the uuid drivers compare for agreement) is a hash of those records, so it is the same for the same schema. */
#ifndef SL_STORE_SCHEMA_H
#define SL_STORE_SCHEMA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "cql/types.h"

typedef enum { SL_COL_PARTITION_KEY = 0, SL_COL_CLUSTERING = 1, SL_COL_REGULAR = 2, SL_COL_STATIC = 3 } sl_col_kind_t;

typedef struct {
  char *name;
  sl_cql_type_t *type;
  sl_col_kind_t kind;
  int position;  /* index within the partition key / clustering key; -1 for other columns */
  bool desc;     /* clustering order */
  uint16_t id;   /* storage id of the column's cells (regular/static); stable across ALTER */
} sl_column_t;

/* A table option as given in CREATE/ALTER TABLE ... WITH (echoed in system_schema.tables): a scalar's text, or a
 * map's entries. */
typedef struct {
  char *name;
  char *text;          /* scalars */
  bool is_map;
  size_t n;            /* maps */
  char **keys, **vals;
} sl_table_opt_t;

/* A column dropped by ALTER TABLE DROP (system_schema.dropped_columns). */
typedef struct {
  char *name, *type;
  int64_t time_us;
  bool is_static;
} sl_dropped_col_t;

typedef struct {
  char *keyspace, *name;
  uint8_t uuid[16];   /* system_schema.tables.id */
  uint32_t id;        /* storage prefix */
  sl_column_t *cols;  /* partition key, clustering, static, regular; the latter two sorted by name */
  size_t ncols, npk, nck;
  uint16_t next_col_id;
  int64_t default_ttl;
  int64_t gc_grace;
  char *comment;
  bool is_virtual;    /* a system table answered from the catalogue */
  sl_table_opt_t *opts; /* options given (the others are shown with Cassandra's defaults) */
  size_t nopts;
  sl_dropped_col_t *dropped;
  size_t ndropped;
} sl_table_t;

typedef struct {
  char *name;
  bool durable_writes;
  char **repl_keys, **repl_vals; /* replication map, class already expanded */
  size_t nrepl;
  bool is_virtual;
} sl_keyspace_t;

typedef struct {
  sl_keyspace_t **ks;
  size_t nks;
  sl_table_t **tables;
  size_t ntables;
  uint32_t next_table_id;
  uint8_t version[16];
} sl_catalog_t;

void sl_catalog_init(sl_catalog_t *c);
void sl_catalog_free(sl_catalog_t *c);
sl_keyspace_t *sl_catalog_keyspace(const sl_catalog_t *c, const char *name);
sl_table_t *sl_catalog_table(const sl_catalog_t *c, const char *ks, const char *name);
/* Takes ownership. */
void sl_catalog_add_keyspace(sl_catalog_t *c, sl_keyspace_t *ks);
void sl_catalog_add_table(sl_catalog_t *c, sl_table_t *t);
/* Removes and frees. */
void sl_catalog_drop_table(sl_catalog_t *c, const char *ks, const char *name);
void sl_catalog_drop_keyspace(sl_catalog_t *c, const char *name);
/* Recomputes the schema version from the persisted form of every non-virtual keyspace and table. */
void sl_catalog_update_version(sl_catalog_t *c);

sl_column_t *sl_table_column(const sl_table_t *t, const char *name);
/* Re-sorts columns into canonical order and recounts npk/nck (after building or altering a table). */
void sl_table_finish(sl_table_t *t);
void sl_table_free(sl_table_t *t);
const sl_table_opt_t *sl_table_option(const sl_table_t *t, const char *name);
/* Takes ownership of o's strings; replaces an option of the same name. */
void sl_table_set_option(sl_table_t *t, const sl_table_opt_t *o);
void sl_table_opt_free(sl_table_opt_t *o);
void sl_keyspace_free(sl_keyspace_t *k);

/* Persisted forms. Decoders return 0 or -EINVAL and never trust lengths (the data may be corrupt). */
void sl_table_encode(const sl_table_t *t, sl_buf_t *out);
int sl_table_decode(const uint8_t *p, size_t len, sl_table_t **out);
void sl_keyspace_encode(const sl_keyspace_t *k, sl_buf_t *out);
int sl_keyspace_decode(const uint8_t *p, size_t len, sl_keyspace_t **out);

/* 16 bytes from a 128-bit hash of data, shaped as a version-4-style uuid (deterministic ids). */
void sl_hash_uuid(const void *data, size_t len, uint8_t out[16]);

#endif
