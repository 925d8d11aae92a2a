/* The schema catalogue (see schema.h). */
#include "store/schema.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cql/murmur3.h"
#include "cql/proto.h"

void sl_catalog_init(sl_catalog_t *c) {
  memset(c, 0, sizeof *c);
  c->next_table_id = 1;
}

void sl_table_opt_free(sl_table_opt_t *o) {
  free(o->name);
  free(o->text);
  for (size_t i = 0; i < o->n; i++) {
    free(o->keys[i]);
    free(o->vals[i]);
  }
  free(o->keys);
  free(o->vals);
  memset(o, 0, sizeof *o);
}

const sl_table_opt_t *sl_table_option(const sl_table_t *t, const char *name) {
  for (size_t i = 0; i < t->nopts; i++)
    if (!strcmp(t->opts[i].name, name)) return &t->opts[i];
  return NULL;
}

void sl_table_set_option(sl_table_t *t, const sl_table_opt_t *o) {
  for (size_t i = 0; i < t->nopts; i++)
    if (!strcmp(t->opts[i].name, o->name)) {
      sl_table_opt_free(&t->opts[i]);
      t->opts[i] = *o;
      return;
    }
  sl_table_opt_t *n = realloc(t->opts, (t->nopts + 1) * sizeof *n);
  if (!n) abort();
  t->opts = n;
  t->opts[t->nopts++] = *o;
}

void sl_table_free(sl_table_t *t) {
  if (!t) return;
  for (size_t i = 0; i < t->nopts; i++) sl_table_opt_free(&t->opts[i]);
  free(t->opts);
  for (size_t i = 0; i < t->ndropped; i++) {
    free(t->dropped[i].name);
    free(t->dropped[i].type);
  }
  free(t->dropped);
  for (size_t i = 0; i < t->ncols; i++) {
    free(t->cols[i].name);
    sl_cql_type_free(t->cols[i].type);
  }
  free(t->cols);
  free(t->keyspace);
  free(t->name);
  free(t->comment);
  free(t);
}

void sl_keyspace_free(sl_keyspace_t *k) {
  if (!k) return;
  for (size_t i = 0; i < k->nrepl; i++) {
    free(k->repl_keys[i]);
    free(k->repl_vals[i]);
  }
  free(k->repl_keys);
  free(k->repl_vals);
  free(k->name);
  free(k);
}

void sl_catalog_free(sl_catalog_t *c) {
  for (size_t i = 0; i < c->ntables; i++) sl_table_free(c->tables[i]);
  for (size_t i = 0; i < c->nks; i++) sl_keyspace_free(c->ks[i]);
  free(c->tables);
  free(c->ks);
  memset(c, 0, sizeof *c);
}

sl_keyspace_t *sl_catalog_keyspace(const sl_catalog_t *c, const char *name) {
  for (size_t i = 0; i < c->nks; i++)
    if (!strcmp(c->ks[i]->name, name)) return c->ks[i];
  return NULL;
}

sl_table_t *sl_catalog_table(const sl_catalog_t *c, const char *ks, const char *name) {
  for (size_t i = 0; i < c->ntables; i++)
    if (!strcmp(c->tables[i]->keyspace, ks) && !strcmp(c->tables[i]->name, name)) return c->tables[i];
  return NULL;
}

void sl_catalog_add_keyspace(sl_catalog_t *c, sl_keyspace_t *ks) {
  sl_keyspace_t **n = realloc(c->ks, (c->nks + 1) * sizeof *n);
  if (!n) abort();
  c->ks = n;
  c->ks[c->nks++] = ks;
}

void sl_catalog_add_table(sl_catalog_t *c, sl_table_t *t) {
  sl_table_t **n = realloc(c->tables, (c->ntables + 1) * sizeof *n);
  if (!n) abort();
  c->tables = n;
  c->tables[c->ntables++] = t;
  if (t->id >= c->next_table_id) c->next_table_id = t->id + 1;
}

