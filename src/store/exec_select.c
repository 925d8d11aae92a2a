/* SELECT: one pipeline for system tables and tables on RocksDB.
 *
 *   plan (selectors, restrictions, key ranges) -> rows from systables or sl_rows_scan over the ranges
 *   -> every restriction re-checked on the row -> projection -> page cut (state = rows so far + last row key)
 *
 * Storage ranges only narrow what is read (partition key equality/IN, a clustering prefix with one slice, token
 * bounds); the in-memory filter decides, so a narrowing bug can cost speed but not wrong rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/exec_internal.h"
#include "store/keycodec.h"
#include "store/rows.h"

enum {
  SEL_K_COL, SEL_K_WRITETIME, SEL_K_TTL, SEL_K_TOJSON, SEL_K_COUNT, SEL_K_TOKEN, SEL_K_MIN, SEL_K_MAX, SEL_K_SUM,
  SEL_K_AVG
};

static bool is_aggregate(int kind) { return kind == SEL_K_COUNT || kind >= SEL_K_MIN; }

/* sum() and avg() take the numeric types whose values fit a 64-bit integer or a double; min() and max() take
 * anything with a comparator. */
static bool summable(const sl_cql_type_t *t) {
  switch (t->id) {
    case CQL_TYPE_TINYINT: case CQL_TYPE_SMALLINT: case CQL_TYPE_INT: case CQL_TYPE_BIGINT: case CQL_TYPE_COUNTER:
    case CQL_TYPE_FLOAT: case CQL_TYPE_DOUBLE: return true;
    default: return false;
  }
}

/* Decodes a serialized number of a summable type (the caller checked the length via the type). */
static void decode_number(const sl_cql_type_t *t, sl_slice_t v, int64_t *i, double *d) {
  uint64_t u = 0;
  for (size_t k = 0; k < v.len; k++) u = u << 8 | v.ptr[k];
  switch (t->id) {
    case CQL_TYPE_TINYINT: *i = (int8_t)u; break;
    case CQL_TYPE_SMALLINT: *i = (int16_t)u; break;
    case CQL_TYPE_INT: *i = (int32_t)u; break;
    case CQL_TYPE_FLOAT: {
      uint32_t w = (uint32_t)u;
      float f;
      memcpy(&f, &w, sizeof f);
      *d = f;
      return;
    }
    case CQL_TYPE_DOUBLE: memcpy(d, &u, sizeof *d); return;
    default: *i = (int64_t)u; break;
  }
  *d = (double)*i;
}

/* Serializes a sum or average back into the column's type (integers wrap, as Cassandra's do). */
static sl_slice_t encode_number(sl_arena_t *a, const sl_cql_type_t *t, int64_t i, double d) {
  uint8_t buf[8];
  size_t n;
  uint64_t u = (uint64_t)i;
  switch (t->id) {
    case CQL_TYPE_TINYINT: n = 1; break;
    case CQL_TYPE_SMALLINT: n = 2; break;
    case CQL_TYPE_INT: n = 4; break;
    case CQL_TYPE_FLOAT: {
      float f = (float)d;
      uint32_t w;
      memcpy(&w, &f, sizeof w);
      u = w;
      n = 4;
      break;
    }
    case CQL_TYPE_DOUBLE: memcpy(&u, &d, sizeof u); n = 8; break;
    default: n = 8; break;
  }
  for (size_t k = 0; k < n; k++) buf[k] = (uint8_t)(u >> (8 * (n - 1 - k)));
  return sl_val_bytes(a, buf, n);
}

/* One aggregate's running state. */
typedef struct {
  int64_t count;
  int64_t isum;
  double dsum;
  sl_slice_t best; /* min/max so far (points into the arena) */
  bool has_best;
} agg_t;

typedef struct {
  int kind;
  int col;
} sel_t;

static sl_cql_type_t t_bigint = {.id = CQL_TYPE_BIGINT};
static sl_cql_type_t t_int = {.id = CQL_TYPE_INT};

