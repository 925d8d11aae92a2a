/* The client's RESULT decoder (spec §4.2.5): type options, column metadata, rows, and the public accessors.
 *
 * Every count read from the wire is bounded by the bytes left before anything is allocated: a column spec needs at
 * least 4 bytes (two empty [string]s would be 4, plus a 2-byte option id), a cell at least its 4-byte length. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cql/client_internal.h"
#include "cql/proto.h"

static char *slice_dup(sl_slice_t s) {
  char *p = malloc(s.len + 1);
  if (!p) abort();
  if (s.len) memcpy(p, s.ptr, s.len);
  p[s.len] = 0;
  return p;
}

sl_cql_type_t *sl_cql_read_option(sl_reader_t *r, int depth) {
  if (depth > 32) {
    r->err = true;
    return NULL;
  }
  uint16_t id = cql_read_short(r);
  if (r->err) return NULL;
  sl_cql_type_t *t = sl_cql_type_new(id);
  size_t n = 0;
  switch (id) {
    case CQL_TYPE_CUSTOM: {
      sl_slice_t cls = cql_read_string(r);
      if (r->err) break;
      static const char dur[] = "org.apache.cassandra.db.marshal.DurationType";
      if (cls.len == sizeof dur - 1 && !memcmp(cls.ptr, dur, cls.len))
        t->id = CQL_TYPE_DURATION;
      else
        t->custom = slice_dup(cls);
      break;
    }
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET: n = 1; break;
    case CQL_TYPE_MAP: n = 2; break;
    case CQL_TYPE_TUPLE:
      n = cql_read_short(r);
      if (n > sl_reader_remaining(r) / 2) r->err = true;
      break;
    case CQL_TYPE_UDT: {
      sl_slice_t ks = cql_read_string(r), name = cql_read_string(r);
      n = cql_read_short(r);
      if (r->err || n > sl_reader_remaining(r) / 4) {
        r->err = true;
        break;
      }
      t->custom = malloc(ks.len + name.len + 2);
      if (!t->custom) abort();
      snprintf(t->custom, ks.len + name.len + 2, "%.*s.%.*s", (int)ks.len, (const char *)ks.ptr, (int)name.len,
               (const char *)name.ptr);
      break;
    }
    default:
      if (id > CQL_TYPE_DURATION) r->err = true;
      break;
  }
  if (!r->err && n) {
    t->sub = calloc(n, sizeof *t->sub);
    if (!t->sub) abort();
    for (size_t i = 0; i < n && !r->err; i++) {
      if (id == CQL_TYPE_UDT) (void)cql_read_string(r); /* field name */
      t->sub[i] = sl_cql_read_option(r, depth + 1);
      if (t->sub[i]) t->nsub = (uint16_t)(i + 1);
    }
  }
  if (r->err) {
    sl_cql_type_free(t);
    return NULL;
  }
  return t;
}

int sl_cql_read_metadata(sl_reader_t *r, sl_cql_result_t *out, bool with_pk, uint16_t **pk, size_t *npk) {
  int32_t flags = cql_read_int(r);
  int32_t ncols = cql_read_int(r);
  if (r->err || ncols < 0 || (size_t)ncols > sl_reader_remaining(r) / 2) return -EPROTO;
  if (with_pk) {
    int32_t n = cql_read_int(r);
    if (r->err || n < 0 || (size_t)n > sl_reader_remaining(r) / 2) return -EPROTO;
    *pk = n ? calloc((size_t)n, sizeof **pk) : NULL;
    if (n && !*pk) abort();
    for (int32_t i = 0; i < n; i++) (*pk)[i] = cql_read_short(r);
    *npk = (size_t)n;
  }
  if (flags & CQL_RFLAG_HAS_MORE_PAGES) {
    bool null;
    out->paging_state = cql_read_bytes(r, &null);
    out->has_more = !null;
  }
  if (flags & CQL_RFLAG_NO_METADATA) return r->err ? -EPROTO : 0;
  bool global = flags & CQL_RFLAG_GLOBAL_TABLES_SPEC;
  if (global) {
    sl_slice_t ks = cql_read_string(r), tb = cql_read_string(r);
    if (r->err) return -EPROTO;
    out->ks = slice_dup(ks);
    out->table = slice_dup(tb);
  }
  out->names = calloc((size_t)ncols + 1, sizeof *out->names);
  out->types = calloc((size_t)ncols + 1, sizeof *out->types);
  if (!out->names || !out->types) abort();
  for (int32_t i = 0; i < ncols; i++) {
    if (!global) {
      sl_slice_t ks = cql_read_string(r), tb = cql_read_string(r);
      if (r->err) return -EPROTO;
      if (!out->ks) {
        out->ks = slice_dup(ks);
        out->table = slice_dup(tb);
      }
    }
    sl_slice_t name = cql_read_string(r);
    if (r->err) return -EPROTO;
    out->names[i] = slice_dup(name);
    out->ncols = (size_t)i + 1;
    out->types[i] = sl_cql_read_option(r, 0);
    if (!out->types[i]) return -EPROTO;
  }
  return r->err ? -EPROTO : 0;
}

