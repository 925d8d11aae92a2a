/* Unit tests for src/kafka/offset_store.c: commits are visible only once durable, survive a reopen, a torn or
 * corrupt tail is cut at the last whole record, and compaction keeps only the latest values. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kafka/group_internal.h"

static sl_slice_t S(const char *s) {
  return (sl_slice_t){(const uint8_t *)s, strlen(s)};
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

typedef struct {
  char dir[64];
  uv_loop_t loop;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof f->dir, "/tmp/sl-test-offsets-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  uv_loop_init(&f->loop);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  assert_int_equal(uv_loop_close(&f->loop), 0); /* nothing left open */
  nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

typedef struct {
  int calls;
  int status;
} done_t;

static void on_done(void *arg, int status) {
  done_t *d = arg;
  d->calls++;
  d->status = status;
}

static void commit1(fixture_t *f, sl_offset_store_t *s, const char *group, const char *topic, int32_t part,
                    int64_t offset, const char *meta) {
  sl_offset_commit_t c = {S(topic), part, offset, 5, meta ? S(meta) : (sl_slice_t){NULL, 0}};
  done_t d = {0};
  sl_offset_store_commit(s, S(group), &c, 1, on_done, &d);
  /* Not visible before the fsync completed. */
  assert_int_equal(d.calls, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(d.calls, 1);
  assert_int_equal(d.status, 0);
}

static void close_store(fixture_t *f, sl_offset_store_t *s) {
  sl_offset_store_close(s);
  uv_run(&f->loop, UV_RUN_DEFAULT);
}

static void test_commit_reopen(void **state) {
  fixture_t *f = *state;
  sl_offset_store_t *s;
  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  assert_null(sl_offset_store_get(s, S("g"), S("t"), 0));
  commit1(f, s, "g", "t", 0, 42, "meta");
  commit1(f, s, "g", "t", 1, 7, NULL);
  commit1(f, s, "g", "a", 3, 9, "");
  commit1(f, s, "g2", "t", 0, 100, NULL);
  commit1(f, s, "g", "t", 0, 43, "meta2"); /* overwrite */
  const sl_offset_entry_t *e = sl_offset_store_get(s, S("g"), S("t"), 0);
  assert_non_null(e);
  assert_int_equal(e->offset, 43);
  close_store(f, s);

  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  e = sl_offset_store_get(s, S("g"), S("t"), 0);
  assert_non_null(e);
  assert_int_equal(e->offset, 43);
  assert_int_equal(e->leader_epoch, 5);
  assert_string_equal(e->metadata, "meta2");
  e = sl_offset_store_get(s, S("g"), S("t"), 1);
  assert_non_null(e);
  assert_int_equal(e->offset, 7);
  assert_null(e->metadata);
  assert_int_equal(sl_offset_store_get(s, S("g2"), S("t"), 0)->offset, 100);
  assert_null(sl_offset_store_get(s, S("g3"), S("t"), 0));
  /* The group's list is sorted by (topic, partition). */
  const sl_offset_entry_t *list;
  size_t n = sl_offset_store_list(s, S("g"), &list);
  assert_int_equal(n, 3);
  assert_string_equal(list[0].topic, "a");
  assert_string_equal(list[1].topic, "t");
  assert_int_equal(list[1].partition, 0);
  assert_int_equal(list[2].partition, 1);
  assert_string_equal(list[0].metadata, "");
  close_store(f, s);
}

static void test_many_commits_share_fsync(void **state) {
  fixture_t *f = *state;
  sl_offset_store_t *s;
  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  done_t d[50] = {0};
  for (int i = 0; i < 50; i++) {
    sl_offset_commit_t c = {S("t"), i % 5, i, -1, {NULL, 0}};
    sl_offset_store_commit(s, S("g"), &c, 1, on_done, &d[i]);
  }
  uv_run(&f->loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 50; i++) assert_int_equal(d[i].calls, 1);
  for (int p = 0; p < 5; p++) assert_int_equal(sl_offset_store_get(s, S("g"), S("t"), p)->offset, 45 + p);
  close_store(f, s);
}

static void test_torn_tail(void **state) {
  fixture_t *f = *state;
  sl_offset_store_t *s;
  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  commit1(f, s, "g", "t", 0, 1, NULL);
  commit1(f, s, "g", "t", 0, 2, NULL);
  uint64_t good = sl_offset_store_file_bytes(s);
  commit1(f, s, "g", "t", 0, 3, NULL);
  uint64_t full = sl_offset_store_file_bytes(s);
  close_store(f, s);

  char path[128];
  snprintf(path, sizeof path, "%s/offsets.log", f->dir);
  /* Cut the last record in half: as if the process died mid-write. */
  assert_int_equal(truncate(path, (off_t)(good + (full - good) / 2)), 0);
  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  assert_int_equal(sl_offset_store_get(s, S("g"), S("t"), 0)->offset, 2);
  assert_int_equal(sl_offset_store_file_bytes(s), good);
  /* Appends go after the cut, and replay sees them. */
  commit1(f, s, "g", "t", 0, 4, NULL);
  close_store(f, s);

  /* Flip a byte inside the last record: its CRC fails and it goes too. */
  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  assert_int_equal(sl_offset_store_get(s, S("g"), S("t"), 0)->offset, 4);
  uint64_t before_last = sl_offset_store_file_bytes(s);
  commit1(f, s, "g", "t", 0, 5, NULL);
  close_store(f, s);
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  uint8_t byte;
  assert_int_equal(pread(fd, &byte, 1, (off_t)before_last + 12), 1);
  byte ^= 0xff;
  assert_int_equal(pwrite(fd, &byte, 1, (off_t)before_last + 12), 1);
  /* And garbage after it. */
  struct stat st;
  fstat(fd, &st);
  assert_int_equal(pwrite(fd, "garbage!", 8, st.st_size), 8);
  close(fd);
  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  assert_int_equal(sl_offset_store_get(s, S("g"), S("t"), 0)->offset, 4);
  assert_int_equal(sl_offset_store_file_bytes(s), before_last);
  close_store(f, s);

  /* A file that is nothing but a few bytes of header. */
  fd = open(path, O_WRONLY | O_TRUNC);
  assert_int_equal(write(fd, "\0\0", 2), 2);
  close(fd);
  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  assert_null(sl_offset_store_get(s, S("g"), S("t"), 0));
  assert_int_equal(sl_offset_store_file_bytes(s), 0);
  close_store(f, s);
}

static void test_compaction(void **state) {
  fixture_t *f = *state;
  sl_offset_store_t *s;
  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  sl_offset_store_set_compact_bytes(s, 4096);
  for (int i = 0; i < 400; i++) {
    sl_offset_commit_t c[2] = {{S("topic"), 0, i, -1, S("m")}, {S("topic"), 1, 1000 + i, -1, {NULL, 0}}};
    done_t d = {0};
    sl_offset_store_commit(s, S("grp"), c, 2, on_done, &d);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(d.status, 0);
  }
  /* 400 commits of ~80 bytes would be 32 KiB; compaction keeps it near the threshold. */
  assert_true(sl_offset_store_file_bytes(s) < 8192);
  assert_int_equal(sl_offset_store_get(s, S("grp"), S("topic"), 0)->offset, 399);
  close_store(f, s);
  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  assert_int_equal(sl_offset_store_get(s, S("grp"), S("topic"), 0)->offset, 399);
  assert_string_equal(sl_offset_store_get(s, S("grp"), S("topic"), 0)->metadata, "m");
  assert_int_equal(sl_offset_store_get(s, S("grp"), S("topic"), 1)->offset, 1399);
  assert_null(sl_offset_store_get(s, S("grp"), S("topic"), 1)->metadata);
  close_store(f, s);
}

static void test_compaction_on_open(void **state) {
  fixture_t *f = *state;
  sl_offset_store_t *s;
  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  for (int i = 0; i < 2000; i++) {
    sl_offset_commit_t c = {S("t"), 0, i, -1, {NULL, 0}};
    done_t d = {0};
    sl_offset_store_commit(s, S("g"), &c, 1, on_done, &d);
    uv_run(&f->loop, UV_RUN_DEFAULT);
  }
  uint64_t big = sl_offset_store_file_bytes(s);
  assert_true(big > 64 * 1024);
  close_store(f, s);
  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  assert_true(sl_offset_store_file_bytes(s) < 200);
  assert_int_equal(sl_offset_store_get(s, S("g"), S("t"), 0)->offset, 1999);
  close_store(f, s);
}

static void test_close_cancels_queued(void **state) {
  fixture_t *f = *state;
  sl_offset_store_t *s;
  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  done_t d1 = {0}, d2 = {0};
  sl_offset_commit_t c = {S("t"), 0, 1, -1, {NULL, 0}};
  sl_offset_store_commit(s, S("g"), &c, 1, on_done, &d1); /* starts a job */
  sl_offset_store_commit(s, S("g"), &c, 1, on_done, &d2); /* waits for the next one */
  sl_offset_store_close(s);
  assert_int_equal(d2.calls, 1);
  assert_int_equal(d2.status, -ECANCELED);
  uv_run(&f->loop, UV_RUN_DEFAULT); /* the running job completes, then the store frees itself */
  assert_int_equal(d1.calls, 1);
  assert_int_equal(d1.status, 0);
}

/* A deletion is a frame of its own: durable when acknowledged, replayed in order (a later commit brings the group
 * back), and gone from a compacted file. */
static void test_delete_group(void **state) {
  fixture_t *f = *state;
  sl_offset_store_t *s;
  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0);
  commit1(f, s, "gone", "t", 0, 5, NULL);
  commit1(f, s, "back", "t", 0, 6, NULL);
  commit1(f, s, "kept", "t", 0, 7, NULL);
  assert_true(sl_offset_store_newest_commit_ms(s, S("gone")) > 0);
  done_t d = {0};
  sl_offset_store_delete_group(s, S("gone"), on_done, &d);
  sl_offset_store_delete_group(s, S("back"), on_done, &d);
  assert_non_null(sl_offset_store_get(s, S("gone"), S("t"), 0)); /* not before it is durable */
  assert_true(sl_offset_store_pending(s, S("gone")) && sl_offset_store_pending(s, S("back")));
  assert_false(sl_offset_store_pending(s, S("kept")) || sl_offset_store_pending(s, S("gon")));
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(d.calls, 2);
  assert_int_equal(d.status, 0);
  assert_null(sl_offset_store_get(s, S("gone"), S("t"), 0));
  assert_int_equal(sl_offset_store_newest_commit_ms(s, S("gone")), INT64_MIN);
  assert_false(sl_offset_store_pending(s, S("gone")));
  commit1(f, s, "back", "t", 1, 8, NULL);
  close_store(f, s);

  assert_int_equal(sl_offset_store_open(&f->loop, f->dir, &s), 0); /* replayed */
  assert_null(sl_offset_store_get(s, S("gone"), S("t"), 0));
  assert_null(sl_offset_store_get(s, S("back"), S("t"), 0));
  assert_int_equal(sl_offset_store_get(s, S("back"), S("t"), 1)->offset, 8);
  assert_int_equal(sl_offset_store_get(s, S("kept"), S("t"), 0)->offset, 7);
  close_store(f, s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_commit_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_commits_share_fsync, setup, teardown),
      cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compaction_on_open, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_cancels_queued, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delete_group, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
