/* Unit tests for the flusher: group commit on a real uv loop, callbacks on the loop thread, shutdown. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

// clang-format off: cmocka.h needs the headers above first
#include <cmocka.h>
// clang-format on

#include "core/log.h"
#include "log/flusher.h"
#include "test_log_util.h"

typedef struct {
  int calls;
  int status;
  pthread_t thread;
} waiter_t;

static void flush_cb(void *arg, int status) {
  waiter_t *w = arg;
  w->calls++;
  w->status = status;
  w->thread = pthread_self();
}

static void test_group_commit(void **state) {
  sl_log_set_level(SL_LOG_ERROR);
  char *dir = tl_mkdtemp();
  char *d0 = tl_path(dir, "a-0"), *d1 = tl_path(dir, "a-1");
  sl_partition_t *p0, *p1;
  assert_int_equal(sl_partition_open(d0, NULL, &p0), 0);
  assert_int_equal(sl_partition_open(d1, NULL, &p1), 0);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  sl_flusher_t *f;
  assert_int_equal(sl_flusher_create(&loop, &f), 0);

  sl_buf_t b;
  sl_buf_init(&b);
  waiter_t w[5] = {0};
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 5; i++) {
      tl_make_batch(&b, 1, 1, 1, 10);
      int64_t base;
      assert_int_equal(sl_partition_append(i % 2 ? p1 : p0, b.data, b.len, &base), 0);
      sl_flusher_request(f, i % 2 ? p1 : p0, flush_cb, &w[i]);
    }
    /* The flusher holds references until the callbacks ran. */
    for (int spins = 0; spins < 1000; spins++) {
      int done = 0;
      for (int i = 0; i < 5; i++) done += w[i].calls;
      if (done == 5 * (round + 1)) break;
      uv_run(&loop, UV_RUN_ONCE);
    }
    for (int i = 0; i < 5; i++) {
      assert_int_equal(w[i].calls, round + 1);
      assert_int_equal(w[i].status, 0);
      assert_true(pthread_equal(w[i].thread, pthread_self()));
    }
  }
  /* Requests racing shutdown: each callback runs exactly once, durable or cancelled. */
  waiter_t late[3] = {0};
  for (int i = 0; i < 3; i++) sl_flusher_request(f, p0, flush_cb, &late[i]);
  sl_flusher_destroy(f);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(late[i].calls, 1);
    assert_true(late[i].status == 0 || late[i].status == -ECANCELED);
  }
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0); /* runs the close callback that frees the flusher */
  assert_int_equal(uv_loop_close(&loop), 0);

  assert_int_equal(sl_partition_log_end_offset(p0), 6);
  assert_int_equal(sl_partition_log_end_offset(p1), 4);
  sl_partition_release(p0);
  sl_partition_release(p1);
  sl_buf_free(&b);
  free(d0);
  free(d1);
  tl_rmtree(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_group_commit)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
