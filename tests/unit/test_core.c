/* Unit tests for src/core: CRC-32C vectors, the bounded reader, varints, and the config table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/addr.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/crc32c.h"

static void test_crc32c_vectors(void **state) {
  (void)state;
  /* RFC 3720 B.4 test vectors and the standard check value */
  assert_int_equal(sl_crc32c(0, "123456789", 9), 0xE3069283u);
  uint8_t zeros[32] = {0}, ones[32], inc[32];
  memset(ones, 0xff, sizeof ones);
  for (int i = 0; i < 32; i++) inc[i] = (uint8_t)i;
  assert_int_equal(sl_crc32c(0, zeros, 32), 0x8A9136AAu);
  assert_int_equal(sl_crc32c(0, ones, 32), 0x62A8AB43u);
  assert_int_equal(sl_crc32c(0, inc, 32), 0x46DD794Eu);
  /* incremental == one shot, for every split point and odd lengths (exercises the 8-byte loop tails) */
  uint8_t big[1000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 31 + 7);
  uint32_t whole = sl_crc32c(0, big, sizeof big);
  for (size_t split = 0; split <= sizeof big; split += 37) {
    assert_int_equal(sl_crc32c(sl_crc32c(0, big, split), big + split, sizeof big - split), whole);
  }
}

static void test_reader_bounds(void **state) {
  (void)state;
  uint8_t data[] = {0x00, 0x01, 0x02, 0x03, 0x04};
  sl_reader_t r;
  sl_reader_init(&r, data, sizeof data);
  assert_int_equal(sl_read_be16(&r), 0x0001);
  assert_false(r.err);
  assert_int_equal(sl_read_be32(&r), 0); /* only 3 bytes left */
  assert_true(r.err);
  assert_null(sl_read_bytes(&r, 1)); /* sticky */
  assert_int_equal(sl_reader_remaining(&r), 0);
}

