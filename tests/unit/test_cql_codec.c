/* Unit tests for src/cql: frame header, the spec's notations, type names/options/validation, textual forms, and
 * the Murmur3 token against the vectors in the driver reference (Python driver and Cassandra agree on them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cql/murmur3.h"
#include "cql/proto.h"
#include "cql/types.h"

static size_t unhex(const char *h, uint8_t *out) {
  size_t n = 0;
  for (; h[0] && h[1]; h += 2) {
    unsigned v;
    sscanf(h, "%2x", &v);
    out[n++] = (uint8_t)v;
  }
  return n;
}

static void test_murmur3_vectors(void **state) {
  (void)state;
  static const struct {
    const char *hex;
    int64_t token;
  } v[] = {
      {"00000001", -4069959284402364209LL},
      {"0000000000000001", 6292367497774912474LL},
      {"61", -8839064797231613815LL},
      {"616263", -5434086359492102041LL},
      {"68656c6c6f20776f726c64", 5998619086395760910LL},
      {"80ff01", -7090167600805946407LL},
      {"000102030405060708090a0b0c0d0e0f", 4920504430128807728LL},
      {"000873656e736f722d3100000401" "34d6e500", 6511822321561555761LL},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    uint8_t buf[64];
    size_t n = unhex(v[i].hex, buf);
    assert_true(sl_cql_murmur3_token(buf, n) == v[i].token);
  }
}

static void test_header(void **state) {
  (void)state;
  sl_buf_t b;
  sl_buf_init(&b);
  size_t f = cql_frame_begin(&b, 0x84, 0, 7, CQL_OP_RESULT);
  cql_write_int(&b, CQL_RESULT_VOID);
  cql_frame_finish(&b, f);
  cql_header_t h;
  assert_int_equal(cql_parse_header(b.data, 8, CQL_MAX_BODY, &h), CQL_HEADER_NEED_MORE);
  assert_int_equal(cql_parse_header(b.data, b.len, CQL_MAX_BODY, &h), CQL_HEADER_OK);
  assert_int_equal(h.version, 0x84);
  assert_int_equal(h.stream, 7);
  assert_int_equal(h.opcode, CQL_OP_RESULT);
  assert_int_equal(h.length, 4);
  assert_int_equal(cql_parse_header(b.data, b.len, 3, &h), CQL_HEADER_TOO_LARGE);
  sl_buf_free(&b);
}

static void test_notations(void **state) {
  (void)state;
  sl_buf_t b;
  sl_buf_init(&b);
  cql_write_cstring(&b, "hello");
  cql_write_long_string(&b, "SELECT 1", 8);
  cql_write_bytes(&b, NULL, 0);
  cql_write_bytes(&b, "xy", 2);
  cql_write_int(&b, -2); /* unset value */
  cql_write_short_bytes(&b, "\x01\x02", 2);
  sl_reader_t r;
  sl_reader_init(&r, b.data, b.len);
  assert_true(cql_slice_eq(cql_read_string(&r), "hello"));
  assert_true(cql_slice_eq(cql_read_long_string(&r), "SELECT 1"));
  bool null;
  cql_read_bytes(&r, &null);
  assert_true(null);
  assert_true(cql_slice_eq(cql_read_bytes(&r, &null), "xy"));
  assert_false(null);
  assert_int_equal(cql_read_value(&r).kind, CQL_VALUE_UNSET);
  assert_int_equal(cql_read_short_bytes(&r).len, 2);
  assert_false(r.err);
  assert_int_equal(sl_reader_remaining(&r), 0);
  /* reading past the end sets err and never returns a pointer outside the buffer */
  sl_slice_t s = cql_read_string(&r);
  assert_true(r.err);
  assert_null(s.ptr);
  sl_buf_free(&b);

  /* a length larger than the bytes left is an error, not an allocation */
  uint8_t bad[] = {0x7f, 0xff, 0xff, 0xff, 'a'};
  sl_reader_init(&r, bad, sizeof bad);
  cql_read_long_string(&r);
  assert_true(r.err);
  uint8_t neg[] = {0xff, 0xff, 0xff, 0xfd};
  sl_reader_init(&r, neg, sizeof neg);
  cql_read_value(&r);
  assert_true(r.err);
  /* a [string map] count bounded by what is left */
  uint8_t many[] = {0xff, 0xff, 0, 1, 'k'};
  sl_reader_init(&r, many, sizeof many);
  cql_read_list_count(&r, 4);
  assert_true(r.err);
}

