/* Tables on RocksDB (see rows.h). */
#include "store/rows.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cql/murmur3.h"
#include "store/keycodec.h"

enum { CELL_TOMBSTONE = 0x01, CELL_EXPIRING = 0x02, CELL_COUNTER = 0x04 };

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

/* ---- packed rows: { column id u16 | cell length u32 | cell } sorted by column id ---- */

#define PATH_FLAG 0x8000

typedef struct {
  uint16_t col;
  bool has_path;
  const uint8_t *path;
  uint16_t pathlen;
  const uint8_t *p; /* the encoded cell */
  uint32_t len;
} packed_ent_t;

/* Reads the next entry; false at the end or on a malformed record. */
static bool packed_next(sl_reader_t *r, packed_ent_t *e) {
  if (sl_reader_remaining(r) < 6) return false;
  uint16_t col = sl_read_be16(r);
  e->col = col & (uint16_t)~PATH_FLAG;
  e->has_path = (col & PATH_FLAG) != 0;
  e->path = NULL;
  e->pathlen = 0;
  if (e->has_path) {
    e->pathlen = sl_read_be16(r);
    e->path = sl_read_bytes(r, e->pathlen);
  }
  e->len = sl_read_be32(r);
  e->p = sl_read_bytes(r, e->len);
  return !r->err;
}

/* Entry order: column, then the column's own cell, then elements by path bytes. */
static int ent_cmp(const packed_ent_t *a, const packed_ent_t *b) {
  if (a->col != b->col) return a->col < b->col ? -1 : 1;
  if (a->has_path != b->has_path) return a->has_path ? 1 : -1;
  size_t n = a->pathlen < b->pathlen ? a->pathlen : b->pathlen;
  int c = n ? memcmp(a->path, b->path, n) : 0;
  if (c) return c;
  return a->pathlen < b->pathlen ? -1 : a->pathlen > b->pathlen ? 1 : 0;
}

static void packed_head(sl_buf_t *out, uint16_t col, const uint8_t *path, size_t pathlen, bool has_path) {
  if (has_path) {
    sl_buf_put_be16(out, (uint16_t)(col | PATH_FLAG));
    sl_buf_put_be16(out, (uint16_t)pathlen);
    sl_buf_put(out, path, pathlen);
  } else {
    sl_buf_put_be16(out, col);
  }
}

static void packed_put_path(sl_buf_t *out, uint16_t col, const uint8_t *path, size_t pathlen, bool has_path,
                            const cell_t *c) {
  size_t hdr = 1 + 8 + ((c->flags & (CELL_EXPIRING | CELL_TOMBSTONE)) ? 12 : 0);
  packed_head(out, col, path, pathlen, has_path);
  sl_buf_put_be32(out, (uint32_t)(hdr + c->len));
  cell_encode(out, c);
}

static void packed_put(sl_buf_t *out, uint16_t col, const cell_t *c) { packed_put_path(out, col, NULL, 0, false, c); }

bool sl_rows_is_multicell(const sl_cql_type_t *t) {
  return t && !t->frozen && (t->id == CQL_TYPE_LIST || t->id == CQL_TYPE_SET || t->id == CQL_TYPE_MAP);
}

void sl_rows_list_path(uint8_t out[16], int64_t time, const uint8_t node[8]) {
  sl_store_be64(out, (uint64_t)time ^ 0x8000000000000000ULL);
  memcpy(out + 8, node, 8);
}

static bool is_packed_key(const uint8_t *key, size_t klen) {
  return klen >= 1 + 4 + 8 + 2 + 1 && key[0] == SL_ROWS_DATA_PREFIX && sl_load_be16(key + klen - 2) == SL_ROWS_PACKED_COL;
}

static bool ent_wins(const packed_ent_t *a, const packed_ent_t *b) {
  cell_t ca, cb;
  if (!cell_parse(b->p, b->len, &cb)) return true;
  if (!cell_parse(a->p, a->len, &ca)) return false;
  return cell_wins(&ca, &cb);
}

/* Versions of a counter cell (inputs from `min` on at the entry of `best`): the deltas after the newest tombstone
 * add up into one counter cell with the newest of their write times; with none, the winner (`best`) stays. */
