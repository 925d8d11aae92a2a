/* Unit tests for src/store: the CQL parser, the order-preserving key codec, the catalogue's persisted form, and
 * the row layer on a real RocksDB in a temporary directory (LWW tie-breaks, TTL, tombstones, statics). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>

#include <cmocka.h>

#include "cql/types.h"
#include "store/cql_ast.h"
#include "store/keycodec.h"
#include "store/kv.h"
#include "store/rows.h"
#include "store/schema.h"

static cql_stmt_t *parse_ok(sl_arena_t *a, const char *q) {
  const char *err = NULL;
  cql_stmt_t *s = sl_cql_parse(a, q, strlen(q), &err);
  if (!s) fprintf(stderr, "parse failed: %s: %s\n", q, err);
  assert_non_null(s);
  return s;
}

static void test_parser(void **state) {
  (void)state;
  sl_arena_t a;
  sl_arena_init(&a);
  cql_stmt_t *s = parse_ok(&a, "select * FROM \"Ks\".t WHERE k = 'it''s' AND c >= ? AND c < :hi LIMIT 10;");
  assert_int_equal(s->kind, STMT_SELECT);
  assert_string_equal(s->keyspace, "Ks");
  assert_string_equal(s->table, "t");
  assert_int_equal(s->where.n, 3);
  cql_relation_t *r0 = s->where.items[0];
  assert_int_equal(r0->value->kind, TERM_STRING);
  assert_int_equal(r0->value->len, 4);
  assert_memory_equal(r0->value->text, "it's", 4);
  assert_int_equal(s->nbind, 2);
  cql_relation_t *r2 = s->where.items[2];
  assert_string_equal(r2->value->bind_name, "hi");

  s = parse_ok(&a, "CREATE TABLE IF NOT EXISTS x.y (a int, b text, c map<text, frozen<list<int>>>, s int static, "
                   "PRIMARY KEY ((a), b)) WITH CLUSTERING ORDER BY (b DESC) AND default_time_to_live = 60 "
                   "AND compaction = {'class': 'TimeWindowCompactionStrategy'}");
  assert_int_equal(s->kind, STMT_CREATE_TABLE);
  assert_true(s->if_not_exists);
  assert_int_equal(s->coldefs.n, 4);
  assert_string_equal(((cql_coldef_t *)s->coldefs.items[2])->type, "map<text, frozen<list<int>>>");
  assert_true(((cql_coldef_t *)s->coldefs.items[3])->is_static);
  assert_int_equal(s->clustering_order.n, 1);
  assert_true(s->clustering_desc[0]);
  assert_int_equal(s->options.n, 2);

  s = parse_ok(&a, "INSERT INTO t (a, b, c) VALUES (-1.5e3, 0xCAFE, {'k': [1, 2]}) USING TTL 5 AND TIMESTAMP 7");
  assert_int_equal(s->values.n, 3);
  assert_int_equal(((cql_term_t *)s->values.items[0])->kind, TERM_FLOAT);
  assert_int_equal(((cql_term_t *)s->values.items[0])->len, 6);
  assert_int_equal(((cql_term_t *)s->values.items[1])->kind, TERM_BLOB);
  assert_int_equal(((cql_term_t *)s->values.items[2])->kind, TERM_MAP);
  assert_non_null(s->ttl);
  assert_non_null(s->timestamp);

  s = parse_ok(&a, "INSERT INTO t (id) VALUES (123e4567-e89b-12d3-a456-426614174000) -- comment");
  assert_int_equal(((cql_term_t *)s->values.items[0])->kind, TERM_UUID);
  s = parse_ok(&a, "BEGIN UNLOGGED BATCH INSERT INTO t (a) VALUES (1); UPDATE t SET b = 2 WHERE a = 1; APPLY BATCH");
  assert_int_equal(s->statements.n, 2);
  assert_int_equal(s->batch_type, 1);
  s = parse_ok(&a, "SELECT count(*), writetime(v) AS w, token(k) FROM t WHERE token(k) > 5");
  assert_int_equal(s->selectors.n, 3);

  const char *err = NULL;
  assert_null(sl_cql_parse(&a, "SELECT * FROM", 13, &err));
  assert_non_null(err);
  assert_null(sl_cql_parse(&a, "INSERT INTO t (a) VALUES ('unterminated)", 39, &err));
  assert_null(sl_cql_parse(&a, "SELECT * FROM t extra", 21, &err));
  sl_arena_free(&a);
}

static int cmp_enc(const sl_cql_type_t *t, const void *a, size_t alen, const void *b, size_t blen, bool desc) {
  sl_buf_t x, y;
  sl_buf_init(&x);
  sl_buf_init(&y);
  sl_key_encode(&x, t, a, alen, desc);
  sl_key_encode(&y, t, b, blen, desc);
  size_t n = x.len < y.len ? x.len : y.len;
  int c = memcmp(x.data, y.data, n);
  if (c == 0) c = x.len < y.len ? -1 : x.len > y.len;
  sl_buf_free(&x);
  sl_buf_free(&y);
  return c < 0 ? -1 : c > 0;
}

static void test_keycodec_order(void **state) {
  (void)state;
  sl_cql_type_t ti = {.id = CQL_TYPE_INT}, td = {.id = CQL_TYPE_DOUBLE}, tt = {.id = CQL_TYPE_VARCHAR};
  uint8_t m1[4] = {0xff, 0xff, 0xff, 0xff}, p1[4] = {0, 0, 0, 1}, z[4] = {0};
  assert_int_equal(cmp_enc(&ti, m1, 4, p1, 4, false), -1);
  assert_int_equal(cmp_enc(&ti, z, 4, p1, 4, false), -1);
  assert_int_equal(cmp_enc(&ti, m1, 4, p1, 4, true), 1);
  assert_int_equal(cmp_enc(&ti, NULL, 0, m1, 4, false), -1); /* empty sorts first */
  double vals[] = {-1e300, -2.5, -0.0, 1e-10, 3.0, 1e300};
  for (size_t i = 0; i + 1 < sizeof vals / sizeof vals[0]; i++) {
    uint8_t a[8], b[8];
    uint64_t u;
    memcpy(&u, &vals[i], 8);
    sl_store_be64(a, u);
    memcpy(&u, &vals[i + 1], 8);
    sl_store_be64(b, u);
    assert_int_equal(cmp_enc(&td, a, 8, b, 8, false), -1);
  }
  /* text with embedded zero bytes and prefixes: "a" < "a\0" < "a\0b" < "ab" */
  assert_int_equal(cmp_enc(&tt, "a", 1, "a\0", 2, false), -1);
  assert_int_equal(cmp_enc(&tt, "a\0", 2, "a\0b", 3, false), -1);
  assert_int_equal(cmp_enc(&tt, "a\0b", 3, "ab", 2, false), -1);
  assert_int_equal(cmp_enc(&tt, "a\0b", 3, "ab", 2, true), 1);
  /* decode gives back the value, also for DESC and with following components */
  sl_buf_t b, out;
  sl_buf_init(&b);
  sl_buf_init(&out);
  sl_key_encode(&b, &tt, (const uint8_t *)"x\0y", 3, true);
  sl_key_encode(&b, &td, (const uint8_t *)"\x40\x09\x21\xfb\x54\x44\x2d\x18", 8, false);
  sl_reader_t r;
  sl_reader_init(&r, b.data, b.len);
  size_t vlen;
  assert_int_equal(sl_key_decode(&r, &tt, true, &out, &vlen), 0);
  assert_int_equal(vlen, 3);
  assert_memory_equal(out.data, "x\0y", 3);
  out.len = 0;
  assert_int_equal(sl_key_decode(&r, &td, false, &out, &vlen), 0);
  assert_memory_equal(out.data, "\x40\x09\x21\xfb\x54\x44\x2d\x18", 8);
  assert_int_equal(sl_reader_remaining(&r), 0);
  /* malformed input is an error, never a crash */
  uint8_t junk[] = {0x02, 'a', 0x00, 0x07};
  sl_reader_init(&r, junk, sizeof junk);
  out.len = 0;
  assert_int_equal(sl_key_decode(&r, &tt, false, &out, &vlen), -EINVAL);
  sl_buf_free(&b);
  sl_buf_free(&out);
}