static void test_string_map(void **state) {
  (void)state;
  sl_buf_t b;
  sl_buf_init(&b);
  cql_write_short(&b, 2);
  cql_write_cstring(&b, "CQL_VERSION");
  cql_write_cstring(&b, "3.0.0");
  cql_write_cstring(&b, "COMPRESSION");
  cql_write_cstring(&b, "lz4");
  sl_reader_t r;
  sl_reader_init(&r, b.data, b.len);
  sl_slice_t v;
  assert_true(cql_string_map_get(&r, "COMPRESSION", &v));
  assert_true(cql_slice_eq(v, "lz4"));
  assert_false(cql_string_map_get(&r, "NOPE", &v));
  assert_int_equal(r.pos, 0);
  sl_buf_free(&b);
}

static void check_type_name(const char *in, const char *expect) {
  sl_cql_type_t *t;
  assert_int_equal(sl_cql_type_parse(in, strlen(in), &t), 0);
  sl_buf_t b;
  sl_buf_init(&b);
  sl_cql_type_name(t, &b);
  sl_buf_put_u8(&b, 0);
  assert_string_equal((char *)b.data, expect);
  sl_cql_type_t *c = sl_cql_type_copy(t);
  assert_true(sl_cql_type_equal(t, c));
  sl_cql_type_free(c);
  sl_cql_type_free(t);
  sl_buf_free(&b);
}

static void test_type_names(void **state) {
  (void)state;
  check_type_name("int", "int");
  check_type_name("VARCHAR", "text");
  check_type_name("map<text,int>", "map<text, int>");
  check_type_name("frozen< list<frozen<set<uuid>>> >", "frozen<list<frozen<set<uuid>>>>");
  check_type_name("tuple<int, text>", "frozen<tuple<int, text>>");
  check_type_name("'org.apache.cassandra.db.marshal.DurationType'", "duration");
  sl_cql_type_t *t;
  assert_int_equal(sl_cql_type_parse("map<int>", 8, &t), -EINVAL);
  assert_int_equal(sl_cql_type_parse("int>", 4, &t), -EINVAL);
  assert_int_equal(sl_cql_type_parse("nosuch", 6, &t), -EINVAL);
  /* options: map<text, int> = 0x21 0x0d 0x09 */
  assert_int_equal(sl_cql_type_parse("map<text, int>", 14, &t), 0);
  sl_buf_t b;
  sl_buf_init(&b);
  sl_cql_type_write_option(&b, t);
  uint8_t expect[] = {0, 0x21, 0, 0x0d, 0, 0x09};
  assert_int_equal(b.len, sizeof expect);
  assert_memory_equal(b.data, expect, sizeof expect);
  sl_cql_type_free(t);
  sl_buf_free(&b);
}

static void test_validate(void **state) {
  (void)state;
  sl_cql_type_t *i = sl_cql_type_new(CQL_TYPE_INT), *txt = sl_cql_type_new(CQL_TYPE_VARCHAR);
  assert_null(sl_cql_value_validate(i, (const uint8_t *)"\0\0\0\1", 4));
  assert_null(sl_cql_value_validate(i, NULL, 0));
  assert_non_null(sl_cql_value_validate(i, (const uint8_t *)"\0\0\0\0\0\0\0\1", 8));
  assert_null(sl_cql_value_validate(txt, (const uint8_t *)"h\xc3\xa9", 3));
  assert_non_null(sl_cql_value_validate(txt, (const uint8_t *)"h\xc3", 2));
  assert_non_null(sl_cql_value_validate(txt, (const uint8_t *)"\xff", 1));
  sl_cql_type_t *l;
  assert_int_equal(sl_cql_type_parse("list<int>", 9, &l), 0);
  uint8_t ok[] = {0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 9};
  uint8_t bad[] = {0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 9};
  uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff};
  assert_null(sl_cql_value_validate(l, ok, sizeof ok));
  assert_non_null(sl_cql_value_validate(l, bad, sizeof bad));
  assert_non_null(sl_cql_value_validate(l, huge, sizeof huge));
  sl_cql_type_free(l);
  sl_cql_type_free(i);
  sl_cql_type_free(txt);
}