static void merge_counter(sl_buf_t *out, const packed_ent_t *cur, const bool *live, int min, int nin,
                          const packed_ent_t *best) {
  int64_t floor = INT64_MIN, sum = 0, newest = INT64_MIN;
  for (int i = min; i < nin; i++) {
    cell_t c;
    if (live[i] && ent_cmp(&cur[i], best) == 0 && cell_parse(cur[i].p, cur[i].len, &c) && (c.flags & CELL_TOMBSTONE) &&
        c.ts > floor)
      floor = c.ts;
  }
  bool any = false;
  for (int i = min; i < nin; i++) {
    cell_t c;
    if (!live[i] || ent_cmp(&cur[i], best) != 0 || !cell_parse(cur[i].p, cur[i].len, &c)) continue;
    if (!(c.flags & CELL_COUNTER) || (c.flags & CELL_TOMBSTONE) || c.ts <= floor || c.len != 8) continue;
    sum = (int64_t)((uint64_t)sum + sl_load_be64(c.v)); /* wraps as Cassandra's long arithmetic */
    if (c.ts > newest) newest = c.ts;
    any = true;
  }
  if (!any) {
    packed_head(out, best->col, best->path, best->pathlen, best->has_path);
    sl_buf_put_be32(out, best->len);
    sl_buf_put(out, best->p, best->len);
    return;
  }
  uint8_t v[8];
  sl_store_be64(v, (uint64_t)sum);
  cell_t c = {.flags = CELL_COUNTER, .ts = newest, .v = v, .len = 8};
  packed_put_path(out, best->col, best->path, best->pathlen, best->has_path, &c);
}

/* Merges versions of a packed row (existing first, then operands in write order): per column the winning cell.
 * Inputs are each sorted by column, so this is an n-way merge; a malformed input is skipped. */
static bool policy_merge(const uint8_t *key, size_t klen, const uint8_t *existing, size_t elen,
                         const char *const *ops, const size_t *oplens, int n, sl_buf_t *out) {
  if (!is_packed_key(key, klen)) return false;
  size_t total = existing ? elen : 0;
  for (int i = 0; i < n; i++) total += oplens[i];
  sl_buf_reserve(out, total ? total : 1);
  if (n == 1 && !existing) { /* one version (e.g. a row still in the memtable): it is the result */
    sl_buf_put(out, ops[0], oplens[0]);
    return true;
  }
  int nin = n + (existing ? 1 : 0);
  sl_reader_t rs_small[8];
  packed_ent_t cur_small[8];
  bool live_small[8];
  sl_reader_t *rs = rs_small;
  packed_ent_t *cur = cur_small;
  bool *live = live_small;
  if (nin > 8) {
    rs = malloc((size_t)nin * sizeof *rs);
    cur = malloc((size_t)nin * sizeof *cur);
    live = malloc((size_t)nin * sizeof *live);
    if (!rs || !cur || !live) abort();
  }
  for (int i = 0; i < nin; i++) {
    if (existing && i == 0) sl_reader_init(&rs[i], existing, elen);
    else {
      int o = i - (existing ? 1 : 0);
      sl_reader_init(&rs[i], ops[o], oplens[o]);
    }
    live[i] = packed_next(&rs[i], &cur[i]);
  }
  for (;;) {
    int min = -1;
    for (int i = 0; i < nin; i++)
      if (live[i] && (min < 0 || ent_cmp(&cur[i], &cur[min]) < 0)) min = i;
    if (min < 0) break;
    packed_ent_t best = cur[min];
    /* inputs are in write order: a later version must beat the best so far (same rule as single cells) */
    bool counter = false;
    for (int i = min; i < nin; i++) {
      if (!live[i] || ent_cmp(&cur[i], &best) != 0) continue;
      if (cur[i].len && (cur[i].p[0] & CELL_COUNTER)) counter = true; /* a cell starts with its flags */
      if (i > min && ent_wins(&cur[i], &best)) best = cur[i];
    }
    if (counter) {
      merge_counter(out, cur, live, min, nin, &best);
    } else {
      packed_head(out, best.col, best.path, best.pathlen, best.has_path);
      sl_buf_put_be32(out, best.len);
      sl_buf_put(out, best.p, best.len);
    }
    packed_ent_t done = best;
    for (int i = 0; i < nin; i++)
      while (live[i] && ent_cmp(&cur[i], &done) == 0) live[i] = packed_next(&rs[i], &cur[i]);
  }
  if (rs != rs_small) {
    free(rs);
    free(cur);
    free(live);
  }
  return true;
}

static bool policy_wins(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
static bool policy_wins(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  cell_t ca, cb;
  if (!cell_parse(b, blen, &cb)) return true;
  if (!cell_parse(a, alen, &ca)) return false;
  return cell_wins(&ca, &cb);
}

/* gc_grace_seconds per table id, read by compaction threads */
static pthread_mutex_t grace_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
  uint32_t id;
  int64_t grace;
} *graces;
static size_t ngraces;