static int plan_selection(sl_exec_t *x, const cql_stmt_t *s, const sl_table_t *t, sel_t **sels_out,
                          sl_colspec_t **cols_out, size_t *n_out) {
  sl_vec_t sels = {0}, cols = {0};
  for (size_t i = 0; i < s->selectors.n; i++) {
    const cql_selector_t *q = s->selectors.items[i];
    if (q->kind == SEL_STAR) {
      for (size_t c = 0; c < t->ncols; c++) {
        sel_t *se = sl_arena_alloc(x->a, sizeof *se);
        se->kind = SEL_K_COL;
        se->col = (int)c;
        sl_colspec_t *cs = sl_arena_alloc(x->a, sizeof *cs);
        *cs = (sl_colspec_t){t->keyspace, t->name, t->cols[c].name, t->cols[c].type};
        sl_vec_push(x->a, &sels, se);
        sl_vec_push(x->a, &cols, cs);
      }
      continue;
    }
    sel_t *se = sl_arena_alloc(x->a, sizeof *se);
    sl_colspec_t *cs = sl_arena_alloc(x->a, sizeof *cs);
    cs->ks = t->keyspace;
    cs->table = t->name;
    char namebuf[600];
    if (q->kind == SEL_COLUMN) {
      const sl_column_t *c = sl_table_column(t, q->name);
      if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s in selection clause", q->name);
      se->kind = SEL_K_COL;
      se->col = (int)(c - t->cols);
      cs->name = c->name;
      cs->type = c->type;
    } else if (q->kind == SEL_COUNT_STAR ||
               (q->kind == SEL_FUNC && !strcmp(q->name, "count") && q->nargs == 1 && q->args[0]->kind == SEL_COLUMN)) {
      se->kind = SEL_K_COUNT;
      se->col = -1;
      if (q->kind == SEL_FUNC) {
        const sl_column_t *c = sl_table_column(t, q->args[0]->name);
        if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s", q->args[0]->name);
        se->col = (int)(c - t->cols);
        snprintf(namebuf, sizeof namebuf, "system.count(%s)", c->name);
        cs->name = sl_arena_strndup(x->a, namebuf, strlen(namebuf));
      } else {
        cs->name = "count";
      }
      cs->type = &t_bigint;
    } else if (q->kind == SEL_FUNC && q->nargs == 1 && q->args[0]->kind == SEL_COLUMN &&
               (!strcmp(q->name, "min") || !strcmp(q->name, "max") || !strcmp(q->name, "sum") ||
                !strcmp(q->name, "avg"))) {
      const sl_column_t *c = sl_table_column(t, q->args[0]->name);
      if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s", q->args[0]->name);
      bool numeric = q->name[0] == 's' || q->name[0] == 'a';
      if (numeric && !summable(c->type))
        return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid call to function %s, none of its type signatures match "
                                                "(column %s is not tinyint, smallint, int, bigint, float or double)",
                            q->name, c->name);
      if (sl_cql_type_is_collection(c->type))
        return sl_exec_fail(x, CQL_ERR_INVALID, "Cannot use %s on collection column %s", q->name, c->name);
      se->kind = !strcmp(q->name, "min") ? SEL_K_MIN : !strcmp(q->name, "max") ? SEL_K_MAX
                 : q->name[0] == 's'      ? SEL_K_SUM
                                          : SEL_K_AVG;
      se->col = (int)(c - t->cols);
      snprintf(namebuf, sizeof namebuf, "system.%s(%s)", q->name, c->name);
      cs->name = sl_arena_strndup(x->a, namebuf, strlen(namebuf));
      cs->type = c->type;
    } else if (q->kind == SEL_FUNC && (!strcmp(q->name, "writetime") || !strcmp(q->name, "ttl")) && q->nargs == 1 &&
               q->args[0]->kind == SEL_COLUMN) {
      const sl_column_t *c = sl_table_column(t, q->args[0]->name);
      if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s", q->args[0]->name);
      if (c->kind <= SL_COL_CLUSTERING)
        return sl_exec_fail(x, CQL_ERR_INVALID, "Cannot use selection function %s on PRIMARY KEY part %s", q->name,
                            c->name);
      if (sl_rows_is_multicell(c->type)) /* Cassandra 4: one time per element, so no single answer */
        return sl_exec_fail(x, CQL_ERR_INVALID, "Cannot use selection function %s on non-frozen collection %s",
                            q->name, c->name);
      if (c->type->id == CQL_TYPE_COUNTER)
        return sl_exec_fail(x, CQL_ERR_INVALID, "Cannot use selection function %s on counters", q->name);
      se->kind = q->name[0] == 'w' ? SEL_K_WRITETIME : SEL_K_TTL;
      se->col = (int)(c - t->cols);
      snprintf(namebuf, sizeof namebuf, "%s(%s)", q->name, c->name);
      cs->name = sl_arena_strndup(x->a, namebuf, strlen(namebuf));
      cs->type = se->kind == SEL_K_WRITETIME ? &t_bigint : &t_int;
    } else if (q->kind == SEL_FUNC && !strcmp(q->name, "tojson") && q->nargs == 1 && q->args[0]->kind == SEL_COLUMN) {
      static sl_cql_type_t t_text = {.id = CQL_TYPE_VARCHAR};
      const sl_column_t *c = sl_table_column(t, q->args[0]->name);
      if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s", q->args[0]->name);
      se->kind = SEL_K_TOJSON;
      se->col = (int)(c - t->cols);
      snprintf(namebuf, sizeof namebuf, "system.tojson(%s)", c->name);
      cs->name = sl_arena_strndup(x->a, namebuf, strlen(namebuf));
      cs->type = &t_text;
    } else if (q->kind == SEL_FUNC && !strcmp(q->name, "token")) {
      if (q->nargs != t->npk) return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid number of arguments for token()");
      size_t o = (size_t)snprintf(namebuf, sizeof namebuf, "system.token(");
      for (size_t k = 0; k < q->nargs; k++) {
        if (q->args[k]->kind != SEL_COLUMN || strcmp(q->args[k]->name, t->cols[k].name) != 0)
          return sl_exec_fail(x, CQL_ERR_INVALID, "The token function arguments must be the partition key columns in "
                                                  "order");
        o += (size_t)snprintf(namebuf + o, sizeof namebuf - o, "%s%s", k ? ", " : "", t->cols[k].name);
        if (o >= sizeof namebuf) o = sizeof namebuf - 1;
      }
      snprintf(namebuf + o, sizeof namebuf - o, ")");
      se->kind = SEL_K_TOKEN;
      se->col = -1;
      cs->name = sl_arena_strndup(x->a, namebuf, strlen(namebuf));
      cs->type = &t_bigint;
    } else {
      return sl_exec_fail(x, CQL_ERR_INVALID, "Unsupported selector %s", q->name ? q->name : "");
    }
    if (q->alias) cs->name = q->alias;
    sl_vec_push(x->a, &sels, se);
    sl_vec_push(x->a, &cols, cs);
  }
  /* aggregates and plain columns cannot mix (Cassandra allows it with a warning; we keep it simple) */
  bool agg = false, plain = false;
  for (size_t i = 0; i < sels.n; i++) {
    if (is_aggregate(((sel_t *)sels.items[i])->kind)) agg = true;
    else plain = true;
  }
  if (agg && plain)
    return sl_exec_fail(x, CQL_ERR_INVALID, "Mixing aggregates (count, min, max, sum, avg) with columns is not "
                                            "supported yet");
  sel_t *sa = sl_arena_alloc(x->a, (sels.n + 1) * sizeof *sa);
  sl_colspec_t *ca = sl_arena_alloc(x->a, (cols.n + 1) * sizeof *ca);
  for (size_t i = 0; i < sels.n; i++) {
    sa[i] = *(sel_t *)sels.items[i];
    ca[i] = *(sl_colspec_t *)cols.items[i];
  }
  *sels_out = sa;
  *cols_out = ca;
  *n_out = sels.n;
  return 0;
}

static sl_cql_type_t t_text = {.id = CQL_TYPE_VARCHAR};