static sl_table_t *make_table(void) {
  sl_table_t *t = calloc(1, sizeof *t);
  t->keyspace = strdup("ks");
  t->name = strdup("t");
  t->comment = strdup("");
  t->id = 7;
  t->ncols = 4;
  t->cols = calloc(4, sizeof *t->cols);
  const char *names[] = {"k", "c", "s", "v"};
  const char *types[] = {"text", "int", "text", "text"};
  sl_col_kind_t kinds[] = {SL_COL_PARTITION_KEY, SL_COL_CLUSTERING, SL_COL_STATIC, SL_COL_REGULAR};
  for (int i = 0; i < 4; i++) {
    t->cols[i].name = strdup(names[i]);
    assert_int_equal(sl_cql_type_parse(types[i], strlen(types[i]), &t->cols[i].type), 0);
    t->cols[i].kind = kinds[i];
    t->cols[i].position = i < 2 ? 0 : -1;
    t->cols[i].id = (uint16_t)(i >= 2 ? i - 1 : 0);
  }
  t->cols[1].desc = true;
  t->next_col_id = 3;
  sl_table_finish(t);
  return t;
}

static void test_schema_roundtrip(void **state) {
  (void)state;
  sl_table_t *t = make_table();
  sl_buf_t b;
  sl_buf_init(&b);
  sl_table_encode(t, &b);
  sl_table_t *u;
  assert_int_equal(sl_table_decode(b.data, b.len, &u), 0);
  assert_int_equal(u->ncols, 4);
  assert_int_equal(u->npk, 1);
  assert_int_equal(u->nck, 1);
  assert_true(u->cols[1].desc);
  assert_string_equal(u->cols[3].name, "v");
  /* every truncation is rejected cleanly */
  for (size_t n = 0; n < b.len; n++) {
    sl_table_t *v = NULL;
    assert_int_not_equal(sl_table_decode(b.data, n, &v), 0);
    assert_null(v);
  }
  sl_table_free(u);
  sl_table_free(t);
  sl_buf_free(&b);
}

