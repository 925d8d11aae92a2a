/* The stream processor's single-pass JSON decoder (src/stream/json_scan.c) against jansson: a corpus of valid and
 * invalid documents (escapes, \u sequences and surrogate pairs, UTF-8, numbers per RFC 8259, nesting depth,
 * duplicate keys, trailing bytes). Every document must map exactly as with jansson alone (same outcome, values,
 * dead-letter field and reason); the common valid ones must take the fast path; invalid ones never may. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "sources/sim.h"
#include "test_stream_json.h"
#include "up/examples.h"

static sl_pipeline_t *load(size_t *n) {
  sl_pipeline_t *p;
  char err[512];
  int rc = sl_pipelines_parse(sj_yaml, strlen(sj_yaml), "test", &p, n, err, sizeof err);
  if (rc) fprintf(stderr, "%s\n", err);
  assert_int_equal(rc, 0);
  assert_non_null(p->plan);
  return p;
}

static void check(const sl_pipeline_t *p, const char *doc, size_t len, int want_scan) {
  int scan_rc, rc;
  bool sound = sj_scan_sound(p, doc, len, &scan_rc);
  if (!sound) fprintf(stderr, "scanner accepted what jansson rejects: %.*s\n", (int)len, doc);
  assert_true(sound);
  if (want_scan >= 0 && scan_rc != want_scan)
    fprintf(stderr, "scan %d, expected %d: %.*s\n", scan_rc, want_scan, (int)len, doc);
  if (want_scan >= 0) assert_int_equal(scan_rc, want_scan);
  const char *diff = sj_compare(p, doc, len, &rc);
  if (diff) fprintf(stderr, "%s: %.*s\n", diff, (int)len, doc);
  assert_null(diff);
}

#define OK(doc) check(p, doc, sizeof(doc) - 1, SL_JSCAN_OK)
#define NO(doc) check(p, doc, sizeof(doc) - 1, SL_JSCAN_UNSURE)
#define ANY(doc) check(p, doc, sizeof(doc) - 1, -1) /* scanned, but the mapping asks jansson */

static void test_valid(void **state) {
  size_t n;
  sl_pipeline_t *p = load(&n);
  OK("{}");
  OK(" \t\r\n{ } \n");
  OK("{\"a\":{\"id\":\"d1\",\"f\":2.5},\"ts\":\"2024-05-01T10:40:00.250+02:00\",\"arr\":[\"zero\",{\"n\":\"42\"}],"
     "\"x\":3.25,\"ok\":\"yes\",\"s\":\"hello\",\"big\":123456789012345678}");
  OK("{\"a\":{\"id\":\"d\"},\"ts\":1714560000,\"x\":-0.0,\"big\":-0,\"n\":1}");
  OK("{\"a\":{\"id\":\"d\"},\"ts\":1714560000.123,\"x\":1e3,\"arr\":[1.5,{\"n\":7.0}]}");
  OK("{\"a\":{\"id\":\"d\"},\"ts\":\"1714560000123\",\"x\":1E-3,\"a2\":[[[[]]]],\"ok\":true}");
  OK("{\"a\":{\"id\":\"d\"},\"x\":0.1,\"f\":12345678901234567890.5,\"z\":[true,false,null,{}]}");
  OK("{\"a\":{\"id\":\"d\"},\"x\":123456.789012345678,\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}");
  OK("{\"a\":{\"id\":\"\\u00e9t\\u00C9\\u20AC\\ud83d\\ude00\"},\"s\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}");
  OK("{\"a\":{\"id\":\"d\",\"f\":1.7976931348623157e308},\"x\":4.9e-300,\"ok\":0}");
  NO("{\"a\":{\"id\":\"d\"},\"x\":4.9e-324}"); /* subnormal: strtod reports ERANGE, jansson decides */
  OK("{\"a\":{\"id\":\"d\"},\"x\":2.2250738585072014e-308,\"arr\":[\"t\",{\"n\":2147483647}]}");
  OK("{\"a\":{\"id\":\"d\"},\"x\":9007199254740993,\"big\":999999999999999999,\"ok\":false,\"d2\":\"2024-02-29\"}");
  OK("{\"a\":{\"id\":\"d\"},\"x\":null,\"s\":null,\"ts\":null}");
  OK("{\"a\":{\"id\":5},\"s\":12.5,\"arr\":[true]}");            /* text from numbers and booleans */
  OK("{\"a\":{\"id\":\"d\"},\"x\":-1}");                          /* filtered */
  OK("{\"a\":{\"id\":\"d\"},\"ts\":-86400001,\"x\":0.30000000000000004}");
  OK("{\"q\":{\"a\":{\"id\":\"nested elsewhere\"}},\"a\":{\"id\":\"d\",\"ids\":[{\"id\":1}]}}");
  OK("{\"a\":{\"id\":\"d\"},\"a.id\":\"not a path\",\"arr[1]\":0}");
  /* valid, but left to jansson */
  NO("{\"a\":{\"id\":\"d\"},\"k\\u0041\":1}");                   /* escaped key */
  NO("{\"a\":{\"id\":\"a\\u0000b\"}}");                          /* \u0000 */
  NO("{\"a\":{\"id\":\"d\"},\"big\":1234567890123456789}");     /* 19 digits */
  NO("{\"a\":{\"id\":\"d\"},\"x\":1e-400}");                     /* underflow */
  NO("[1,2]");                                                   /* not an object */
  ANY("{\"a\":{\"id\":{\"deep\":1}}}");                           /* an object where text is wanted */
  ANY("{\"a\":{\"id\":\"d\"},\"s\":[1,{\"b\":2}]}");
  /* valid, errors: the dead-letter reason comes from jansson's pass */
  ANY("{\"ts\":1714560000000}");
  ANY("{\"a\":{\"id\":\"d\"},\"n\":\"x\",\"arr\":[0,{\"n\":\"x\"}]}");
  ANY("{\"a\":{\"id\":\"d\"},\"arr\":[0,{\"n\":3000000000}]}");
  ANY("{\"a\":{\"id\":\"d\"},\"ok\":2}");
  ANY("{\"a\":{\"id\":\"d\"},\"id\":\"not-a-uuid\"}");
  sl_pipelines_free(p, n);
}