int sl_exec_select_columns(sl_exec_t *x, const cql_stmt_t *s, sl_colspec_t **cols, size_t *ncols) {
  sl_table_t *t = sl_exec_table(x, s->keyspace, s->table);
  if (!t) return -1;
  sel_t *sels;
  if (plan_selection(x, s, t, &sels, cols, ncols) != 0) return -1;
  if (s->json) { /* SELECT JSON: one text column */
    sl_colspec_t *j = sl_arena_alloc(x->a, sizeof *j);
    *j = (sl_colspec_t){t->keyspace, t->name, "[json]", &t_text};
    *cols = j;
    *ncols = 1;
  }
  return 0;
}

/* SELECT JSON: each row as one object of the selected columns. */
static void json_rows(sl_exec_t *x, const sl_colspec_t *cols, size_t ncols, sl_slice_t **rows, size_t nrows) {
  sl_buf_t b;
  sl_buf_init(&b);
  for (size_t r = 0; r < nrows; r++) {
    b.len = 0;
    sl_buf_put_u8(&b, '{');
    for (size_t c = 0; c < ncols; c++) {
      if (c) sl_buf_put(&b, ", ", 2);
      sl_json_column_name(&b, cols[c].name);
      sl_buf_put(&b, ": ", 2);
      sl_json_value(&b, cols[c].type, rows[r][c].ptr, rows[r][c].len);
    }
    sl_buf_put_u8(&b, '}');
    sl_slice_t *row = sl_arena_alloc(x->a, sizeof *row);
    *row = sl_val_bytes(x->a, b.data, b.len);
    rows[r] = row;
  }
  sl_buf_free(&b);
}

void sl_exec_write_metadata(sl_buf_t *b, int flags, const sl_colspec_t *cols, size_t n, const sl_slice_t *paging) {
  if (paging) flags |= CQL_RFLAG_HAS_MORE_PAGES;
  bool global = (flags & CQL_RFLAG_GLOBAL_TABLES_SPEC) && n > 0;
  if (!global) flags &= ~CQL_RFLAG_GLOBAL_TABLES_SPEC;
  cql_write_int(b, flags);
  cql_write_int(b, (int32_t)n);
  if (paging) cql_write_bytes(b, paging->ptr, paging->len);
  if (flags & CQL_RFLAG_NO_METADATA) return;
  if (global) {
    cql_write_cstring(b, cols[0].ks);
    cql_write_cstring(b, cols[0].table);
  }
  for (size_t i = 0; i < n; i++) {
    if (!global) {
      cql_write_cstring(b, cols[i].ks);
      cql_write_cstring(b, cols[i].table);
    }
    cql_write_cstring(b, cols[i].name);
    sl_cql_type_write_option(b, cols[i].type);
  }
}

/* ---- restrictions ---- */

typedef struct {
  int col;          /* -1 for token */
  cql_op_t op;
  sl_slice_t *vals; /* one, or several for IN */
  size_t nvals;
  int64_t token;
} restr_t;

static int list_elements(sl_exec_t *x, const cql_value_t *v, restr_t *r) {
  sl_reader_t rd;
  sl_reader_init(&rd, v->v.ptr, v->v.len);
  int32_t n = (int32_t)sl_read_be32(&rd);
  if (rd.err || n < 0 || (size_t)n > sl_reader_remaining(&rd) / 4)
    return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid list value for IN");
  r->vals = sl_arena_alloc(x->a, ((size_t)n + 1) * sizeof *r->vals);
  for (int32_t i = 0; i < n; i++) {
    bool null;
    sl_slice_t e = cql_read_bytes(&rd, &null);
    if (rd.err || null) return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid null value in IN list");
    r->vals[r->nvals++] = e;
  }
  return 0;
}

static int plan_restrictions(sl_exec_t *x, const cql_stmt_t *s, const sl_table_t *t, restr_t **out, size_t *nout) {
  restr_t *rs = sl_arena_alloc(x->a, (s->where.n + 1) * sizeof *rs);
  size_t n = 0;
  for (size_t i = 0; i < s->where.n; i++) {
    const cql_relation_t *rel = s->where.items[i];
    restr_t *r = &rs[n];
    r->op = rel->op;
    if (rel->tuple) return sl_exec_fail(x, CQL_ERR_INVALID, "Multi-column relations are not supported yet");
    if (rel->op == OP_NE) return sl_exec_fail(x, CQL_ERR_INVALID, "Unsupported \"!=\" relation");
    if (rel->op == OP_CONTAINS || rel->op == OP_CONTAINS_KEY)
      return sl_exec_fail(x, CQL_ERR_INVALID, "CONTAINS relations are not supported yet");
    if (rel->token) {
      if (rel->ncolumns != t->npk)
        return sl_exec_fail(x, CQL_ERR_INVALID, "The token() function must be applied to all partition key "
                                                "components or none of them");
      for (size_t k = 0; k < rel->ncolumns; k++)
        if (strcmp(rel->columns[k], t->cols[k].name) != 0)
          return sl_exec_fail(x, CQL_ERR_INVALID, "The token function arguments must be in the partition key order");
      if (rel->op == OP_IN) return sl_exec_fail(x, CQL_ERR_INVALID, "IN is not supported on token()");
      r->col = -1;
      int rc = sl_exec_term_int(x, rel->value, &r->token);
      if (rc != 0) return rc < 0 ? -1 : sl_exec_fail(x, CQL_ERR_INVALID, "Invalid null value for token");
      n++;
      continue;
    }
    const sl_column_t *c = sl_table_column(t, rel->columns[0]);
    if (!c) return sl_exec_fail(x, CQL_ERR_INVALID, "Undefined column name %s", rel->columns[0]);
    r->col = (int)(c - t->cols);
    if (rel->op == OP_IN) {
      if (rel->value->kind == TERM_BIND) {
        sl_cql_type_t lt = {.id = CQL_TYPE_LIST, .nsub = 1};
        sl_cql_type_t *sub[1] = {c->type};
        lt.sub = sub;
        cql_value_t v;
        if (sl_exec_term_value(x, rel->value, &lt, &v) != 0) return -1;
        if (v.kind != CQL_VALUE_SET) return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid null value for IN restriction");
        if (list_elements(x, &v, r) != 0) return -1;
      } else {
        r->vals = sl_arena_alloc(x->a, (rel->value->nitems + 1) * sizeof *r->vals);
        for (size_t k = 0; k < rel->value->nitems; k++) {
          cql_value_t v;
          if (sl_exec_term_value(x, rel->value->items[k], c->type, &v) != 0) return -1;
          if (v.kind != CQL_VALUE_SET)
            return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid null value in condition for column %s", c->name);
          r->vals[r->nvals++] = v.v;
        }
      }
    } else {
      cql_value_t v;
      if (sl_exec_term_value(x, rel->value, c->type, &v) != 0) return -1;
      if (v.kind == CQL_VALUE_UNSET)
        return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid unset value for column %s", c->name);
      if (v.kind == CQL_VALUE_NULL)
        return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid null value in condition for column %s", c->name);
      r->vals = sl_arena_alloc(x->a, sizeof *r->vals);
      r->vals[0] = v.v;
      r->nvals = 1;
    }
    n++;
  }
  *out = rs;
  *nout = n;
  return 0;
}