typedef struct {
  int n;
  char v[8][32];
  char s[8][32];
  int32_t c[8];
} collected_t;

static int collect(void *arg, const sl_row_t *row) {
  collected_t *c = arg;
  if (c->n >= 8) return 1;
  if (row->vals[3].ptr) snprintf(c->v[c->n], 32, "%.*s", (int)row->vals[3].len, (const char *)row->vals[3].ptr);
  else snprintf(c->v[c->n], 32, "-");
  if (row->vals[2].ptr) snprintf(c->s[c->n], 32, "%.*s", (int)row->vals[2].len, (const char *)row->vals[2].ptr);
  else snprintf(c->s[c->n], 32, "-");
  c->c[c->n] = row->vals[1].ptr ? (int32_t)sl_load_be32(row->vals[1].ptr) : -1;
  c->n++;
  return 0;
}

static collected_t scan_all(sl_kv_t *kv, sl_table_t *t, int64_t now) {
  collected_t c = {0};
  sl_arena_t a;
  sl_arena_init(&a);
  sl_buf_t lo, hi;
  sl_buf_init(&lo);
  sl_buf_init(&hi);
  sl_rows_table_prefix(&lo, t->id);
  sl_rows_table_prefix(&hi, t->id + 1);
  assert_int_equal(sl_rows_scan(kv, t, lo.data, lo.len, hi.data, hi.len, now, &a, collect, &c), 0);
  sl_buf_free(&lo);
  sl_buf_free(&hi);
  sl_arena_free(&a);
  return c;
}

static int write_v(sl_kv_t *kv, sl_table_t *t, int32_t ck, const char *v, int64_t ts, int32_t ttl, int64_t now) {
  sl_slice_t pk = {(const uint8_t *)"p", 1};
  uint8_t cb[4];
  sl_store_be32(cb, (uint32_t)ck);
  sl_slice_t c = {cb, 4};
  sl_cell_write_t cell = {.col_id = 2, .v = (const uint8_t *)v, .len = v ? strlen(v) : 0, .tombstone = v == NULL};
  sl_kv_batch_t *b = sl_kv_batch_new();
  int rc = sl_rows_write(kv, b, t, &pk, &c, true, &cell, 1, ts, ttl, now);
  if (rc == 0) rc = sl_kv_batch_commit(kv, b);
  sl_kv_batch_free(b);
  return rc;
}

