/* Virtual system tables: system.local/peers/peers_v2, system_schema.* and system_virtual_schema.*, generated
 * from the live catalogue on every read. Their definitions are CQL text run through the same parser and table
 * builder as user DDL, so their metadata (and system_schema.columns rows describing them) cannot drift. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "cql/murmur3.h"
#include "store/exec_internal.h"

#define TABLE_OPTIONS                                                                                          \
  "additional_write_policy text, bloom_filter_fp_chance double, caching frozen<map<text, text>>, cdc boolean, " \
  "comment text, compaction frozen<map<text, text>>, compression frozen<map<text, text>>, "                    \
  "crc_check_chance double, dclocal_read_repair_chance double, default_time_to_live int, "                     \
  "extensions frozen<map<text, blob>>, gc_grace_seconds int, id uuid, max_index_interval int, "                \
  "memtable_flush_period_in_ms int, min_index_interval int, read_repair text, read_repair_chance double, "     \
  "speculative_retry text, "

static const char *const system_ddl[] = {
    "CREATE TABLE system.local (key text PRIMARY KEY, bootstrapped text, broadcast_address inet, "
    "broadcast_port int, cluster_name text, cql_version text, data_center text, gossip_generation int, "
    "host_id uuid, listen_address inet, listen_port int, native_protocol_version text, partitioner text, "
    "rack text, release_version text, rpc_address inet, rpc_port int, schema_version uuid, tokens set<text>, "
    "truncated_at map<uuid, blob>)",
    "CREATE TABLE system.peers (peer inet PRIMARY KEY, data_center text, host_id uuid, preferred_ip inet, "
    "rack text, release_version text, rpc_address inet, schema_version uuid, tokens set<text>)",
    "CREATE TABLE system.peers_v2 (peer inet, peer_port int, data_center text, host_id uuid, preferred_ip inet, "
    "preferred_port int, rack text, release_version text, native_address inet, native_port int, "
    "schema_version uuid, tokens set<text>, PRIMARY KEY ((peer), peer_port))",
    "CREATE TABLE system_schema.keyspaces (keyspace_name text PRIMARY KEY, durable_writes boolean, "
    "replication frozen<map<text, text>>)",
    "CREATE TABLE system_schema.tables (keyspace_name text, table_name text, " TABLE_OPTIONS
    "flags frozen<set<text>>, PRIMARY KEY ((keyspace_name), table_name))",
    "CREATE TABLE system_schema.columns (keyspace_name text, table_name text, column_name text, "
    "clustering_order text, column_name_bytes blob, kind text, position int, type text, "
    "PRIMARY KEY ((keyspace_name), table_name, column_name))",
    "CREATE TABLE system_schema.dropped_columns (keyspace_name text, table_name text, column_name text, "
    "dropped_time timestamp, kind text, type text, PRIMARY KEY ((keyspace_name), table_name, column_name))",
    "CREATE TABLE system_schema.triggers (keyspace_name text, table_name text, trigger_name text, "
    "options frozen<map<text, text>>, PRIMARY KEY ((keyspace_name), table_name, trigger_name))",
    "CREATE TABLE system_schema.views (keyspace_name text, view_name text, base_table_id uuid, "
    "base_table_name text, include_all_columns boolean, where_clause text, " TABLE_OPTIONS
    "PRIMARY KEY ((keyspace_name), view_name))",
    "CREATE TABLE system_schema.types (keyspace_name text, type_name text, field_names frozen<list<text>>, "
    "field_types frozen<list<text>>, PRIMARY KEY ((keyspace_name), type_name))",
    "CREATE TABLE system_schema.functions (keyspace_name text, function_name text, "
    "argument_types frozen<list<text>>, argument_names frozen<list<text>>, body text, "
    "called_on_null_input boolean, language text, return_type text, "
    "PRIMARY KEY ((keyspace_name), function_name, argument_types))",
    "CREATE TABLE system_schema.aggregates (keyspace_name text, aggregate_name text, "
    "argument_types frozen<list<text>>, final_func text, initcond text, return_type text, state_func text, "
    "state_type text, PRIMARY KEY ((keyspace_name), aggregate_name, argument_types))",
    "CREATE TABLE system_schema.indexes (keyspace_name text, table_name text, index_name text, kind text, "
    "options frozen<map<text, text>>, PRIMARY KEY ((keyspace_name), table_name, index_name))",
    "CREATE TABLE system_virtual_schema.keyspaces (keyspace_name text PRIMARY KEY)",
    "CREATE TABLE system_virtual_schema.tables (keyspace_name text, table_name text, comment text, "
    "PRIMARY KEY ((keyspace_name), table_name))",
    "CREATE TABLE system_virtual_schema.columns (keyspace_name text, table_name text, column_name text, "
    "clustering_order text, column_name_bytes blob, kind text, position int, type text, "
    "PRIMARY KEY ((keyspace_name), table_name, column_name))",
};

static const char *const builtin_keyspaces[] = {"system", "system_schema", "system_virtual_schema"};

int sl_systables_init(sl_engine_t *e) {
  for (size_t i = 0; i < sizeof builtin_keyspaces / sizeof builtin_keyspaces[0]; i++) {
    sl_keyspace_t *k = calloc(1, sizeof *k);
    if (!k) abort();
    k->name = strdup(builtin_keyspaces[i]);
    k->durable_writes = true;
    k->is_virtual = true;
    k->repl_keys = calloc(1, sizeof(char *));
    k->repl_vals = calloc(1, sizeof(char *));
    if (!k->repl_keys || !k->repl_vals) abort();
    k->repl_keys[0] = strdup("class");
    k->repl_vals[0] = strdup(i == 2 ? "org.apache.cassandra.locator.LocalStrategy"
                                    : "org.apache.cassandra.locator.LocalStrategy");
    k->nrepl = 1;
    sl_catalog_add_keyspace(&e->cat, k);
  }
  for (size_t i = 0; i < sizeof system_ddl / sizeof system_ddl[0]; i++) {
    sl_arena_t a;
    sl_arena_init(&a);
    const char *err = NULL;
    cql_stmt_t *s = sl_cql_parse(&a, system_ddl[i], strlen(system_ddl[i]), &err);
    sl_exec_t x = {.e = e, .a = &a};
    sl_table_t *t = NULL;
    if (!s || sl_exec_build_table(&x, s, s->keyspace, &t) != 0) {
      SL_ERROR("store", "built-in table definition %zu is invalid: %s", i, err ? err : x.err_msg);
      sl_arena_free(&a);
      return -1;
    }
    t->is_virtual = true;
    t->id = 0;
    sl_catalog_add_table(&e->cat, t);
    sl_arena_free(&a);
  }
  return 0;
}

/* ---- row generation ---- */