static bool row_matches(const sl_table_t *t, const restr_t *rs, size_t n, const sl_row_t *row) {
  for (size_t i = 0; i < n; i++) {
    const restr_t *r = &rs[i];
    if (r->col < 0) {
      int64_t tok = sl_rows_token(t, row->vals);
      bool ok = r->op == OP_EQ ? tok == r->token : r->op == OP_LT ? tok < r->token : r->op == OP_LE ? tok <= r->token
                                                 : r->op == OP_GT ? tok > r->token : tok >= r->token;
      if (!ok) return false;
      continue;
    }
    sl_slice_t v = row->vals[r->col];
    if (!v.ptr) return false;
    const sl_cql_type_t *ty = t->cols[r->col].type;
    if (r->op == OP_IN) {
      bool any = false;
      for (size_t k = 0; k < r->nvals && !any; k++)
        any = sl_value_compare(ty, v.ptr, v.len, r->vals[k].ptr, r->vals[k].len) == 0;
      if (!any) return false;
      continue;
    }
    int c = sl_value_compare(ty, v.ptr, v.len, r->vals[0].ptr, r->vals[0].len);
    bool ok = r->op == OP_EQ ? c == 0 : r->op == OP_LT ? c < 0 : r->op == OP_LE ? c <= 0 : r->op == OP_GT ? c > 0 : c >= 0;
    if (!ok) return false;
  }
  return true;
}

/* ---- ranges ---- */

typedef struct {
  sl_buf_t lo, hi; /* [lo, hi); hi empty = unbounded */
} range_t;

static void range_init(range_t *r) {
  sl_buf_init(&r->lo);
  sl_buf_init(&r->hi);
}

static int cmp_bytes(const sl_buf_t *a, const sl_buf_t *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = n ? memcmp(a->data, b->data, n) : 0;
  return c ? c : (a->len < b->len ? -1 : a->len > b->len ? 1 : 0);
}

static int range_cmp(const void *a, const void *b) { return cmp_bytes(&((const range_t *)a)->lo, &((const range_t *)b)->lo); }


