/* Tables on RocksDB (see rows.h). */
#include "store/rows.h"

#include <errno.h>
#include <string.h>

#include "cql/murmur3.h"
#include "store/keycodec.h"

enum { CELL_TOMBSTONE = 0x01, CELL_EXPIRING = 0x02 };

int64_t sl_rows_token(const sl_table_t *t, const sl_slice_t *pk) {
  if (t->npk == 1) return sl_cql_murmur3_token(pk[0].ptr, pk[0].len);
  sl_buf_t b;
  sl_buf_init(&b);
  for (size_t i = 0; i < t->npk; i++) {
    sl_buf_put_be16(&b, (uint16_t)pk[i].len);
    sl_buf_put(&b, pk[i].ptr, pk[i].len);
    sl_buf_put_u8(&b, 0);
  }
  int64_t tok = sl_cql_murmur3_token(b.data, b.len);
  sl_buf_free(&b);
  return tok;
}

void sl_rows_table_prefix(sl_buf_t *out, uint32_t table_id) {
  sl_buf_put_u8(out, SL_ROWS_DATA_PREFIX);
  sl_buf_put_be32(out, table_id);
}

void sl_rows_partition_prefix(sl_buf_t *out, const sl_table_t *t, const sl_slice_t *pk) {
  sl_rows_table_prefix(out, t->id);
  sl_key_put_token(out, sl_rows_token(t, pk));
  for (size_t i = 0; i < t->npk; i++) sl_key_encode(out, t->cols[i].type, pk[i].ptr, pk[i].len, false);
}

void sl_rows_put_clustering(sl_buf_t *out, const sl_table_t *t, const sl_slice_t *ck, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const sl_column_t *c = &t->cols[t->npk + i];
    sl_key_encode(out, c->type, ck[i].ptr, ck[i].len, c->desc);
  }
}

typedef struct {
  uint8_t flags;
  int64_t ts;
  int32_t ttl;
  int64_t expiry; /* expiring: expiry second; tombstone: local deletion time */
  const uint8_t *v;
  size_t len;
} cell_t;

static bool cell_parse(const uint8_t *p, size_t len, cell_t *c) {
  sl_reader_t r;
  sl_reader_init(&r, p, len);
  c->flags = sl_read_u8(&r);
  c->ts = (int64_t)sl_read_be64(&r);
  c->ttl = 0;
  c->expiry = 0;
  if (c->flags & (CELL_EXPIRING | CELL_TOMBSTONE)) {
    c->ttl = (int32_t)sl_read_be32(&r);
    c->expiry = (int64_t)sl_read_be64(&r);
  }
  if (r.err) return false;
  c->v = r.data + r.pos;
  c->len = sl_reader_remaining(&r);
  return true;
}

static void cell_encode(sl_buf_t *out, const cell_t *c) {
  sl_buf_put_u8(out, c->flags);
  sl_buf_put_be64(out, (uint64_t)c->ts);
  if (c->flags & (CELL_EXPIRING | CELL_TOMBSTONE)) {
    sl_buf_put_be32(out, (uint32_t)c->ttl);
    sl_buf_put_be64(out, (uint64_t)c->expiry);
  }
  sl_buf_put(out, c->v, c->len);
}

/* Does a win over b? Cassandra's reconciliation (CASSANDRA-14592): higher timestamp; then tombstone over live;
 * two tombstones by deletion time; expiring over non-expiring; two expiring by expiry; then larger value. */
static bool cell_wins(const cell_t *a, const cell_t *b) {
  if (a->ts != b->ts) return a->ts > b->ts;
  bool ad = a->flags & CELL_TOMBSTONE, bd = b->flags & CELL_TOMBSTONE;
  if (ad != bd) return ad;
  if (ad) return a->expiry > b->expiry;
  bool ae = a->flags & CELL_EXPIRING, be = b->flags & CELL_EXPIRING;
  if (ae != be) return ae;
  if (ae && a->expiry != b->expiry) return a->expiry > b->expiry;
  size_t n = a->len < b->len ? a->len : b->len;
  int c = n ? memcmp(a->v, b->v, n) : 0;
  if (c != 0) return c > 0;
  return a->len > b->len;
}

