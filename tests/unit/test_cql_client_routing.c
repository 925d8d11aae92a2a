/* Unit tests of the CQL client's routing: routing keys and Murmur3 tokens (reference vectors), RESULT decoding,
 * discovery from recorded system.local/system.peers rows of a 3-node, 2-DC cluster, the token ring, replica
 * placement (SimpleStrategy, NetworkTopologyStrategy) and the DC-aware, token-aware query plan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cql/client_internal.h"
#include "cql/murmur3.h"
#include "cql/proto.h"

static int64_t token_of_parts(const char *const *hex, size_t n) {
  sl_slice_t parts[4];
  uint8_t bufs[4][64];
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(hex[i]) / 2;
    for (size_t k = 0; k < len; k++) {
      unsigned v;
      sscanf(hex[i] + 2 * k, "%2x", &v);
      bufs[i][k] = (uint8_t)v;
    }
    parts[i].ptr = bufs[i];
    parts[i].len = len;
  }
  sl_buf_t key;
  sl_buf_init(&key);
  sl_cql_routing_key(parts, n, &key);
  int64_t t = sl_cql_murmur3_token(key.data, key.len);
  sl_buf_free(&key);
  return t;
}

static void test_routing_key_tokens(void **state) {
  (void)state;
  const char *one[] = {"00000001"};
  assert_int_equal(token_of_parts(one, 1), -4069959284402364209LL);
  const char *text[] = {"616263"};
  assert_int_equal(token_of_parts(text, 1), -5434086359492102041LL);
  const char *comp[] = {"73656e736f722d31", "0134d6e5"}; /* ('sensor-1', 20240101) */
  assert_int_equal(token_of_parts(comp, 2), 6511822321561555761LL);
}

/* ---- a recorded cluster: RESULT Rows bodies as the server sends them */

static void col(sl_buf_t *b, const char *name, uint16_t type, uint16_t sub) {
  cql_write_cstring(b, "system");
  cql_write_cstring(b, "peers");
  cql_write_cstring(b, name);
  cql_write_short(b, type);
  if (sub) cql_write_short(b, sub);
}

static void put_inet(sl_buf_t *b, const uint8_t ip[4]) { cql_write_bytes(b, ip, 4); }

static void put_text(sl_buf_t *b, const char *s) { cql_write_bytes(b, s, strlen(s)); }

static void put_tokens(sl_buf_t *b, const char *const *toks, size_t n) {
  sl_buf_t s;
  sl_buf_init(&s);
  cql_write_int(&s, (int32_t)n);
  for (size_t i = 0; i < n; i++) put_text(&s, toks[i]);
  cql_write_bytes(b, s.data, s.len);
  sl_buf_free(&s);
}

static void put_uuid(sl_buf_t *b, uint8_t fill) {
  uint8_t u[16];
  memset(u, fill, 16);
  cql_write_bytes(b, u, 16);
}

/* system.local of node A (dc1, rack r1): tokens -6e18, 3e18 */
static void build_local(sl_buf_t *b) {
  cql_write_int(b, CQL_RESULT_ROWS);
  cql_write_int(b, 0);
  cql_write_int(b, 5);
  col(b, "key", CQL_TYPE_VARCHAR, 0);
  col(b, "data_center", CQL_TYPE_VARCHAR, 0);
  col(b, "rack", CQL_TYPE_VARCHAR, 0);
  col(b, "tokens", CQL_TYPE_SET, CQL_TYPE_VARCHAR);
  col(b, "schema_version", CQL_TYPE_UUID, 0);
  cql_write_int(b, 1);
  put_text(b, "local");
  put_text(b, "dc1");
  put_text(b, "r1");
  const char *t[] = {"-6000000000000000000", "3000000000000000000"};
  put_tokens(b, t, 2);
  put_uuid(b, 7);
}

/* system.peers: B (dc1, r2; rpc_address 0.0.0.0 -> use peer), C (dc2, r1), and a half-written row (no host_id) */
static void build_peers(sl_buf_t *b) {
  cql_write_int(b, CQL_RESULT_ROWS);
  cql_write_int(b, 0);
  cql_write_int(b, 7);
  col(b, "peer", CQL_TYPE_INET, 0);
  col(b, "data_center", CQL_TYPE_VARCHAR, 0);
  col(b, "host_id", CQL_TYPE_UUID, 0);
  col(b, "rack", CQL_TYPE_VARCHAR, 0);
  col(b, "rpc_address", CQL_TYPE_INET, 0);
  col(b, "schema_version", CQL_TYPE_UUID, 0);
  col(b, "tokens", CQL_TYPE_SET, CQL_TYPE_VARCHAR);
  cql_write_int(b, 3);
  static const uint8_t b_peer[4] = {10, 0, 0, 2}, zero[4] = {0, 0, 0, 0}, c_ip[4] = {10, 1, 0, 3},
                       d_ip[4] = {10, 0, 0, 9};
  /* B */
  put_inet(b, b_peer);
  put_text(b, "dc1");
  put_uuid(b, 2);
  put_text(b, "r2");
  put_inet(b, zero);
  put_uuid(b, 7);
  const char *tb[] = {"-2000000000000000000", "7000000000000000000"};
  put_tokens(b, tb, 2);
  /* C */
  put_inet(b, c_ip);
  put_text(b, "dc2");
  put_uuid(b, 3);
  put_text(b, "r1");
  put_inet(b, c_ip);
  put_uuid(b, 7);
  const char *tc[] = {"0", "5000000000000000000"};
  put_tokens(b, tc, 2);
  /* D: joining, host_id not yet written -> skipped */
  put_inet(b, d_ip);
  put_text(b, "dc1");
  cql_write_int(b, -1);
  put_text(b, "r1");
  put_inet(b, d_ip);
  cql_write_int(b, -1);
  cql_write_int(b, -1);
}