static void test_invalid(void **state) {
  size_t n;
  sl_pipeline_t *p = load(&n);
  const char *bad[] = {
      "", " ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "{\"a\":1 \"b\":2}", "{\"a\":1}}",
      "{\"a\":1} x", "{\"a\":1}\x00", "{'a':1}", "{a:1}", "{\"a\":[1,]}", "{\"a\":[,1]}", "{\"a\":[1 2]}",
      "{\"a\":01}", "{\"a\":-}", "{\"a\":-01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":1e+}",
      "{\"a\":+1}", "{\"a\":0x10}", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":1.5.2}", "{\"a\":1e999}",
      "{\"a\":-1e999}", "{\"a\":99999999999999999999}", "{\"a\":-99999999999999999999}", "{\"a\":tru}",
      "{\"a\":truex}", "{\"a\":nul}", "{\"a\":True}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
      "{\"a\":\"\\u12g4\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\ud800x\"}", "{\"a\":\"\\ud800\\u0041\"}",
      "{\"a\":\"\\udc00\"}", "{\"a\":\"\\udc00\\ud800\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"nl\nhere\"}",
      "{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xe0\x80\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}",
      "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xe2\x82\"}", "{\"a\":1,\"a\":2}",
      "{\"x\":{\"b\":1,\"b\":1}}", "{\"a\":\"unterminated}", "{\"a\":[1,2}", "{\"a\":{\"b\":1]}", "\xef\xbb\xbf{}",
      "{\"a\":1}\n\n{\"a\":2}", "{\"\xff\":1}", "{\"a\"\xc3\xa9:1}", "{\"a\":\"\\u00e9\\\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t len = strlen(bad[i]);
    if (strcmp(bad[i], "{\"a\":1}") == 0) len++; /* the embedded NUL */
    check(p, bad[i], len, SL_JSCAN_UNSURE);
    int rc;
    assert_null(sj_compare(p, bad[i], len, &rc));
    assert_int_equal(rc, SL_MAP_ERROR);
  }
  /* the NUL-terminated one above went in as "{\"a\":1}" + NUL */
  sl_pipelines_free(p, n);
}

static void test_depth(void **state) {
  size_t n;
  sl_pipeline_t *p = load(&n);
  char doc[8192];
  for (int depth = 1; depth <= 3000; depth = depth < 70 ? depth + 1 : depth * 2) {
    size_t k = 0;
    k += (size_t)snprintf(doc + k, sizeof doc - k, "{\"a\":{\"id\":\"d\"},\"z\":");
    for (int i = 0; i < depth && k + 8 < sizeof doc; i++) doc[k++] = '[';
    doc[k++] = '1';
    for (int i = 0; i < depth && k + 8 < sizeof doc; i++) doc[k++] = ']';
    doc[k++] = '}';
    check(p, doc, k, depth < SL_JSCAN_MAX_DEPTH ? SL_JSCAN_OK : SL_JSCAN_UNSURE);
    /* unbalanced at the same depth: always invalid */
    check(p, doc, k - 2, SL_JSCAN_UNSURE);
  }
  sl_pipelines_free(p, n);
}