static int put_cell(sl_kv_t *kv, sl_kv_batch_t *b, sl_buf_t *key, size_t prefix_len, uint16_t col, const cell_t *c) {
  key->len = prefix_len;
  sl_buf_put_be16(key, col);
  sl_buf_t old;
  sl_buf_init(&old);
  int rc = sl_kv_get(kv, key->data, key->len, &old);
  if (rc < 0) {
    sl_buf_free(&old);
    return rc;
  }
  cell_t oc;
  bool write = rc == 0 || !cell_parse(old.data, old.len, &oc) || cell_wins(c, &oc);
  sl_buf_free(&old);
  if (!write) return 0;
  sl_buf_t val;
  sl_buf_init(&val);
  cell_encode(&val, c);
  sl_kv_batch_put(b, key->data, key->len, val.data, val.len);
  sl_buf_free(&val);
  return 0;
}

int sl_rows_write(sl_kv_t *kv, sl_kv_batch_t *b, const sl_table_t *t, const sl_slice_t *pk, const sl_slice_t *ck,
                  bool row_marker, const sl_cell_write_t *cells, size_t n, int64_t ts, int32_t ttl, int64_t now_s) {
  sl_buf_t key;
  sl_buf_init(&key);
  sl_rows_partition_prefix(&key, t, pk);
  sl_buf_put_u8(&key, ck ? SL_ROWS_KIND_ROW : SL_ROWS_KIND_STATIC);
  if (ck) sl_rows_put_clustering(&key, t, ck, t->nck);
  size_t prefix = key.len;
  int rc = 0;
  cell_t c = {.ts = ts};
  if (ttl > 0) {
    c.flags = CELL_EXPIRING;
    c.ttl = ttl;
    c.expiry = now_s + ttl;
  }
  if (row_marker && ck) rc = put_cell(kv, b, &key, prefix, SL_ROWS_MARKER_COL, &c);
  for (size_t i = 0; i < n && rc == 0; i++) {
    cell_t cc = c;
    if (cells[i].tombstone) {
      cc.flags = CELL_TOMBSTONE;
      cc.ttl = 0;
      cc.expiry = now_s;
      cc.v = NULL;
      cc.len = 0;
    } else {
      cc.v = cells[i].v;
      cc.len = cells[i].len;
    }
    rc = put_cell(kv, b, &key, prefix, cells[i].col_id, &cc);
  }
  sl_buf_free(&key);
  return rc;
}

void sl_rows_delete(sl_kv_batch_t *b, const sl_table_t *t, const sl_slice_t *pk, const sl_slice_t *ck, int64_t ts,
                    int64_t now_s) {
  sl_buf_t key, val;
  sl_buf_init(&key);
  sl_buf_init(&val);
  sl_rows_partition_prefix(&key, t, pk);
  sl_buf_put_u8(&key, ck ? SL_ROWS_KIND_ROW : SL_ROWS_KIND_PARTITION);
  if (ck) sl_rows_put_clustering(&key, t, ck, t->nck);
  sl_buf_put_be16(&key, SL_ROWS_TOMBSTONE_COL);
  /* A newer tombstone simply replaces an older one at the same key; an older one never hides newer cells
   * because tombstones are applied by timestamp when reading. Keep the larger timestamp: callers in one
   * executor thread write in order, and the reader takes max(ts) anyway only if we keep it, so compare here. */
  cell_t c = {.flags = CELL_TOMBSTONE, .ts = ts, .expiry = now_s};
  cell_encode(&val, &c);
  sl_kv_batch_put(b, key.data, key.len, val.data, val.len);
  sl_buf_free(&key);
  sl_buf_free(&val);
}

/* ---- scanning ---- */

typedef struct {
  const sl_table_t *t;
  sl_arena_t *a;
  int64_t now_s;
  sl_row_cb cb;
  void *arg;
  size_t ncols;
  /* current partition */
  sl_buf_t part;            /* partition prefix (up to, excluding, kind) */
  int64_t part_tombstone;   /* INT64_MIN: none */
  sl_slice_t *pk;           /* decoded partition key values (arena) */
  sl_slice_t *statics;      /* static column values, or NULL */
  int64_t *static_ts;
  int32_t *static_ttl;
  bool static_live, emitted_row;
  /* current row */
  sl_buf_t row;             /* row prefix (excluding column id) */
  int row_kind;
  sl_slice_t *vals;
  int64_t *ts;
  int32_t *ttl;
  int64_t row_tombstone, marker_ts;
  bool have_row, row_live;
} scan_t;

static int col_index_by_id(const sl_table_t *t, uint16_t id) {
  for (size_t i = t->npk + t->nck; i < t->ncols; i++)
    if (t->cols[i].id == id) return (int)i;
  return -1;
}