typedef struct {
  sl_buf_t lb, pb;
  sl_cql_result_t local, peers;
  sl_cql_host_info_t *hosts;
  size_t n;
  sl_cql_ring_t ring;
} cluster_t;

static int setup(void **state) {
  cluster_t *c = calloc(1, sizeof *c);
  sl_buf_init(&c->lb);
  sl_buf_init(&c->pb);
  build_local(&c->lb);
  build_peers(&c->pb);
  char err[128];
  if (sl_cql_result_decode(c->lb.data, c->lb.len, 4, &c->local, err, sizeof err) != 0) return -1;
  if (sl_cql_result_decode(c->pb.data, c->pb.len, 4, &c->peers, err, sizeof err) != 0) return -1;
  c->n = sl_cql_discover(&c->local, &c->peers, "10.0.0.1", 9042, &c->hosts);
  sl_cql_ring_build(&c->ring, c->hosts, c->n);
  *state = c;
  return 0;
}

static int teardown(void **state) {
  cluster_t *c = *state;
  sl_cql_ring_free(&c->ring);
  sl_cql_hosts_free(c->hosts, c->n);
  sl_cql_result_clear(&c->local);
  sl_cql_result_clear(&c->peers);
  sl_buf_free(&c->lb);
  sl_buf_free(&c->pb);
  free(c);
  return 0;
}

static void test_discovery(void **state) {
  cluster_t *c = *state;
  assert_int_equal(c->n, 3);
  assert_string_equal(c->hosts[0].addr, "10.0.0.1:9042");
  assert_string_equal(c->hosts[0].dc, "dc1");
  assert_string_equal(c->hosts[1].addr, "10.0.0.2:9042"); /* rpc_address 0.0.0.0: the peer address */
  assert_string_equal(c->hosts[1].rack, "r2");
  assert_string_equal(c->hosts[2].addr, "10.1.0.3:9042");
  assert_string_equal(c->hosts[2].dc, "dc2");
  assert_int_equal(c->hosts[0].ntokens, 2);
  assert_int_equal(c->hosts[0].tokens[0], -6000000000000000000LL);
  assert_int_equal(c->ring.n, 6);
}

/* Ring: A -6e18, B -2e18, C 0, A 3e18, C 5e18, B 7e18 */
static void test_owner_and_simple_strategy(void **state) {
  cluster_t *c = *state;
  sl_cql_replication_t simple = {.rf = 2};
  uint32_t r[8];
  size_t n = sl_cql_ring_replicas(&c->ring, c->hosts, c->n, &simple, -7000000000000000000LL, r, 8);
  assert_int_equal(n, 2);
  assert_int_equal(r[0], 0); /* A owns (-inf .. -6e18] */
  assert_int_equal(r[1], 1);
  n = sl_cql_ring_replicas(&c->ring, c->hosts, c->n, &simple, 1, r, 8); /* (0, 3e18] -> A, then C */
  assert_int_equal(r[0], 0);
  assert_int_equal(r[1], 2);
  n = sl_cql_ring_replicas(&c->ring, c->hosts, c->n, &simple, 8000000000000000000LL, r, 8); /* wraps to A */
  assert_int_equal(r[0], 0);
  assert_int_equal(r[1], 1);
  n = sl_cql_ring_replicas(&c->ring, c->hosts, c->n, &simple, 0, r, 8); /* exactly a ring token: C */
  assert_int_equal(r[0], 2);
  (void)n;
}