/* Builds the storage ranges; returns the count (ranges allocated with malloc, freed by the caller) or -1. */
static int plan_ranges(sl_exec_t *x, const cql_stmt_t *s, const sl_table_t *t, const restr_t *rs, size_t nr,
                       range_t **out, bool *pk_restricted) {
  const restr_t *pkr[64] = {0};
  const restr_t *ckr[64] = {0};
  const restr_t *ck_lo[64] = {0}, *ck_hi[64] = {0};
  bool filtering = false, token = false;
  for (size_t i = 0; i < nr; i++) {
    const restr_t *r = &rs[i];
    if (r->col < 0) {
      token = true;
      continue;
    }
    const sl_column_t *c = &t->cols[r->col];
    if (c->kind == SL_COL_PARTITION_KEY && c->position < 64) {
      if (r->op == OP_EQ || r->op == OP_IN) pkr[c->position] = r;
      else filtering = true;
    } else if (c->kind == SL_COL_CLUSTERING && c->position < 64) {
      if (r->op == OP_EQ || r->op == OP_IN) ckr[c->position] = r;
      else if (r->op == OP_GT || r->op == OP_GE) ck_lo[c->position] = r;
      else ck_hi[c->position] = r;
    } else {
      filtering = true;
    }
  }
  size_t nparts = 1;
  bool all_pk = t->npk <= 64;
  for (size_t i = 0; i < t->npk && all_pk; i++) {
    if (!pkr[i]) all_pk = false;
    else nparts *= pkr[i]->nvals ? pkr[i]->nvals : 1;
  }
  bool any_pk = false;
  for (size_t i = 0; i < t->npk && i < 64; i++) any_pk |= pkr[i] != NULL;
  if (any_pk && !all_pk) filtering = true;
  /* clustering restrictions must form a prefix of EQ/IN with at most one slice at its end */
  size_t eq_prefix = 0;
  while (eq_prefix < t->nck && eq_prefix < 64 && ckr[eq_prefix] && ckr[eq_prefix]->op == OP_EQ) eq_prefix++;
  for (size_t i = 0; i < t->nck && i < 64; i++) {
    bool restricted = ckr[i] || ck_lo[i] || ck_hi[i];
    if (!restricted) continue;
    if (!all_pk) filtering = true;
    size_t prefix_ok = 0;
    while (prefix_ok < i && (ckr[prefix_ok])) prefix_ok++;
    if (prefix_ok < i) filtering = true;
    if ((ck_lo[i] || ck_hi[i]) && i + 1 < t->nck)
      for (size_t k = i + 1; k < t->nck && k < 64; k++)
        if (ckr[k] || ck_lo[k] || ck_hi[k]) filtering = true;
  }
  if (filtering && !s->allow_filtering)
    return sl_exec_fail(x, CQL_ERR_INVALID,
                        "Cannot execute this query as it might involve data filtering and thus may have unpredictable "
                        "performance. If you want to execute this query despite the performance unpredictability, use "
                        "ALLOW FILTERING");
  *pk_restricted = all_pk;
  if (!all_pk || nparts == 0 || nparts > 10000) {
    if (all_pk && nparts > 10000) return sl_exec_fail(x, CQL_ERR_INVALID, "Too many partitions in IN restrictions");
    range_t *r = malloc(sizeof *r);
    if (!r) abort();
    range_init(r);
    sl_rows_table_prefix(&r->lo, t->id);
    sl_rows_table_prefix(&r->hi, t->id);
    sl_kv_prefix_successor(&r->hi);
    if (token) {
      for (size_t i = 0; i < nr; i++) {
        if (rs[i].col >= 0) continue;
        int64_t v = rs[i].token;
        sl_buf_t b;
        sl_buf_init(&b);
        sl_rows_table_prefix(&b, t->id);
        bool lower = rs[i].op == OP_GT || rs[i].op == OP_GE || rs[i].op == OP_EQ;
        bool upper = rs[i].op == OP_LT || rs[i].op == OP_LE || rs[i].op == OP_EQ;
        if (lower) {
          int64_t from = rs[i].op == OP_GT ? (v == INT64_MAX ? v : v + 1) : v;
          sl_key_put_token(&b, from);
          if (cmp_bytes(&b, &r->lo) > 0) {
            r->lo.len = 0;
            sl_buf_put(&r->lo, b.data, b.len);
          }
        }
        if (upper && !(v == INT64_MAX && rs[i].op != OP_LT)) {
          b.len = 0;
          sl_rows_table_prefix(&b, t->id);
          sl_key_put_token(&b, rs[i].op == OP_LT ? v : v + 1);
          if (cmp_bytes(&b, &r->hi) < 0) {
            r->hi.len = 0;
            sl_buf_put(&r->hi, b.data, b.len);
          }
        }
        sl_buf_free(&b);
      }
    }
    *out = r;
    return 1;
  }
  range_t *ranges = malloc(nparts * sizeof *ranges);
  if (!ranges) abort();
  sl_slice_t pk[64];
  bool narrow_ck = true; /* the row layer reads a skipped partition header (statics, tombstones) itself */
  for (size_t p = 0; p < nparts; p++) {
    size_t rem = p;
    for (size_t i = t->npk; i-- > 0;) {
      size_t nv = pkr[i]->nvals;
      pk[i] = pkr[i]->vals[rem % nv];
      rem /= nv;
    }
    range_t *r = &ranges[p];
    range_init(r);
    sl_rows_partition_prefix(&r->lo, t, pk);
    if (narrow_ck && eq_prefix > 0) {
      sl_buf_put_u8(&r->lo, SL_ROWS_KIND_ROW);
      for (size_t i = 0; i < eq_prefix; i++) {
        const sl_column_t *c = &t->cols[t->npk + i];
        sl_key_encode(&r->lo, c->type, ckr[i]->vals[0].ptr, ckr[i]->vals[0].len, c->desc);
      }
    }
    sl_buf_put(&r->hi, r->lo.data, r->lo.len);
    sl_kv_prefix_successor(&r->hi);
    /* one slice right after the equality prefix */
    if (narrow_ck && eq_prefix < t->nck && eq_prefix < 64 && (ck_lo[eq_prefix] || ck_hi[eq_prefix])) {
      const sl_column_t *c = &t->cols[t->npk + eq_prefix];
      size_t base = r->lo.len;
      bool row_kind_added = eq_prefix > 0;
      const restr_t *bounds[2] = {ck_lo[eq_prefix], ck_hi[eq_prefix]};
      for (int k = 0; k < 2; k++) {
        const restr_t *b = bounds[k];
        if (!b) continue;
        sl_buf_t key;
        sl_buf_init(&key);
        sl_buf_put(&key, r->lo.data, base);
        if (!row_kind_added) sl_buf_put_u8(&key, SL_ROWS_KIND_ROW);
        sl_key_encode(&key, c->type, b->vals[0].ptr, b->vals[0].len, c->desc);
        /* in key order, a DESC column's "greater" is "smaller" */
        bool is_lower = (b->op == OP_GT || b->op == OP_GE) != c->desc;
        bool inclusive = b->op == OP_GE || b->op == OP_LE;
        if (is_lower) {
          if (!inclusive) sl_kv_prefix_successor(&key);
          if (cmp_bytes(&key, &r->lo) > 0) {
            r->lo.len = 0;
            sl_buf_put(&r->lo, key.data, key.len);
          }
        } else {
          if (inclusive) sl_kv_prefix_successor(&key);
          if (cmp_bytes(&key, &r->hi) < 0) {
            r->hi.len = 0;
            sl_buf_put(&r->hi, key.data, key.len);
          }
        }
        sl_buf_free(&key);
      }
    }
  }
  qsort(ranges, nparts, sizeof *ranges, range_cmp);
  *out = ranges;
  return (int)nparts;
}

/* ---- execution ---- */

typedef struct {
  sl_exec_t *x;
  const sl_table_t *t;
  const restr_t *rs;
  size_t nr;
  const sel_t *sels;
  size_t nsels;
  bool count_only; /* every selector is an aggregate: fold rows into aggs instead of returning them */
  agg_t *aggs;     /* one per selector when count_only */
  int64_t skip;       /* virtual tables: matching rows to skip (paging) */
  int64_t want;       /* rows wanted in this page (INT64_MAX: all) */
  int64_t limit_left; /* LIMIT minus rows already returned in earlier pages */
  sl_vec_t out;       /* projected rows: sl_slice_t arrays */
  bool more;
  const uint8_t *last_key;
  size_t last_keylen;
  bool collect_all;   /* ORDER BY reversed: take everything, cut pages later */
  bool distinct;
  const sl_slice_t *prev_pk;
  /* PER PARTITION LIMIT: rows taken from the current partition (carried in the paging state) */
  int64_t ppl;             /* INT64_MAX: none */
  int64_t in_part;
  int64_t last_in_part;     /* in_part of the last row returned (what the paging state carries) */
  const sl_slice_t *ppl_pk; /* the current partition's key values */
  uintptr_t part_no;        /* ORDER BY reversed with PER PARTITION LIMIT: partition ordinal of each collected row */
  sl_vec_t part_of;
  const uint8_t *resume_key; /* key paging: the previous page's last row, to continue its partition's count */
  size_t resume_keylen;
} ctx_t;

