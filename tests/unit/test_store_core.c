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

/* varint / decimal keys sort by numeric value, ASC and DESC, and decode to the minimal / normalized form */
static void test_keycodec_numeric(void **state) {
  (void)state;
  sl_cql_type_t tv = {.id = CQL_TYPE_VARINT}, tdec = {.id = CQL_TYPE_DECIMAL};
  /* ascending values as two's-complement bytes, some not minimal */
  static const struct {
    uint8_t b[12];
    size_t n;
  } vi[] = {
      {{0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10},  /* -2^79 */
      {{0xff, 0x7f}, 2},                       /* -129 */
      {{0xff, 0xff, 0x80}, 3},                 /* -128, not minimal */
      {{0xff}, 1},                             /* -1 */
      {{0x00}, 1},                             /* 0 */
      {{0x01}, 1},                             /* 1 */
      {{0x7f}, 1},                             /* 127 */
      {{0x00, 0x00, 0x80}, 3},                 /* 128, not minimal */
      {{0x01, 0x00}, 2},                       /* 256 */
      {{0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10}, /* 2^72 */
  };
  size_t nv = sizeof vi / sizeof vi[0];
  for (size_t i = 0; i + 1 < nv; i++) {
    assert_int_equal(cmp_enc(&tv, vi[i].b, vi[i].n, vi[i + 1].b, vi[i + 1].n, false), -1);
    assert_int_equal(cmp_enc(&tv, vi[i].b, vi[i].n, vi[i + 1].b, vi[i + 1].n, true), 1);
    assert_true(sl_value_compare(&tv, vi[i].b, vi[i].n, vi[i + 1].b, vi[i + 1].n) < 0);
  }
  sl_buf_t b, out;
  sl_buf_init(&b);
  sl_buf_init(&out);
  size_t vlen;
  sl_reader_t r;
  for (int desc = 0; desc < 2; desc++) {
    b.len = 0;
    sl_key_encode(&b, &tv, vi[2].b, vi[2].n, desc);
    sl_key_encode(&b, &tv, vi[7].b, vi[7].n, desc);
    sl_reader_init(&r, b.data, b.len);
    out.len = 0;
    assert_int_equal(sl_key_decode(&r, &tv, desc, &out, &vlen), 0);
    assert_int_equal(vlen, 1);
    assert_int_equal(out.data[0], 0x80); /* -128 minimal */
    out.len = 0;
    assert_int_equal(sl_key_decode(&r, &tv, desc, &out, &vlen), 0);
    assert_int_equal(vlen, 2);
    assert_memory_equal(out.data, "\x00\x80", 2);
    assert_int_equal(sl_reader_remaining(&r), 0);
  }
  /* decimals: scale (be32) + unscaled varint, ascending by value */
  static const struct {
    uint8_t b[16];
    size_t n;
  } de[] = {
      {{0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0}, 12}, /* -2^87 */
      {{0, 0, 0, 1, 0xf6}, 5},                       /* -1.0 */
      {{0, 0, 0, 2, 0xff, 0xa6}, 6},                 /* -0.90 */
      {{0, 0, 0, 3, 0xf7}, 5},                       /* -0.009 */
      {{0, 0, 0, 5, 0x00}, 5},                       /* 0.00000 */
      {{0, 0, 0, 3, 0x0c}, 5},                       /* 0.012 */
      {{0, 0, 0, 1, 0x7b}, 5},                       /* 12.3 */
      {{0, 0, 0, 2, 0x04, 0xd3}, 6},                 /* 12.35 */
      {{0xff, 0xff, 0xff, 0xfe, 0x01}, 5},           /* 100 (1E+2) */
      {{0, 0, 0, 0, 0x00, 0x80}, 6},                 /* 128 */
  };
  size_t nd = sizeof de / sizeof de[0];
  for (size_t i = 0; i + 1 < nd; i++) {
    assert_int_equal(cmp_enc(&tdec, de[i].b, de[i].n, de[i + 1].b, de[i + 1].n, false), -1);
    assert_int_equal(cmp_enc(&tdec, de[i].b, de[i].n, de[i + 1].b, de[i + 1].n, true), 1);
  }
  /* 1.0 == 1.00 == 10E-1 */
  uint8_t one_a[] = {0, 0, 0, 1, 0x0a}, one_b[] = {0, 0, 0, 2, 0x00, 0x64};
  assert_int_equal(cmp_enc(&tdec, one_a, 5, one_b, 6, false), 0);
  /* round trip: -0.90 reads back as -0.9 (scale 1, unscaled -9) */
  for (int desc = 0; desc < 2; desc++) {
    b.len = 0;
    sl_key_encode(&b, &tdec, de[2].b, de[2].n, desc);
    sl_key_encode(&b, &tdec, de[0].b, de[0].n, desc);
    sl_reader_init(&r, b.data, b.len);
    out.len = 0;
    assert_int_equal(sl_key_decode(&r, &tdec, desc, &out, &vlen), 0);
    assert_int_equal(vlen, 5);
    assert_memory_equal(out.data, "\x00\x00\x00\x01\xf7", 5);
    out.len = 0;
    assert_int_equal(sl_key_decode(&r, &tdec, desc, &out, &vlen), 0);
    assert_int_equal(vlen, de[0].n);
    assert_memory_equal(out.data, de[0].b, de[0].n);
  }
  /* truncated numeric encodings are errors */
  uint8_t junk[] = {0x03, 0x03, 0x00, 0x00};
  sl_reader_init(&r, junk, sizeof junk);
  out.len = 0;
  assert_int_equal(sl_key_decode(&r, &tv, false, &out, &vlen), -EINVAL);
  sl_buf_free(&b);
  sl_buf_free(&out);
}

/* decimal text <-> serialized varint / decimal */
static void test_numeric_text(void **state) {
  (void)state;
  sl_cql_type_t tv = {.id = CQL_TYPE_VARINT}, tdec = {.id = CQL_TYPE_DECIMAL};
  static const char *const vs[] = {"0", "-1", "127", "128", "-128", "-129", "123456789012345678901234567890",
                                   "-340282366920938463463374607431768211456"};
  for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
    sl_buf_t b;
    sl_buf_init(&b);
    assert_int_equal(sl_numeric_from_text(&tv, vs[i], strlen(vs[i]), &b), 0);
    char *txt = sl_numeric_text(&tv, b.data, b.len);
    assert_string_equal(txt, vs[i]);
    free(txt);
    sl_buf_free(&b);
  }
  static const char *const ds[][2] = {{"-12.50", "-12.50"}, {"0.001", "0.001"}, {"1e3", "1000"},
                                      {"1.5E-3", "0.0015"}, {"123456789012345678901.25", "123456789012345678901.25"},
                                      {"0", "0"}};
  for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
    sl_buf_t b;
    sl_buf_init(&b);
    assert_int_equal(sl_numeric_from_text(&tdec, ds[i][0], strlen(ds[i][0]), &b), 0);
    char *txt = sl_numeric_text(&tdec, b.data, b.len);
    if (strcmp(txt, ds[i][1]) != 0) fprintf(stderr, "%s -> %s\n", ds[i][0], txt);
    assert_string_equal(txt, ds[i][1]);
    free(txt);
    sl_buf_free(&b);
  }
  sl_buf_t b;
  sl_buf_init(&b);
  assert_int_not_equal(sl_numeric_from_text(&tv, "1.5", 3, &b), 0);
  assert_int_not_equal(sl_numeric_from_text(&tdec, "1e", 2, &b), 0);
  assert_int_not_equal(sl_numeric_from_text(&tdec, "-", 1, &b), 0);
  sl_buf_free(&b);
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
  sl_table_opt_t o = {.name = strdup("compaction"), .is_map = true, .n = 1};
  o.keys = calloc(1, sizeof(char *));
  o.vals = calloc(1, sizeof(char *));
  o.keys[0] = strdup("class");
  o.vals[0] = strdup("LeveledCompactionStrategy");
  sl_table_set_option(t, &o);
  sl_table_opt_t o2 = {.name = strdup("speculative_retry"), .text = strdup("95p")};
  sl_table_set_option(t, &o2);
  t->dropped = calloc(1, sizeof *t->dropped);
  t->dropped[0] = (sl_dropped_col_t){strdup("gone"), strdup("map<text, int>"), 123456, false};
  t->ndropped = 1;
  sl_buf_t b;
  sl_buf_init(&b);
  sl_table_encode(t, &b);
  sl_table_t *u;
  assert_int_equal(sl_table_decode(b.data, b.len, &u), 0);
  const sl_table_opt_t *got = sl_table_option(u, "compaction");
  assert_non_null(got);
  assert_true(got->is_map);
  assert_int_equal(got->n, 1);
  assert_string_equal(got->vals[0], "LeveledCompactionStrategy");
  assert_string_equal(sl_table_option(u, "speculative_retry")->text, "95p");
  assert_null(sl_table_option(u, "comment"));
  assert_int_equal(u->ndropped, 1);
  assert_string_equal(u->dropped[0].type, "map<text, int>");
  assert_int_equal(u->dropped[0].time_us, 123456);
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

/* Set elements as cells: per-element LWW, the collection tombstone of an overwrite at ts - 1, sorted reads,
 * unchanged by compaction. */
static int collect_set(void *arg, const sl_row_t *row) {
  sl_buf_t *out = arg;
  out->len = 0;
  if (row->vals[3].ptr) sl_buf_put(out, row->vals[3].ptr, row->vals[3].len);
  return 0;
}

static void set_write(sl_kv_t *kv, sl_table_t *t, const int32_t *add, size_t nadd, const int32_t *del, size_t ndel,
                      bool overwrite, int64_t ts) {
  sl_slice_t pk = {(const uint8_t *)"p", 1};
  uint8_t cb[4];
  sl_store_be32(cb, 1);
  sl_slice_t ck = {cb, 4};
  sl_cell_write_t w[8];
  uint8_t paths[8][8];
  size_t n = 0;
  sl_cql_type_t ti = {.id = CQL_TYPE_INT};
  if (overwrite) w[n++] = (sl_cell_write_t){.col_id = 2, .tombstone = true, .ts_minus_one = true};
  for (size_t i = 0; i < nadd + ndel; i++) {
    uint8_t v[4];
    sl_store_be32(v, (uint32_t)(i < nadd ? add[i] : del[i - nadd]));
    sl_buf_t p;
    sl_buf_init(&p);
    sl_key_encode(&p, &ti, v, 4, false);
    memcpy(paths[n], p.data, p.len);
    w[n] = (sl_cell_write_t){.col_id = 2, .tombstone = i >= nadd, .v = (const uint8_t *)"", .path = paths[n],
                             .pathlen = p.len};
    n++;
    sl_buf_free(&p);
  }
  sl_kv_batch_t *b = sl_kv_batch_new();
  assert_int_equal(sl_rows_write(kv, b, t, &pk, &ck, false, w, n, ts, 0, 1000000), 0);
  assert_int_equal(sl_kv_batch_commit(kv, b), 0);
  sl_kv_batch_free(b);
}

static void expect_set(sl_kv_t *kv, sl_table_t *t, const int32_t *want, size_t n) {
  sl_buf_t got;
  sl_buf_init(&got);
  sl_arena_t a;
  sl_arena_init(&a);
  uint8_t lo[1] = {'D'}, hi[1] = {'E'};
  assert_int_equal(sl_rows_scan(kv, t, lo, 1, hi, 1, 1000000, &a, collect_set, &got), 0);
  if (n == 0) {
    assert_int_equal(got.len, 0);
  } else {
    assert_int_equal(got.len, 4 + n * 8);
    assert_int_equal(sl_load_be32(got.data), n);
    for (size_t i = 0; i < n; i++) assert_int_equal((int32_t)sl_load_be32(got.data + 4 + i * 8 + 4), want[i]);
  }
  sl_arena_free(&a);
  sl_buf_free(&got);
}

static void test_rows_collection_elements(void **state) {
  (void)state;
  char dir[] = "/tmp/sluice-test-coll-XXXXXX";
  assert_non_null(mkdtemp(dir));
  sl_kv_t *kv;
  char err[256];
  assert_int_equal(sl_kv_open_policy(dir, false, &sl_rows_policy, &kv, err, sizeof err), 0);
  sl_table_t *t = make_table();
  sl_cql_type_free(t->cols[3].type);
  assert_int_equal(sl_cql_type_parse("set<int>", 8, &t->cols[3].type), 0);
  assert_true(sl_rows_is_multicell(t->cols[3].type));
  sl_table_finish(t);
  int32_t a1[] = {3, -1, 1}, a2[] = {2}, d1[] = {1}, d2[] = {3};
  set_write(kv, t, a1, 3, NULL, 0, true, 100); /* INSERT {3, -1, 1} */
  set_write(kv, t, a2, 1, d1, 1, false, 200);  /* s + {2}, s - {1} */
  set_write(kv, t, NULL, 0, d2, 1, false, 50); /* an older removal loses */
  int32_t w1[] = {-1, 2, 3};
  expect_set(kv, t, w1, 3);
  sl_kv_compact(kv);
  expect_set(kv, t, w1, 3);
  set_write(kv, t, a2, 1, NULL, 0, true, 201); /* s = {2} at 201: tombstone at 200 keeps 2@201 only */
  int32_t w2[] = {2};
  expect_set(kv, t, w2, 1);
  set_write(kv, t, NULL, 0, a2, 1, false, 300);
  expect_set(kv, t, NULL, 0);
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
      cmocka_unit_test(test_keycodec_numeric),
      cmocka_unit_test(test_numeric_text),
      cmocka_unit_test(test_rows_collection_elements),
      cmocka_unit_test(test_schema_roundtrip),
      cmocka_unit_test(test_rows_lww_ttl_tombstones),
      cmocka_unit_test(test_rows_compaction_purge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
