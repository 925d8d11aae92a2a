/* The store's executor (see engine.h): request decoding for QUERY/PREPARE/EXECUTE/BATCH, the prepared
 * statement cache, DDL with its persisted catalogue, and INSERT/UPDATE/DELETE on the row layer.
 * SELECT lives in exec_select.c, literal conversion in values.c, system tables in systables.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/log.h"
#include "cql/murmur3.h"
#include "store/exec_internal.h"
#include "store/keycodec.h"
#include "store/rows.h"

/* Catalogue records in RocksDB: 'S' 'K' keyspace / 'S' 'T' keyspace 0x00 table. */
#define SCHEMA_PREFIX 'S'

static void schema_key(sl_buf_t *k, char kind, const char *ks, const char *table) {
  sl_buf_put_u8(k, SCHEMA_PREFIX);
  sl_buf_put_u8(k, (uint8_t)kind);
  sl_buf_put(k, ks, strlen(ks));
  if (table) {
    sl_buf_put_u8(k, 0);
    sl_buf_put(k, table, strlen(table));
  }
}

static int load_catalog(sl_engine_t *e) {
  uint8_t lo[1] = {SCHEMA_PREFIX}, hi[1] = {SCHEMA_PREFIX + 1};
  sl_kv_iter_t *it = sl_kv_iter_new(e->kv, lo, 1, hi, 1);
  int rc = 0;
  for (; sl_kv_iter_valid(it); sl_kv_iter_next(it)) {
    size_t klen, vlen;
    const uint8_t *k = sl_kv_iter_key(it, &klen);
    const uint8_t *v = sl_kv_iter_value(it, &vlen);
    if (klen < 2) continue;
    if (k[1] == 'K') {
      sl_keyspace_t *ks;
      if (sl_keyspace_decode(v, vlen, &ks) != 0) {
        SL_ERROR("store", "corrupt keyspace record in the catalogue");
        rc = -EINVAL;
        break;
      }
      sl_catalog_add_keyspace(&e->cat, ks);
    } else if (k[1] == 'T') {
      sl_table_t *t;
      if (sl_table_decode(v, vlen, &t) != 0) {
        SL_ERROR("store", "corrupt table record in the catalogue");
        rc = -EINVAL;
        break;
      }
      sl_catalog_add_table(&e->cat, t);
      sl_rows_set_gc_grace(t->id, t->gc_grace);
    }
  }
  if (rc == 0) rc = sl_kv_iter_status(it);
  sl_kv_iter_free(it);
  return rc;
}

/* The host id is made once and kept in the data directory. */
static void load_host_id(sl_engine_t *e) {
  char path[4096];
  snprintf(path, sizeof path, "%s/host_id", e->data_dir);
  FILE *f = fopen(path, "r");
  char line[64] = "";
  if (f) {
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    line[strcspn(line, "\n")] = 0;
    if (sl_cql_parse_uuid(line, strlen(line), e->host_id) == 0) return;
  }
  sl_exec_random(e, e->host_id, 16);
  e->host_id[6] = (uint8_t)((e->host_id[6] & 0x0F) | 0x40);
  e->host_id[8] = (uint8_t)((e->host_id[8] & 0x3F) | 0x80);
  sl_cql_format_uuid(e->host_id, line);
  f = fopen(path, "w");
  if (f) {
    fprintf(f, "%s\n", line);
    fclose(f);
  }
}


int sl_engine_open(const sl_engine_config_t *cfg, sl_engine_t **out) {
  sl_engine_t *e = calloc(1, sizeof *e);
  if (!e) return -ENOMEM;
  e->cfg = *cfg;
  e->data_dir = strdup(cfg->data_dir);
  e->cluster_name = strdup(cfg->cluster_name);
  e->data_center = strdup(cfg->data_center);
  e->rack = strdup(cfg->rack);
  e->address = strdup(cfg->address);
  sl_catalog_init(&e->cat);
  int fd = open("/dev/urandom", O_RDONLY);
  if (fd < 0 || read(fd, &e->rng, sizeof e->rng) != (ssize_t)sizeof e->rng) e->rng = (uint64_t)time(NULL);
  if (fd >= 0) close(fd);
  e->rng |= 1;
  int rc = sl_fs_mkdir_p(cfg->data_dir);
  if (rc != 0) {
    SL_ERROR("store", "cannot create data directory %s: %s", cfg->data_dir, strerror(-rc));
    goto fail;
  }
  load_host_id(e);
  char dbdir[4096], err[1024];
  snprintf(dbdir, sizeof dbdir, "%s/rocksdb", cfg->data_dir);
  if ((rc = sl_kv_open_policy(dbdir, cfg->sync_writes, &sl_rows_policy, &e->kv, err, sizeof err)) != 0) {
    SL_ERROR("store", "cannot open RocksDB in %s: %s", dbdir, err);
    goto fail;
  }
  if ((rc = load_catalog(e)) != 0) goto fail;
  if ((rc = sl_systables_init(e)) != 0) goto fail;
  sl_catalog_update_version(&e->cat);
  SL_INFO("store", "catalogue loaded: %zu keyspace(s), %zu table(s)", e->cat.nks, e->cat.ntables);
  *out = e;
  return 0;
fail:
  sl_engine_close(e);
  return rc < 0 ? rc : -EINVAL;
}

void sl_engine_close(sl_engine_t *e) {
  if (!e) return;
  sl_kv_close(e->kv);
  sl_catalog_free(&e->cat);
  for (size_t i = 0; i < e->nprepared; i++) {
    free(e->prepared[i].query);
    free(e->prepared[i].keyspace);
    sl_arena_free(&e->prepared[i].arena);
  }
  free(e->prepared);
  free(e->data_dir);
  free(e->cluster_name);
  free(e->data_center);
  free(e->rack);
  free(e->address);
  free(e);
}

/* ---- helpers ---- */

const char *sl_exec_keyspace(sl_exec_t *x, const char *ks) {
  if (ks) return ks;
  if (x->sess && x->sess->keyspace[0]) return x->sess->keyspace;
  sl_exec_fail(x, CQL_ERR_INVALID,
               "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename");
  return NULL;
}

sl_table_t *sl_exec_table(sl_exec_t *x, const char *ks, const char *name) {
  ks = sl_exec_keyspace(x, ks);
  if (!ks) return NULL;
  sl_table_t *t = sl_catalog_table(&x->e->cat, ks, name);
  if (!t) {
    if (!sl_catalog_keyspace(&x->e->cat, ks)) sl_exec_fail(x, CQL_ERR_INVALID, "Keyspace %s does not exist", ks);
    else sl_exec_fail(x, CQL_ERR_INVALID, "unconfigured table %s", name);
  }
  return t;
}

static void write_schema_change(sl_exec_t *x, const char *change, const char *target, const char *ks,
                                const char *name) {
  sl_buf_t *bodies[2] = {x->out, x->event};
  for (int i = 0; i < 2; i++) {
    sl_buf_t *b = bodies[i];
    if (!b) continue;
    if (i == 0) cql_write_int(b, CQL_RESULT_SCHEMA_CHANGE);
    cql_write_cstring(b, change);
    cql_write_cstring(b, target);
    cql_write_cstring(b, ks);
    if (name) cql_write_cstring(b, name);
  }
}

static void write_void(sl_exec_t *x) { cql_write_int(x->out, CQL_RESULT_VOID); }

static int persist(sl_exec_t *x, sl_kv_batch_t *b) {
  int rc = sl_kv_batch_commit(x->e->kv, b);
  sl_kv_batch_free(b);
  if (rc != 0) return sl_exec_fail(x, CQL_ERR_SERVER, "storage write failed");
  sl_catalog_update_version(&x->e->cat);
  return 0;
}

static int persist_table(sl_exec_t *x, const sl_table_t *t) {
  sl_rows_set_gc_grace(t->id, t->gc_grace);
  sl_kv_batch_t *b = sl_kv_batch_new();
  sl_buf_t k, v;
  sl_buf_init(&k);
  sl_buf_init(&v);
  schema_key(&k, 'T', t->keyspace, t->name);
  sl_table_encode(t, &v);
  sl_kv_batch_put(b, k.data, k.len, v.data, v.len);
  sl_buf_free(&k);
  sl_buf_free(&v);
  return persist(x, b);
}

static void delete_table_data(sl_kv_batch_t *b, uint32_t id) {
  sl_buf_t lo, hi;
  sl_buf_init(&lo);
  sl_buf_init(&hi);
  sl_rows_table_prefix(&lo, id);
  sl_rows_table_prefix(&hi, id + 1);
  sl_kv_batch_delete_range(b, lo.data, lo.len, hi.data, hi.len);
  sl_buf_free(&lo);
  sl_buf_free(&hi);
}

/* ---- DDL ---- */

static const char *option_text(sl_exec_t *x, const cql_term_t *t) {
  if (t->kind == TERM_BOOL) return t->boolean ? "true" : "false";
  return sl_arena_strndup(x->a, t->text ? t->text : "", t->len);
}

static int keyspace_options(sl_exec_t *x, const cql_stmt_t *s, sl_keyspace_t *k) {
  bool have_repl = false;
  for (size_t i = 0; i < s->options.n; i++) {
    const cql_option_t *o = s->options.items[i];
    if (!strcmp(o->name, "replication")) {
      if (o->value->kind != TERM_MAP && !(o->value->kind == TERM_SET && o->value->nitems == 0))
        return sl_exec_fail(x, CQL_ERR_SYNTAX, "replication must be a map");
      size_t n = o->value->nitems / 2;
      for (size_t j = 0; j < k->nrepl; j++) {
        free(k->repl_keys[j]);
        free(k->repl_vals[j]);
      }
      free(k->repl_keys);
      free(k->repl_vals);
      k->repl_keys = calloc(n + 1, sizeof(char *));
      k->repl_vals = calloc(n + 1, sizeof(char *));
      if (!k->repl_keys || !k->repl_vals) abort();
      k->nrepl = 0;
      bool have_class = false;
      for (size_t j = 0; j < n; j++) {
        const char *key = option_text(x, o->value->items[2 * j]);
        const char *val = option_text(x, o->value->items[2 * j + 1]);
        if (!strcmp(key, "class")) {
          have_class = true;
          if (!strcmp(val, "SimpleStrategy") || !strcmp(val, "NetworkTopologyStrategy") ||
              !strcmp(val, "LocalStrategy") || !strcmp(val, "EverywhereStrategy")) {
            char *full = sl_arena_alloc(x->a, strlen(val) + 40);
            sprintf(full, "org.apache.cassandra.locator.%s", val);
            val = full;
          } else if (strncmp(val, "org.apache.cassandra.locator.", 29) != 0) {
            return sl_exec_fail(x, CQL_ERR_CONFIG, "Unable to find replication strategy class '%s'", val);
          }
        }
        k->repl_keys[k->nrepl] = strdup(key);
        k->repl_vals[k->nrepl] = strdup(val);
        k->nrepl++;
      }
      if (!have_class) return sl_exec_fail(x, CQL_ERR_CONFIG, "Missing replication strategy class");
      have_repl = true;
    } else if (!strcmp(o->name, "durable_writes")) {
      const char *v = option_text(x, o->value);
      k->durable_writes = !strcasecmp(v, "true");
    } else {
      return sl_exec_fail(x, CQL_ERR_SYNTAX, "Unknown property '%s'", o->name);
    }
  }
  if (!have_repl && s->kind == STMT_CREATE_KEYSPACE)
    return sl_exec_fail(x, CQL_ERR_CONFIG, "Missing mandatory option 'replication'");
  return 0;
}