static void test_network_topology_strategy(void **state) {
  cluster_t *c = *state;
  /* replication = {'class': 'NetworkTopologyStrategy', 'dc1': '2', 'dc2': '1'} as a serialized map */
  sl_buf_t m;
  sl_buf_init(&m);
  cql_write_int(&m, 3);
  put_text(&m, "class");
  put_text(&m, "org.apache.cassandra.locator.NetworkTopologyStrategy");
  put_text(&m, "dc1");
  put_text(&m, "2");
  put_text(&m, "dc2");
  put_text(&m, "1");
  sl_cql_replication_t repl;
  sl_slice_t ms = {m.data, m.len};
  assert_int_equal(sl_cql_replication_parse(ms, &repl), 0);
  assert_true(repl.nts);
  assert_int_equal(repl.ndc, 2);
  uint32_t r[8];
  size_t n = sl_cql_ring_replicas(&c->ring, c->hosts, c->n, &repl, 1, r, 8); /* walk from A(3e18) */
  assert_int_equal(n, 3);
  assert_int_equal(r[0], 0); /* dc1: A then B */
  assert_int_equal(r[1], 1);
  assert_int_equal(r[2], 2); /* dc2: C */
  /* plan from dc1: local replicas first (A, B), never the remote C */
  bool up[3] = {true, true, true};
  uint32_t plan[8];
  size_t np = sl_cql_plan(c->hosts, up, c->n, "dc1", r, n, 0, false, plan, 8);
  assert_int_equal(np, 2);
  assert_int_equal(plan[0], 0);
  assert_int_equal(plan[1], 1);
  /* A down: B first; with remote allowed, C comes last */
  up[0] = false;
  np = sl_cql_plan(c->hosts, up, c->n, "dc1", r, n, 0, true, plan, 8);
  assert_int_equal(np, 2);
  assert_int_equal(plan[0], 1);
  assert_int_equal(plan[1], 2);
  /* from dc2 the dc2 replica leads */
  up[0] = true;
  np = sl_cql_plan(c->hosts, up, c->n, "dc2", r, n, 0, false, plan, 8);
  assert_int_equal(np, 1);
  assert_int_equal(plan[0], 2);
  sl_buf_free(&m);
}

static void test_plan_round_robin_without_token(void **state) {
  cluster_t *c = *state;
  bool up[3] = {true, true, true};
  uint32_t plan[8];
  size_t np = sl_cql_plan(c->hosts, up, c->n, "dc1", NULL, 0, 1, false, plan, 8);
  assert_int_equal(np, 2);
  assert_int_equal(plan[0], 1); /* rotation 1 starts at B */
  assert_int_equal(plan[1], 0);
}

static void test_malformed_rows_are_refused(void **state) {
  (void)state;
  sl_buf_t b;
  sl_buf_init(&b);
  cql_write_int(&b, CQL_RESULT_ROWS);
  cql_write_int(&b, 0);
  cql_write_int(&b, 1);
  col(&b, "x", CQL_TYPE_INT, 0);
  cql_write_int(&b, 1000000000); /* far more rows than bytes */
  sl_cql_result_t r;
  char err[128];
  assert_int_not_equal(sl_cql_result_decode(b.data, b.len, 4, &r, err, sizeof err), 0);
  /* every truncation of a valid body fails cleanly */
  sl_buf_t lb;
  sl_buf_init(&lb);
  build_peers(&lb);
  for (size_t cut = 0; cut < lb.len; cut++)
    if (sl_cql_result_decode(lb.data, cut, 4, &r, err, sizeof err) == 0) sl_cql_result_clear(&r);
  sl_buf_free(&lb);
  sl_buf_free(&b);
}

static void test_format_cells(void **state) {
  (void)state;
  sl_cql_type_t *t;
  assert_int_equal(sl_cql_type_parse("map<text, frozen<list<int>>>", 28, &t), 0);
  sl_buf_t v;
  sl_buf_init(&v);
  cql_write_int(&v, 1);
  put_text(&v, "k'1");
  sl_buf_t l;
  sl_buf_init(&l);
  cql_write_int(&l, 2);
  cql_write_int(&l, 4);
  cql_write_int(&l, -3);
  cql_write_int(&l, 4);
  cql_write_int(&l, 70000);
  cql_write_bytes(&v, l.data, l.len);
  sl_slice_t cell = {v.data, v.len};
  sl_buf_t out;
  sl_buf_init(&out);
  sl_cql_format_cell(t, cell, &out);
  assert_int_equal(out.len, strlen("{'k''1': [-3, 70000]}"));
  assert_memory_equal(out.data, "{'k''1': [-3, 70000]}", out.len);
  out.len = 0;
  sl_cql_format_cell_json(t, cell, &out);
  assert_memory_equal(out.data, "{\"k'1\": [-3, 70000]}", out.len);
  sl_cql_type_free(t);
  /* varint beyond 64 bits, decimal */
  sl_cql_type_t vi = {.id = CQL_TYPE_VARINT}, de = {.id = CQL_TYPE_DECIMAL};
  static const uint8_t big[] = {0x01, 0, 0, 0, 0, 0, 0, 0, 0}; /* 2^64 */
  sl_slice_t bs = {big, sizeof big};
  out.len = 0;
  sl_cql_format_cell(&vi, bs, &out);
  assert_memory_equal(out.data, "18446744073709551616", out.len);
  static const uint8_t dec[] = {0, 0, 0, 3, 0xFE, 0x1D, 0xC0}; /* -123456 scale 3 */
  sl_slice_t ds = {dec, sizeof dec};
  out.len = 0;
  sl_cql_format_cell(&de, ds, &out);
  assert_memory_equal(out.data, "-123.456", out.len);
  sl_buf_free(&out);
  sl_buf_free(&l);
  sl_buf_free(&v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_routing_key_tokens),
      cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
      cmocka_unit_test_setup_teardown(test_owner_and_simple_strategy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_network_topology_strategy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_plan_round_robin_without_token, setup, teardown),
      cmocka_unit_test(test_malformed_rows_are_refused),
      cmocka_unit_test(test_format_cells),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
