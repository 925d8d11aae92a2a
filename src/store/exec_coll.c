/* Writes to non-frozen collections (multi-cell columns, see rows.h): one cell per element, with Cassandra's
 * semantics for each operation:
 *   c = x (INSERT or UPDATE)  a collection tombstone at timestamp - 1, then one cell per element of x
 *   l = l + x / l = x + l      list elements under new time-based paths (appended after / prepended before)
 *   s = s + x / m = m + x      one cell per set element / map entry, the path being the element / key
 *   s = s - x / m = m - keys   element tombstones
 *   l = l - x                  reads the list, tombstones every element equal to one of x
 *   m[k] = v / DELETE m[k]     one cell (a tombstone when v is null or on DELETE)
 *   l[i] = v / DELETE l[i]     reads the list, writes the i-th element's path
 * Reads before writes (the two list cases) run on the executor thread like every other read. */
#include <string.h>

#include "store/exec_internal.h"
#include "store/keycodec.h"
#include "store/rows.h"

sl_cell_write_t *sl_cellv_push(sl_arena_t *a, sl_cellv_t *cv) {
  if (cv->n == cv->cap) {
    size_t cap = cv->cap ? cv->cap * 2 : 16;
    sl_cell_write_t *n = sl_arena_alloc(a, cap * sizeof *n);
    if (cv->n) memcpy(n, cv->v, cv->n * sizeof *n);
    cv->v = n;
    cv->cap = cap;
  }
  sl_cell_write_t *w = &cv->v[cv->n++];
  memset(w, 0, sizeof *w);
  return w;
}

/* The elements of a serialized collection (per = 2 for maps: keys and values alternate). */
static int coll_items(sl_exec_t *x, const cql_value_t *v, size_t per, sl_slice_t **items, size_t *n) {
  *items = NULL;
  *n = 0;
  if (v->kind != CQL_VALUE_SET || v->v.len == 0) return 0;
  sl_reader_t r;
  sl_reader_init(&r, v->v.ptr, v->v.len);
  int32_t cnt = (int32_t)sl_read_be32(&r);
  if (r.err || cnt < 0 || (size_t)cnt * per * 4 > sl_reader_remaining(&r))
    return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid collection value");
  size_t m = (size_t)cnt * per;
  sl_slice_t *it = sl_arena_alloc(x->a, (m + 1) * sizeof *it);
  for (size_t i = 0; i < m; i++) {
    int32_t len = (int32_t)sl_read_be32(&r);
    if (len < 0) return sl_exec_fail(x, CQL_ERR_INVALID, "null is not supported inside collections");
    it[i].ptr = sl_read_bytes(&r, (size_t)len);
    it[i].len = (size_t)len;
    if (r.err) return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid collection value");
    if (!it[i].ptr) it[i].ptr = (const uint8_t *)"";
  }
  *items = it;
  *n = m;
  return 0;
}

/* The path of a set element / map key: its order-preserving encoding. */
static int elem_path(sl_exec_t *x, const sl_column_t *c, const sl_slice_t *k, sl_cell_write_t *w) {
  sl_buf_t b;
  sl_buf_init(&b);
  sl_key_encode(&b, c->type->sub[0], k->ptr, k->len, false);
  if (b.len > 65535) {
    sl_buf_free(&b);
    return sl_exec_fail(x, CQL_ERR_INVALID, "Collection element of %zu bytes in %s is too long (max 65535)", k->len,
                        c->name);
  }
  w->path = sl_val_bytes(x->a, b.data, b.len).ptr;
  w->pathlen = b.len;
  sl_buf_free(&b);
  return 0;
}

static void list_path(sl_exec_t *x, int64_t time, sl_cell_write_t *w) {
  uint8_t *p = sl_arena_alloc(x->a, 16);
  sl_rows_list_path(p, time, x->e->host_id);
  w->path = p;
  w->pathlen = 16;
}

static void elem_cell(sl_cellv_t *out, sl_arena_t *a, const sl_column_t *c, const uint8_t *v, size_t len,
                      bool tombstone, sl_cell_write_t **w) {
  *w = sl_cellv_push(a, out);
  (*w)->col_id = c->id;
  (*w)->tombstone = tombstone;
  (*w)->v = tombstone ? NULL : (v ? v : (const uint8_t *)"");
  (*w)->len = tombstone ? 0 : len;
}

/* The column's current live elements (for list operations that address existing elements). */
static int current_elements(sl_exec_t *x, const sl_table_t *t, const sl_column_t *c, const sl_slice_t *pk,
                            const sl_slice_t *ck, sl_rows_elem_t **el, size_t *n) {
  *el = NULL;
  *n = 0;
  sl_row_t row;
  if (!sl_exec_row_fetch(x, t, pk, c->kind == SL_COL_STATIC ? NULL : ck, &row) || !row.elems) return 0;
  size_t ci = (size_t)(c - t->cols);
  *el = row.elems[ci];
  *n = row.nelems[ci];
  return 0;
}