static int persist_keyspace(sl_exec_t *x, const sl_keyspace_t *k) {
  sl_kv_batch_t *b = sl_kv_batch_new();
  sl_buf_t key, v;
  sl_buf_init(&key);
  sl_buf_init(&v);
  schema_key(&key, 'K', k->name, NULL);
  sl_keyspace_encode(k, &v);
  sl_kv_batch_put(b, key.data, key.len, v.data, v.len);
  sl_buf_free(&key);
  sl_buf_free(&v);
  return persist(x, b);
}

static int create_keyspace(sl_exec_t *x, const cql_stmt_t *s) {
  if (sl_catalog_keyspace(&x->e->cat, s->keyspace)) {
    if (s->if_not_exists) {
      write_void(x);
      return 0;
    }
    sl_buf_t extra;
    sl_buf_init(&extra);
    cql_write_cstring(&extra, s->keyspace);
    cql_write_cstring(&extra, "");
    x->err_extra = sl_val_bytes(x->a, extra.data, extra.len);
    sl_buf_free(&extra);
    return sl_exec_fail(x, CQL_ERR_ALREADY_EXISTS, "Cannot add existing keyspace \"%s\"", s->keyspace);
  }
  if (strlen(s->keyspace) > 48)
    return sl_exec_fail(x, CQL_ERR_INVALID, "Keyspace name must not be more than 48 characters long");
  sl_keyspace_t *k = calloc(1, sizeof *k);
  if (!k) abort();
  k->name = strdup(s->keyspace);
  k->durable_writes = true;
  if (keyspace_options(x, s, k) != 0) {
    sl_keyspace_free(k);
    return -1;
  }
  sl_catalog_add_keyspace(&x->e->cat, k);
  if (persist_keyspace(x, k) != 0) return -1;
  SL_INFO("store", "created keyspace %s", k->name);
  write_schema_change(x, "CREATED", "KEYSPACE", k->name, NULL);
  return 0;
}

static int alter_keyspace(sl_exec_t *x, const cql_stmt_t *s) {
  sl_keyspace_t *k = sl_catalog_keyspace(&x->e->cat, s->keyspace);
  if (!k || k->is_virtual) {
    if (!k && s->if_exists) {
      write_void(x);
      return 0;
    }
    return sl_exec_fail(x, k ? CQL_ERR_UNAUTHORIZED : CQL_ERR_CONFIG, "Keyspace %s %s", s->keyspace,
                        k ? "is not user-modifiable" : "doesn't exist");
  }
  if (keyspace_options(x, s, k) != 0 || persist_keyspace(x, k) != 0) return -1;
  write_schema_change(x, "UPDATED", "KEYSPACE", k->name, NULL);
  return 0;
}

static int drop_keyspace(sl_exec_t *x, const cql_stmt_t *s) {
  sl_keyspace_t *k = sl_catalog_keyspace(&x->e->cat, s->keyspace);
  if (!k) {
    if (s->if_exists) {
      write_void(x);
      return 0;
    }
    return sl_exec_fail(x, CQL_ERR_CONFIG, "Cannot drop non existing keyspace '%s'.", s->keyspace);
  }
  if (k->is_virtual) return sl_exec_fail(x, CQL_ERR_UNAUTHORIZED, "%s keyspace is not user-modifiable", k->name);
  sl_kv_batch_t *b = sl_kv_batch_new();
  sl_buf_t key;
  sl_buf_init(&key);
  for (size_t i = 0; i < x->e->cat.ntables; i++) {
    sl_table_t *t = x->e->cat.tables[i];
    if (strcmp(t->keyspace, s->keyspace) != 0) continue;
    key.len = 0;
    schema_key(&key, 'T', t->keyspace, t->name);
    sl_kv_batch_delete(b, key.data, key.len);
    delete_table_data(b, t->id);
  }
  key.len = 0;
  schema_key(&key, 'K', s->keyspace, NULL);
  sl_kv_batch_delete(b, key.data, key.len);
  sl_buf_free(&key);
  char *name = sl_arena_strndup(x->a, s->keyspace, strlen(s->keyspace));
  sl_catalog_drop_keyspace(&x->e->cat, s->keyspace);
  if (persist(x, b) != 0) return -1;
  if (x->sess && !strcmp(x->sess->keyspace, name)) x->sess->keyspace[0] = 0;
  write_schema_change(x, "DROPPED", "KEYSPACE", name, NULL);
  return 0;
}

static sl_column_t *add_column(sl_table_t *t, const char *name) {
  sl_column_t *n = realloc(t->cols, (t->ncols + 1) * sizeof *n);
  if (!n) abort();
  t->cols = n;
  sl_column_t *c = &t->cols[t->ncols++];
  memset(c, 0, sizeof *c);
  c->name = strdup(name);
  c->position = -1;
  return c;
}

/* Table options (CREATE/ALTER TABLE ... WITH): checked, applied where they matter here (default TTL, gc grace,
 * comment) and kept as given for system_schema.tables. */
enum { OPT_TEXT, OPT_INT, OPT_DOUBLE, OPT_MAP, OPT_BOOL };
static const struct {
  const char *name;
  int kind;
} table_opts[] = {
    {"additional_write_policy", OPT_TEXT}, {"bloom_filter_fp_chance", OPT_DOUBLE}, {"caching", OPT_MAP},
    {"cdc", OPT_BOOL}, {"comment", OPT_TEXT}, {"compaction", OPT_MAP}, {"compression", OPT_MAP},
    {"crc_check_chance", OPT_DOUBLE}, {"dclocal_read_repair_chance", OPT_DOUBLE}, {"default_time_to_live", OPT_INT},
    {"extensions", OPT_MAP}, {"gc_grace_seconds", OPT_INT}, {"max_index_interval", OPT_INT},
    {"memtable_flush_period_in_ms", OPT_INT}, {"min_index_interval", OPT_INT}, {"read_repair", OPT_TEXT},
    {"read_repair_chance", OPT_DOUBLE}, {"speculative_retry", OPT_TEXT},
};

static char *opt_term_text(const cql_term_t *v) {
  if (v->kind == TERM_BOOL) return strdup(v->boolean ? "true" : "false");
  return strndup(v->text ? v->text : "", v->len);
}

/* Short class names of compaction strategies and compressors, expanded as Cassandra shows them. */
static char *expand_class(const char *opt, const char *v) {
  static const char *const compaction[] = {"SizeTieredCompactionStrategy", "LeveledCompactionStrategy",
                                           "TimeWindowCompactionStrategy", "UnifiedCompactionStrategy"};
  static const char *const compressors[] = {"LZ4Compressor", "SnappyCompressor", "DeflateCompressor",
                                            "ZstdCompressor", "NoopCompressor"};
  bool comp = !strcmp(opt, "compaction");
  const char *const *names = comp ? compaction : compressors;
  size_t n = comp ? 4 : 5;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(v, names[i])) {
      const char *pkg = comp ? "org.apache.cassandra.db.compaction." : "org.apache.cassandra.io.compress.";
      char *full = malloc(strlen(pkg) + strlen(v) + 1);
      if (!full) abort();
      strcpy(full, pkg);
      strcat(full, v);
      return full;
    }
  return strdup(v);
}

static void opt_map_put(sl_table_opt_t *o, const char *k, const char *v) {
  for (size_t i = 0; i < o->n; i++)
    if (!strcmp(o->keys[i], k)) return;
  char **nk = realloc(o->keys, (o->n + 1) * sizeof *nk);
  if (!nk) abort();
  o->keys = nk;
  char **nv = realloc(o->vals, (o->n + 1) * sizeof *nv);
  if (!nv) abort();
  o->vals = nv;
  o->keys[o->n] = strdup(k);
  o->vals[o->n++] = strdup(v);
}

static int table_options(sl_exec_t *x, sl_table_t *t, const sl_vec_t *options) {
  for (size_t i = 0; i < options->n; i++) {
    const cql_option_t *o = options->items[i];
    const cql_term_t *v = o->value;
    int kind = -1;
    for (size_t k = 0; k < sizeof table_opts / sizeof table_opts[0]; k++)
      if (!strcmp(table_opts[k].name, o->name)) kind = table_opts[k].kind;
    if (kind < 0) return sl_exec_fail(x, CQL_ERR_SYNTAX, "Unknown property '%s'", o->name);
    sl_table_opt_t opt = {0};
    if (kind == OPT_MAP) {
      if (v->kind != TERM_MAP && !(v->kind == TERM_SET && v->nitems == 0))
        return sl_exec_fail(x, CQL_ERR_SYNTAX, "Invalid value for property '%s': a map is expected", o->name);
      opt.is_map = true;
      for (size_t k = 0; k + 1 < v->nitems; k += 2) {
        char *key = opt_term_text(v->items[k]), *val = opt_term_text(v->items[k + 1]);
        if (!strcmp(key, "class") && strcmp(o->name, "caching") != 0) {
          char *full = expand_class(o->name, val);
          free(val);
          val = full;
        }
        opt_map_put(&opt, key, val);
        free(key);
        free(val);
      }
      if (!strcmp(o->name, "compaction")) {
        bool has_class = false;
        for (size_t k = 0; k < opt.n; k++) has_class |= !strcmp(opt.keys[k], "class");
        if (!has_class) {
          sl_table_opt_free(&opt);
          return sl_exec_fail(x, CQL_ERR_CONFIG, "Missing sub-option 'class' for the 'compaction' option.");
        }
        opt_map_put(&opt, "max_threshold", "32");
        opt_map_put(&opt, "min_threshold", "4");
      }
      if (!strcmp(o->name, "compression") && opt.n) {
        bool disabled = false;
        for (size_t k = 0; k < opt.n; k++) disabled |= !strcmp(opt.keys[k], "enabled") && !strcmp(opt.vals[k], "false");
        if (!disabled) opt_map_put(&opt, "chunk_length_in_kb", "16");
      }
    } else {
      if ((kind == OPT_INT && v->kind != TERM_INTEGER) ||
          (kind == OPT_DOUBLE && v->kind != TERM_INTEGER && v->kind != TERM_FLOAT) ||
          (kind == OPT_TEXT && v->kind != TERM_STRING) || (kind == OPT_BOOL && v->kind != TERM_BOOL))
        return sl_exec_fail(x, CQL_ERR_SYNTAX, "Invalid value for property '%s'", o->name);
      int64_t iv = 0;
      if (kind == OPT_INT && (sl_exec_term_int(x, v, &iv) != 0 || iv < 0 || iv > INT32_MAX ||
                              (!strcmp(o->name, "default_time_to_live") && iv > 630720000)))
        return sl_exec_fail(x, CQL_ERR_CONFIG, "Invalid value for %s", o->name);
      if (kind == OPT_DOUBLE) {
        double d = strtod(sl_arena_strndup(x->a, v->text, v->len), NULL);
        if (d < 0 || d > 1 || (!strcmp(o->name, "bloom_filter_fp_chance") && d == 0))
          return sl_exec_fail(x, CQL_ERR_CONFIG, "%s must be larger than 0 and less than or equal to 1.0 (got %s)",
                              o->name, sl_arena_strndup(x->a, v->text, v->len));
      }
      opt.text = opt_term_text(v);
      if (!strcmp(o->name, "default_time_to_live")) t->default_ttl = iv;
      if (!strcmp(o->name, "gc_grace_seconds")) t->gc_grace = iv;
      if (!strcmp(o->name, "comment")) {
        free(t->comment);
        t->comment = strdup(opt.text);
      }
    }
    opt.name = strdup(o->name);
    sl_table_set_option(t, &opt);
  }
  return 0;
}