static void row_reset(scan_t *s) {
  s->vals = sl_arena_alloc(s->a, s->ncols * sizeof *s->vals);
  s->ts = sl_arena_alloc(s->a, s->ncols * sizeof *s->ts);
  s->ttl = sl_arena_alloc(s->a, s->ncols * sizeof *s->ttl);
  for (size_t i = 0; i < s->ncols; i++) s->ts[i] = INT64_MIN;
  s->row_tombstone = INT64_MIN;
  s->marker_ts = INT64_MIN;
  s->row_live = false;
  s->have_row = false;
}

static int emit(scan_t *s, const sl_slice_t *ck_vals) {
  sl_row_t r = {.vals = s->vals, .ts = s->ts, .ttl = s->ttl};
  for (size_t i = 0; i < s->t->npk; i++) r.vals[i] = s->pk[i];
  if (ck_vals)
    for (size_t i = 0; i < s->t->nck; i++) r.vals[s->t->npk + i] = ck_vals[i];
  if (s->statics) {
    for (size_t i = 0; i < s->ncols; i++) {
      if (s->t->cols[i].kind == SL_COL_STATIC) {
        r.vals[i] = s->statics[i];
        r.ts[i] = s->static_ts[i];
        r.ttl[i] = s->static_ttl[i];
      }
    }
  }
  r.key = sl_arena_memdup(s->a, s->row.data, s->row.len);
  r.keylen = s->row.len;
  return s->cb(s->arg, &r);
}

/* Finishes the current row: a clustering row is emitted if live; a static row is kept for the partition. */
static int flush_row(scan_t *s) {
  if (!s->have_row) return 0;
  s->have_row = false;
  if (s->row_kind == SL_ROWS_KIND_STATIC) {
    s->statics = s->vals;
    s->static_ts = s->ts;
    s->static_ttl = s->ttl;
    s->static_live = s->row_live;
    return 0;
  }
  if (s->row_kind != SL_ROWS_KIND_ROW || !s->row_live) return 0;
  /* decode clustering values from the row prefix */
  sl_reader_t r;
  sl_reader_init(&r, s->row.data + s->part.len + 1, s->row.len - s->part.len - 1);
  sl_slice_t *ck = sl_arena_alloc(s->a, (s->t->nck ? s->t->nck : 1) * sizeof *ck);
  sl_buf_t tmp;
  sl_buf_init(&tmp);
  for (size_t i = 0; i < s->t->nck; i++) {
    const sl_column_t *c = &s->t->cols[s->t->npk + i];
    size_t vlen;
    tmp.len = 0;
    if (sl_key_decode(&r, c->type, c->desc, &tmp, &vlen) != 0) {
      sl_buf_free(&tmp);
      return -EINVAL;
    }
    ck[i].ptr = sl_arena_memdup(s->a, tmp.data, vlen);
    ck[i].len = vlen;
  }
  sl_buf_free(&tmp);
  s->emitted_row = true;
  return emit(s, ck);
}

/* The partition ends: a partition with live statics but no live rows still yields one row (Cassandra does). */
static int flush_partition(scan_t *s) {
  int rc = flush_row(s);
  if (rc != 0) return rc;
  if (s->pk && s->statics && s->static_live && !s->emitted_row) {
    s->vals = sl_arena_alloc(s->a, s->ncols * sizeof *s->vals);
    s->ts = sl_arena_alloc(s->a, s->ncols * sizeof *s->ts);
    s->ttl = sl_arena_alloc(s->a, s->ncols * sizeof *s->ttl);
    for (size_t i = 0; i < s->ncols; i++) s->ts[i] = INT64_MIN;
    s->row.len = s->part.len;
    rc = emit(s, NULL);
  }
  s->pk = NULL;
  s->statics = NULL;
  s->emitted_row = false;
  return rc;
}