int sl_exec_coll_cells(sl_exec_t *x, const sl_table_t *t, const sl_column_t *c, cql_assign_kind_t kind,
                       const cql_term_t *keyterm, const cql_term_t *valterm, const cql_value_t *given,
                       const sl_slice_t *pk, const sl_slice_t *ck, sl_cellv_t *out) {
  const sl_cql_type_t *ty = c->type;
  bool is_list = ty->id == CQL_TYPE_LIST, is_set = ty->id == CQL_TYPE_SET, is_map = ty->id == CQL_TYPE_MAP;
  sl_cell_write_t *w;
  cql_value_t v;
  if (kind == ASSIGN_ELEMENT) {
    static sl_cql_type_t int_type = {.id = CQL_TYPE_INT};
    if (is_set) return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid operation (%s[..]) for set column %s", c->name, c->name);
    cql_value_t k;
    if (sl_exec_term_value(x, keyterm, is_map ? ty->sub[0] : &int_type, &k) != 0) return -1;
    if (k.kind != CQL_VALUE_SET)
      return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid %s value for %s element of %s", k.kind == CQL_VALUE_UNSET ? "unset" : "null",
                          is_map ? "map" : "list", c->name);
    memset(&v, 0, sizeof v);
    v.kind = CQL_VALUE_NULL;
    if (valterm && sl_exec_term_value(x, valterm, ty->sub[is_map ? 1 : 0], &v) != 0) return -1;
    if (v.kind == CQL_VALUE_UNSET) return 0;
    bool tomb = v.kind != CQL_VALUE_SET;
    if (is_map) {
      elem_cell(out, x->a, c, v.v.ptr, v.v.len, tomb, &w);
      return elem_path(x, c, &k.v, w);
    }
    if (k.v.len != 4) return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid list index");
    int32_t idx = (int32_t)sl_load_be32(k.v.ptr);
    sl_rows_elem_t *el;
    size_t n;
    if (current_elements(x, t, c, pk, ck, &el, &n) != 0) return -1;
    if (idx < 0 || (size_t)idx >= n) {
      if (tomb && !valterm) return 0; /* DELETE l[i] past the end: nothing to delete */
      return sl_exec_fail(x, CQL_ERR_INVALID, "List index %d out of bound, list has size %zu", idx, n);
    }
    elem_cell(out, x->a, c, v.v.ptr, v.v.len, tomb, &w);
    w->path = el[idx].path;
    w->pathlen = el[idx].pathlen;
    return 0;
  }
  /* the operand: the column's type, but a set of keys for m = m - {k} */
  const sl_cql_type_t *vt = ty;
  sl_cql_type_t keyset = {.id = CQL_TYPE_SET, .nsub = 1};
  sl_cql_type_t *ksub[1] = {is_map ? ty->sub[0] : NULL};
  if (is_map && kind == ASSIGN_SUB) {
    keyset.sub = ksub;
    vt = &keyset;
  }
  if (given) v = *given;
  else if (sl_exec_term_value(x, valterm, vt, &v) != 0) return -1;
  if (v.kind == CQL_VALUE_UNSET) return 0;
  if (kind == ASSIGN_PREPEND && !is_list)
    return sl_exec_fail(x, CQL_ERR_INVALID, "Invalid operation (%s = x + %s) for non list column %s", c->name, c->name,
                        c->name);
  sl_slice_t *items;
  size_t n;
  if (coll_items(x, &v, (is_map && vt == ty) ? 2 : 1, &items, &n) != 0) return -1;
  if (kind == ASSIGN_SET) {
    w = sl_cellv_push(x->a, out);
    w->col_id = c->id;
    w->tombstone = true;
    w->ts_minus_one = true;
  }
  if (kind == ASSIGN_SUB && v.kind != CQL_VALUE_SET) return 0; /* c = c - null: nothing to remove */
  if (kind == ASSIGN_SUB && is_list) {
    sl_rows_elem_t *el;
    size_t m;
    if (current_elements(x, t, c, pk, ck, &el, &m) != 0) return -1;
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j < n; j++)
        if (items[j].len == el[i].len && (!el[i].len || !memcmp(items[j].ptr, el[i].v, el[i].len))) {
          elem_cell(out, x->a, c, NULL, 0, true, &w);
          w->path = el[i].path;
          w->pathlen = el[i].pathlen;
          break;
        }
    return 0;
  }
  if (is_list) {
    /* appends take increasing times; prepends decreasing negative ones, the first element the smallest */
    int64_t *times = sl_arena_alloc(x->a, (n + 1) * sizeof *times);
    for (size_t i = 0; i < n; i++) times[i] = sl_exec_now_micros(x->e);
    for (size_t i = 0; i < n; i++) {
      elem_cell(out, x->a, c, items[i].ptr, items[i].len, false, &w);
      list_path(x, kind == ASSIGN_PREPEND ? -times[n - 1 - i] : times[i], w);
    }
    return 0;
  }
  size_t step = (is_map && vt == ty) ? 2 : 1;
  for (size_t i = 0; i + step <= n; i += step) {
    bool tomb = kind == ASSIGN_SUB;
    const sl_slice_t *val = step == 2 ? &items[i + 1] : NULL;
    elem_cell(out, x->a, c, val ? val->ptr : NULL, val ? val->len : 0, tomb, &w);
    if (elem_path(x, c, &items[i], w) != 0) return -1;
  }
  return 0;
}