/* A counter table: its non-key columns are all counters (create_table checks they are not mixed). */
static bool is_counter_table(const sl_table_t *t) {
  for (size_t i = 0; i < t->ncols; i++)
    if (t->cols[i].kind > SL_COL_CLUSTERING && t->cols[i].type->id == CQL_TYPE_COUNTER) return true;
  return false;
}

int sl_exec_build_table(sl_exec_t *x, const cql_stmt_t *s, const char *ks, sl_table_t **out) {
  *out = NULL;
  sl_table_t *t = calloc(1, sizeof *t);
  if (!t) abort();
  t->keyspace = strdup(ks);
  t->name = strdup(s->table);
  t->next_col_id = 1;
  t->gc_grace = 864000;
  t->comment = strdup("");
  const char *pk_inline = NULL;
  for (size_t i = 0; i < s->coldefs.n; i++) {
    const cql_coldef_t *d = s->coldefs.items[i];
    if (sl_table_column(t, d->name)) {
      sl_exec_fail(x, CQL_ERR_INVALID, "Duplicate column '%s' declaration for table %s.%s", d->name, ks, s->table);
      goto bad;
    }
    sl_column_t *c = add_column(t, d->name);
    if (sl_cql_type_parse(d->type, strlen(d->type), &c->type) != 0) {
      sl_exec_fail(x, CQL_ERR_SYNTAX, "Unknown type %s", d->type);
      goto bad;
    }
    c->kind = d->is_static ? SL_COL_STATIC : SL_COL_REGULAR;
    if (d->primary_key) {
      if (pk_inline || s->partition_key.n) {
        sl_exec_fail(x, CQL_ERR_INVALID, "Multiple PRIMARY KEYs specified (exactly one required)");
        goto bad;
      }
      pk_inline = d->name;
    }
  }
  if (!pk_inline && s->partition_key.n == 0) {
    sl_exec_fail(x, CQL_ERR_INVALID, "No PRIMARY KEY specifed for table '%s' (exactly one required)", s->table);
    goto bad;
  }
  const char *const *pks = pk_inline ? &pk_inline : (const char *const *)s->partition_key.items;
  size_t npk = pk_inline ? 1 : s->partition_key.n;
  for (size_t i = 0; i < npk + s->clustering_key.n; i++) {
    const char *name = i < npk ? pks[i] : s->clustering_key.items[i - npk];
    sl_column_t *c = sl_table_column(t, name);
    if (!c) {
      sl_exec_fail(x, CQL_ERR_INVALID, "Unknown definition %s referenced in PRIMARY KEY", name);
      goto bad;
    }
    if (c->kind == SL_COL_PARTITION_KEY || c->kind == SL_COL_CLUSTERING) {
      sl_exec_fail(x, CQL_ERR_INVALID, "Duplicate definition for %s in PRIMARY KEY", name);
      goto bad;
    }
    if (c->kind == SL_COL_STATIC) {
      sl_exec_fail(x, CQL_ERR_INVALID, "Static column %s cannot be part of the PRIMARY KEY", name);
      goto bad;
    }
    if (c->type->id == CQL_TYPE_DURATION || (sl_cql_type_is_collection(c->type) && !c->type->frozen)) {
      sl_exec_fail(x, CQL_ERR_INVALID, "Invalid non-frozen collection or duration type for PRIMARY KEY component %s",
                   name);
      goto bad;
    }
    c->kind = i < npk ? SL_COL_PARTITION_KEY : SL_COL_CLUSTERING;
    c->position = (int)(i < npk ? i : i - npk);
  }
  size_t ncounters = 0, nothers = 0;
  for (size_t i = 0; i < t->ncols; i++) {
    const sl_column_t *c = &t->cols[i];
    bool has_counter = c->type->id == CQL_TYPE_COUNTER;
    for (size_t k = 0; k < c->type->nsub && !has_counter; k++) has_counter = c->type->sub[k]->id == CQL_TYPE_COUNTER;
    if (has_counter && (c->kind <= SL_COL_CLUSTERING || c->type->id != CQL_TYPE_COUNTER)) {
      sl_exec_fail(x, CQL_ERR_INVALID, c->kind <= SL_COL_CLUSTERING ? "counter type is not supported for PRIMARY KEY "
                                                                      "column '%s'"
                                                                    : "Counters are not allowed inside collections: %s",
                   c->name);
      goto bad;
    }
    if (c->kind > SL_COL_CLUSTERING) has_counter ? ncounters++ : nothers++;
  }
  if (ncounters && nothers) {
    sl_exec_fail(x, CQL_ERR_INVALID, "Cannot mix counter and non counter columns in the same table");
    goto bad;
  }
  for (size_t i = 0; i < t->ncols; i++) {
    if (t->cols[i].kind == SL_COL_STATIC && s->clustering_key.n == 0) {
      sl_exec_fail(x, CQL_ERR_INVALID, "Static columns are only useful (and thus allowed) if the table has at least "
                                       "one clustering column");
      goto bad;
    }
    if (t->cols[i].kind >= SL_COL_REGULAR) t->cols[i].id = t->next_col_id++;
  }
  for (size_t i = 0; i < s->clustering_order.n; i++) {
    const char *name = s->clustering_order.items[i];
    if (i >= s->clustering_key.n || strcmp(name, s->clustering_key.items[i]) != 0) {
      sl_exec_fail(x, CQL_ERR_INVALID, "Only clustering key columns can be defined in CLUSTERING ORDER directive, "
                                       "in the order they are declared");
      goto bad;
    }
    sl_table_column(t, name)->desc = s->clustering_desc[i];
  }
  if (table_options(x, t, &s->options) != 0) goto bad;
  sl_table_finish(t);
  uint8_t seed[16];
  sl_exec_random(x->e, seed, 16);
  sl_hash_uuid(seed, 16, t->uuid);
  *out = t;
  return 0;
bad:
  sl_table_free(t);
  return -1;
}

static int create_table(sl_exec_t *x, const cql_stmt_t *s) {
  const char *ks = sl_exec_keyspace(x, s->keyspace);
  if (!ks) return -1;
  sl_keyspace_t *k = sl_catalog_keyspace(&x->e->cat, ks);
  if (!k) return sl_exec_fail(x, CQL_ERR_INVALID, "Keyspace '%s' doesn't exist", ks);
  if (k->is_virtual) return sl_exec_fail(x, CQL_ERR_UNAUTHORIZED, "%s keyspace is not user-modifiable", ks);
  if (sl_catalog_table(&x->e->cat, ks, s->table)) {
    if (s->if_not_exists) {
      write_void(x);
      return 0;
    }
    sl_buf_t extra;
    sl_buf_init(&extra);
    cql_write_cstring(&extra, ks);
    cql_write_cstring(&extra, s->table);
    x->err_extra = sl_val_bytes(x->a, extra.data, extra.len);
    sl_buf_free(&extra);
    return sl_exec_fail(x, CQL_ERR_ALREADY_EXISTS, "Cannot add already existing table \"%s\" to keyspace \"%s\"",
                        s->table, ks);
  }
  sl_table_t *t;
  if (sl_exec_build_table(x, s, ks, &t) != 0) return -1;
  t->id = x->e->cat.next_table_id;
  sl_catalog_add_table(&x->e->cat, t);
  if (persist_table(x, t) != 0) return -1;
  SL_INFO("store", "created table %s.%s", ks, t->name);
  write_schema_change(x, "CREATED", "TABLE", ks, t->name);
  return 0;
}

static int drop_table(sl_exec_t *x, const cql_stmt_t *s, bool truncate) {
  const char *ks = sl_exec_keyspace(x, s->keyspace);
  if (!ks) return -1;
  sl_table_t *t = sl_catalog_table(&x->e->cat, ks, s->table);
  if (!t) {
    if (s->if_exists) {
      write_void(x);
      return 0;
    }
    if (!sl_catalog_keyspace(&x->e->cat, ks)) return sl_exec_fail(x, CQL_ERR_INVALID, "Keyspace %s does not exist", ks);
    return sl_exec_fail(x, CQL_ERR_INVALID, "Table '%s.%s' doesn't exist", ks, s->table);
  }
  if (t->is_virtual) return sl_exec_fail(x, CQL_ERR_UNAUTHORIZED, "%s keyspace is not user-modifiable", ks);
  sl_kv_batch_t *b = sl_kv_batch_new();
  delete_table_data(b, t->id);
  if (truncate) {
    if (persist(x, b) != 0) return -1;
    write_void(x);
    return 0;
  }
  sl_buf_t key;
  sl_buf_init(&key);
  schema_key(&key, 'T', ks, t->name);
  sl_kv_batch_delete(b, key.data, key.len);
  sl_buf_free(&key);
  char *name = sl_arena_strndup(x->a, t->name, strlen(t->name));
  ks = sl_arena_strndup(x->a, ks, strlen(ks));
  sl_catalog_drop_table(&x->e->cat, ks, name);
  if (persist(x, b) != 0) return -1;
  write_schema_change(x, "DROPPED", "TABLE", ks, name);
  return 0;
}

