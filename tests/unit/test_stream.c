/* Stream processor pure parts: pipeline YAML, coercion rules, mapping, dead-letter reasons, record uuids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stream/coerce.h"
#include "stream/pipeline.h"
#include "up/examples.h"

static const char *const yaml =
    "pipelines:\n"
    "  - name: t\n"
    "    topics: [in]\n"
    "    keyspace: ks\n"
    "    table: tb\n"
    "    columns:\n"
    "      - {name: dev, type: text, path: a.id, required: true}\n"
    "      - {name: day, type: date, derive: day(ts)}\n"
    "      - {name: ts, type: timestamp, path: ts}\n"
    "      - {name: n, type: int, path: \"arr[1].n\"}\n"
    "      - {name: x, type: double, path: x, default: \"1.5\"}\n"
    "      - {name: ok, type: boolean, path: ok}\n"
    "      - {name: id, type: uuid, path: id, derive: record_uuid}\n"
    "      - {name: label, type: text, template: \"{a.id}-{n2}\"}\n"
    "    primary_key: [[dev, day], ts]\n"
    "    clustering_order: {ts: desc}\n"
    "    filters:\n"
    "      - {column: x, op: \">=\", value: 0}\n";

static sl_pipeline_t *load(size_t *n) {
  sl_pipeline_t *p;
  char err[512];
  int rc = sl_pipelines_parse(yaml, strlen(yaml), "test", &p, n, err, sizeof err);
  if (rc) fprintf(stderr, "%s\n", err);
  assert_int_equal(rc, 0);
  return p;
}

static void test_parse_and_cql(void **state) {
  size_t n;
  sl_pipeline_t *p = load(&n);
  assert_int_equal(n, 1);
  assert_string_equal(p->group, "sluice-t");
  assert_string_equal(p->dead_letter, "in.dlq");
  sl_buf_t b;
  sl_buf_init(&b);
  sl_pipeline_table_cql(p, &b);
  sl_buf_put_u8(&b, 0);
  assert_string_equal((char *)b.data,
                      "CREATE TABLE IF NOT EXISTS ks.tb (dev text, day date, ts timestamp, n int, x double, ok boolean, "
                      "id uuid, label text, PRIMARY KEY ((dev, day), ts)) WITH CLUSTERING ORDER BY (ts DESC)");
  b.len = 0;
  sl_pipeline_insert_cql(p, &b);
  sl_buf_put_u8(&b, 0);
  assert_string_equal((char *)b.data, "INSERT INTO ks.tb (dev, day, ts, n, x, ok, id, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  b.len = 0;
  sl_pipeline_keyspace_cql(p, &b); /* no replication given: one replica, for a single store */
  sl_buf_put_u8(&b, 0);
  assert_string_equal((char *)b.data, "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': "
                                      "'SimpleStrategy', 'replication_factor': '1'}");
  sl_buf_free(&b);
  sl_pipelines_free(p, n);
}

/* replication and table_options: what a Cassandra cluster's keyspace and time-series table want */
static void test_replication_and_table_options(void **state) {
  const char *y = "pipelines: [{name: a, topics: [t], keyspace: k, table: t, "
                  "replication: {class: NetworkTopologyStrategy, dc1: 3, dc-2: '2'}, "
                  "table_options: \"compaction = {'class': 'TimeWindowCompactionStrategy'} AND "
                  "default_time_to_live = 86400\", "
                  "columns: [{name: c, type: text, path: c}, {name: ts, type: timestamp, path: ts}], "
                  "primary_key: [c, ts], clustering_order: {ts: desc}}]";
  sl_pipeline_t *p;
  size_t n;
  char err[512] = "";
  int rc = sl_pipelines_parse(y, strlen(y), "t", &p, &n, err, sizeof err);
  if (rc) fprintf(stderr, "%s\n", err);
  assert_int_equal(rc, 0);
  sl_buf_t b;
  sl_buf_init(&b);
  sl_pipeline_keyspace_cql(p, &b);
  sl_buf_put_u8(&b, 0);
  assert_string_equal((char *)b.data, "CREATE KEYSPACE IF NOT EXISTS k WITH replication = {'class': "
                                      "'NetworkTopologyStrategy', 'dc1': '3', 'dc-2': '2'}");
  b.len = 0;
  sl_pipeline_table_cql(p, &b);
  sl_buf_put_u8(&b, 0);
  assert_string_equal((char *)b.data, "CREATE TABLE IF NOT EXISTS k.t (c text, ts timestamp, PRIMARY KEY (c, ts)) "
                                      "WITH CLUSTERING ORDER BY (ts DESC) AND compaction = {'class': "
                                      "'TimeWindowCompactionStrategy'} AND default_time_to_live = 86400");
  sl_buf_free(&b);
  sl_pipelines_free(p, n);
  /* refused: no class, a quote smuggled into the map, a second statement in the options */
  const char *bad[] = {
      "pipelines: [{name: a, topics: [t], keyspace: k, table: t, replication: {dc1: 3}, "
      "columns: [{name: c, type: text, path: c}], primary_key: [c]}]",
      "pipelines: [{name: a, topics: [t], keyspace: k, table: t, replication: {class: \"x'}\"}, "
      "columns: [{name: c, type: text, path: c}], primary_key: [c]}]",
      "pipelines: [{name: a, topics: [t], keyspace: k, table: t, table_options: \"comment = 'a'; DROP TABLE k.t\", "
      "columns: [{name: c, type: text, path: c}], primary_key: [c]}]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = 0;
    assert_int_not_equal(sl_pipelines_parse(bad[i], strlen(bad[i]), "bad", &p, &n, err, sizeof err), 0);
    assert_true(strstr(err, "replication") || strstr(err, "table_options"));
  }
}