static bool same_partition(const sl_table_t *t, const sl_slice_t *a, const sl_slice_t *b) {
  for (size_t i = 0; i < t->npk; i++)
    if (a[i].len != b[i].len || (a[i].len && memcmp(a[i].ptr, b[i].ptr, a[i].len) != 0)) return false;
  return true;
}

/* The storage key of a row's partition (what DISTINCT pages by), in the arena. */
static sl_slice_t partition_key_of(ctx_t *c, const sl_slice_t *vals) {
  sl_buf_t b;
  sl_buf_init(&b);
  sl_rows_partition_prefix(&b, c->t, vals);
  sl_slice_t r = sl_val_bytes(c->x->a, b.data, b.len);
  sl_buf_free(&b);
  return r;
}

static int on_row(void *arg, const sl_row_t *row) {
  ctx_t *c = arg;
  if (!row_matches(c->t, c->rs, c->nr, row)) return 0;
  if (c->ppl != INT64_MAX && c->collect_all) { /* limit applied after reversing: remember the partition */
    if (!c->ppl_pk || !same_partition(c->t, c->ppl_pk, row->vals)) {
      sl_slice_t *pk = sl_arena_alloc(c->x->a, (c->t->npk + 1) * sizeof *pk);
      memcpy(pk, row->vals, c->t->npk * sizeof *pk);
      c->ppl_pk = pk;
      c->part_no++;
    }
  } else if (c->ppl != INT64_MAX) {
    if (!c->ppl_pk || !same_partition(c->t, c->ppl_pk, row->vals)) {
      bool continued = false;
      if (!c->ppl_pk && c->resume_key && row->key) { /* first row of a resumed page: same partition as before? */
        sl_slice_t pp = partition_key_of(c, row->vals);
        continued = c->resume_keylen >= pp.len && !memcmp(c->resume_key, pp.ptr, pp.len);
      }
      sl_slice_t *pk = sl_arena_alloc(c->x->a, (c->t->npk + 1) * sizeof *pk);
      memcpy(pk, row->vals, c->t->npk * sizeof *pk);
      c->ppl_pk = pk;
      if (!continued) c->in_part = 0;
    }
    if (c->in_part >= c->ppl) return 0;
  }
  if (c->distinct) {
    if (c->prev_pk && same_partition(c->t, c->prev_pk, row->vals)) return 0;
    sl_slice_t *pk = sl_arena_alloc(c->x->a, (c->t->npk + 1) * sizeof *pk);
    memcpy(pk, row->vals, c->t->npk * sizeof *pk);
    c->prev_pk = pk;
  }
  if (c->count_only) {
    for (size_t i = 0; i < c->nsels; i++) {
      const sel_t *s = &c->sels[i];
      agg_t *g = &c->aggs[i];
      if (s->col < 0) { /* count(*) */
        g->count++;
        continue;
      }
      sl_slice_t v = row->vals[s->col];
      if (!v.ptr) continue; /* nulls are not counted, summed or compared */
      const sl_cql_type_t *ty = c->t->cols[s->col].type;
      g->count++;
      if (s->kind == SEL_K_SUM || s->kind == SEL_K_AVG) {
        int64_t iv = 0;
        double dv = 0;
        decode_number(ty, v, &iv, &dv);
        g->isum = (int64_t)((uint64_t)g->isum + (uint64_t)iv);
        g->dsum += dv;
      } else if (s->kind == SEL_K_MIN || s->kind == SEL_K_MAX) {
        int cmp = g->has_best ? sl_value_compare(ty, v.ptr, v.len, g->best.ptr, g->best.len) : 0;
        if (!g->has_best || (s->kind == SEL_K_MIN ? cmp < 0 : cmp > 0)) {
          g->best = sl_val_bytes(c->x->a, v.ptr, v.len); /* row memory does not outlive the scan callback */
          g->has_best = true;
        }
      }
    }
    c->in_part++;
    return 0;
  }
  if (c->skip > 0) {
    c->skip--;
    c->in_part++;
    return 0;
  }
  if (!c->collect_all && ((int64_t)c->out.n >= c->want || (int64_t)c->out.n >= c->limit_left)) {
    c->more = (int64_t)c->out.n < c->limit_left;
    return 1;
  }
  sl_slice_t *o = sl_arena_alloc(c->x->a, (c->nsels + 1) * sizeof *o);
  for (size_t i = 0; i < c->nsels; i++) {
    const sel_t *s = &c->sels[i];
    switch (s->kind) {
      case SEL_K_COL: o[i] = row->vals[s->col]; break;
      case SEL_K_WRITETIME:
        if (row->ts && row->ts[s->col] != INT64_MIN && row->vals[s->col].ptr)
          o[i] = sl_val_bigint(c->x->a, row->ts[s->col]);
        break;
      case SEL_K_TTL:
        if (row->ttl && row->ttl[s->col] > 0 && row->vals[s->col].ptr) o[i] = sl_val_int(c->x->a, row->ttl[s->col]);
        break;
      case SEL_K_TOKEN: o[i] = sl_val_bigint(c->x->a, sl_rows_token(c->t, row->vals)); break;
      case SEL_K_TOJSON: { /* the value in Cassandra's JSON form; a null column gives the text "null" */
        sl_buf_t j;
        sl_buf_init(&j);
        const sl_slice_t *v = &row->vals[s->col];
        if (v->ptr) sl_json_value(&j, c->t->cols[s->col].type, v->ptr, v->len);
        else sl_buf_put(&j, "null", 4);
        o[i] = (sl_slice_t){sl_arena_memdup(c->x->a, j.data, j.len), j.len};
        sl_buf_free(&j);
        break;
      }
      default: break;
    }
  }
  sl_vec_push(c->x->a, &c->out, o);
  if (c->ppl != INT64_MAX && c->collect_all) sl_vec_push(c->x->a, &c->part_of, (void *)c->part_no);
  c->in_part++;
  c->last_in_part = c->in_part;
  if (c->distinct && row->key) { /* DISTINCT pages by partition: resume after this partition's last key */
    sl_slice_t pp = partition_key_of(c, row->vals);
    c->last_key = pp.ptr;
    c->last_keylen = pp.len;
  } else {
    c->last_key = row->key;
    c->last_keylen = row->keylen;
  }
  return 0;
}