static int alter_table(sl_exec_t *x, const cql_stmt_t *s) {
  sl_table_t *t = sl_exec_table(x, s->keyspace, s->table);
  if (!t) return -1;
  if (t->is_virtual) return sl_exec_fail(x, CQL_ERR_UNAUTHORIZED, "%s keyspace is not user-modifiable", t->keyspace);
  if (s->alter_op == 1) {
    if (sl_table_column(t, s->alter_column))
      return sl_exec_fail(x, CQL_ERR_INVALID, "Column with name '%s' already exists", s->alter_column);
    sl_cql_type_t *type;
    if (sl_cql_type_parse(s->alter_type, strlen(s->alter_type), &type) != 0)
      return sl_exec_fail(x, CQL_ERR_SYNTAX, "Unknown type %s", s->alter_type);
    bool regular_columns = false;
    for (size_t i = 0; i < t->ncols; i++) regular_columns |= t->cols[i].kind > SL_COL_CLUSTERING;
    if (regular_columns && (type->id == CQL_TYPE_COUNTER) != is_counter_table(t)) {
      sl_cql_type_free(type);
      return sl_exec_fail(x, CQL_ERR_INVALID, "Cannot mix counter and non counter columns in the same table");
    }
    sl_column_t *c = add_column(t, s->alter_column);
    c->type = type;
    c->kind = SL_COL_REGULAR;
    c->id = t->next_col_id++;
  } else if (s->alter_op == 2) {
    sl_column_t *c = sl_table_column(t, s->alter_column);
    if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Column %s was not found in table %s", s->alter_column, t->name);
    if (c->kind <= SL_COL_CLUSTERING)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Cannot drop PRIMARY KEY part %s", s->alter_column);
    sl_dropped_col_t *nd = realloc(t->dropped, (t->ndropped + 1) * sizeof *nd);
    if (!nd) abort();
    t->dropped = nd;
    sl_dropped_col_t *d = &t->dropped[t->ndropped];
    sl_buf_t tn;
    sl_buf_init(&tn);
    sl_cql_type_name(c->type, &tn);
    d->type = strndup((const char *)tn.data, tn.len);
    sl_buf_free(&tn);
    d->is_static = c->kind == SL_COL_STATIC;
    d->time_us = sl_exec_now_micros(x->e);
    /* a column dropped twice (dropped, re-added, dropped) keeps one record, the latest */
    size_t j = 0;
    while (j < t->ndropped && strcmp(t->dropped[j].name, c->name) != 0) j++;
    if (j < t->ndropped) {
      free(t->dropped[j].name);
      free(t->dropped[j].type);
      t->dropped[j] = *d;
      t->dropped[j].name = strdup(c->name);
    } else {
      d->name = strdup(c->name);
      t->ndropped++;
    }
    size_t i = (size_t)(c - t->cols);
    free(c->name);
    sl_cql_type_free(c->type);
    memmove(t->cols + i, t->cols + i + 1, (t->ncols - i - 1) * sizeof *t->cols);
    t->ncols--;
  } else if (table_options(x, t, &s->options) != 0) {
    return -1;
  }
  sl_table_finish(t);
  if (persist_table(x, t) != 0) return -1;
  write_schema_change(x, "UPDATED", "TABLE", t->keyspace, t->name);
  return 0;
}

/* ---- DML ---- */

typedef struct {
  int64_t ts;
  int32_t ttl;
  int64_t now_s;
} write_opts_t;

static int write_options(sl_exec_t *x, const cql_stmt_t *s, const sl_table_t *t, write_opts_t *w) {
  int64_t v;
  w->ts = x->timestamp != INT64_MIN ? x->timestamp : sl_exec_now_micros(x->e);
  w->ttl = (int32_t)t->default_ttl;
  w->now_s = sl_exec_now_micros(x->e) / 1000000;
  if (s->timestamp) {
    int rc = sl_exec_term_int(x, s->timestamp, &v);
    if (rc < 0) return -1;
    if (rc == 0) w->ts = v;
  }
  if (s->ttl) {
    int rc = sl_exec_term_int(x, s->ttl, &v);
    if (rc < 0) return -1;
    if (rc == 0) {
      if (v < 0) return sl_exec_fail(x, CQL_ERR_INVALID, "A TTL must be greater or equal to 0, but was %lld",
                                     (long long)v);
      if (v > 630720000)
        return sl_exec_fail(x, CQL_ERR_INVALID, "ttl is too large. requested (%lld) maximum (630720000)",
                            (long long)v);
      w->ttl = (int32_t)v;
    } else {
      w->ttl = 0; /* USING TTL null: no TTL even with a table default */
    }
  }
  return 0;
}

static int check_key_value(sl_exec_t *x, const sl_column_t *c, const cql_value_t *v) {
  if (v->kind == CQL_VALUE_NULL) return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid null value for clustering key part %s", c->name);
  if (v->kind == CQL_VALUE_UNSET) return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid unset value for column %s", c->name);
  if (c->kind == SL_COL_PARTITION_KEY && v->v.len == 0 && c->type->id != CQL_TYPE_VARCHAR &&
      c->type->id != CQL_TYPE_BLOB && c->type->id != CQL_TYPE_ASCII)
    return sl_exec_fail(x, CQL_ERR_INVALID, "Key may not be empty");
  if (c->kind == SL_COL_PARTITION_KEY && v->v.len > 65535)
    return sl_exec_fail(x, CQL_ERR_INVALID, "Key length of %zu is longer than maximum of 65535", v->v.len);
  return 0;
}

static bool row_exists(sl_exec_t *x, const sl_table_t *t, const sl_slice_t *pk, const sl_slice_t *ck);
#define row_fetch sl_exec_row_fetch

/* [applied], then cols[0..n) with their values in row (null when row is NULL). */
static void write_applied_cols(sl_exec_t *x, const sl_table_t *t, bool applied, const sl_column_t *const *cols,
                               size_t n, const sl_row_t *row) {
  static sl_cql_type_t boolean = {.id = CQL_TYPE_BOOLEAN};
  sl_colspec_t *spec = sl_arena_alloc(x->a, (n + 1) * sizeof *spec);
  spec[0] = (sl_colspec_t){t->keyspace, t->name, "[applied]", &boolean};
  for (size_t i = 0; i < n; i++) spec[i + 1] = (sl_colspec_t){t->keyspace, t->name, cols[i]->name, cols[i]->type};
  cql_write_int(x->out, CQL_RESULT_ROWS);
  sl_exec_write_metadata(x->out, CQL_RFLAG_GLOBAL_TABLES_SPEC, spec, n + 1, NULL);
  cql_write_int(x->out, 1);
  uint8_t b = applied;
  cql_write_bytes(x->out, &b, 1);
  for (size_t i = 0; i < n; i++) {
    const sl_slice_t *v = row ? &row->vals[cols[i] - t->cols] : NULL;
    if (v && v->ptr) cql_write_bytes(x->out, v->ptr, v->len);
    else cql_write_int(x->out, -1);
  }
}

/* The LWT result: [applied], followed, when the condition failed on an existing row, by that row's columns (as
 * Cassandra does, so drivers can show what was there). */
static void write_applied_row(sl_exec_t *x, const sl_table_t *t, bool applied, const sl_row_t *row) {
  size_t n = row ? t->ncols : 0;
  const sl_column_t **cols = sl_arena_alloc(x->a, (n + 1) * sizeof *cols);
  for (size_t i = 0; i < n; i++) cols[i] = &t->cols[i];
  write_applied_cols(x, t, applied, cols, n, row);
}

static void write_applied(sl_exec_t *x, const sl_table_t *t, bool applied) { write_applied_row(x, t, applied, NULL); }

/* A column named in IF conditions: regular, non-key (statics would need the partition's static row). */
static const sl_column_t *condition_column(sl_exec_t *x, const sl_table_t *t, const cql_relation_t *r) {
  if (r->token || r->tuple || r->ncolumns != 1)
    return sl_exec_fail(x, CQL_ERR_INVALID, "IF conditions name one column each"), NULL;
  const sl_column_t *c = sl_table_column(t, r->columns[0]);
  if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s", r->columns[0]), NULL;
  if (c->kind <= SL_COL_CLUSTERING)
    return sl_exec_fail(x, CQL_ERR_INVALID, "PRIMARY KEY column '%s' cannot have IF conditions", c->name), NULL;
  if (c->kind == SL_COL_STATIC)
    return sl_exec_fail(x, CQL_ERR_INVALID, "IF conditions on static columns are not supported yet (%s)", c->name),
           NULL;
  if (r->op == OP_CONTAINS || r->op == OP_CONTAINS_KEY)
    return sl_exec_fail(x, CQL_ERR_INVALID, "CONTAINS is not supported in IF conditions"), NULL;
  if (sl_cql_type_is_collection(c->type) && r->op != OP_EQ && r->op != OP_NE && r->op != OP_IN)
    return sl_exec_fail(x, CQL_ERR_INVALID, "Collection column %s can only be compared with =, != or IN", c->name),
           NULL;
  return c;
}

/* One value of a condition compared with the column's current value (either may be null: Cassandra's rules are
 * that = and != compare null as a value, and the ordering operators are false when either side is null). */
static bool condition_value_holds(const sl_column_t *c, cql_op_t op, const sl_slice_t *cur, const cql_value_t *v) {
  bool cur_null = !cur->ptr, v_null = v->kind != CQL_VALUE_SET;
  if (cur_null || v_null) {
    if (op == OP_EQ) return cur_null && v_null;
    if (op == OP_NE) return cur_null != v_null;
    return false;
  }
  int cmp = sl_cql_type_is_collection(c->type)
                ? (cur->len == v->v.len && !memcmp(cur->ptr, v->v.ptr, cur->len) ? 0 : 1)
                : sl_value_compare(c->type, cur->ptr, cur->len, v->v.ptr, v->v.len);
  switch (op) {
    case OP_EQ: return cmp == 0;
    case OP_NE: return cmp != 0;
    case OP_LT: return cmp < 0;
    case OP_LE: return cmp <= 0;
    case OP_GT: return cmp > 0;
    case OP_GE: return cmp >= 0;
    default: return false;
  }
}

/* IF col op value [AND ...] of an UPDATE or DELETE against the row as it is (row NULL: there is none, so every
 * column is null). Returns 1 when every condition holds, 0 when one does not, -1 on a bad condition. */