static void test_bad_pipelines(void **state) {
  const char *bad[] = {
      "pipelines: [{name: a, topics: [t], keyspace: k, table: t, columns: [{name: c, type: blobby, path: c}], "
      "primary_key: [c]}]",
      "pipelines: [{name: a, topics: [t], keyspace: k, table: t, columns: [{name: c, type: text, path: c}], "
      "primary_key: [zz]}]",
      "pipelines: [{name: a, topics: [t], keyspace: k, table: t, columns: [{name: c, type: date, derive: day(q)}], "
      "primary_key: [c]}]",
      "pipelines: [{name: a, topics: [t], keyspace: k, table: t, columns: [{name: c, type: text}], primary_key: [c]}]",
      "pipelines: [{name: a, keyspace: k, table: t, columns: [{name: c, type: text, path: c}], primary_key: [c]}]",
      "pipelines: [{name: a, topics: [t], format: avro, keyspace: k, table: t, columns: [{name: c, type: text, "
      "path: c}], primary_key: [c]}]",
      "pipelines: [{name: a, topics: [t], keyspace: k, table: t, colums: []}]",
      "pipelines: [ {",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sl_pipeline_t *p;
    size_t n;
    char err[512] = "";
    assert_int_not_equal(sl_pipelines_parse(bad[i], strlen(bad[i]), "bad", &p, &n, err, sizeof err), 0);
    assert_true(strlen(err) > 5);
  }
}

static int map(const sl_pipeline_t *p, const char *json, sl_value_t *vals, sl_buf_t *text, sl_map_error_t *e) {
  text->len = 0;
  return sl_pipeline_map(p, json, strlen(json), "in", 3, 77, vals, text, e);
}

static void test_mapping(void **state) {
  size_t n;
  sl_pipeline_t *p = load(&n);
  sl_value_t v[8];
  sl_buf_t text;
  sl_buf_init(&text);
  sl_map_error_t e;
  assert_int_equal(map(p, "{\"a\":{\"id\":\"d1\"},\"ts\":\"2024-05-01T10:40:00.250+02:00\",\"arr\":[{},{\"n\":\"42\"}],"
                          "\"x\":\"2.5\",\"ok\":\"yes\",\"n2\":7}", v, &text, &e), SL_MAP_ROW);
  assert_memory_equal(text.data + v[0].v.s.off, "d1", 2);
  assert_true(v[2].v.i == 1714552800250); /* 08:40:00.250Z */
  assert_int_equal(v[1].v.i, 19844);       /* 2024-05-01 */
  assert_int_equal(v[3].v.i, 42);
  assert_true(v[4].v.d == 2.5);
  assert_true(v[5].v.b);
  assert_true(v[6].set); /* derived from in/3/77 */
  uint8_t u[16];
  sl_coerce_record_uuid("in", 3, 77, u);
  assert_memory_equal(v[6].v.uuid, u, 16);
  assert_int_equal(u[6] >> 4, 5);
  assert_int_equal(v[7].v.s.len, 4);
  assert_memory_equal(text.data + v[7].v.s.off, "d1-7", 4);

  /* epoch seconds, default, given uuid, no template (missing part) */
  assert_int_equal(map(p, "{\"a\":{\"id\":\"d2\"},\"ts\":1714560000,\"id\":\"6F9619FF-8B86-D011-B42D-00C04FC964FF\"}", v,
                       &text, &e), SL_MAP_ROW);
  assert_true(v[2].v.i == 1714560000000);
  assert_true(v[4].v.d == 1.5);
  assert_int_equal(v[6].v.uuid[0], 0x6f);
  assert_false(v[7].set);
  assert_false(v[3].set);

  /* filtered */
  assert_int_equal(map(p, "{\"a\":{\"id\":\"d\"},\"ts\":1714560000000,\"x\":-1}", v, &text, &e), SL_MAP_FILTERED);

  /* dead letters with reasons */
  assert_int_equal(map(p, "{\"a\":{\"id\":\"d\"},\"ts\":", v, &text, &e), SL_MAP_ERROR);
  assert_string_equal(e.field, "");
  assert_non_null(strstr(e.reason, "invalid JSON"));
  assert_int_equal(map(p, "{\"ts\":1714560000000}", v, &text, &e), SL_MAP_ERROR);
  assert_string_equal(e.field, "dev");
  assert_string_equal(e.reason, "missing required field");
  assert_int_equal(map(p, "{\"a\":{\"id\":\"d\"},\"ts\":\"yesterday\"}", v, &text, &e), SL_MAP_ERROR);
  assert_string_equal(e.field, "ts");
  assert_string_equal(e.value, "yesterday");
  assert_non_null(strstr(e.reason, "timestamp"));
  assert_int_equal(map(p, "{\"a\":{\"id\":\"d\"},\"ts\":1,\"arr\":[0,{\"n\":3.5}]}", v, &text, &e), SL_MAP_ERROR);
  assert_string_equal(e.field, "n");
  assert_string_equal(e.value, "3.5");
  assert_int_equal(map(p, "{\"a\":{\"id\":\"d\"},\"ts\":1,\"arr\":[0,{\"n\":9999999999}]}", v, &text, &e), SL_MAP_ERROR);
  assert_int_equal(map(p, "{\"a\":{\"id\":\"d\"},\"ts\":1,\"ok\":\"maybe\"}", v, &text, &e), SL_MAP_ERROR);
  assert_string_equal(e.field, "ok");
  assert_int_equal(map(p, "[1,2]", v, &text, &e), SL_MAP_ERROR);
  sl_buf_free(&text);
  sl_pipelines_free(p, n);
}

