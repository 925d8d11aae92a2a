/* The flusher thread: group commit of partition syncs, results handed back to the loop thread via uv_async_t.
 *
 *   loop thread                         flusher thread
 *   sl_flusher_request() --pending-->   takes ALL pending at once, sorts by partition,
 *                                       sl_partition_sync() once per distinct partition
 *   on_async(): runs cbs, releases  <--done-- (uv_async_send)
 *
 * A request queued while a sync runs waits for the next round, so every callback covers all data appended before
 * its request. */
#include "log/flusher.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

typedef struct sl_flush_req {
  struct sl_flush_req *next;
  sl_partition_t *p;
  sl_flush_cb cb;
  void *arg;
  int status;
} sl_flush_req_t;

struct sl_flusher {
  uv_async_t async; /* first, so the close callback can recover the struct */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  sl_flush_req_t *pending, **pending_tail; /* loop -> thread */
  sl_flush_req_t *done, **done_tail;       /* thread -> loop */
  bool stop;
};

static int cmp_req(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)(*(sl_flush_req_t *const *)a)->p, y = (uintptr_t)(*(sl_flush_req_t *const *)b)->p;
  return (x > y) - (x < y);
}

/* Syncs each distinct partition of a group once and records the status in every request. */
static void sync_group(sl_flush_req_t *list) {
  size_t n = 0;
  for (sl_flush_req_t *r = list; r; r = r->next) n++;
  sl_flush_req_t **v = malloc(n * sizeof *v);
  if (!v) { /* no memory to sort: sync per request, still correct */
    for (sl_flush_req_t *r = list; r; r = r->next) r->status = sl_partition_sync(r->p);
    return;
  }
  size_t i = 0;
  for (sl_flush_req_t *r = list; r; r = r->next) v[i++] = r;
  qsort(v, n, sizeof *v, cmp_req);
  for (i = 0; i < n;) {
    int status = sl_partition_sync(v[i]->p);
    size_t j = i;
    while (j < n && v[j]->p == v[i]->p) v[j++]->status = status;
    i = j;
  }
  free(v);
}

static void *flusher_main(void *arg) {
  sl_flusher_t *f = arg;
  pthread_mutex_lock(&f->mu);
  for (;;) {
    while (!f->stop && !f->pending) pthread_cond_wait(&f->cv, &f->mu);
    if (f->stop) break; /* what is still pending gets -ECANCELED in sl_flusher_destroy */
    sl_flush_req_t *group = f->pending;
    f->pending = NULL;
    f->pending_tail = &f->pending;
    pthread_mutex_unlock(&f->mu);

    sync_group(group);

    pthread_mutex_lock(&f->mu);
    *f->done_tail = group;
    while (*f->done_tail) f->done_tail = &(*f->done_tail)->next;
    uv_async_send(&f->async);
  }
  pthread_mutex_unlock(&f->mu);
  return NULL;
}

static void run_callbacks(sl_flush_req_t *list, int override) {
  while (list) {
    sl_flush_req_t *next = list->next;
    list->cb(list->arg, override ? override : list->status);
    sl_partition_release(list->p);
    free(list);
    list = next;
  }
}

static void on_async(uv_async_t *h) {
  sl_flusher_t *f = (sl_flusher_t *)h;
  pthread_mutex_lock(&f->mu);
  sl_flush_req_t *done = f->done;
  f->done = NULL;
  f->done_tail = &f->done;
  pthread_mutex_unlock(&f->mu);
  run_callbacks(done, 0);
}

static void on_close(uv_handle_t *h) {
  free(h); /* the flusher struct starts with the handle */
}

int sl_flusher_create(uv_loop_t *loop, sl_flusher_t **out) {
  sl_flusher_t *f = calloc(1, sizeof *f);
  if (!f) return -ENOMEM;
  f->pending_tail = &f->pending;
  f->done_tail = &f->done;
  int rc = uv_async_init(loop, &f->async, on_async);
  if (rc < 0) {
    free(f);
    return rc;
  }
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
  rc = pthread_create(&f->thread, NULL, flusher_main, f);
  if (rc != 0) {
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    uv_close((uv_handle_t *)&f->async, on_close);
    return -rc;
  }
  *out = f;
  return 0;
}

void sl_flusher_request(sl_flusher_t *f, sl_partition_t *p, sl_flush_cb cb, void *arg) {
  sl_flush_req_t *r = malloc(sizeof *r);
  if (!r) abort(); /* like sl_buf: out of memory is fatal */
  r->next = NULL;
  r->p = p;
  r->cb = cb;
  r->arg = arg;
  r->status = 0;
  sl_partition_keep(p);
  pthread_mutex_lock(&f->mu);
  *f->pending_tail = r;
  f->pending_tail = &r->next;
  pthread_cond_signal(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

void sl_flusher_destroy(sl_flusher_t *f) {
  if (!f) return;
  pthread_mutex_lock(&f->mu);
  f->stop = true;
  pthread_cond_signal(&f->cv);
  pthread_mutex_unlock(&f->mu);
  pthread_join(f->thread, NULL);
  /* The thread is gone: no locking needed. Finished syncs report their real status, the rest are cancelled. */
  run_callbacks(f->done, 0);
  run_callbacks(f->pending, -ECANCELED);
  f->done = f->pending = NULL;
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->cv);
  uv_close((uv_handle_t *)&f->async, on_close);
}