static int conditions_hold(sl_exec_t *x, const sl_table_t *t, const sl_vec_t *conds, const sl_row_t *row) {
  int holds = 1;
  for (size_t i = 0; i < conds->n; i++) {
    const cql_relation_t *r = conds->items[i];
    const sl_column_t *c = condition_column(x, t, r);
    if (!c) return -1;
    sl_slice_t cur = row ? row->vals[c - t->cols] : (sl_slice_t){NULL, 0};
    bool ok = false;
    if (r->op == OP_IN) {
      if (r->value->kind != TERM_TUPLE)
        return sl_exec_fail(x, CQL_ERR_INVALID, "IN in an IF condition takes a list of values: col IN (a, b)");
      for (size_t k = 0; k < r->value->nitems && !ok; k++) {
        cql_value_t v;
        if (sl_exec_term_value(x, r->value->items[k], c->type, &v) != 0) return -1;
        ok = condition_value_holds(c, OP_EQ, &cur, &v);
      }
    } else {
      cql_value_t v;
      if (sl_exec_term_value(x, r->value, c->type, &v) != 0) return -1;
      if (v.kind == CQL_VALUE_UNSET)
        return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid unset value for column %s in an IF condition", c->name);
      ok = condition_value_holds(c, r->op, &cur, &v);
    }
    if (!ok) holds = 0; /* keep going: every condition is still checked for errors, as Cassandra does */
  }
  return holds;
}

/* The answer to a conditional statement that did not apply: [applied] false and the current values of the
 * columns its conditions name, in their order (null when there is no row), so drivers can show what was there. */
static void write_not_applied(sl_exec_t *x, const sl_table_t *t, const sl_vec_t *conds, const sl_row_t *row) {
  const sl_column_t **cols = sl_arena_alloc(x->a, (conds->n + 1) * sizeof *cols);
  size_t n = 0;
  for (size_t i = 0; i < conds->n; i++) {
    const sl_column_t *c = sl_table_column(t, ((const cql_relation_t *)conds->items[i])->columns[0]);
    bool seen = false;
    for (size_t k = 0; k < n; k++) seen |= cols[k] == c;
    if (!seen) cols[n++] = c;
  }
  write_applied_cols(x, t, false, cols, n, row);
}

/* Evaluates a statement's IF conditions on the row at (pk, ck): 1 go ahead, 0 answered "not applied", -1 error.
 * Runs on the executor thread, where requests are serial: nothing can change the row between check and write. */
static int check_conditions(sl_exec_t *x, const sl_table_t *t, const cql_stmt_t *s, const sl_slice_t *pk,
                            const sl_slice_t *ck) {
  sl_row_t cur;
  bool have = row_fetch(x, t, pk, t->nck ? ck : NULL, &cur);
  int ok = conditions_hold(x, t, &s->conditions, have ? &cur : NULL);
  if (ok == 0) write_not_applied(x, t, &s->conditions, have ? &cur : NULL);
  return ok;
}

static int do_insert(sl_exec_t *x, const cql_stmt_t *s, sl_kv_batch_t *batch) {
  sl_table_t *t = sl_exec_table(x, s->keyspace, s->table);
  if (!t) return -1;
  if (t->is_virtual) return sl_exec_fail(x, CQL_ERR_UNAUTHORIZED, "%s keyspace is not user-modifiable", t->keyspace);
  if (is_counter_table(t))
    return sl_exec_fail(x, CQL_ERR_INVALID, "INSERT statements are not allowed on counter tables, use UPDATE instead");
  if (s->json) {
    cql_stmt_t *plain;
    if (sl_exec_json_insert(x, s, t, &plain) != 0) return -1;
    s = plain;
  }
  if (s->columns.n != s->values.n)
    return sl_exec_fail(x, CQL_ERR_INVALID, "Unmatched column names/values");
  sl_slice_t *pk = sl_arena_alloc(x->a, (t->npk + 1) * sizeof *pk);
  sl_slice_t *ck = sl_arena_alloc(x->a, (t->nck + 1) * sizeof *ck);
  bool *seen = sl_arena_alloc(x->a, t->ncols);
  sl_cellv_t cv = {0}, scv = {0};
  const sl_column_t **mcols = NULL;
  cql_value_t *mvals = NULL;
  size_t nm = 0;
  for (size_t i = 0; i < s->columns.n; i++) {
    const char *name = s->columns.items[i];
    sl_column_t *c = sl_table_column(t, name);
    if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s in table %s.%s", name, t->keyspace, t->name);
    size_t ci = (size_t)(c - t->cols);
    if (seen[ci]) return sl_exec_fail(x, CQL_ERR_INVALID, "The column names contains duplicates");
    seen[ci] = true;
    cql_value_t v;
    if (sl_exec_term_value(x, s->values.items[i], c->type, &v) != 0) return -1;
    if (c->kind == SL_COL_PARTITION_KEY || c->kind == SL_COL_CLUSTERING) {
      if (check_key_value(x, c, &v) != 0) return -1;
      if (c->kind == SL_COL_PARTITION_KEY) pk[c->position] = v.v;
      else ck[c->position] = v.v;
      continue;
    }
    if (v.kind == CQL_VALUE_UNSET) continue;
    if (c->type->id == CQL_TYPE_COUNTER)
      return sl_exec_fail(x, CQL_ERR_INVALID, "INSERT statements are not allowed on counter tables, use UPDATE instead");
    if (sl_rows_is_multicell(c->type)) { /* after the key is known */
      if (!mcols) {
        mcols = sl_arena_alloc(x->a, s->columns.n * sizeof *mcols);
        mvals = sl_arena_alloc(x->a, s->columns.n * sizeof *mvals);
      }
      mcols[nm] = c;
      mvals[nm++] = v;
      continue;
    }
    sl_cell_write_t *cw = sl_cellv_push(x->a, c->kind == SL_COL_STATIC ? &scv : &cv);
    cw->col_id = c->id;
    cw->tombstone = v.kind == CQL_VALUE_NULL;
    cw->v = v.v.ptr;
    cw->len = v.v.len;
  }
  for (size_t i = 0; i < t->npk + t->nck; i++)
    if (!seen[i]) return sl_exec_fail(x, CQL_ERR_INVALID, "Some %s key parts are missing: %s",
                                      t->cols[i].kind == SL_COL_PARTITION_KEY ? "partition" : "clustering",
                                      t->cols[i].name);
  for (size_t i = 0; i < nm; i++)
    if (sl_exec_coll_cells(x, t, mcols[i], ASSIGN_SET, NULL, NULL, &mvals[i], pk, ck,
                           mcols[i]->kind == SL_COL_STATIC ? &scv : &cv) != 0)
      return -1;
  write_opts_t w;
  if (write_options(x, s, t, &w) != 0) return -1;
  if (s->if_not_exists) {
    sl_row_t old;
    if (row_fetch(x, t, pk, t->nck ? ck : NULL, &old)) {
      write_applied_row(x, t, false, &old);
      return 0;
    }
  }
  sl_kv_batch_t *b = batch ? batch : sl_kv_batch_new();
  int rc = sl_rows_write(x->e->kv, b, t, pk, ck, true, cv.v, cv.n, w.ts, w.ttl, w.now_s);
  if (rc == 0 && scv.n) rc = sl_rows_write(x->e->kv, b, t, pk, NULL, false, scv.v, scv.n, w.ts, w.ttl, w.now_s);
  if (rc == 0 && !batch) rc = sl_kv_batch_commit(x->e->kv, b);
  if (!batch) sl_kv_batch_free(b);
  if (rc != 0) return sl_exec_fail(x, CQL_ERR_SERVER, "storage write failed");
  if (s->if_not_exists) write_applied(x, t, true);
  else if (!batch) write_void(x);
  return 0;
}

/* WHERE of UPDATE/DELETE: equality on every key column (partition, then a clustering prefix). Returns the number
 * of clustering columns given, or -1. */
static int key_from_where(sl_exec_t *x, const sl_table_t *t, const sl_vec_t *where, sl_slice_t *pk, sl_slice_t *ck) {
  bool *seen = sl_arena_alloc(x->a, t->ncols);
  for (size_t i = 0; i < where->n; i++) {
    const cql_relation_t *r = where->items[i];
    if (r->token || r->tuple || r->ncolumns != 1)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Only EQ relations on primary key columns are supported here");
    sl_column_t *c = sl_table_column(t, r->columns[0]);
    if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s", r->columns[0]);
    if (c->kind != SL_COL_PARTITION_KEY && c->kind != SL_COL_CLUSTERING)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Non PRIMARY KEY columns found in where clause: %s", c->name);
    if (r->op != OP_EQ)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Only EQ relations are supported on %s for now", c->name);
    cql_value_t v;
    if (sl_exec_term_value(x, r->value, c->type, &v) != 0 || check_key_value(x, c, &v) != 0) return -1;
    size_t ci = (size_t)(c - t->cols);
    if (seen[ci]) return sl_exec_fail(x, CQL_ERR_INVALID, "%s cannot be restricted by more than one relation if it "
                                                          "includes an Equal", c->name);
    seen[ci] = true;
    if (c->kind == SL_COL_PARTITION_KEY) pk[c->position] = v.v;
    else ck[c->position] = v.v;
  }
  for (size_t i = 0; i < t->npk; i++)
    if (!seen[i]) return sl_exec_fail(x, CQL_ERR_INVALID, "Some partition key parts are missing: %s", t->cols[i].name);
  int nck = 0;
  while ((size_t)nck < t->nck && seen[t->npk + (size_t)nck]) nck++;
  for (size_t i = (size_t)nck; i < t->nck; i++)
    if (seen[t->npk + i])
      return sl_exec_fail(x, CQL_ERR_INVALID, "PRIMARY KEY column \"%s\" cannot be restricted as preceding column "
                                              "\"%s\" is not restricted", t->cols[t->npk + i].name,
                          t->cols[t->npk + (size_t)nck].name);
  return nck;
}

typedef struct {
  bool found;
  sl_row_t row;
} found_t;

static int found_cb(void *arg, const sl_row_t *row) {
  found_t *f = arg;
  f->found = true;
  f->row = *row; /* its arrays live in the request's arena */
  return 1;
}

static bool row_exists(sl_exec_t *x, const sl_table_t *t, const sl_slice_t *pk, const sl_slice_t *ck) {
  sl_row_t row;
  return row_fetch(x, t, pk, ck, &row);
}

bool sl_exec_row_fetch(sl_exec_t *x, const sl_table_t *t, const sl_slice_t *pk, const sl_slice_t *ck, sl_row_t *row) {
  sl_buf_t lo;
  sl_buf_init(&lo);
  sl_rows_partition_prefix(&lo, t, pk);
  if (ck) {
    sl_buf_put_u8(&lo, SL_ROWS_KIND_ROW);
    sl_rows_put_clustering(&lo, t, ck, t->nck);
  }
  sl_buf_t hi;
  sl_buf_init(&hi);
  sl_buf_put(&hi, lo.data, lo.len);
  sl_kv_prefix_successor(&hi);
  found_t f = {0};
  sl_rows_scan(x->e->kv, t, lo.data, lo.len, hi.data, hi.len, sl_exec_now_micros(x->e) / 1000000, x->a, found_cb,
               &f);
  sl_buf_free(&lo);
  sl_buf_free(&hi);
  if (f.found) *row = f.row;
  return f.found;
}