void sl_catalog_drop_table(sl_catalog_t *c, const char *ks, const char *name) {
  for (size_t i = 0; i < c->ntables; i++) {
    if (!strcmp(c->tables[i]->keyspace, ks) && !strcmp(c->tables[i]->name, name)) {
      sl_table_free(c->tables[i]);
      memmove(c->tables + i, c->tables + i + 1, (c->ntables - i - 1) * sizeof *c->tables);
      c->ntables--;
      return;
    }
  }
}

void sl_catalog_drop_keyspace(sl_catalog_t *c, const char *name) {
  for (size_t i = c->ntables; i-- > 0;)
    if (!strcmp(c->tables[i]->keyspace, name)) sl_catalog_drop_table(c, name, c->tables[i]->name);
  for (size_t i = 0; i < c->nks; i++) {
    if (!strcmp(c->ks[i]->name, name)) {
      sl_keyspace_free(c->ks[i]);
      memmove(c->ks + i, c->ks + i + 1, (c->nks - i - 1) * sizeof *c->ks);
      c->nks--;
      return;
    }
  }
}

void sl_hash_uuid(const void *data, size_t len, uint8_t out[16]) {
  uint64_t h[2];
  sl_cql_murmur3_128(data, len, 0x5eed, h);
  sl_store_be64(out, h[0]);
  sl_store_be64(out + 8, h[1]);
  out[6] = (uint8_t)((out[6] & 0x0F) | 0x40);
  out[8] = (uint8_t)((out[8] & 0x3F) | 0x80);
}

void sl_catalog_update_version(sl_catalog_t *c) {
  sl_buf_t b;
  sl_buf_init(&b);
  for (size_t i = 0; i < c->nks; i++)
    if (!c->ks[i]->is_virtual) sl_keyspace_encode(c->ks[i], &b);
  for (size_t i = 0; i < c->ntables; i++)
    if (!c->tables[i]->is_virtual) sl_table_encode(c->tables[i], &b);
  sl_hash_uuid(b.data, b.len, c->version);
  sl_buf_free(&b);
}

sl_column_t *sl_table_column(const sl_table_t *t, const char *name) {
  for (size_t i = 0; i < t->ncols; i++)
    if (!strcmp(t->cols[i].name, name)) return &t->cols[i];
  return NULL;
}

static int kind_rank(sl_col_kind_t k) { return k == SL_COL_STATIC ? 2 : k == SL_COL_REGULAR ? 3 : (int)k; }

static int col_cmp(const void *a, const void *b) {
  const sl_column_t *x = a, *y = b;
  /* partition key, clustering (by position), then static, then regular (by name), as SELECT * lists them */
  if (x->kind != y->kind) return kind_rank(x->kind) - kind_rank(y->kind);
  if (x->kind == SL_COL_PARTITION_KEY || x->kind == SL_COL_CLUSTERING) return x->position - y->position;
  return strcmp(x->name, y->name);
}

void sl_table_finish(sl_table_t *t) {
  qsort(t->cols, t->ncols, sizeof *t->cols, col_cmp);
  t->npk = t->nck = 0;
  for (size_t i = 0; i < t->ncols; i++) {
    if (t->cols[i].kind == SL_COL_PARTITION_KEY) t->npk++;
    if (t->cols[i].kind == SL_COL_CLUSTERING) t->nck++;
  }
}

/* ---- persisted forms ---- */

enum { TABLE_FORMAT = 2, KEYSPACE_FORMAT = 1 }; /* table format 1: no options and dropped columns */