static void test_varints(void **state) {
  (void)state;
  int64_t values[] = {0, 1, -1, 63, -64, 64, 300, -300, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    sl_buf_t b;
    sl_buf_init(&b);
    sl_buf_put_varint(&b, values[i]);
    sl_reader_t r;
    sl_reader_init(&r, b.data, b.len);
    assert_true(sl_read_varint64(&r) == values[i]);
    assert_false(r.err);
    assert_int_equal(sl_reader_remaining(&r), 0);
    sl_buf_free(&b);
  }
  /* zigzag: -1 encodes as 1, 1 as 2 (Kafka record format) */
  sl_buf_t b;
  sl_buf_init(&b);
  sl_buf_put_varint(&b, -1);
  sl_buf_put_varint(&b, 1);
  assert_int_equal(b.data[0], 1);
  assert_int_equal(b.data[1], 2);
  sl_buf_free(&b);
  /* an unterminated varint longer than 5 bytes is an error for 32-bit reads */
  uint8_t bad[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  sl_reader_t r;
  sl_reader_init(&r, bad, sizeof bad);
  (void)sl_read_uvarint32(&r);
  assert_true(r.err);
}

typedef struct {
  char *name;
  int64_t count;
  bool flag;
  char *doc;
} demo_config_t;

static const sl_config_field_t demo_fields[] = {
    {"demo.name", SL_CONFIG_STRING, offsetof(demo_config_t, name), "x", 0, 0, "a name"},
    {"demo.count", SL_CONFIG_INT, offsetof(demo_config_t, count), "5", 0, 1000000000, "a count"},
    {"demo.nested.flag", SL_CONFIG_BOOL, offsetof(demo_config_t, flag), "false", 0, 0, "a flag"},
    {"things", SL_CONFIG_DOCUMENT, offsetof(demo_config_t, doc), NULL, 0, 0, "a list the role parses itself"},
};

static void test_config(void **state) {
  (void)state;
  demo_config_t cfg;
  sl_config_section_t sec[] = {{demo_fields, 4, &cfg}};
  assert_int_equal(sl_config_defaults(sec, 1), 0);
  assert_string_equal(cfg.name, "x");
  assert_int_equal(cfg.count, 5);
  char err[256];
  assert_int_equal(sl_config_set(sec, 1, "demo.count=2MiB", err, sizeof err), 0);
  assert_int_equal(cfg.count, 2 * 1024 * 1024);
  assert_int_not_equal(sl_config_set(sec, 1, "demo.count=abc", err, sizeof err), 0);
  assert_non_null(strstr(err, "not an integer"));
  assert_int_not_equal(sl_config_set(sec, 1, "demo.count=-1", err, sizeof err), 0);
  assert_int_not_equal(sl_config_set(sec, 1, "demo.nope=1", err, sizeof err), 0);
  assert_non_null(strstr(err, "unknown setting"));

  char path[] = "/tmp/sluice-config-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *yaml = "demo:\n  name: hello\n  count: 7s\n  nested:\n    flag: true\n";
  assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
  close(fd);
  assert_int_equal(sl_config_load_yaml(sec, 1, path, err, sizeof err), 0);
  assert_string_equal(cfg.name, "hello");
  assert_int_equal(cfg.count, 7000);
  assert_true(cfg.flag);
  assert_null(cfg.doc); /* no `things:` in the file */

  /* a document key: its value (any shape) is skipped and the file's path recorded; keys after it still apply */
  fd = open(path, O_WRONLY | O_TRUNC);
  const char *with_doc = "things:\n  - {a: 1, b: [x, y]}\n  - name: n\n    nested: {deep: [1, {k: v}]}\n"
                         "demo:\n  count: 9\n";
  assert_int_equal(write(fd, with_doc, strlen(with_doc)), (ssize_t)strlen(with_doc));
  close(fd);
  assert_int_equal(sl_config_load_yaml(sec, 1, path, err, sizeof err), 0);
  assert_string_equal(cfg.doc, path);
  assert_int_equal(cfg.count, 9);
  assert_string_equal(cfg.name, "hello");
  /* only at the top level: a nested key of the same name is an unknown setting */
  fd = open(path, O_WRONLY | O_TRUNC);
  const char *nested_doc = "demo:\n  things: [1, 2]\n";
  assert_int_equal(write(fd, nested_doc, strlen(nested_doc)), (ssize_t)strlen(nested_doc));
  close(fd);
  assert_int_not_equal(sl_config_load_yaml(sec, 1, path, err, sizeof err), 0);

  fd = open(path, O_WRONLY | O_TRUNC);
  const char *bad = "demo:\n  colour: red\n";
  assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
  close(fd);
  assert_int_not_equal(sl_config_load_yaml(sec, 1, path, err, sizeof err), 0);
  assert_non_null(strstr(err, "demo.colour"));
  unlink(path);
  sl_config_free(sec, 1);
}

static void test_addr_split(void **state) {
  (void)state;
  char host[64];
  int port;
  assert_int_equal(sl_addr_split("127.0.0.1:9092", host, sizeof host, &port), 0);
  assert_string_equal(host, "127.0.0.1");
  assert_int_equal(port, 9092);
  assert_int_equal(sl_addr_split("[::1]:0", host, sizeof host, &port), 0);
  assert_string_equal(host, "::1");
  assert_int_equal(port, 0);
  assert_int_not_equal(sl_addr_split("localhost", host, sizeof host, &port), 0);
  assert_int_not_equal(sl_addr_split("h:", host, sizeof host, &port), 0);
  assert_int_not_equal(sl_addr_split("h:65536", host, sizeof host, &port), 0);
  assert_int_not_equal(sl_addr_split(":80", host, sizeof host, &port), 0);
  assert_int_not_equal(sl_addr_split("h:8x", host, sizeof host, &port), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32c_vectors),
      cmocka_unit_test(test_reader_bounds),
      cmocka_unit_test(test_varints),
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_addr_split),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