static int do_update(sl_exec_t *x, const cql_stmt_t *s, sl_kv_batch_t *batch) {
  sl_table_t *t = sl_exec_table(x, s->keyspace, s->table);
  if (!t) return -1;
  if (t->is_virtual) return sl_exec_fail(x, CQL_ERR_UNAUTHORIZED, "%s keyspace is not user-modifiable", t->keyspace);
  sl_slice_t *pk = sl_arena_alloc(x->a, (t->npk + 1) * sizeof *pk);
  sl_slice_t *ck = sl_arena_alloc(x->a, (t->nck + 1) * sizeof *ck);
  int nck = key_from_where(x, t, &s->where, pk, ck);
  if (nck < 0) return -1;
  sl_cellv_t cv = {0}, scv = {0};
  for (size_t i = 0; i < s->assignments.n; i++) {
    const cql_assignment_t *as = s->assignments.items[i];
    sl_column_t *c = sl_table_column(t, as->column);
    if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s", as->column);
    if (c->kind <= SL_COL_CLUSTERING)
      return sl_exec_fail(x, CQL_ERR_INVALID, "PRIMARY KEY part %s found in SET part", c->name);
    if (sl_rows_is_multicell(c->type)) {
      if (c->kind != SL_COL_STATIC && (size_t)nck != t->nck)
        return sl_exec_fail(x, CQL_ERR_INVALID, "Some clustering keys are missing: %s",
                            t->cols[t->npk + (size_t)nck].name);
      if (sl_exec_coll_cells(x, t, c, as->kind, as->key, as->value, NULL, pk, ck,
                             c->kind == SL_COL_STATIC ? &scv : &cv) != 0)
        return -1;
      continue;
    }
    if (c->type->id == CQL_TYPE_COUNTER) { /* c = c + n, c = c - n */
      if (as->kind != ASSIGN_ADD && as->kind != ASSIGN_SUB)
        return sl_exec_fail(x, CQL_ERR_INVALID, "Cannot set the value of counter column %s (counters can only be "
                                                "incremented/decremented, not set)", c->name);
      cql_value_t v;
      if (sl_exec_term_value(x, as->value, c->type, &v) != 0) return -1;
      if (v.kind == CQL_VALUE_UNSET) continue;
      if (v.kind == CQL_VALUE_NULL) return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid null value for counter increment");
      uint64_t delta = sl_load_be64(v.v.ptr);
      if (as->kind == ASSIGN_SUB) delta = (uint64_t)0 - delta;
      uint8_t *d = sl_arena_alloc(x->a, 8);
      sl_store_be64(d, delta);
      sl_cell_write_t *cw = sl_cellv_push(x->a, c->kind == SL_COL_STATIC ? &scv : &cv);
      cw->col_id = c->id;
      cw->v = d;
      cw->len = 8;
      cw->counter = true;
      continue;
    }
    if (as->kind != ASSIGN_SET) {
      if (sl_cql_type_is_collection(c->type))
        return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid operation on frozen collection column %s", c->name);
      return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid operation (%s = %s %c ...) for non counter column %s", c->name,
                          c->name, as->kind == ASSIGN_ADD ? '+' : '-', c->name);
    }
    cql_value_t v;
    if (sl_exec_term_value(x, as->value, c->type, &v) != 0) return -1;
    if (v.kind == CQL_VALUE_UNSET) continue;
    sl_cell_write_t *cw = sl_cellv_push(x->a, c->kind == SL_COL_STATIC ? &scv : &cv);
    cw->col_id = c->id;
    cw->tombstone = v.kind == CQL_VALUE_NULL;
    cw->v = v.v.ptr;
    cw->len = v.v.len;
  }
  if (cv.n && (size_t)nck != t->nck)
    return sl_exec_fail(x, CQL_ERR_INVALID, "Some clustering keys are missing: %s", t->cols[t->npk + (size_t)nck].name);
  write_opts_t w;
  if (write_options(x, s, t, &w) != 0) return -1;
  if (is_counter_table(t)) {
    if (s->ttl) return sl_exec_fail(x, CQL_ERR_INVALID, "Cannot provide custom TTL for counter updates");
    if (s->if_exists || s->conditions.n)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Conditional updates are not supported on counter tables");
    w.ttl = 0;
  }
  if (s->if_exists) {
    if (!row_exists(x, t, pk, t->nck ? ck : NULL)) {
      write_applied(x, t, false);
      return 0;
    }
  } else if (s->conditions.n) {
    if ((size_t)nck != t->nck)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Some clustering keys are missing: %s", t->cols[t->npk + (size_t)nck].name);
    int ok = check_conditions(x, t, s, pk, ck);
    if (ok <= 0) return ok;
  }
  sl_kv_batch_t *b = batch ? batch : sl_kv_batch_new();
  int rc = 0;
  if (cv.n) rc = sl_rows_write(x->e->kv, b, t, pk, ck, false, cv.v, cv.n, w.ts, w.ttl, w.now_s);
  if (rc == 0 && scv.n) rc = sl_rows_write(x->e->kv, b, t, pk, NULL, false, scv.v, scv.n, w.ts, w.ttl, w.now_s);
  if (rc == 0 && !batch) rc = sl_kv_batch_commit(x->e->kv, b);
  if (!batch) sl_kv_batch_free(b);
  if (rc != 0) return sl_exec_fail(x, CQL_ERR_SERVER, "storage write failed");
  if (s->if_exists || s->conditions.n) write_applied(x, t, true);
  else if (!batch) write_void(x);
  return 0;
}

static int do_delete(sl_exec_t *x, const cql_stmt_t *s, sl_kv_batch_t *batch) {
  sl_table_t *t = sl_exec_table(x, s->keyspace, s->table);
  if (!t) return -1;
  if (t->is_virtual) return sl_exec_fail(x, CQL_ERR_UNAUTHORIZED, "%s keyspace is not user-modifiable", t->keyspace);
  if (s->ttl) return sl_exec_fail(x, CQL_ERR_INVALID, "DELETE statements cannot use TTL");
  sl_slice_t *pk = sl_arena_alloc(x->a, (t->npk + 1) * sizeof *pk);
  sl_slice_t *ck = sl_arena_alloc(x->a, (t->nck + 1) * sizeof *ck);
  /* slices on the clustering column after the equality prefix make a range deletion */
  sl_vec_t where = {0};
  const cql_relation_t *slice[2] = {NULL, NULL};
  for (size_t i = 0; i < s->where.n; i++) {
    const cql_relation_t *r = s->where.items[i];
    if (!r->token && !r->tuple && r->ncolumns == 1 &&
        (r->op == OP_LT || r->op == OP_LE || r->op == OP_GT || r->op == OP_GE)) {
      int k = r->op == OP_GT || r->op == OP_GE ? 0 : 1;
      if (slice[k]) return sl_exec_fail(x, CQL_ERR_INVALID, "More than one restriction was found for the %s bound on %s",
                                        k ? "end" : "start", r->columns[0]);
      slice[k] = r;
    } else {
      sl_vec_push(x->a, &where, s->where.items[i]);
    }
  }
  int nck = key_from_where(x, t, &where, pk, ck);
  if (nck < 0) return -1;
  const sl_column_t *slice_col = NULL;
  for (int k = 0; k < 2; k++) {
    if (!slice[k]) continue;
    const sl_column_t *c = sl_table_column(t, slice[k]->columns[0]);
    if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s", slice[k]->columns[0]);
    if (c->kind != SL_COL_CLUSTERING)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Only clustering columns can be restricted by a slice in a DELETE (%s)",
                          c->name);
    if (c->position != nck)
      return sl_exec_fail(x, CQL_ERR_INVALID, "PRIMARY KEY column \"%s\" cannot be restricted as preceding column "
                                              "is not restricted", c->name);
    if (slice_col && slice_col != c)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Only one clustering column can be restricted by a slice");
    slice_col = c;
  }
  bool range = slice_col || (nck != 0 && (size_t)nck != t->nck);
  if (range && (s->columns.n || s->if_exists))
    return sl_exec_fail(x, CQL_ERR_INVALID, "Range deletions are not supported for specific columns or with IF "
                                            "EXISTS");
  write_opts_t w;
  if (write_options(x, s, t, &w) != 0) return -1;
  if (range) {
    /* bounds in key byte order: the equality prefix, then the slice values (swapped for a DESC column) */
    sl_buf_t lo, hi;
    sl_buf_init(&lo);
    sl_buf_init(&hi);
    sl_rows_put_clustering(&lo, t, ck, (size_t)nck);
    sl_buf_put(&hi, lo.data, lo.len);
    sl_rows_range_t rr = {.lo_incl = true, .hi_incl = true};
    for (int k = 0; k < 2 && slice_col; k++) {
      if (!slice[k]) continue;
      cql_value_t v;
      if (sl_exec_term_value(x, slice[k]->value, slice_col->type, &v) != 0 || check_key_value(x, slice_col, &v) != 0) {
        sl_buf_free(&lo);
        sl_buf_free(&hi);
        return -1;
      }
      bool is_lo = (k == 0) != slice_col->desc;
      bool incl = slice[k]->op == OP_GE || slice[k]->op == OP_LE;
      sl_key_encode(is_lo ? &lo : &hi, slice_col->type, v.v.ptr, v.v.len, slice_col->desc);
      if (is_lo) rr.lo_incl = incl;
      else rr.hi_incl = incl;
    }
    rr.lo = lo.data;
    rr.lolen = lo.len;
    rr.hi = hi.data;
    rr.hilen = hi.len;
    sl_kv_batch_t *b = batch ? batch : sl_kv_batch_new();
    sl_rows_delete_range(b, t, pk, &rr, w.ts, w.now_s);
    sl_buf_free(&lo);
    sl_buf_free(&hi);
    int rc = 0;
    if (!batch) {
      rc = sl_kv_batch_commit(x->e->kv, b);
      sl_kv_batch_free(b);
    }
    if (rc != 0) return sl_exec_fail(x, CQL_ERR_SERVER, "storage write failed");
    if (!batch) write_void(x);
    return 0;
  }
  if (s->conditions.n) {
    if ((size_t)nck != t->nck)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Some clustering keys are missing: %s", t->cols[t->npk + (size_t)nck].name);
    int ok = check_conditions(x, t, s, pk, ck);
    if (ok <= 0) return ok;
  }
  bool applied = true;
  if (s->if_exists) applied = row_exists(x, t, pk, nck ? ck : NULL);
  sl_kv_batch_t *b = batch ? batch : sl_kv_batch_new();
  int rc = 0;
  if (applied) {
    if (s->columns.n == 0) {
      sl_rows_delete(b, t, pk, nck ? ck : NULL, w.ts, w.now_s);
    } else {
      sl_cellv_t cv = {0}, scv = {0};
      for (size_t i = 0; i < s->columns.n; i++) {
        sl_column_t *c = sl_table_column(t, s->columns.items[i]);
        if (!c) {
          rc = sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s", (char *)s->columns.items[i]);
          break;
        }
        if (c->kind <= SL_COL_CLUSTERING) {
          rc = sl_exec_fail(x, CQL_ERR_INVALID, "Invalid identifier %s for deletion (should not be a PRIMARY KEY part)",
                            c->name);
          break;
        }
        const cql_term_t *key = i < s->column_keys.n ? s->column_keys.items[i] : NULL;
        if (key) { /* DELETE m[k] / l[i] */
          if (!sl_rows_is_multicell(c->type) || c->type->id == CQL_TYPE_SET) {
            rc = sl_exec_fail(x, CQL_ERR_INVALID, "Invalid deletion operation for %s column %s",
                              sl_rows_is_multicell(c->type) ? "set" : "non-collection or frozen", c->name);
            break;
          }
          if (c->kind != SL_COL_STATIC && (size_t)nck != t->nck) {
            rc = sl_exec_fail(x, CQL_ERR_INVALID, "Some clustering keys are missing");
            break;
          }
          if (sl_exec_coll_cells(x, t, c, ASSIGN_ELEMENT, key, NULL, NULL, pk, ck,
                                 c->kind == SL_COL_STATIC ? &scv : &cv) != 0) {
            rc = -1;
            break;
          }
          continue;
        }
        sl_cell_write_t *cw = sl_cellv_push(x->a, c->kind == SL_COL_STATIC ? &scv : &cv);
        cw->col_id = c->id;
        cw->tombstone = true;
      }
      if (rc == 0 && cv.n) {
        if ((size_t)nck != t->nck) rc = sl_exec_fail(x, CQL_ERR_INVALID, "Some clustering keys are missing");
        else rc = sl_rows_write(x->e->kv, b, t, pk, ck, false, cv.v, cv.n, w.ts, 0, w.now_s);
      }
      if (rc == 0 && scv.n) rc = sl_rows_write(x->e->kv, b, t, pk, NULL, false, scv.v, scv.n, w.ts, 0, w.now_s);
      if (rc > 0) rc = -1;
    }
  }
  if (rc == 0 && !batch && sl_kv_batch_commit(x->e->kv, b) != 0) rc = sl_exec_fail(x, CQL_ERR_SERVER, "storage write failed");
  if (!batch) sl_kv_batch_free(b);
  if (rc != 0) return -1;
  if (s->if_exists) write_applied(x, t, applied);
  else if (s->conditions.n) write_applied(x, t, true);
  else if (!batch) write_void(x);
  return 0;
}