static void test_many_keys(void **state) {
  size_t n;
  sl_pipeline_t *p = load(&n);
  static char doc[16384];
  for (int keys = 1; keys <= 600; keys = keys * 3 / 2 + 1) {
    size_t k = (size_t)snprintf(doc, sizeof doc, "{\"a\":{\"id\":\"d\"}");
    for (int i = 0; i < keys; i++) k += (size_t)snprintf(doc + k, sizeof doc - k, ",\"k%d\":%d", i, i);
    doc[k++] = '}';
    check(p, doc, k, keys + 1 <= SL_JSCAN_MAX_KEYS ? SL_JSCAN_OK : SL_JSCAN_UNSURE);
    /* a duplicate of the last key at the end */
    k--;
    k += (size_t)snprintf(doc + k, sizeof doc - k, ",\"k%d\":0}", keys - 1);
    check(p, doc, k, SL_JSCAN_UNSURE);
  }
  sl_pipelines_free(p, n);
}

static void test_numbers(void **state) {
  size_t n;
  sl_pipeline_t *p = load(&n);
  /* pseudo-random decimals of every shape against strtod, through the x (double) and s (text) columns */
  uint64_t r = 88172645463325252ULL;
  char doc[256];
  for (int i = 0; i < 20000; i++) {
    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
    int ndig = 1 + (int)(r % 19), point = (int)((r >> 8) % (unsigned)(ndig + 1)), ex = (int)((r >> 16) % 61) - 30;
    char num[64];
    size_t k = 0;
    if (r >> 63) num[k++] = '-';
    uint64_t q = r >> 20;
    for (int d = 0; d < ndig; d++) {
      if (d == point && d > 0) num[k++] = '.';
      num[k++] = (char)('0' + (d == 0 && ndig > 1 && point != 1 ? 1 + q % 9 : q % 10));
      q /= 10;
      if (!q) q = r;
    }
    if ((r >> 40) & 1) k += (size_t)snprintf(num + k, sizeof num - k, "e%d", ex);
    num[k] = 0;
    int len = snprintf(doc, sizeof doc, "{\"a\":{\"id\":\"d\",\"f\":%s},\"x\":%s,\"s\":%s}", num, num, num);
    check(p, doc, (size_t)len, -1);
  }
  sl_pipelines_free(p, n);
}

static void test_simulated_records(void **state) {
  /* every example pipeline on its simulator's records: the fast path taken, results identical to jansson's */
  static const struct {
    const char *example;
    sl_sim_profile_t profile;
  } cases[] = {{"vehicles", SL_SIM_VEHICLES}, {"wearables", SL_SIM_WEARABLES}, {"users", SL_SIM_USERS}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const char *yaml = sl_example_text(cases[c].example);
    assert_non_null(yaml);
    sl_pipeline_t *p;
    size_t n;
    char err[256];
    assert_int_equal(sl_pipelines_parse(yaml, strlen(yaml), cases[c].example, &p, &n, err, sizeof err), 0);
    sl_sim_t *sim;
    assert_int_equal(sl_sim_create(cases[c].profile, 50, 7, 1714564800000LL, 1000, &sim), 0);
    sl_buf_t key, val;
    sl_buf_init(&key);
    sl_buf_init(&val);
    size_t fast = 0;
    for (int i = 0; i < 500; i++) {
      sl_sim_next(sim, &key, &val);
      int scan_rc, rc;
      assert_true(sj_scan_sound(p, val.data, val.len, &scan_rc));
      fast += scan_rc == SL_JSCAN_OK;
      const char *diff = sj_compare(p, val.data, val.len, &rc);
      if (diff) fprintf(stderr, "%s: %s: %.*s\n", cases[c].example, diff, (int)val.len, (char *)val.data);
      assert_null(diff);
    }
    assert_int_equal(fast, 500);
    sl_buf_free(&key);
    sl_buf_free(&val);
    sl_sim_destroy(sim);
    sl_pipelines_free(p, n);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),   cmocka_unit_test(test_invalid), cmocka_unit_test(test_depth),
      cmocka_unit_test(test_many_keys), cmocka_unit_test(test_numbers), cmocka_unit_test(test_simulated_records),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
