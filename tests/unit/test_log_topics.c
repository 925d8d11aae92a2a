/* Unit tests for the topic registry: create, find, delete, reopen, name rules, directory layout and leftovers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

// clang-format off: cmocka.h needs the headers above first
#include <cmocka.h>
// clang-format on

#include "core/log.h"
#include "log/topics.h"
#include "test_log_util.h"

static int setup(void **state) {
  sl_log_set_level(SL_LOG_ERROR);
  *state = tl_mkdtemp();
  return 0;
}

static int teardown(void **state) {
  tl_rmtree(*state);
  return 0;
}

static sl_topics_t *open_topics(const char *dir) {
  sl_log_config_t cfg;
  sl_log_config_defaults(&cfg);
  sl_topics_t *t = NULL;
  assert_int_equal(sl_topics_open(dir, &cfg, &t), 0);
  return t;
}

static void test_name_rules(void **state) {
  assert_true(sl_topic_name_valid("orders", 6));
  assert_true(sl_topic_name_valid("a.b_c-D9", 8));
  assert_false(sl_topic_name_valid("", 0));
  assert_false(sl_topic_name_valid(".", 1));
  assert_false(sl_topic_name_valid("..", 2));
  assert_true(sl_topic_name_valid("...", 3));
  assert_false(sl_topic_name_valid("a/b", 3));
  assert_false(sl_topic_name_valid("a b", 3));
  assert_false(sl_topic_name_valid("caf\xc3\xa9", 5));
  char longname[251];
  memset(longname, 'x', sizeof longname);
  assert_true(sl_topic_name_valid(longname, 249));
  assert_false(sl_topic_name_valid(longname, 250));
  /* len is authoritative: no NUL needed, and a NUL inside is invalid. */
  assert_true(sl_topic_name_valid("abcdef", 3));
  assert_false(sl_topic_name_valid("ab\0cd", 5));
}

static void test_create_find_delete_reopen(void **state) {
  const char *dir = *state;
  sl_topics_t *t = open_topics(dir);
  assert_int_equal(sl_topics_count(t), 0);
  sl_topic_t *tp = NULL;
  assert_int_equal(sl_topics_create(t, "zeta", 4, 2, &tp), 0);
  assert_non_null(tp);
  assert_string_equal(tp->name, "zeta");
  assert_int_equal(tp->partition_count, 2);
  assert_int_equal(sl_topics_create(t, "my-topic", 8, 3, NULL), 0);
  assert_int_equal(sl_topics_create(t, "alpha", 5, 1, NULL), 0);
  assert_int_equal(sl_topics_create(t, "alpha", 5, 1, NULL), -EEXIST);
  assert_int_equal(sl_topics_create(t, "bad/name", 8, 1, NULL), -EINVAL);
  assert_int_equal(sl_topics_create(t, "..", 2, 1, NULL), -EINVAL);
  assert_int_equal(sl_topics_create(t, "nopart", 6, 0, NULL), -EINVAL);
  assert_int_equal(sl_topics_create(t, "toomany", 7, 100000, NULL), -EINVAL);
  assert_int_equal(sl_topics_count(t), 3);
  /* Sorted iteration. */
  assert_string_equal(sl_topics_at(t, 0)->name, "alpha");
  assert_string_equal(sl_topics_at(t, 1)->name, "my-topic");
  assert_string_equal(sl_topics_at(t, 2)->name, "zeta");
  /* Find by (ptr, len) without NUL termination. */
  assert_ptr_equal(sl_topics_find(t, "zetaXYZ", 4), tp);
  assert_null(sl_topics_find(t, "zet", 3));
  assert_null(sl_topics_find(t, "missing", 7));
  assert_true(tl_exists(dir, "topics/my-topic-0"));
  assert_true(tl_exists(dir, "topics/my-topic-2"));
  assert_true(tl_exists(dir, "topics/my-topic-0/00000000000000000000.log"));

  /* Data written to a partition survives a reopen. */
  sl_topic_t *mt = sl_topics_find(t, "my-topic", 8);
  sl_buf_t b;
  sl_buf_init(&b);
  tl_make_batch(&b, 4, 1, 1, 20);
  int64_t base;
  assert_int_equal(sl_partition_append(mt->partitions[1], b.data, b.len, &base), 0);
  assert_int_equal(base, 0);
  sl_buf_free(&b);

  assert_int_equal(sl_topics_delete(t, "zeta", 4), 0);
  assert_int_equal(sl_topics_delete(t, "zeta", 4), -ENOENT);
  assert_null(sl_topics_find(t, "zeta", 4));
  assert_false(tl_exists(dir, "topics/zeta-0"));
  assert_false(tl_exists(dir, "topics/zeta-1"));
  assert_int_equal(sl_topics_count(t), 2);
  sl_topics_close(t);

  assert_true(tl_exists(dir, "topics/my-topic-1/.clean_shutdown"));
  t = open_topics(dir);
  assert_int_equal(sl_topics_count(t), 2);
  mt = sl_topics_find(t, "my-topic", 8);
  assert_non_null(mt);
  assert_int_equal(mt->partition_count, 3);
  assert_int_equal(sl_partition_log_end_offset(mt->partitions[1]), 4);
  assert_int_equal(sl_partition_log_end_offset(mt->partitions[0]), 0);
  assert_null(sl_topics_find(t, "zeta", 4));
  /* A deleted name can be created again, empty. */
  assert_int_equal(sl_topics_create(t, "my-topic", 8, 1, NULL), -EEXIST);
  assert_int_equal(sl_topics_delete(t, "my-topic", 8), 0);
  assert_int_equal(sl_topics_create(t, "my-topic", 8, 1, &tp), 0);
  assert_int_equal(sl_partition_log_end_offset(tp->partitions[0]), 0);
  sl_topics_enforce_retention(t, 0);
  sl_topics_close(t);
}