typedef struct {
  const sl_table_t *t;
  sl_arena_t *a;
  sl_slice_t *vals;
} rowb_t;

static rowb_t row_new(const sl_table_t *t, sl_arena_t *a, sl_vec_t *rows) {
  rowb_t r = {t, a, sl_arena_alloc(a, t->ncols * sizeof(sl_slice_t))};
  sl_vec_push(a, rows, r.vals);
  return r;
}

static void put(rowb_t *r, const char *col, sl_slice_t v) {
  for (size_t i = 0; i < r->t->ncols; i++)
    if (!strcmp(r->t->cols[i].name, col)) {
      r->vals[i] = v;
      return;
    }
}

static sl_slice_t inet_val(sl_arena_t *a, const char *host) {
  uint8_t b[16];
  int n = sl_cql_parse_inet(host, strlen(host), b);
  if (n < 0 || (n == 4 && !memcmp(b, "\0\0\0\0", 4))) {
    b[0] = 127, b[1] = 0, b[2] = 0, b[3] = 1;
    n = 4;
  }
  return sl_val_bytes(a, b, (size_t)n);
}

static void gen_local(sl_engine_t *e, rowb_t *r) {
  sl_arena_t *a = r->a;
  put(r, "key", sl_val_text(a, "local"));
  put(r, "bootstrapped", sl_val_text(a, "COMPLETED"));
  put(r, "broadcast_address", inet_val(a, e->address));
  put(r, "broadcast_port", sl_val_int(a, 7000));
  put(r, "cluster_name", sl_val_text(a, e->cluster_name));
  put(r, "cql_version", sl_val_text(a, "3.4.5"));
  put(r, "data_center", sl_val_text(a, e->data_center));
  put(r, "gossip_generation", sl_val_int(a, 1));
  put(r, "host_id", sl_val_bytes(a, e->host_id, 16));
  put(r, "listen_address", inet_val(a, e->address));
  put(r, "listen_port", sl_val_int(a, 7000));
  put(r, "native_protocol_version", sl_val_text(a, "4"));
  put(r, "partitioner", sl_val_text(a, "org.apache.cassandra.dht.Murmur3Partitioner"));
  put(r, "rack", sl_val_text(a, e->rack));
  put(r, "release_version", sl_val_text(a, "4.0.11"));
  put(r, "rpc_address", inet_val(a, e->address));
  put(r, "rpc_port", sl_val_int(a, e->cfg.port));
  put(r, "schema_version", sl_val_bytes(a, e->cat.version, 16));
  /* one node owns the whole ring: a single token */
  static const char *const tokens[] = {"0"};
  put(r, "tokens", sl_val_text_coll(a, tokens, NULL, 1));
}