void sl_rows_set_gc_grace(uint32_t table_id, int64_t seconds) {
  pthread_mutex_lock(&grace_mu);
  size_t i = 0;
  while (i < ngraces && graces[i].id != table_id) i++;
  if (i == ngraces) {
    void *n = realloc(graces, (ngraces + 1) * sizeof *graces);
    if (!n) abort();
    graces = n;
    ngraces++;
  }
  graces[i].id = table_id;
  graces[i].grace = seconds;
  pthread_mutex_unlock(&grace_mu);
}

static int64_t gc_grace_of(uint32_t table_id) {
  int64_t g = 864000; /* Cassandra's default when the table is unknown here */
  pthread_mutex_lock(&grace_mu);
  for (size_t i = 0; i < ngraces; i++)
    if (graces[i].id == table_id) g = graces[i].grace;
  pthread_mutex_unlock(&grace_mu);
  return g;
}

/* Expired cells and cell tombstones older than gc_grace_seconds go. Row, range and partition tombstones stay:
 * they shadow other keys, which dropping them would bring back. */
static bool policy_purge(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, int64_t now_s) {
  if (klen < 1 + 4 + 8 + 2 + 1 || key[0] != SL_ROWS_DATA_PREFIX) return false;
  uint16_t col = sl_load_be16(key + klen - 2);
  if (col == SL_ROWS_TOMBSTONE_COL || col == SL_ROWS_RANGE_COL) return false;
  if (col == SL_ROWS_PACKED_COL) { /* a packed row goes when every cell in it may go */
    int64_t grace = gc_grace_of(sl_load_be32(key + 1));
    sl_reader_t r;
    sl_reader_init(&r, val, vlen);
    packed_ent_t e;
    bool any = false;
    while (packed_next(&r, &e)) {
      cell_t c;
      if (!cell_parse(e.p, e.len, &c) || !(c.flags & (CELL_EXPIRING | CELL_TOMBSTONE)) || c.expiry + grace > now_s)
        return false;
      any = true;
    }
    return any && sl_reader_remaining(&r) == 0;
  }
  cell_t c;
  if (!cell_parse(val, vlen, &c)) return false;
  if (!(c.flags & (CELL_EXPIRING | CELL_TOMBSTONE))) return false;
  return c.expiry + gc_grace_of(sl_load_be32(key + 1)) <= now_s;
}

/* 'D' | table id | token: the rows of one partition are usually written in sequence (a device's readings). */
const sl_kv_policy_t sl_rows_policy = {
    .wins = policy_wins, .purge = policy_purge, .merge = policy_merge, .insert_hint_prefix = 1 + 4 + 8};

static int write_cmp(const sl_cell_write_t *a, const sl_cell_write_t *b) {
  packed_ent_t x = {.col = a->col_id, .has_path = a->path != NULL, .path = a->path, .pathlen = (uint16_t)a->pathlen};
  packed_ent_t y = {.col = b->col_id, .has_path = b->path != NULL, .path = b->path, .pathlen = (uint16_t)b->pathlen};
  return ent_cmp(&x, &y);
}