static void write_rows(sl_exec_t *x, const sl_colspec_t *cols, size_t ncols, sl_slice_t **rows, size_t nrows,
                       const sl_slice_t *paging, bool json) {
  if (json) {
    json_rows(x, cols, ncols, rows, nrows);
    sl_colspec_t *j = sl_arena_alloc(x->a, sizeof *j);
    *j = (sl_colspec_t){ncols ? cols[0].ks : "", ncols ? cols[0].table : "", "[json]", &t_text};
    cols = j;
    ncols = 1;
  }
  int flags = CQL_RFLAG_GLOBAL_TABLES_SPEC | (x->skip_metadata ? CQL_RFLAG_NO_METADATA : 0);
  cql_write_int(x->out, CQL_RESULT_ROWS);
  sl_exec_write_metadata(x->out, flags, cols, ncols, paging);
  cql_write_int(x->out, (int32_t)nrows);
  /* the cells as cql_write_bytes writes them, into room reserved once */
  size_t total = 0;
  for (size_t r = 0; r < nrows; r++)
    for (size_t c = 0; c < ncols; c++) total += 4 + (rows[r][c].ptr ? rows[r][c].len : 0);
  uint8_t *p = sl_buf_extend(x->out, total);
  for (size_t r = 0; r < nrows; r++)
    for (size_t c = 0; c < ncols; c++) {
      const sl_slice_t *v = &rows[r][c];
      if (!v->ptr) {
        sl_store_be32(p, UINT32_MAX); /* null: [int] -1 */
        p += 4;
        continue;
      }
      sl_store_be32(p, (uint32_t)v->len);
      if (v->len) memcpy(p + 4, v->ptr, v->len);
      p += 4 + v->len;
    }
}