static void test_coerce(void **state) {
  int64_t ms;
  assert_int_equal(sl_coerce_iso8601("1970-01-01", 10, &ms), 0), assert_true(ms == 0);
  assert_int_equal(sl_coerce_iso8601("2000-02-29 12:00:00.5Z", 22, &ms), 0), assert_true(ms == 951825600500);
  assert_int_equal(sl_coerce_iso8601("1969-12-31T23:59:59Z", 20, &ms), 0), assert_true(ms == -1000);
  assert_int_not_equal(sl_coerce_iso8601("2000-13-01", 10, &ms), 0);
  assert_int_not_equal(sl_coerce_iso8601("2000-01-01T", 11, &ms), 0);
  assert_true(sl_coerce_epoch_int(1714560000) == 1714560000000);
  assert_true(sl_coerce_epoch_int(1714560000000) == 1714560000000);
  assert_true(sl_coerce_epoch_int(1714560000000000) == 1714560000000);
  assert_true(sl_coerce_epoch_int(1714560000000000000) == 1714560000000);
  assert_int_equal(sl_coerce_day(-1), -1);
  int64_t i;
  assert_int_equal(sl_coerce_parse_int(" 12 ", 4, &i), 0), assert_true(i == 12);
  assert_int_equal(sl_coerce_parse_int("3.0", 3, &i), 0), assert_true(i == 3);
  assert_int_not_equal(sl_coerce_parse_int("3.2", 3, &i), 0);
  assert_int_not_equal(sl_coerce_parse_int("0x10", 4, &i), 0);
  double d;
  assert_int_not_equal(sl_coerce_parse_real("nan", 3, &d), 0);
  bool b;
  assert_int_equal(sl_coerce_parse_bool("OFF", 3, &b), 0), assert_false(b);
  uint8_t u[16], u2[16];
  sl_coerce_record_uuid("t", 0, 1, u);
  sl_coerce_record_uuid("t", 0, 1, u2);
  assert_memory_equal(u, u2, 16);
  sl_coerce_record_uuid("t", 0, 2, u2);
  assert_memory_not_equal(u, u2, 16);
  char s[37];
  sl_coerce_format_uuid(u, s);
  assert_int_equal(sl_coerce_parse_uuid(s, 36, u2), 0);
  assert_memory_equal(u, u2, 16);
}

static void test_examples_parse(void **state) {
  int count = 0;
  for (const sl_example_t *e = sl_examples; e->name; e++, count++) {
    sl_pipeline_t *p;
    size_t n;
    char err[512];
    int rc = sl_pipelines_parse(e->text, strlen(e->text), e->name, &p, &n, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    sl_pipelines_free(p, n);
  }
  assert_true(count >= 4);
  assert_non_null(sl_example_text("users"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_and_cql), cmocka_unit_test(test_bad_pipelines), cmocka_unit_test(test_mapping),
      cmocka_unit_test(test_coerce),        cmocka_unit_test(test_examples_parse),
      cmocka_unit_test(test_replication_and_table_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