int sl_rows_write(sl_kv_t *kv, sl_kv_batch_t *b, const sl_table_t *t, const sl_slice_t *pk, const sl_slice_t *ck,
                  bool row_marker, const sl_cell_write_t *cells, size_t n, int64_t ts, int32_t ttl, int64_t now_s) {
  (void)kv;
  sl_buf_t hkey, hval;
  sl_buf_init(&hkey);
  sl_buf_init(&hval);
  sl_rows_partition_prefix(&hkey, t, pk);
  sl_buf_put_u8(&hkey, ck ? SL_ROWS_KIND_ROW : SL_ROWS_KIND_STATIC);
  if (ck) sl_rows_put_clustering(&hkey, t, ck, t->nck);
  sl_buf_put_be16(&hkey, SL_ROWS_PACKED_COL);
  cell_t c = {.ts = ts};
  if (ttl > 0) {
    c.flags = CELL_EXPIRING;
    c.ttl = ttl;
    c.expiry = now_s + ttl;
  }
  if (row_marker && ck) packed_put(&hval, SL_ROWS_MARKER_COL, &c);
  /* cells sorted by (column id, path) (a handful: insertion order over indexes); on a repeat the later one */
  size_t idx_small[64];
  size_t *idx = n <= 64 ? idx_small : malloc(n * sizeof *idx);
  if (!idx) abort();
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    size_t j = m;
    while (j > 0 && write_cmp(&cells[idx[j - 1]], &cells[i]) > 0) j--;
    if (j > 0 && write_cmp(&cells[idx[j - 1]], &cells[i]) == 0) {
      idx[j - 1] = i; /* same column twice in one write: the later assignment */
      continue;
    }
    memmove(idx + j + 1, idx + j, (m - j) * sizeof *idx);
    idx[j] = i;
    m++;
  }
  for (size_t k = 0; k < m; k++) {
    const sl_cell_write_t *w = &cells[idx[k]];
    cell_t cc = c;
    if (w->tombstone) {
      cc.flags = CELL_TOMBSTONE;
      cc.ttl = 0;
      cc.expiry = now_s;
      cc.v = NULL;
      cc.len = 0;
    } else {
      cc.v = w->v;
      cc.len = w->len;
      if (w->counter) cc.flags |= CELL_COUNTER;
    }
    if (w->ts_minus_one) cc.ts = ts - 1;
    packed_put_path(&hval, w->col_id, w->path, w->pathlen, w->path != NULL, &cc);
  }
  if (idx != idx_small) free(idx);
  if (hval.len) sl_kv_batch_merge(b, hkey.data, hkey.len, hval.data, hval.len);
  sl_buf_free(&hkey);
  sl_buf_free(&hval);
  return 0;
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
  sl_kv_batch_merge(b, key.data, key.len, val.data, val.len); /* the newest tombstone wins */
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
  int64_t row_rt;           /* newest range tombstone covering the current row (INT64_MIN: none) */
  sl_buf_t tmp;             /* scratch for decoding key components */
  /* range tombstones of the current partition */
  sl_rows_range_t *rts;
  size_t nrts, caprts;
  const uint8_t *lower;     /* the scan's lower bound (to tell whether a partition's header was skipped) */
  size_t llen;
  sl_kv_t *kv;
  /* multi-cell (non-frozen collection) columns: per column, the row's live elements and collection tombstone */
  const bool *mc;           /* NULL when the table has none */
  sl_rows_elem_t **elems, **static_elems;
  size_t *nelems, *capelems, *static_nelems;
  int64_t *ctomb;
  int16_t idmap[256]; /* column id (< 256) -> index of a regular or static column, -1: none */
} scan_t;

static int col_index_by_id(const sl_table_t *t, uint16_t id) {
  for (size_t i = t->npk + t->nck; i < t->ncols; i++)
    if (t->cols[i].id == id) return (int)i;
  return -1;
}

static void idmap_init(scan_t *s) {
  for (size_t i = 0; i < 256; i++) s->idmap[i] = -1;
  for (size_t i = s->t->ncols; i-- > s->t->npk + s->t->nck;) /* backwards: the first of a repeated id wins */
    if (s->t->cols[i].id < 256 && i <= INT16_MAX) s->idmap[s->t->cols[i].id] = (int16_t)i;
}

/* col_index_by_id through the scan's map */
static inline int scan_col(const scan_t *s, uint16_t id) {
  return id < 256 ? s->idmap[id] : col_index_by_id(s->t, id);
}

/* Is the clustering encoding rk (a full row's) inside the range? */
static bool range_covers(const sl_rows_range_t *r, const uint8_t *rk, size_t rklen) {
  if (r->lolen) {
    size_t n = rklen < r->lolen ? rklen : r->lolen;
    int c = memcmp(rk, r->lo, n);
    if (c == 0 && rklen < r->lolen) c = -1;
    if (c < 0 || (c == 0 && !r->lo_incl)) return false;
  }
  if (r->hilen) {
    size_t n = rklen < r->hilen ? rklen : r->hilen;
    int c = memcmp(rk, r->hi, n);
    if (c == 0 && rklen < r->hilen) c = -1;
    if (c > 0 || (c == 0 && !r->hi_incl)) return false;
  }
  return true;
}

static void row_alloc(scan_t *s) {
  s->vals = sl_arena_alloc(s->a, s->ncols * sizeof *s->vals);
  s->ts = sl_arena_alloc(s->a, s->ncols * sizeof *s->ts);
  s->ttl = sl_arena_alloc(s->a, s->ncols * sizeof *s->ttl);
  for (size_t i = 0; i < s->ncols; i++) s->ts[i] = INT64_MIN;
  if (s->mc) {
    s->elems = sl_arena_alloc(s->a, s->ncols * sizeof *s->elems);
    s->nelems = sl_arena_alloc(s->a, s->ncols * sizeof *s->nelems);
    s->capelems = sl_arena_alloc(s->a, s->ncols * sizeof *s->capelems);
    s->ctomb = sl_arena_alloc(s->a, s->ncols * sizeof *s->ctomb);
    for (size_t i = 0; i < s->ncols; i++) s->ctomb[i] = INT64_MIN;
  }
}