int sl_exec_select(sl_exec_t *x, const cql_stmt_t *s) {
  sl_table_t *t = sl_exec_table(x, s->keyspace, s->table);
  if (!t) return -1;
  sel_t *sels;
  sl_colspec_t *cols;
  size_t ncols;
  if (plan_selection(x, s, t, &sels, &cols, &ncols) != 0) return -1;
  if (s->distinct) {
    for (size_t i = 0; i < ncols; i++)
      if (sels[i].kind != SEL_K_COL || (t->cols[sels[i].col].kind != SL_COL_PARTITION_KEY &&
                                        t->cols[sels[i].col].kind != SL_COL_STATIC))
        return sl_exec_fail(x, CQL_ERR_INVALID, "SELECT DISTINCT queries must only request partition key columns "
                                                "and/or static columns (not %s)", cols[i].name);
  }
  restr_t *rs = NULL;
  size_t nr = 0;
  if (plan_restrictions(x, s, t, &rs, &nr) != 0) return -1;
  int64_t limit = INT64_MAX;
  if (s->limit) {
    int rc = sl_exec_term_int(x, s->limit, &limit);
    if (rc < 0) return -1;
    if (rc == 1) limit = INT64_MAX;
    else if (limit <= 0) return sl_exec_fail(x, CQL_ERR_INVALID, "LIMIT must be strictly positive");
  }
  int64_t ppl = INT64_MAX;
  if (s->per_partition_limit) {
    int rc = sl_exec_term_int(x, s->per_partition_limit, &ppl);
    if (rc < 0) return -1;
    if (rc == 1) ppl = INT64_MAX;
    else if (ppl <= 0) return sl_exec_fail(x, CQL_ERR_INVALID, "PER PARTITION LIMIT must be strictly positive");
    if (s->distinct) return sl_exec_fail(x, CQL_ERR_INVALID, "PER PARTITION LIMIT is not allowed with SELECT DISTINCT queries");
  }
  /* paging state: [u8 1][i64 rows returned so far][key of the last row], or with PER PARTITION LIMIT
   * [u8 2][i64 rows so far][i64 rows taken from the last row's partition][key of the last row] */
  int64_t done = 0, in_part = 0;
  sl_slice_t resume = {NULL, 0};
  if (x->has_paging_state) {
    sl_reader_t r;
    sl_reader_init(&r, x->paging_state.ptr, x->paging_state.len);
    uint8_t v = sl_read_u8(&r);
    done = (int64_t)sl_read_be64(&r);
    if (v == 2) in_part = (int64_t)sl_read_be64(&r);
    if (r.err || (v != 1 && v != 2) || done < 0 || in_part < 0)
      return sl_exec_fail(x, CQL_ERR_PROTOCOL, "Invalid paging state");
    resume.ptr = r.data + r.pos;
    resume.len = sl_reader_remaining(&r);
  }
  bool reversed = false;
  for (size_t i = 0; i < s->order_by.n; i++) {
    const sl_column_t *c = sl_table_column(t, s->order_by.items[i]);
    if (!c || c->kind != SL_COL_CLUSTERING)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Order by on unknown column %s", (char *)s->order_by.items[i]);
    if (c->position != (int)i)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Order by currently only supports the ordering of columns following "
                                              "their declared order in the PRIMARY KEY");
    bool rev = s->order_desc[i] != c->desc;
    if (i == 0) reversed = rev;
    else if (rev != reversed)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Unsupported order by relation");
  }
  ctx_t c = {.x = x, .t = t, .rs = rs, .nr = nr, .sels = sels, .nsels = ncols};
  c.count_only = ncols > 0 && is_aggregate(sels[0].kind);
  if (c.count_only) {
    c.aggs = sl_arena_alloc(x->a, (ncols + 1) * sizeof *c.aggs);
    memset(c.aggs, 0, (ncols + 1) * sizeof *c.aggs);
  }
  c.limit_left = limit == INT64_MAX ? INT64_MAX : limit - done;
  c.want = x->page_size > 0 && !c.count_only ? x->page_size : INT64_MAX;
  c.collect_all = reversed;
  c.distinct = s->distinct;
  c.ppl = ppl;
  if (c.limit_left < 0) c.limit_left = 0;
  bool offset_paging = t->is_virtual || reversed;
  if (!offset_paging && resume.len) {
    c.in_part = in_part;
    c.resume_key = resume.ptr;
    c.resume_keylen = resume.len;
  }
  if (offset_paging) c.skip = done;
  int rc = 0;
  if (t->is_virtual) {
    sl_vec_t rows = {0};
    sl_systables_rows(x->e, t, x->a, &rows);
    for (size_t i = 0; i < rows.n && rc == 0; i++) {
      sl_row_t row = {.vals = rows.items[i]};
      rc = on_row(&c, &row);
    }
    rc = 0;
  } else {
    range_t *ranges = NULL;
    bool pk_restricted = false;
    int nranges = plan_ranges(x, s, t, rs, nr, &ranges, &pk_restricted);
    if (nranges < 0) return -1;
    if (s->order_by.n && !pk_restricted) {
      for (int i = 0; i < nranges; i++) {
        sl_buf_free(&ranges[i].lo);
        sl_buf_free(&ranges[i].hi);
      }
      free(ranges);
      return sl_exec_fail(x, CQL_ERR_INVALID, "ORDER BY is only supported when the partition key is restricted by "
                                              "an EQ or an IN.");
    }
    if (reversed) c.skip = 0; /* reversed: collect everything, then skip from the other end below */
    int64_t now_s = sl_exec_now_micros(x->e) / 1000000;
    sl_buf_t after;
    sl_buf_init(&after);
    if (resume.len && !offset_paging) {
      sl_buf_put(&after, resume.ptr, resume.len);
      sl_kv_prefix_successor(&after);
    }
    for (int i = 0; i < nranges && rc == 0; i++) {
      range_t *r = &ranges[i];
      if (after.len && cmp_bytes(&after, &r->lo) > 0) {
        r->lo.len = 0;
        sl_buf_put(&r->lo, after.data, after.len);
      }
      if (r->hi.len && cmp_bytes(&r->lo, &r->hi) >= 0) continue;
      rc = sl_rows_scan(x->e->kv, t, r->lo.data, r->lo.len, r->hi.len ? r->hi.data : NULL, r->hi.len, now_s, x->a,
                        on_row, &c);
      if (c.more) break;
    }
    sl_buf_free(&after);
    for (int i = 0; i < nranges; i++) {
      sl_buf_free(&ranges[i].lo);
      sl_buf_free(&ranges[i].hi);
    }
    free(ranges);
    if (rc < 0) return sl_exec_fail(x, CQL_ERR_SERVER, "storage read failed");
  }
  if (c.count_only) {
    sl_slice_t *row = sl_arena_alloc(x->a, (ncols + 1) * sizeof *row);
    for (size_t i = 0; i < ncols; i++) {
      const agg_t *g = &c.aggs[i];
      const sl_cql_type_t *ty = sels[i].col >= 0 ? t->cols[sels[i].col].type : NULL;
      switch (sels[i].kind) {
        case SEL_K_COUNT: row[i] = sl_val_bigint(x->a, g->count); break;
        case SEL_K_MIN:
        case SEL_K_MAX: row[i] = g->has_best ? g->best : (sl_slice_t){NULL, 0}; break;
        case SEL_K_SUM: row[i] = encode_number(x->a, ty, g->isum, g->dsum); break;
        case SEL_K_AVG: /* Cassandra: 0 over no rows; integer types divide as integers */
          row[i] = encode_number(x->a, ty, g->count ? g->isum / g->count : 0,
                                 g->count ? g->dsum / (double)g->count : 0.0);
          break;
        default: row[i] = (sl_slice_t){NULL, 0}; break;
      }
    }
    write_rows(x, cols, ncols, &row, 1, NULL, s->json);
    return 0;
  }
  sl_slice_t **rows = (sl_slice_t **)c.out.items;
  size_t nrows = c.out.n;
  if (reversed) {
    for (size_t i = 0; i < nrows / 2; i++) {
      sl_slice_t *tmp = rows[i];
      rows[i] = rows[nrows - 1 - i];
      rows[nrows - 1 - i] = tmp;
    }
    if (ppl != INT64_MAX) { /* the first ppl rows of each partition, in the reversed order */
      size_t kept = 0;
      int64_t run = 0;
      for (size_t i = 0; i < nrows; i++) {
        uintptr_t part = (uintptr_t)c.part_of.items[nrows - 1 - i];
        if (i == 0 || part != (uintptr_t)c.part_of.items[nrows - i]) run = 0;
        if (run++ < ppl) rows[kept++] = rows[i];
      }
      nrows = kept;
    }
    size_t skip = (size_t)done < nrows ? (size_t)done : nrows;
    rows += skip;
    nrows -= skip;
    if ((int64_t)nrows > c.limit_left) nrows = (size_t)c.limit_left;
    c.more = false;
    if ((int64_t)nrows > c.want) {
      nrows = (size_t)c.want;
      c.more = true;
    }
  }
  sl_slice_t state = {NULL, 0};
  if (c.more && nrows > 0) {
    sl_buf_t b;
    sl_buf_init(&b);
    sl_buf_put_u8(&b, ppl != INT64_MAX ? 2 : 1);
    sl_buf_put_be64(&b, (uint64_t)(done + (int64_t)nrows));
    if (ppl != INT64_MAX) sl_buf_put_be64(&b, (uint64_t)c.last_in_part);
    if (!offset_paging) sl_buf_put(&b, c.last_key, c.last_keylen);
    state = sl_val_bytes(x->a, b.data, b.len);
    sl_buf_free(&b);
  }
  write_rows(x, cols, ncols, rows, nrows, state.ptr ? &state : NULL, s->json);
  return 0;
}