static const char *type_text(sl_arena_t *a, const sl_cql_type_t *t) {
  sl_buf_t b;
  sl_buf_init(&b);
  sl_cql_type_name(t, &b);
  char *s = sl_arena_strndup(a, (const char *)b.data, b.len);
  sl_buf_free(&b);
  return s;
}

static bool in_virtual_schema(const char *ks) { return !strcmp(ks, "system_virtual_schema"); }

/* An option as given, else Cassandra's default. */
static sl_slice_t opt_or(sl_arena_t *a, const sl_table_t *t, const char *name, char kind, sl_slice_t dflt) {
  const sl_table_opt_t *o = sl_table_option(t, name);
  if (!o) return dflt;
  if (o->is_map) return sl_val_text_coll(a, (const char *const *)o->keys, (const char *const *)o->vals, o->n);
  switch (kind) {
    case 'i': return sl_val_int(a, (int32_t)strtol(o->text, NULL, 10));
    case 'd': return sl_val_double(a, strtod(o->text, NULL));
    case 'b': return sl_val_bool(a, !strcmp(o->text, "true"));
    default: return sl_val_text(a, o->text);
  }
}

static void table_option_cols(sl_engine_t *e, rowb_t *r, const sl_table_t *t) {
  sl_arena_t *a = r->a;
  (void)e;
  static const char *const caching_k[] = {"keys", "rows_per_partition"};
  static const char *const caching_v[] = {"ALL", "NONE"};
  static const char *const compaction_k[] = {"class", "max_threshold", "min_threshold"};
  static const char *const compaction_v[] = {"org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy",
                                             "32", "4"};
  static const char *const compression_k[] = {"chunk_length_in_kb", "class"};
  static const char *const compression_v[] = {"16", "org.apache.cassandra.io.compress.LZ4Compressor"};
  put(r, "additional_write_policy", opt_or(a, t, "additional_write_policy", 't', sl_val_text(a, "99p")));
  put(r, "bloom_filter_fp_chance", opt_or(a, t, "bloom_filter_fp_chance", 'd', sl_val_double(a, 0.01)));
  put(r, "caching", opt_or(a, t, "caching", 'm', sl_val_text_coll(a, caching_k, caching_v, 2)));
  put(r, "cdc", opt_or(a, t, "cdc", 'b', sl_val_bool(a, false)));
  put(r, "comment", sl_val_text(a, t->comment ? t->comment : ""));
  put(r, "compaction", opt_or(a, t, "compaction", 'm', sl_val_text_coll(a, compaction_k, compaction_v, 3)));
  put(r, "compression", opt_or(a, t, "compression", 'm', sl_val_text_coll(a, compression_k, compression_v, 2)));
  put(r, "crc_check_chance", opt_or(a, t, "crc_check_chance", 'd', sl_val_double(a, 1.0)));
  put(r, "dclocal_read_repair_chance", opt_or(a, t, "dclocal_read_repair_chance", 'd', sl_val_double(a, 0.0)));
  put(r, "default_time_to_live", sl_val_int(a, (int32_t)t->default_ttl));
  put(r, "extensions", sl_val_text_coll(a, NULL, NULL, 0));
  put(r, "gc_grace_seconds", sl_val_int(a, (int32_t)t->gc_grace));
  put(r, "id", sl_val_bytes(a, t->uuid, 16));
  put(r, "max_index_interval", opt_or(a, t, "max_index_interval", 'i', sl_val_int(a, 2048)));
  put(r, "memtable_flush_period_in_ms", opt_or(a, t, "memtable_flush_period_in_ms", 'i', sl_val_int(a, 0)));
  put(r, "min_index_interval", opt_or(a, t, "min_index_interval", 'i', sl_val_int(a, 128)));
  put(r, "read_repair", opt_or(a, t, "read_repair", 't', sl_val_text(a, "BLOCKING")));
  put(r, "read_repair_chance", opt_or(a, t, "read_repair_chance", 'd', sl_val_double(a, 0.0)));
  put(r, "speculative_retry", opt_or(a, t, "speculative_retry", 't', sl_val_text(a, "99p")));
}