static void row_reset(scan_t *s) {
  row_alloc(s);
  s->row_tombstone = INT64_MIN;
  s->marker_ts = INT64_MIN;
  s->row_live = false;
  s->have_row = false;
  s->row_rt = INT64_MIN;
}

static int emit(scan_t *s, const sl_slice_t *ck_vals) {
  sl_row_t r = {.vals = s->vals, .ts = s->ts, .ttl = s->ttl, .elems = s->elems, .nelems = s->nelems};
  for (size_t i = 0; i < s->t->npk; i++) r.vals[i] = s->pk[i];
  if (ck_vals)
    for (size_t i = 0; i < s->t->nck; i++) r.vals[s->t->npk + i] = ck_vals[i];
  if (s->statics) {
    for (size_t i = 0; i < s->ncols; i++) {
      if (s->t->cols[i].kind == SL_COL_STATIC) {
        r.vals[i] = s->statics[i];
        r.ts[i] = s->static_ts[i];
        r.ttl[i] = s->static_ttl[i];
        if (s->mc) {
          r.elems[i] = s->static_elems[i];
          r.nelems[i] = s->static_nelems[i];
        }
      }
    }
  }
  r.key = sl_arena_memdup(s->a, s->row.data, s->row.len);
  r.keylen = s->row.len;
  return s->cb(s->arg, &r);
}

/* Serializes the live elements of the row's multi-cell columns as their collection values (null when none). */
static int finish_collections(scan_t *s) {
  sl_buf_t b, tmp;
  sl_buf_init(&b);
  sl_buf_init(&tmp);
  int rc = 0;
  for (size_t ci = 0; ci < s->ncols && rc == 0; ci++) {
    if (!s->mc[ci]) continue;
    size_t n = s->nelems[ci];
    if (n == 0) {
      if (s->vals[ci].ptr && s->ts[ci] <= s->ctomb[ci]) { /* a whole value written before the tombstone */
        s->vals[ci].ptr = NULL;
        s->vals[ci].len = 0;
        s->ts[ci] = INT64_MIN;
      }
      continue;
    }
    const sl_cql_type_t *ty = s->t->cols[ci].type;
    b.len = 0;
    sl_buf_put_be32(&b, (uint32_t)n);
    for (size_t k = 0; k < n; k++) {
      const sl_rows_elem_t *el = &s->elems[ci][k];
      if (ty->id != CQL_TYPE_LIST) {
        sl_reader_t r;
        sl_reader_init(&r, el->path, el->pathlen);
        size_t vlen;
        tmp.len = 0;
        if (sl_key_decode(&r, ty->sub[0], false, &tmp, &vlen) != 0) {
          rc = -EINVAL;
          break;
        }
        sl_buf_put_be32(&b, (uint32_t)vlen);
        sl_buf_put(&b, tmp.data, vlen);
      }
      if (ty->id != CQL_TYPE_SET) {
        sl_buf_put_be32(&b, (uint32_t)el->len);
        sl_buf_put(&b, el->v, el->len);
      }
    }
    s->vals[ci].ptr = sl_arena_memdup(s->a, b.data, b.len);
    s->vals[ci].len = b.len;
    s->ttl[ci] = 0;
  }
  sl_buf_free(&b);
  sl_buf_free(&tmp);
  return rc;
}

/* Finishes the current row: a clustering row is emitted if live; a static row is kept for the partition. */
static int flush_row(scan_t *s) {
  if (!s->have_row) return 0;
  s->have_row = false;
  if (s->mc) {
    int rc = finish_collections(s);
    if (rc != 0) return rc;
  }
  if (s->row_kind == SL_ROWS_KIND_STATIC) {
    s->statics = s->vals;
    s->static_ts = s->ts;
    s->static_ttl = s->ttl;
    s->static_live = s->row_live;
    s->static_elems = s->elems;
    s->static_nelems = s->nelems;
    return 0;
  }
  if (s->row_kind != SL_ROWS_KIND_ROW || !s->row_live) return 0;
  /* decode clustering values from the row prefix */
  sl_reader_t r;
  sl_reader_init(&r, s->row.data + s->part.len + 1, s->row.len - s->part.len - 1);
  sl_slice_t *ck = sl_arena_alloc(s->a, (s->t->nck ? s->t->nck : 1) * sizeof *ck);
  sl_buf_t *tmp = &s->tmp;
  for (size_t i = 0; i < s->t->nck; i++) {
    const sl_column_t *c = &s->t->cols[s->t->npk + i];
    size_t vlen;
    tmp->len = 0;
    if (sl_key_decode(&r, c->type, c->desc, tmp, &vlen) != 0) return -EINVAL;
    ck[i].ptr = sl_arena_memdup(s->a, tmp->data, vlen);
    ck[i].len = vlen;
  }
  s->emitted_row = true;
  return emit(s, ck);
}