void sl_table_encode(const sl_table_t *t, sl_buf_t *out) {
  sl_buf_put_u8(out, TABLE_FORMAT);
  cql_write_cstring(out, t->keyspace);
  cql_write_cstring(out, t->name);
  sl_buf_put(out, t->uuid, 16);
  sl_buf_put_be32(out, t->id);
  sl_buf_put_be16(out, t->next_col_id);
  sl_buf_put_be64(out, (uint64_t)t->default_ttl);
  sl_buf_put_be64(out, (uint64_t)t->gc_grace);
  cql_write_cstring(out, t->comment ? t->comment : "");
  sl_buf_put_be16(out, (uint16_t)t->ncols);
  sl_buf_t tn;
  sl_buf_init(&tn);
  for (size_t i = 0; i < t->ncols; i++) {
    const sl_column_t *c = &t->cols[i];
    cql_write_cstring(out, c->name);
    tn.len = 0;
    sl_cql_type_name(c->type, &tn);
    cql_write_string(out, (const char *)tn.data, tn.len);
    sl_buf_put_u8(out, (uint8_t)c->kind);
    sl_buf_put_be32(out, (uint32_t)c->position);
    sl_buf_put_u8(out, c->desc);
    sl_buf_put_be16(out, c->id);
  }
  sl_buf_free(&tn);
  /* format 2: options as given, then dropped columns */
  sl_buf_put_be16(out, (uint16_t)t->nopts);
  for (size_t i = 0; i < t->nopts; i++) {
    const sl_table_opt_t *o = &t->opts[i];
    cql_write_cstring(out, o->name);
    sl_buf_put_u8(out, o->is_map);
    if (!o->is_map) {
      cql_write_cstring(out, o->text ? o->text : "");
      continue;
    }
    sl_buf_put_be16(out, (uint16_t)o->n);
    for (size_t k = 0; k < o->n; k++) {
      cql_write_cstring(out, o->keys[k]);
      cql_write_cstring(out, o->vals[k]);
    }
  }
  sl_buf_put_be16(out, (uint16_t)t->ndropped);
  for (size_t i = 0; i < t->ndropped; i++) {
    cql_write_cstring(out, t->dropped[i].name);
    cql_write_cstring(out, t->dropped[i].type);
    sl_buf_put_be64(out, (uint64_t)t->dropped[i].time_us);
    sl_buf_put_u8(out, t->dropped[i].is_static);
  }
}

static char *slice_dup(sl_slice_t s) {
  char *p = malloc(s.len + 1);
  if (!p) abort();
  if (s.len) memcpy(p, s.ptr, s.len);
  p[s.len] = 0;
  return p;
}