void sl_cql_result_clear(sl_cql_result_t *r) {
  for (size_t i = 0; i < r->ncols; i++) {
    free(r->names[i]);
    sl_cql_type_free(r->types[i]);
  }
  free(r->names);
  free(r->types);
  free(r->cells);
  free(r->ks);
  free(r->table);
  free(r->keyspace);
  memset(r, 0, sizeof *r);
}

static void copy_slice(char *dst, size_t cap, sl_slice_t s) {
  size_t n = s.len < cap - 1 ? s.len : cap - 1;
  if (n) memcpy(dst, s.ptr, n);
  dst[n] = 0;
}

int sl_cql_result_decode(const uint8_t *body, size_t len, int version, sl_cql_result_t *out, char *err,
                         size_t errlen) {
  (void)version;
  memset(out, 0, sizeof *out);
  sl_reader_t r;
  sl_reader_init(&r, body, len);
  out->kind = cql_read_int(&r);
  if (r.err) goto bad;
  switch (out->kind) {
    case CQL_RESULT_VOID: return 0;
    case CQL_RESULT_SET_KEYSPACE: {
      sl_slice_t ks = cql_read_string(&r);
      if (r.err) goto bad;
      out->keyspace = slice_dup(ks);
      return 0;
    }
    case CQL_RESULT_SCHEMA_CHANGE: {
      sl_slice_t ct = cql_read_string(&r), tg = cql_read_string(&r), ks = cql_read_string(&r);
      if (r.err) goto bad;
      copy_slice(out->change_type, sizeof out->change_type, ct);
      copy_slice(out->target, sizeof out->target, tg);
      out->keyspace = slice_dup(ks);
      if (!cql_slice_eq(tg, "KEYSPACE")) {
        sl_slice_t obj = cql_read_string(&r);
        if (!r.err) copy_slice(out->object, sizeof out->object, obj);
      }
      return 0;
    }
    case CQL_RESULT_ROWS: {
      if (sl_cql_read_metadata(&r, out, false, NULL, NULL) != 0) goto bad;
      int32_t nrows = cql_read_int(&r);
      if (r.err || nrows < 0) goto bad;
      size_t ncells = (size_t)nrows * out->ncols;
      if (out->ncols && (size_t)nrows > sl_reader_remaining(&r) / 4 / out->ncols) goto bad;
      out->nrows = (size_t)nrows;
      out->cells = calloc(ncells ? ncells : 1, sizeof *out->cells);
      if (!out->cells) abort();
      for (size_t i = 0; i < ncells; i++) {
        bool null;
        out->cells[i] = cql_read_bytes(&r, &null);
        if (null) out->cells[i].ptr = NULL;
        else if (!out->cells[i].ptr) out->cells[i].ptr = (const uint8_t *)""; /* empty but not null */
      }
      if (r.err) goto bad;
      return 0;
    }
    default: snprintf(err, errlen, "unexpected RESULT kind %d", out->kind); return -EPROTO;
  }
bad:
  snprintf(err, errlen, "malformed RESULT body (%zu bytes)", len);
  sl_cql_result_clear(out);
  return -EPROTO;
}

int sl_cql_result_column_index(const sl_cql_result_t *r, const char *name) {
  for (size_t i = 0; i < r->ncols; i++)
    if (!strcmp(r->names[i], name)) return (int)i;
  return -1;
}

size_t sl_cql_result_row_count(const sl_cql_result_t *r) { return r ? r->nrows : 0; }
size_t sl_cql_result_column_count(const sl_cql_result_t *r) { return r ? r->ncols : 0; }
const char *sl_cql_result_column_name(const sl_cql_result_t *r, size_t col) {
  return r && col < r->ncols ? r->names[col] : NULL;
}
const sl_cql_type_t *sl_cql_result_column_type(const sl_cql_result_t *r, size_t col) {
  return r && col < r->ncols ? r->types[col] : NULL;
}
sl_slice_t sl_cql_result_cell(const sl_cql_result_t *r, size_t row, size_t col) {
  sl_slice_t none = {NULL, 0};
  if (!r || row >= r->nrows || col >= r->ncols) return none;
  return r->cells[row * r->ncols + col];
}
bool sl_cql_result_has_more_pages(const sl_cql_result_t *r) { return r && r->has_more; }
sl_slice_t sl_cql_result_paging_state(const sl_cql_result_t *r) {
  sl_slice_t none = {NULL, 0};
  return r && r->has_more ? r->paging_state : none;
}