/* The partition ends: a partition with live statics but no live rows still yields one row (Cassandra does). */
static int flush_partition(scan_t *s) {
  int rc = flush_row(s);
  if (rc != 0) return rc;
  if (s->pk && s->statics && s->static_live && !s->emitted_row) {
    row_alloc(s);
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
  s->nrts = 0;
  return 0;
}

static int scan_one(scan_t *s, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);

/* A scan that starts inside a partition (a clustering slice, a page resumed mid-partition) has skipped the
 * partition's header: its partition and range tombstones and its static row. Read them first. */
static int load_header(scan_t *s) {
  sl_buf_t lo, hi;
  sl_buf_init(&lo);
  sl_buf_init(&hi);
  sl_buf_put(&lo, s->part.data, s->part.len);
  sl_buf_put(&hi, s->part.data, s->part.len);
  sl_buf_put_u8(&lo, SL_ROWS_KIND_PARTITION);
  sl_buf_put_u8(&hi, SL_ROWS_KIND_ROW);
  sl_kv_iter_t *it = sl_kv_iter_new(s->kv, lo.data, lo.len, hi.data, hi.len);
  int rc = 0;
  for (; sl_kv_iter_valid(it) && rc == 0; sl_kv_iter_next(it)) {
    size_t kl, vl;
    const uint8_t *k = sl_kv_iter_key(it, &kl);
    const uint8_t *v = sl_kv_iter_value(it, &vl);
    rc = scan_one(s, k, kl, v, vl);
  }
  if (rc == 0) rc = sl_kv_iter_status(it);
  if (rc == 0) rc = flush_row(s);
  sl_kv_iter_free(it);
  sl_buf_free(&lo);
  sl_buf_free(&hi);
  return rc;
}

/* A live element of a multi-cell column (the path and value already live in the arena). */
static void apply_element(scan_t *s, uint16_t col, const packed_ent_t *e, const cell_t *c) {
  int ci = scan_col(s, col);
  if (ci < 0 || !s->mc || !s->mc[ci]) return;
  if (c->ts <= s->part_tombstone || c->ts <= s->row_rt || c->ts <= s->row_tombstone || c->ts <= s->ctomb[ci]) return;
  if (c->flags & CELL_TOMBSTONE) return;
  if ((c->flags & CELL_EXPIRING) && c->expiry <= s->now_s) return;
  if (s->nelems[ci] == s->capelems[ci]) {
    size_t cap = s->capelems[ci] ? s->capelems[ci] * 2 : 8;
    sl_rows_elem_t *n = sl_arena_alloc(s->a, cap * sizeof *n);
    if (s->nelems[ci]) memcpy(n, s->elems[ci], s->nelems[ci] * sizeof *n);
    s->elems[ci] = n;
    s->capelems[ci] = cap;
  }
  s->elems[ci][s->nelems[ci]++] = (sl_rows_elem_t){e->path, e->pathlen, c->v, c->len, c->ts};
  if (c->ts > s->ts[ci]) s->ts[ci] = c->ts;
  s->row_live = true;
}

/* One live-or-dead cell of the current row. owned: c->v already lives in the arena. */
static void apply_cell(scan_t *s, uint16_t col, const cell_t *c, bool owned) {
  if (c->ts <= s->part_tombstone || c->ts <= s->row_rt || c->ts <= s->row_tombstone) return;
  if ((c->flags & CELL_TOMBSTONE) && s->mc) { /* a collection tombstone */
    int ci = scan_col(s, col);
    if (ci >= 0 && s->mc[ci] && c->ts > s->ctomb[ci]) s->ctomb[ci] = c->ts;
  }
  if (c->flags & CELL_TOMBSTONE) return;
  if ((c->flags & CELL_EXPIRING) && c->expiry <= s->now_s) return;
  if (col == SL_ROWS_MARKER_COL) {
    if (c->ts > s->marker_ts) s->marker_ts = c->ts;
    s->row_live = true;
    return;
  }
  int ci = scan_col(s, col);
  if (ci < 0) return; /* a dropped column */
  if (s->ts[ci] != INT64_MIN && s->ts[ci] > c->ts) return; /* an unpacked cell and a packed one: the newer */
  s->vals[ci].ptr = owned ? c->v : sl_arena_memdup(s->a, c->v, c->len ? c->len : 1);
  if (!s->vals[ci].ptr) s->vals[ci].ptr = (const uint8_t *)""; /* a present empty value is not null */
  s->vals[ci].len = c->len;
  s->ts[ci] = c->ts;
  s->ttl[ci] = (c->flags & CELL_EXPIRING) ? (int32_t)(c->expiry - s->now_s) : 0;
  s->row_live = true;
}

static int scan_one(scan_t *s, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen) {
  int rc;
  if (klen < 1 + 4 + 8 + 2 + 1) return 0;
  /* same partition? */
  if (!s->pk || klen < s->part.len + 3 || memcmp(key, s->part.data, s->part.len) != 0) {
    if ((rc = flush_partition(s)) != 0) return rc;
    size_t plen;
    if ((rc = start_partition(s, key, klen, &plen)) != 0) return rc;
    if (key[plen] != SL_ROWS_KIND_PARTITION && s->llen > plen && memcmp(s->lower, key, plen) == 0 &&
        (rc = load_header(s)) != 0)
      return rc;
  }
  /* same row? */
  size_t rowlen = klen - 2;
  if (!s->have_row || rowlen != s->row.len || memcmp(key, s->row.data, rowlen) != 0) {
    if ((rc = flush_row(s)) != 0) return rc;
    s->row.len = 0;
    sl_buf_put(&s->row, key, rowlen);
    s->row_kind = key[s->part.len];
    row_reset(s);
    s->have_row = true;
    if (s->row_kind == SL_ROWS_KIND_ROW)
      for (size_t i = 0; i < s->nrts; i++)
        if (s->rts[i].ts > s->row_rt &&
            range_covers(&s->rts[i], key + s->part.len + 1, rowlen - s->part.len - 1))
          s->row_rt = s->rts[i].ts;
  }
  uint16_t col = sl_load_be16(key + klen - 2);
  if (col == SL_ROWS_PACKED_COL && s->row_kind != SL_ROWS_KIND_PARTITION) {
    /* one copy of the record into the arena; the row's values point into it */
    const uint8_t *own = sl_arena_memdup(s->a, val, vlen ? vlen : 1);
    sl_reader_t r;
    sl_reader_init(&r, own, vlen);
    packed_ent_t e;
    while (packed_next(&r, &e)) {
      cell_t c;
      if (!cell_parse(e.p, e.len, &c)) continue;
      if (e.has_path) apply_element(s, e.col, &e, &c);
      else apply_cell(s, e.col, &c, true);
    }
    return 0;
  }
  cell_t c;
  if (!cell_parse(val, vlen, &c)) return 0;
  if (s->row_kind == SL_ROWS_KIND_PARTITION) {
    if (col == SL_ROWS_TOMBSTONE_COL && c.ts > s->part_tombstone) s->part_tombstone = c.ts;
    if (col == SL_ROWS_RANGE_COL) {
      sl_rows_range_t r;
      if (sl_rows_range_decode(c.v, c.len, &r) != 0) return 0;
      r.ts = c.ts;
      if (s->nrts == s->caprts) {
        size_t cap = s->caprts ? s->caprts * 2 : 4;
        sl_rows_range_t *n = sl_arena_alloc(s->a, cap * sizeof *n);
        if (s->nrts) memcpy(n, s->rts, s->nrts * sizeof *n);
        s->rts = n;
        s->caprts = cap;
      }
      r.lo = sl_arena_memdup(s->a, r.lo, r.lolen ? r.lolen : 1);
      r.hi = sl_arena_memdup(s->a, r.hi, r.hilen ? r.hilen : 1);
      s->rts[s->nrts++] = r;
    }
    return 0;
  }
  if (col == SL_ROWS_TOMBSTONE_COL) {
    /* row tombstones sort last in their row: cells seen so far that it shadows die now */
    s->row_tombstone = c.ts;
    if (s->marker_ts <= c.ts) s->marker_ts = INT64_MIN;
    s->row_live = s->marker_ts != INT64_MIN;
    for (size_t i = 0; i < s->ncols; i++) {
      if (s->mc && s->mc[i] && s->nelems[i]) { /* elements the row tombstone shadows */
        size_t k = 0;
        int64_t newest = INT64_MIN;
        for (size_t j = 0; j < s->nelems[i]; j++)
          if (s->elems[i][j].ts > c.ts) {
            s->elems[i][k++] = s->elems[i][j];
            if (s->elems[i][j].ts > newest) newest = s->elems[i][j].ts;
          }
        s->nelems[i] = k;
        if (k) {
          s->ts[i] = newest;
          s->row_live = true;
          continue;
        }
      }
      if (s->ts[i] != INT64_MIN && s->ts[i] <= c.ts) {
        s->vals[i].ptr = NULL;
        s->vals[i].len = 0;
        s->ts[i] = INT64_MIN;
        s->ttl[i] = 0;
      }
      if (s->ts[i] != INT64_MIN) s->row_live = true;
    }
    return 0;
  }
  apply_cell(s, col, &c, false);
  return 0;
}

int sl_rows_scan(sl_kv_t *kv, const sl_table_t *t, const uint8_t *lower, size_t llen, const uint8_t *upper,
                 size_t ulen, int64_t now_s, sl_arena_t *a, sl_row_cb cb, void *arg) {
  scan_t s = {.t = t, .a = a, .now_s = now_s, .cb = cb, .arg = arg, .ncols = t->ncols, .lower = lower, .llen = llen,
              .kv = kv};
  sl_buf_init(&s.part);
  sl_buf_init(&s.row);
  sl_buf_init(&s.tmp);
  bool *mc = NULL;
  for (size_t i = t->npk + t->nck; i < t->ncols; i++)
    if (sl_rows_is_multicell(t->cols[i].type)) {
      if (!mc) mc = sl_arena_alloc(a, t->ncols * sizeof *mc);
      mc[i] = true;
    }
  s.mc = mc;
  idmap_init(&s);
  sl_kv_iter_t *it = sl_kv_iter_new(kv, lower, llen, upper, ulen);
  int rc = 0;
  for (; sl_kv_iter_valid(it) && rc == 0; sl_kv_iter_next(it)) {
    size_t klen, vlen;
    const uint8_t *key = sl_kv_iter_key(it, &klen);
    const uint8_t *val = sl_kv_iter_value(it, &vlen);
    rc = scan_one(&s, key, klen, val, vlen);
  }
  if (rc == 0) rc = sl_kv_iter_status(it);
  if (rc == 0) rc = flush_partition(&s);
  if (rc == 1) rc = 0;
  sl_kv_iter_free(it);
  sl_buf_free(&s.part);
  sl_buf_free(&s.row);
  sl_buf_free(&s.tmp);
  return rc;
}

/* ---- range tombstones ---- */

int sl_rows_range_decode(const uint8_t *p, size_t len, sl_rows_range_t *r) {
  sl_reader_t rd;
  sl_reader_init(&rd, p, len);
  uint8_t flags = sl_read_u8(&rd);
  r->lolen = sl_read_be16(&rd);
  r->lo = sl_read_bytes(&rd, r->lolen);
  r->hilen = sl_read_be16(&rd);
  r->hi = sl_read_bytes(&rd, r->hilen);
  if (rd.err) return -EINVAL;
  r->lo_incl = flags & 1;
  r->hi_incl = (flags & 2) != 0;
  return 0;
}

void sl_rows_delete_range(sl_kv_batch_t *b, const sl_table_t *t, const sl_slice_t *pk, const sl_rows_range_t *r,
                          int64_t ts, int64_t now_s) {
  sl_buf_t payload, key, val;
  sl_buf_init(&payload);
  sl_buf_init(&key);
  sl_buf_init(&val);
  sl_buf_put_u8(&payload, (uint8_t)((r->lo_incl ? 1 : 0) | (r->hi_incl ? 2 : 0)));
  sl_buf_put_be16(&payload, (uint16_t)r->lolen);
  sl_buf_put(&payload, r->lo, r->lolen);
  sl_buf_put_be16(&payload, (uint16_t)r->hilen);
  sl_buf_put(&payload, r->hi, r->hilen);
  /* one record per distinct range: a repeated delete of the same range replaces it */
  uint64_t h[2];
  sl_cql_murmur3_128(payload.data, payload.len, 0, h);
  sl_rows_partition_prefix(&key, t, pk);
  sl_buf_put_u8(&key, SL_ROWS_KIND_PARTITION);
  sl_buf_put_u8(&key, 0x01);
  sl_buf_put_be64(&key, h[0]);
  sl_buf_put_be16(&key, SL_ROWS_RANGE_COL);
  cell_t c = {.flags = CELL_TOMBSTONE, .ts = ts, .expiry = now_s, .v = payload.data, .len = payload.len};
  cell_encode(&val, &c);
  sl_kv_batch_merge(b, key.data, key.len, val.data, val.len);
  sl_buf_free(&payload);
  sl_buf_free(&key);
  sl_buf_free(&val);
}