int sl_table_decode(const uint8_t *p, size_t len, sl_table_t **out) {
  sl_reader_t r;
  sl_reader_init(&r, p, len);
  *out = NULL;
  uint8_t format = sl_read_u8(&r);
  if (format != TABLE_FORMAT && format != 1) return -EINVAL;
  sl_table_t *t = calloc(1, sizeof *t);
  if (!t) abort();
  sl_slice_t ks = cql_read_string(&r), name = cql_read_string(&r);
  const uint8_t *uuid = sl_read_bytes(&r, 16);
  t->id = sl_read_be32(&r);
  t->next_col_id = sl_read_be16(&r);
  t->default_ttl = (int64_t)sl_read_be64(&r);
  t->gc_grace = (int64_t)sl_read_be64(&r);
  sl_slice_t comment = cql_read_string(&r);
  uint16_t ncols = cql_read_list_count(&r, 12);
  if (r.err || !uuid) goto bad;
  t->keyspace = slice_dup(ks);
  t->name = slice_dup(name);
  t->comment = slice_dup(comment);
  memcpy(t->uuid, uuid, 16);
  t->cols = calloc(ncols ? ncols : 1, sizeof *t->cols);
  if (!t->cols) abort();
  for (uint16_t i = 0; i < ncols; i++) {
    sl_column_t *c = &t->cols[i];
    sl_slice_t cn = cql_read_string(&r), ty = cql_read_string(&r);
    c->kind = (sl_col_kind_t)sl_read_u8(&r);
    c->position = (int32_t)sl_read_be32(&r);
    c->desc = sl_read_u8(&r) != 0;
    c->id = sl_read_be16(&r);
    if (r.err || c->kind > SL_COL_STATIC) goto bad;
    c->name = slice_dup(cn);
    t->ncols++;
    if (sl_cql_type_parse((const char *)ty.ptr, ty.len, &c->type) != 0) goto bad;
  }
  if (format >= 2) {
    uint16_t nopts = cql_read_list_count(&r, 3);
    if (r.err) goto bad;
    t->opts = calloc(nopts ? nopts : 1, sizeof *t->opts);
    if (!t->opts) abort();
    for (uint16_t i = 0; i < nopts; i++) {
      sl_slice_t on = cql_read_string(&r);
      bool is_map = sl_read_u8(&r) != 0;
      if (r.err) goto bad;
      sl_table_opt_t *o = &t->opts[t->nopts++];
      o->name = slice_dup(on);
      o->is_map = is_map;
      if (!is_map) {
        sl_slice_t tx = cql_read_string(&r);
        if (r.err) goto bad;
        o->text = slice_dup(tx);
        continue;
      }
      uint16_t n = cql_read_list_count(&r, 4);
      if (r.err) goto bad;
      o->keys = calloc(n ? n : 1, sizeof(char *));
      o->vals = calloc(n ? n : 1, sizeof(char *));
      if (!o->keys || !o->vals) abort();
      for (uint16_t k = 0; k < n; k++) {
        sl_slice_t kk = cql_read_string(&r), vv = cql_read_string(&r);
        if (r.err) goto bad;
        o->keys[o->n] = slice_dup(kk);
        o->vals[o->n++] = slice_dup(vv);
      }
    }
    uint16_t nd = cql_read_list_count(&r, 13);
    if (r.err) goto bad;
    t->dropped = calloc(nd ? nd : 1, sizeof *t->dropped);
    if (!t->dropped) abort();
    for (uint16_t i = 0; i < nd; i++) {
      sl_slice_t dn = cql_read_string(&r), dt = cql_read_string(&r);
      int64_t when = (int64_t)sl_read_be64(&r);
      bool st = sl_read_u8(&r) != 0;
      if (r.err) goto bad;
      sl_dropped_col_t *d = &t->dropped[t->ndropped++];
      d->name = slice_dup(dn);
      d->type = slice_dup(dt);
      d->time_us = when;
      d->is_static = st;
    }
  }
  sl_table_finish(t);
  *out = t;
  return 0;
bad:
  sl_table_free(t);
  return -EINVAL;
}

void sl_keyspace_encode(const sl_keyspace_t *k, sl_buf_t *out) {
  sl_buf_put_u8(out, KEYSPACE_FORMAT);
  cql_write_cstring(out, k->name);
  sl_buf_put_u8(out, k->durable_writes);
  sl_buf_put_be16(out, (uint16_t)k->nrepl);
  for (size_t i = 0; i < k->nrepl; i++) {
    cql_write_cstring(out, k->repl_keys[i]);
    cql_write_cstring(out, k->repl_vals[i]);
  }
}

int sl_keyspace_decode(const uint8_t *p, size_t len, sl_keyspace_t **out) {
  sl_reader_t r;
  sl_reader_init(&r, p, len);
  *out = NULL;
  if (sl_read_u8(&r) != KEYSPACE_FORMAT) return -EINVAL;
  sl_slice_t name = cql_read_string(&r);
  bool durable = sl_read_u8(&r) != 0;
  uint16_t n = cql_read_list_count(&r, 4);
  if (r.err) return -EINVAL;
  sl_keyspace_t *k = calloc(1, sizeof *k);
  if (!k) abort();
  k->name = slice_dup(name);
  k->durable_writes = durable;
  k->repl_keys = calloc(n ? n : 1, sizeof(char *));
  k->repl_vals = calloc(n ? n : 1, sizeof(char *));
  if (!k->repl_keys || !k->repl_vals) abort();
  for (uint16_t i = 0; i < n; i++) {
    sl_slice_t key = cql_read_string(&r), val = cql_read_string(&r);
    if (r.err) {
      sl_keyspace_free(k);
      return -EINVAL;
    }
    k->repl_keys[i] = slice_dup(key);
    k->repl_vals[i] = slice_dup(val);
    k->nrepl++;
  }
  *out = k;
  return 0;
}