static void test_rows_lww_ttl_tombstones(void **state) {
  (void)state;
  char dir[] = "/tmp/sluice-test-rows-XXXXXX";
  assert_non_null(mkdtemp(dir));
  sl_kv_t *kv;
  char err[256];
  assert_int_equal(sl_kv_open_policy(dir, false, &sl_rows_policy, &kv, err, sizeof err), 0);
  sl_table_t *t = make_table();
  int64_t now = 1000000;
  assert_int_equal(write_v(kv, t, 1, "b", 100, 0, now), 0);
  assert_int_equal(write_v(kv, t, 1, "a", 50, 0, now), 0);   /* older: loses */
  assert_int_equal(write_v(kv, t, 1, "a", 100, 0, now), 0);  /* same ts, smaller value: loses */
  assert_int_equal(write_v(kv, t, 2, "x", 100, 10, now), 0); /* expiring */
  assert_int_equal(write_v(kv, t, 3, "y", 100, 0, now), 0);
  collected_t c = scan_all(kv, t, now);
  assert_int_equal(c.n, 3);
  /* clustering column is DESC: 3, 2, 1 */
  assert_int_equal(c.c[0], 3);
  assert_int_equal(c.c[2], 1);
  assert_string_equal(c.v[2], "b");
  c = scan_all(kv, t, now + 10); /* the TTL cell and its row marker expired */
  assert_int_equal(c.n, 2);
  /* same timestamp: a tombstone beats a live cell; the row marker keeps the row */
  assert_int_equal(write_v(kv, t, 3, NULL, 100, 0, now), 0);
  c = scan_all(kv, t, now + 10);
  assert_int_equal(c.n, 2);
  assert_string_equal(c.v[0], "-");
  /* a row tombstone hides older cells, not newer ones */
  sl_slice_t pk = {(const uint8_t *)"p", 1};
  uint8_t cb[4];
  sl_store_be32(cb, 1);
  sl_slice_t ck = {cb, 4};
  sl_kv_batch_t *b = sl_kv_batch_new();
  sl_rows_delete(b, t, &pk, &ck, 150, now);
  assert_int_equal(sl_kv_batch_commit(kv, b), 0);
  sl_kv_batch_free(b);
  c = scan_all(kv, t, now + 10);
  assert_int_equal(c.n, 1);
  assert_int_equal(write_v(kv, t, 1, "new", 200, 0, now), 0);
  c = scan_all(kv, t, now + 10);
  assert_int_equal(c.n, 2);
  /* a static cell shows on every row of its partition */
  sl_cell_write_t sc = {.col_id = 1, .v = (const uint8_t *)"S", .len = 1};
  b = sl_kv_batch_new();
  assert_int_equal(sl_rows_write(kv, b, t, &pk, NULL, false, &sc, 1, 300, 0, now), 0);
  assert_int_equal(sl_kv_batch_commit(kv, b), 0);
  sl_kv_batch_free(b);
  c = scan_all(kv, t, now + 10);
  assert_int_equal(c.n, 2);
  assert_string_equal(c.s[0], "S");
  assert_string_equal(c.s[1], "S");
  /* a partition tombstone hides everything older */
  b = sl_kv_batch_new();
  sl_rows_delete(b, t, &pk, NULL, 1000, now);
  assert_int_equal(sl_kv_batch_commit(kv, b), 0);
  sl_kv_batch_free(b);
  c = scan_all(kv, t, now + 10);
  assert_int_equal(c.n, 0);
  sl_table_free(t);
  sl_kv_close(kv);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static size_t raw_count(sl_kv_t *kv, uint32_t table_id) {
  sl_buf_t lo, hi;
  sl_buf_init(&lo);
  sl_buf_init(&hi);
  sl_rows_table_prefix(&lo, table_id);
  sl_rows_table_prefix(&hi, table_id);
  sl_kv_prefix_successor(&hi);
  size_t n = 0;
  sl_kv_iter_t *it = sl_kv_iter_new(kv, lo.data, lo.len, hi.data, hi.len);
  for (; sl_kv_iter_valid(it); sl_kv_iter_next(it)) n++;
  sl_kv_iter_free(it);
  sl_buf_free(&lo);
  sl_buf_free(&hi);
  return n;
}

/* Expired cells are purged by compaction once older than gc_grace_seconds; last-write-wins survives compaction. */
static void test_rows_compaction_purge(void **state) {
  (void)state;
  char dir[] = "/tmp/sluice-test-purge-XXXXXX";
  assert_non_null(mkdtemp(dir));
  sl_kv_t *kv;
  char err[256];
  assert_int_equal(sl_kv_open_policy(dir, false, &sl_rows_policy, &kv, err, sizeof err), 0);
  sl_table_t *t = make_table();
  int64_t now = (int64_t)time(NULL) - 100;
  sl_rows_set_gc_grace(t->id, 50);
  assert_int_equal(write_v(kv, t, 1, "b", 100, 0, now), 0);
  assert_int_equal(write_v(kv, t, 1, "a", 50, 0, now), 0);  /* older: loses */
  assert_int_equal(write_v(kv, t, 2, "x", 100, 10, now), 0); /* expired 90 s ago: past gc_grace 50 */
  assert_int_equal(write_v(kv, t, 3, "y", 100, 80, now), 0); /* expired 20 s ago: within gc_grace */
  assert_int_equal(raw_count(kv, t->id), 3);                 /* one packed record (marker + cell) per row */
  sl_kv_compact(kv);
  assert_int_equal(raw_count(kv, t->id), 2);
  collected_t c = scan_all(kv, t, now + 100);
  assert_int_equal(c.n, 1);
  assert_string_equal(c.v[0], "b");
  sl_rows_set_gc_grace(t->id, 0);
  sl_kv_compact(kv);
  assert_int_equal(raw_count(kv, t->id), 1);
  sl_table_free(t);
  sl_kv_close(kv);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* Versions of one packed row merge cell by cell: the INSERT's expiring marker and an UPDATE's cell (no marker)
 * keep their own timestamps and TTLs, before and after compaction folds the versions into one. */
static void test_rows_packed_merge(void **state) {
  (void)state;
  char dir[] = "/tmp/sluice-test-packed-XXXXXX";
  assert_non_null(mkdtemp(dir));
  sl_kv_t *kv;
  char err[256];
  assert_int_equal(sl_kv_open_policy(dir, false, &sl_rows_policy, &kv, err, sizeof err), 0);
  sl_table_t *t = make_table();
  int64_t now = 1000000;
  assert_int_equal(write_v(kv, t, 1, "a", 100, 10, now), 0); /* INSERT ... USING TTL 10: marker + v expire */
  sl_slice_t pk = {(const uint8_t *)"p", 1};
  uint8_t cb[4];
  sl_store_be32(cb, 1);
  sl_slice_t ck = {cb, 4};
  sl_cell_write_t upd = {.col_id = 2, .v = (const uint8_t *)"b", .len = 1};
  sl_cell_write_t old = {.col_id = 2, .v = (const uint8_t *)"z", .len = 1};
  for (int pass = 0; pass < 2; pass++) {
    sl_kv_batch_t *b = sl_kv_batch_new();
    assert_int_equal(sl_rows_write(kv, b, t, &pk, &ck, false, &upd, 1, 200, 0, now), 0); /* UPDATE, no TTL */
    assert_int_equal(sl_rows_write(kv, b, t, &pk, &ck, false, &old, 1, 150, 0, now), 0); /* older: loses */
    assert_int_equal(sl_kv_batch_commit(kv, b), 0);
    sl_kv_batch_free(b);
    collected_t c = scan_all(kv, t, now + 20); /* the marker expired; the updated cell keeps the row */
    assert_int_equal(c.n, 1);
    assert_string_equal(c.v[0], "b");
    c = scan_all(kv, t, now);
    assert_string_equal(c.v[0], "b");
    sl_kv_compact(kv);
    assert_int_equal(raw_count(kv, t->id), 1);
  }
  sl_table_free(t);
  sl_kv_close(kv);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rows_packed_merge),
      cmocka_unit_test(test_parser),
      cmocka_unit_test(test_keycodec_order),
      cmocka_unit_test(test_schema_roundtrip),
      cmocka_unit_test(test_rows_lww_ttl_tombstones),
      cmocka_unit_test(test_rows_compaction_purge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