static int do_use(sl_exec_t *x, const cql_stmt_t *s) {
  if (!sl_catalog_keyspace(&x->e->cat, s->keyspace))
    return sl_exec_fail(x, CQL_ERR_INVALID, "Keyspace '%s' does not exist", s->keyspace);
  if (x->sess) snprintf(x->sess->keyspace, sizeof x->sess->keyspace, "%s", s->keyspace);
  cql_write_int(x->out, CQL_RESULT_SET_KEYSPACE);
  cql_write_cstring(x->out, s->keyspace);
  return 0;
}

/* One statement of a BATCH (type 0 logged, 1 unlogged, 2 counter) into the batch's write. Counter updates go only
 * in COUNTER batches, and those take nothing else, as in Cassandra. */
static int batch_statement(sl_exec_t *x, int type, const cql_stmt_t *s, sl_kv_batch_t *b) {
  if (s->if_not_exists || s->if_exists || s->conditions.n)
    return sl_exec_fail(x, CQL_ERR_INVALID, "Conditional statements in batches are not supported yet");
  const sl_table_t *t = sl_exec_table(x, s->keyspace, s->table);
  if (!t) return -1;
  bool counter = is_counter_table(t) && s->kind == STMT_UPDATE;
  if (counter && type != 2)
    return sl_exec_fail(x, CQL_ERR_INVALID, "Counter mutations are only allowed in COUNTER batches");
  if (!counter && type == 2)
    return sl_exec_fail(x, CQL_ERR_INVALID, "Only counter mutations are allowed in COUNTER batches");
  return s->kind == STMT_INSERT ? do_insert(x, s, b) : s->kind == STMT_UPDATE ? do_update(x, s, b) : do_delete(x, s, b);
}

static int run_statement(sl_exec_t *x, const cql_stmt_t *s) {
  switch (s->kind) {
    case STMT_SELECT: return sl_exec_select(x, s);
    case STMT_INSERT: return do_insert(x, s, NULL);
    case STMT_UPDATE: return do_update(x, s, NULL);
    case STMT_DELETE: return do_delete(x, s, NULL);
    case STMT_USE: return do_use(x, s);
    case STMT_CREATE_KEYSPACE: return create_keyspace(x, s);
    case STMT_ALTER_KEYSPACE: return alter_keyspace(x, s);
    case STMT_DROP_KEYSPACE: return drop_keyspace(x, s);
    case STMT_CREATE_TABLE: return create_table(x, s);
    case STMT_ALTER_TABLE: return alter_table(x, s);
    case STMT_DROP_TABLE: return drop_table(x, s, false);
    case STMT_TRUNCATE: return drop_table(x, s, true);
    case STMT_CREATE_INDEX:
      return sl_exec_fail(x, CQL_ERR_INVALID, "Secondary indexes are not supported");
    case STMT_BATCH: {
      sl_kv_batch_t *b = sl_kv_batch_new();
      int64_t ts = x->timestamp;
      int64_t v;
      if (s->timestamp) {
        int rc = sl_exec_term_int(x, s->timestamp, &v);
        if (rc < 0) {
          sl_kv_batch_free(b);
          return -1;
        }
        if (rc == 0) ts = v;
      }
      if (ts == INT64_MIN) ts = sl_exec_now_micros(x->e);
      int64_t saved = x->timestamp;
      x->timestamp = ts; /* one timestamp for every statement without its own */
      int rc = 0;
      for (size_t i = 0; i < s->statements.n && rc == 0; i++) {
        rc = batch_statement(x, s->batch_type, s->statements.items[i], b);
      }
      x->timestamp = saved;
      if (rc == 0 && sl_kv_batch_commit(x->e->kv, b) != 0) rc = sl_exec_fail(x, CQL_ERR_SERVER, "storage write failed");
      sl_kv_batch_free(b);
      if (rc == 0) write_void(x);
      return rc;
    }
  }
  return sl_exec_fail(x, CQL_ERR_SERVER, "unknown statement");
}

/* ---- request decoding ---- */

/* <consistency><flags>[values][page size][paging state][serial consistency][timestamp] (spec §4.1.4) */
static int read_query_params(sl_exec_t *x, sl_reader_t *r) {
  (void)cql_read_short(r); /* consistency: one node serves every level */
  uint8_t flags = cql_read_byte(r);
  if (r->err) return sl_exec_fail(x, CQL_ERR_PROTOCOL, "truncated query parameters");
  if (flags & CQL_QFLAG_VALUES) {
    uint16_t n = cql_read_list_count(r, 4);
    x->values = sl_arena_alloc(x->a, (n + 1u) * sizeof *x->values);
    if (flags & CQL_QFLAG_NAMES_FOR_VALUES) x->value_names = sl_arena_alloc(x->a, (n + 1u) * sizeof(sl_slice_t));
    for (uint16_t i = 0; i < n && !r->err; i++) {
      if (x->value_names) x->value_names[i] = cql_read_string(r);
      x->values[i] = cql_read_value(r);
    }
    x->nvalues = n;
  }
  if (flags & CQL_QFLAG_SKIP_METADATA) x->skip_metadata = true;
  if (flags & CQL_QFLAG_PAGE_SIZE) x->page_size = cql_read_int(r);
  if (flags & CQL_QFLAG_PAGING_STATE) {
    bool null;
    x->paging_state = cql_read_bytes(r, &null);
    x->has_paging_state = !null;
  }
  if (flags & CQL_QFLAG_SERIAL_CONSISTENCY) (void)cql_read_short(r);
  if (flags & CQL_QFLAG_DEFAULT_TIMESTAMP) {
    int64_t ts = cql_read_long(r);
    if (ts != INT64_MIN) x->timestamp = ts;
  }
  if (r->err) return sl_exec_fail(x, CQL_ERR_PROTOCOL, "truncated query parameters");
  return 0;
}

static void prepared_id(const char *ks, const char *query, size_t qlen, uint8_t id[16]) {
  sl_buf_t b;
  sl_buf_init(&b);
  if (ks) sl_buf_put(&b, ks, strlen(ks));
  sl_buf_put(&b, query, qlen);
  uint64_t h[2];
  sl_cql_murmur3_128(b.data, b.len, 0x9e3779b97f4a7c15ULL, h);
  sl_store_be64(id, h[0]);
  sl_store_be64(id + 8, h[1]);
  sl_buf_free(&b);
}

/* A statement prepared or executed in a prepared keyspace behaves as if that keyspace were in use. */
static void apply_prepared_keyspace(cql_stmt_t *s, const char *ks) {
  if (!ks) return;
  if ((s->table || s->kind == STMT_CREATE_TABLE) && !s->keyspace && s->kind != STMT_USE) s->keyspace = ks;
  for (size_t i = 0; i < s->statements.n; i++) apply_prepared_keyspace(s->statements.items[i], ks);
}

static sl_prepared_t *prepared_find(sl_engine_t *e, const uint8_t *id, size_t len) {
  if (len != 16) return NULL;
  for (size_t i = 0; i < e->nprepared; i++)
    if (!memcmp(e->prepared[i].id, id, 16)) {
      e->prepared[i].last_used = ++e->use_clock;
      return &e->prepared[i];
    }
  return NULL;
}

static void prepared_add(sl_engine_t *e, const uint8_t id[16], const char *query, size_t qlen, const char *ks) {
  if (prepared_find(e, id, 16)) return;
  size_t max = e->cfg.max_prepared > 0 ? (size_t)e->cfg.max_prepared : 1;
  size_t slot = e->nprepared;
  if (e->nprepared >= max) { /* evict the least recently used */
    slot = 0;
    for (size_t i = 1; i < e->nprepared; i++)
      if (e->prepared[i].last_used < e->prepared[slot].last_used) slot = i;
    free(e->prepared[slot].query);
    free(e->prepared[slot].keyspace);
    sl_arena_free(&e->prepared[slot].arena);
  } else {
    sl_prepared_t *n = realloc(e->prepared, (e->nprepared + 1) * sizeof *n);
    if (!n) abort();
    e->prepared = n;
    e->nprepared++;
  }
  sl_prepared_t *p = &e->prepared[slot];
  memcpy(p->id, id, 16);
  p->query = strndup(query, qlen);
  p->keyspace = ks ? strdup(ks) : NULL;
  p->last_used = ++e->use_clock;
  sl_arena_init(&p->arena);
  const char *err = NULL;
  p->stmt = sl_cql_parse(&p->arena, p->query, qlen, &err);
  if (p->stmt) apply_prepared_keyspace(p->stmt, p->keyspace);
}