static void column_rows(sl_engine_t *e, const sl_table_t *self, sl_arena_t *a, sl_vec_t *rows, bool virt) {
  for (size_t i = 0; i < e->cat.ntables; i++) {
    const sl_table_t *t = e->cat.tables[i];
    if (in_virtual_schema(t->keyspace) != virt) continue;
    for (size_t c = 0; c < t->ncols; c++) {
      const sl_column_t *col = &t->cols[c];
      rowb_t r = row_new(self, a, rows);
      static const char *const kinds[] = {"partition_key", "clustering", "regular", "static"};
      put(&r, "keyspace_name", sl_val_text(a, t->keyspace));
      put(&r, "table_name", sl_val_text(a, t->name));
      put(&r, "column_name", sl_val_text(a, col->name));
      put(&r, "clustering_order",
          sl_val_text(a, col->kind == SL_COL_CLUSTERING ? (col->desc ? "desc" : "asc") : "none"));
      put(&r, "column_name_bytes", sl_val_text(a, col->name));
      put(&r, "kind", sl_val_text(a, kinds[col->kind]));
      put(&r, "position", sl_val_int(a, col->kind <= SL_COL_CLUSTERING ? col->position : -1));
      put(&r, "type", sl_val_text(a, type_text(a, col->type)));
    }
  }
}

void sl_systables_rows(sl_engine_t *e, const sl_table_t *t, sl_arena_t *a, sl_vec_t *rows) {
  const char *ks = t->keyspace, *name = t->name;
  if (!strcmp(ks, "system")) {
    if (!strcmp(name, "local")) {
      rowb_t r = row_new(t, a, rows);
      gen_local(e, &r);
    }
    return; /* peers, peers_v2: a single node has none */
  }
  bool virt = in_virtual_schema(ks);
  if (!strcmp(name, "keyspaces")) {
    for (size_t i = 0; i < e->cat.nks; i++) {
      const sl_keyspace_t *k = e->cat.ks[i];
      if (in_virtual_schema(k->name) != virt) continue;
      rowb_t r = row_new(t, a, rows);
      put(&r, "keyspace_name", sl_val_text(a, k->name));
      if (!virt) {
        put(&r, "durable_writes", sl_val_bool(a, k->durable_writes));
        put(&r, "replication",
            sl_val_text_coll(a, (const char *const *)k->repl_keys, (const char *const *)k->repl_vals, k->nrepl));
      }
    }
  } else if (!strcmp(name, "tables")) {
    for (size_t i = 0; i < e->cat.ntables; i++) {
      const sl_table_t *u = e->cat.tables[i];
      if (in_virtual_schema(u->keyspace) != virt) continue;
      rowb_t r = row_new(t, a, rows);
      put(&r, "keyspace_name", sl_val_text(a, u->keyspace));
      put(&r, "table_name", sl_val_text(a, u->name));
      if (virt) {
        put(&r, "comment", sl_val_text(a, ""));
        continue;
      }
      table_option_cols(e, &r, u);
      static const char *const compound[] = {"compound"};
      put(&r, "flags", sl_val_text_coll(a, compound, NULL, 1));
    }
  } else if (!strcmp(name, "columns")) {
    column_rows(e, t, a, rows, virt);
  } else if (!strcmp(name, "dropped_columns") && !virt) {
    for (size_t i = 0; i < e->cat.ntables; i++) {
      const sl_table_t *u = e->cat.tables[i];
      for (size_t k = 0; k < u->ndropped; k++) {
        const sl_dropped_col_t *d = &u->dropped[k];
        rowb_t r = row_new(t, a, rows);
        put(&r, "keyspace_name", sl_val_text(a, u->keyspace));
        put(&r, "table_name", sl_val_text(a, u->name));
        put(&r, "column_name", sl_val_text(a, d->name));
        put(&r, "dropped_time", sl_val_bigint(a, d->time_us / 1000));
        put(&r, "kind", sl_val_text(a, d->is_static ? "static" : "regular"));
        put(&r, "type", sl_val_text(a, d->type));
      }
    }
  }
  /* triggers, views, types, functions, aggregates, indexes: none yet */
}