static void test_text_forms(void **state) {
  (void)state;
  uint8_t u[16];
  char s[37];
  assert_int_equal(sl_cql_parse_uuid("123e4567-e89b-12d3-a456-426614174000", 36, u), 0);
  sl_cql_format_uuid(u, s);
  assert_string_equal(s, "123e4567-e89b-12d3-a456-426614174000");
  assert_int_equal(sl_cql_parse_uuid("123e4567-e89b-12d3-a456-42661417400g", 36, u), -EINVAL);
  int64_t ms;
  assert_int_equal(sl_cql_parse_timestamp("1970-01-01", 10, &ms), 0);
  assert_true(ms == 0);
  const char *ts = "2024-01-02T03:04:05.678Z";
  assert_int_equal(sl_cql_parse_timestamp(ts, strlen(ts), &ms), 0);
  assert_true(ms == 1704164645678LL);
  ts = "2024-01-02 04:04:05+0100";
  assert_int_equal(sl_cql_parse_timestamp(ts, strlen(ts), &ms), 0);
  assert_true(ms == 1704164645000LL);
  uint32_t d;
  assert_int_equal(sl_cql_parse_date("1970-01-02", 10, &d), 0);
  assert_int_equal(d, (1u << 31) + 1);
  int64_t ns;
  assert_int_equal(sl_cql_parse_time("01:00:00.5", 10, &ns), 0);
  assert_true(ns == 3600500000000LL);
  assert_int_equal(sl_cql_parse_inet("127.0.0.1", 9, u), 4);
  assert_int_equal(sl_cql_parse_inet("::1", 3, u), 16);
  uint8_t vb[9];
  int64_t back;
  assert_int_equal(sl_cql_varint_encode(128, vb), 2);
  assert_int_equal(vb[0], 0);
  assert_int_equal(vb[1], 0x80);
  assert_int_equal(sl_cql_varint_encode(-129, vb), 2);
  assert_int_equal(vb[0], 0xff);
  assert_int_equal(vb[1], 0x7f);
  assert_int_equal(sl_cql_varint_decode(vb, 2, &back), 0);
  assert_true(back == -129);
}

/* duration: zigzag vints (Cassandra's VIntCoding), literals in both forms, malformed values refused */
static void test_duration(void **state) {
  (void)state;
  uint8_t b[27];
  assert_int_equal(sl_cql_duration_encode(1, 2, 3, b), 3);
  assert_memory_equal(b, "\x02\x04\x06", 3);
  size_t n = sl_cql_duration_encode(0, 0, -64, b); /* zigzag 127: one byte */
  assert_int_equal(n, 3);
  assert_int_equal(b[2], 0x7f);
  n = sl_cql_duration_encode(0, 0, 64, b); /* zigzag 128: two bytes, 10xxxxxx */
  assert_int_equal(n, 4);
  assert_memory_equal(b + 2, "\x80\x80", 2);
  n = sl_cql_duration_encode(INT32_MIN, 0, INT64_MIN, b);
  int32_t mo, d;
  int64_t ns;
  assert_int_equal(sl_cql_duration_decode(b, n, &mo, &d, &ns), 0);
  assert_int_equal(mo, INT32_MIN);
  assert_true(ns == INT64_MIN);
  assert_int_equal(b[6], 0xff); /* months: 5 bytes, days: 1, nanoseconds: the 9-byte form */
  for (size_t k = 0; k < n; k++) assert_int_not_equal(sl_cql_duration_decode(b, k, &mo, &d, &ns), 0);
  assert_non_null(sl_cql_value_validate(&(sl_cql_type_t){.id = CQL_TYPE_DURATION}, (const uint8_t *)"\x02\x04", 2));
  n = sl_cql_duration_encode(1, -1, 0, b); /* mixed signs are invalid */
  assert_int_not_equal(sl_cql_duration_decode(b, n, &mo, &d, &ns), 0);
  assert_int_equal(sl_cql_parse_duration("1h30m", 5, &mo, &d, &ns), 0);
  assert_true(mo == 0 && d == 0 && ns == 5400000000000LL);
  assert_int_equal(sl_cql_parse_duration("-P1Y2MT3S", 9, &mo, &d, &ns), 0);
  assert_true(mo == -14 && d == 0 && ns == -3000000000LL);
  assert_int_equal(sl_cql_parse_duration("2w1d7us", 7, &mo, &d, &ns), 0);
  assert_true(d == 15 && ns == 7000);
  assert_int_not_equal(sl_cql_parse_duration("1q", 2, &mo, &d, &ns), 0);
  assert_int_not_equal(sl_cql_parse_duration("P", 1, &mo, &d, &ns), 0);
  /* ISO 8601's alternative format */
  assert_int_equal(sl_cql_parse_duration("P0001-02-03T04:05:06", 20, &mo, &d, &ns), 0);
  assert_true(mo == 14 && d == 3 && ns == ((4 * 60 + 5) * 60 + 6) * 1000000000LL);
  assert_int_equal(sl_cql_parse_duration("-P0000-00-01T00:00:00", 21, &mo, &d, &ns), 0);
  assert_true(mo == 0 && d == -1 && ns == 0);
  assert_int_not_equal(sl_cql_parse_duration("P0001-02-03T04:05:6x", 20, &mo, &d, &ns), 0);
  assert_int_not_equal(sl_cql_parse_duration("99999999999999999999h", 21, &mo, &d, &ns), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_murmur3_vectors), cmocka_unit_test(test_header),     cmocka_unit_test(test_notations),
      cmocka_unit_test(test_string_map),      cmocka_unit_test(test_type_names), cmocka_unit_test(test_validate),
      cmocka_unit_test(test_text_forms),      cmocka_unit_test(test_duration),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