static cql_stmt_t *parse(sl_exec_t *x, const char *q, size_t len) {
  const char *err = NULL;
  cql_stmt_t *s = sl_cql_parse(x->a, q, len, &err);
  if (!s) sl_exec_fail(x, CQL_ERR_SYNTAX, "%s", err ? err : "syntax error");
  return s;
}

static int do_prepare(sl_exec_t *x, sl_reader_t *r) {
  sl_slice_t q = cql_read_long_string(r);
  if (r->err) return sl_exec_fail(x, CQL_ERR_PROTOCOL, "malformed PREPARE");
  cql_stmt_t *s = parse(x, (const char *)q.ptr, q.len);
  if (!s) return -1;
  const char *ks = x->sess && x->sess->keyspace[0] ? x->sess->keyspace : NULL;
  if (sl_exec_collect_binds(x, s) != 0) return -1;
  sl_colspec_t *cols = NULL;
  size_t ncols = 0;
  if (s->kind == STMT_SELECT && sl_exec_select_columns(x, s, &cols, &ncols) != 0) return -1;
  uint8_t id[16];
  prepared_id(ks, (const char *)q.ptr, q.len, id);
  prepared_add(x->e, id, (const char *)q.ptr, q.len, ks);
  sl_buf_t *b = x->out;
  cql_write_int(b, CQL_RESULT_PREPARED);
  cql_write_short_bytes(b, id, 16);
  /* bind metadata: flags, count, pk indexes, specs */
  cql_write_int(b, s->nbind ? CQL_RFLAG_GLOBAL_TABLES_SPEC : 0);
  cql_write_int(b, s->nbind);
  const sl_table_t *t = s->table ? sl_exec_table(x, s->keyspace, s->table) : NULL;
  x->err_code = 0;
  x->err_msg[0] = 0;
  /* pk_indexes: for each partition key column, the marker bound to it by equality */
  int pkidx[64];
  int npk = 0;
  if (t && t->npk <= 64 && s->nbind) {
    for (size_t p = 0; p < t->npk; p++) {
      pkidx[p] = -1;
      for (int i = 0; i < s->nbind; i++)
        if (!strcmp(x->binds[i].name, t->cols[p].name) && x->binds[i].type == t->cols[p].type) {
          pkidx[p] = i;
          break;
        }
      if (pkidx[p] < 0) {
        npk = 0;
        break;
      }
      npk = (int)p + 1;
    }
  }
  cql_write_int(b, npk);
  for (int i = 0; i < npk; i++) cql_write_short(b, (uint16_t)pkidx[i]);
  if (s->nbind) {
    cql_write_cstring(b, x->binds[0].ks);
    cql_write_cstring(b, x->binds[0].table);
    for (int i = 0; i < s->nbind; i++) {
      cql_write_cstring(b, x->binds[i].name);
      sl_cql_type_write_option(b, x->binds[i].type);
    }
  }
  if (s->kind == STMT_SELECT) {
    sl_exec_write_metadata(b, CQL_RFLAG_GLOBAL_TABLES_SPEC, cols, ncols, NULL);
  } else {
    cql_write_int(b, CQL_RFLAG_NO_METADATA);
    cql_write_int(b, 0);
  }
  return 0;
}

static int do_execute(sl_exec_t *x, sl_reader_t *r) {
  sl_slice_t id = cql_read_short_bytes(r);
  if (r->err) return sl_exec_fail(x, CQL_ERR_PROTOCOL, "malformed EXECUTE");
  sl_prepared_t *p = prepared_find(x->e, id.ptr, id.len);
  if (!p) {
    x->err_extra = sl_val_bytes(x->a, id.ptr, id.len);
    x->err_extra.len = 0;
    sl_buf_t extra;
    sl_buf_init(&extra);
    cql_write_short_bytes(&extra, id.ptr, id.len);
    x->err_extra = sl_val_bytes(x->a, extra.data, extra.len);
    sl_buf_free(&extra);
    return sl_exec_fail(x, CQL_ERR_UNPREPARED, "Prepared query with ID %s not found", "(unknown)");
  }
  if (read_query_params(x, r) != 0) return -1;
  cql_stmt_t *s = p->stmt;
  if (!s) {
    const char *ks = p->keyspace ? sl_arena_strndup(x->a, p->keyspace, strlen(p->keyspace)) : NULL;
    if (!(s = parse(x, p->query, strlen(p->query)))) return -1;
    apply_prepared_keyspace(s, ks);
  }
  if (x->value_names && sl_exec_collect_binds(x, s) != 0) return -1;
  if (x->nvalues != (size_t)s->nbind && !x->value_names)
    return sl_exec_fail(x, CQL_ERR_INVALID, "There were %d markers(?) in CQL but %zu bound variables", s->nbind,
                        x->nvalues);
  return run_statement(x, s);
}

static int do_query(sl_exec_t *x, sl_reader_t *r) {
  sl_slice_t q = cql_read_long_string(r);
  if (r->err) return sl_exec_fail(x, CQL_ERR_PROTOCOL, "malformed QUERY");
  if (read_query_params(x, r) != 0) return -1;
  cql_stmt_t *s = parse(x, (const char *)q.ptr, q.len);
  if (!s) return -1;
  if (x->value_names && sl_exec_collect_binds(x, s) != 0) return -1;
  return run_statement(x, s);
}

static int do_batch(sl_exec_t *x, sl_reader_t *r) {
  uint8_t type = cql_read_byte(r);
  uint16_t n = cql_read_list_count(r, 3);
  if (r->err || type > 2) return sl_exec_fail(x, CQL_ERR_PROTOCOL, "malformed BATCH");
  typedef struct {
    cql_stmt_t *s;
    cql_value_t *values;
    size_t nvalues;
  } item_t;
  item_t *items = sl_arena_alloc(x->a, (n + 1u) * sizeof *items);
  for (uint16_t i = 0; i < n; i++) {
    uint8_t kind = cql_read_byte(r);
    const char *ks = NULL;
    const char *q;
    size_t qlen;
    cql_stmt_t *cached = NULL;
    if (kind == 0) {
      sl_slice_t s = cql_read_long_string(r);
      q = (const char *)s.ptr;
      qlen = s.len;
    } else if (kind == 1) {
      sl_slice_t id = cql_read_short_bytes(r);
      if (r->err) break;
      sl_prepared_t *p = prepared_find(x->e, id.ptr, id.len);
      if (!p) {
        sl_buf_t extra;
        sl_buf_init(&extra);
        cql_write_short_bytes(&extra, id.ptr, id.len);
        x->err_extra = sl_val_bytes(x->a, extra.data, extra.len);
        sl_buf_free(&extra);
        return sl_exec_fail(x, CQL_ERR_UNPREPARED, "Prepared query with ID %s not found", "(unknown)");
      }
      ks = p->keyspace ? sl_arena_strndup(x->a, p->keyspace, strlen(p->keyspace)) : NULL;
      q = p->query;
      qlen = strlen(q);
      cached = p->stmt;
    } else {
      return sl_exec_fail(x, CQL_ERR_PROTOCOL, "invalid BATCH statement kind %u", kind);
    }
    uint16_t nv = cql_read_list_count(r, 4);
    items[i].values = sl_arena_alloc(x->a, (nv + 1u) * sizeof *items[i].values);
    for (uint16_t k = 0; k < nv && !r->err; k++) items[i].values[k] = cql_read_value(r);
    items[i].nvalues = nv;
    if (r->err) break;
    cql_stmt_t *s = cached;
    if (!s) {
      if (!(s = parse(x, q, qlen))) return -1;
      apply_prepared_keyspace(s, ks);
    }
    if (s->kind != STMT_INSERT && s->kind != STMT_UPDATE && s->kind != STMT_DELETE)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid statement in batch: only UPDATE, INSERT and DELETE "
                                              "statements are allowed.");
    items[i].s = s;
  }
  if (r->err) return sl_exec_fail(x, CQL_ERR_PROTOCOL, "malformed BATCH");
  if (read_query_params(x, r) != 0) return -1;
  if (x->timestamp == INT64_MIN) x->timestamp = sl_exec_now_micros(x->e);
  sl_kv_batch_t *b = sl_kv_batch_new();
  int rc = 0;
  for (uint16_t i = 0; i < n && rc == 0; i++) {
    x->values = items[i].values;
    x->nvalues = items[i].nvalues;
    rc = batch_statement(x, type, items[i].s, b);
  }
  if (rc == 0 && sl_kv_batch_commit(x->e->kv, b) != 0) rc = sl_exec_fail(x, CQL_ERR_SERVER, "storage write failed");
  sl_kv_batch_free(b);
  if (rc == 0) write_void(x);
  return rc;
}

void sl_engine_execute(sl_engine_t *e, sl_session_t *sess, uint8_t opcode, const uint8_t *body, size_t len,
                       sl_exec_result_t *res) {
  sl_arena_t a;
  sl_arena_init(&a);
  sl_exec_t x = {.e = e, .sess = sess, .a = &a, .timestamp = INT64_MIN, .out = &res->body, .event = NULL};
  sl_buf_t event;
  sl_buf_init(&event);
  x.event = &event;
  sl_reader_t r;
  sl_reader_init(&r, body, len);
  int rc;
  switch (opcode) {
    case CQL_OP_QUERY: rc = do_query(&x, &r); break;
    case CQL_OP_PREPARE: rc = do_prepare(&x, &r); break;
    case CQL_OP_EXECUTE: rc = do_execute(&x, &r); break;
    case CQL_OP_BATCH: rc = do_batch(&x, &r); break;
    default: rc = sl_exec_fail(&x, CQL_ERR_PROTOCOL, "unexpected opcode 0x%02x", opcode); break;
  }
  if (rc != 0) {
    res->opcode = CQL_OP_ERROR;
    res->body.len = 0;
    cql_write_error_body(&res->body, x.err_code, x.err_msg);
    sl_buf_put(&res->body, x.err_extra.ptr, x.err_extra.len);
    sl_buf_free(&event);
  } else {
    res->opcode = CQL_OP_RESULT;
    res->event = event; /* ownership moves to the result */
  }
  sl_arena_free(&a);
}

void sl_engine_group_begin(sl_engine_t *e) { sl_kv_group_begin(e->kv); }
int sl_engine_group_end(sl_engine_t *e) { return sl_kv_group_end(e->kv); }