static int start_partition(scan_t *s, const uint8_t *key, size_t klen, size_t *part_len) {
  sl_reader_t r;
  sl_reader_init(&r, key, klen);
  if (!sl_read_bytes(&r, 1 + 4 + 8)) return -EINVAL;
  s->pk = sl_arena_alloc(s->a, s->t->npk * sizeof *s->pk);
  sl_buf_t tmp;
  sl_buf_init(&tmp);
  for (size_t i = 0; i < s->t->npk; i++) {
    size_t vlen;
    tmp.len = 0;
    if (sl_key_decode(&r, s->t->cols[i].type, false, &tmp, &vlen) != 0) {
      sl_buf_free(&tmp);
      return -EINVAL;
    }
    s->pk[i].ptr = sl_arena_memdup(s->a, tmp.data, vlen);
    s->pk[i].len = vlen;
  }
  sl_buf_free(&tmp);
  *part_len = r.pos;
  s->part.len = 0;
  sl_buf_put(&s->part, key, r.pos);
  s->part_tombstone = INT64_MIN;
  s->statics = NULL;
  s->emitted_row = false;
  return 0;
}

int sl_rows_scan(sl_kv_t *kv, const sl_table_t *t, const uint8_t *lower, size_t llen, const uint8_t *upper,
                 size_t ulen, int64_t now_s, sl_arena_t *a, sl_row_cb cb, void *arg) {
  scan_t s = {.t = t, .a = a, .now_s = now_s, .cb = cb, .arg = arg, .ncols = t->ncols};
  sl_buf_init(&s.part);
  sl_buf_init(&s.row);
  sl_kv_iter_t *it = sl_kv_iter_new(kv, lower, llen, upper, ulen);
  int rc = 0;
  for (; sl_kv_iter_valid(it); sl_kv_iter_next(it)) {
    size_t klen, vlen;
    const uint8_t *key = sl_kv_iter_key(it, &klen);
    const uint8_t *val = sl_kv_iter_value(it, &vlen);
    if (klen < 1 + 4 + 8 + 2 + 1) continue;
    /* same partition? */
    if (!s.pk || klen < s.part.len + 3 || memcmp(key, s.part.data, s.part.len) != 0) {
      if ((rc = flush_partition(&s)) != 0) break;
      size_t plen;
      if ((rc = start_partition(&s, key, klen, &plen)) != 0) break;
    }
    /* same row? */
    size_t rowlen = klen - 2;
    if (!s.have_row || rowlen != s.row.len || memcmp(key, s.row.data, rowlen) != 0) {
      if ((rc = flush_row(&s)) != 0) break;
      s.row.len = 0;
      sl_buf_put(&s.row, key, rowlen);
      s.row_kind = key[s.part.len];
      row_reset(&s);
      s.have_row = true;
    }
    uint16_t col = sl_load_be16(key + klen - 2);
    cell_t c;
    if (!cell_parse(val, vlen, &c)) continue;
    if (s.row_kind == SL_ROWS_KIND_PARTITION) {
      if (col == SL_ROWS_TOMBSTONE_COL && c.ts > s.part_tombstone) s.part_tombstone = c.ts;
      continue;
    }
    if (col == SL_ROWS_TOMBSTONE_COL) {
      /* row tombstones sort last in their row: cells seen so far that it shadows die now */
      s.row_tombstone = c.ts;
      if (s.marker_ts <= c.ts) s.marker_ts = INT64_MIN;
      s.row_live = s.marker_ts != INT64_MIN;
      for (size_t i = 0; i < s.ncols; i++) {
        if (s.ts[i] != INT64_MIN && s.ts[i] <= c.ts) {
          s.vals[i].ptr = NULL;
          s.vals[i].len = 0;
          s.ts[i] = INT64_MIN;
          s.ttl[i] = 0;
        }
        if (s.ts[i] != INT64_MIN) s.row_live = true;
      }
      continue;
    }
    if (c.ts <= s.part_tombstone) continue;
    if (c.flags & CELL_TOMBSTONE) continue;
    if ((c.flags & CELL_EXPIRING) && c.expiry <= now_s) continue;
    if (col == SL_ROWS_MARKER_COL) {
      s.marker_ts = c.ts;
      s.row_live = true;
      continue;
    }
    int ci = col_index_by_id(t, col);
    if (ci < 0) continue; /* a dropped column */
    s.vals[ci].ptr = sl_arena_memdup(a, c.v, c.len ? c.len : 1);
    s.vals[ci].len = c.len;
    s.ts[ci] = c.ts;
    s.ttl[ci] = (c.flags & CELL_EXPIRING) ? (int32_t)(c.expiry - now_s) : 0;
    s.row_live = true;
  }
  if (rc == 0) rc = sl_kv_iter_status(it);
  if (rc == 0) rc = flush_partition(&s);
  if (rc == 1) rc = 0;
  sl_kv_iter_free(it);
  sl_buf_free(&s.part);
  sl_buf_free(&s.row);
  return rc;
}