static void test_deleted_partition_kept_alive_by_reference(void **state) {
  const char *dir = *state;
  sl_topics_t *t = open_topics(dir);
  sl_topic_t *tp;
  assert_int_equal(sl_topics_create(t, "held", 4, 1, &tp), 0);
  sl_partition_t *p = tp->partitions[0];
  sl_partition_keep(p); /* e.g. a queued flush */
  assert_int_equal(sl_topics_delete(t, "held", 4), 0);
  assert_false(tl_exists(dir, "topics/held-0"));
  assert_int_equal(sl_partition_sync(p), 0); /* still usable */
  sl_partition_release(p);
  /* Nothing left in the topics dir but nothing else either. */
  sl_topics_close(t);
  t = open_topics(dir);
  assert_int_equal(sl_topics_count(t), 0);
  sl_topics_close(t);
}

static void test_open_skips_holes_and_removes_leftovers(void **state) {
  const char *dir = *state;
  sl_topics_t *t = open_topics(dir);
  sl_topics_close(t);
  char *p;
  const char *dirs[] = {"topics/holey-0", "topics/holey-2", "topics/gone-0.1234abcd.deleted",
                        "topics/ok-0",    "topics/ok-1",    "topics/not_a_partition"};
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    p = tl_path(dir, dirs[i]);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
  }
  p = tl_path(dir, "topics/gone-0.1234abcd.deleted/00000000000000000000.log");
  FILE *fp = fopen(p, "w");
  assert_non_null(fp);
  fclose(fp);
  free(p);
  t = open_topics(dir);
  assert_int_equal(sl_topics_count(t), 1);
  sl_topic_t *ok = sl_topics_find(t, "ok", 2);
  assert_non_null(ok);
  assert_int_equal(ok->partition_count, 2);
  assert_null(sl_topics_find(t, "holey", 5));
  assert_false(tl_exists(dir, "topics/gone-0.1234abcd.deleted"));
  sl_topics_close(t);
}

/* A topic's own settings and a grown partition count outlive a restart; a deleted topic leaves no settings behind
 * for a new topic of that name. */
static void test_overrides_and_added_partitions_reopen(void **state) {
  const char *dir = *state;
  sl_topics_t *t = open_topics(dir);
  sl_topic_overrides_t o;
  sl_topic_overrides_clear(&o);
  o.retention_ms = 60000;
  o.segment_bytes = 4096;
  sl_topic_t *tp = NULL;
  assert_int_equal(sl_topics_create_with(t, "tuned", 5, 1, &o, &tp), 0);
  assert_int_equal(sl_topics_add_partitions(t, "tuned", 5, 3), 0);
  assert_int_equal(sl_topics_add_partitions(t, "tuned", 5, 3), -EINVAL); /* not more than now */
  assert_int_equal(sl_topics_add_partitions(t, "nope", 4, 3), -ENOENT);
  assert_int_equal(tp->partition_count, 3);
  sl_topics_close(t);

  t = open_topics(dir);
  tp = sl_topics_find(t, "tuned", 5);
  assert_non_null(tp);
  assert_int_equal(tp->partition_count, 3);
  assert_int_equal(tp->overrides.retention_ms, 60000);
  assert_int_equal(tp->overrides.segment_bytes, 4096);
  assert_true(tp->overrides.retention_bytes == SL_TOPIC_UNSET);
  sl_topic_overrides_clear(&o);
  o.retention_bytes = 1;
  assert_int_equal(sl_topics_set_overrides(t, tp, &o), 0); /* replaces the whole set */
  sl_topics_close(t);

  t = open_topics(dir);
  tp = sl_topics_find(t, "tuned", 5);
  assert_true(tp->overrides.retention_ms == SL_TOPIC_UNSET);
  assert_int_equal(tp->overrides.retention_bytes, 1);
  assert_int_equal(sl_topics_delete(t, "tuned", 5), 0);
  assert_false(tl_exists(dir, "topics/tuned.config"));
  assert_int_equal(sl_topics_create(t, "tuned", 5, 1, &tp), 0);
  assert_true(tp->overrides.retention_bytes == SL_TOPIC_UNSET);
  sl_topics_close(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_name_rules),
      cmocka_unit_test_setup_teardown(test_create_find_delete_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deleted_partition_kept_alive_by_reference, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_skips_holes_and_removes_leftovers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_overrides_and_added_partitions_reopen, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
