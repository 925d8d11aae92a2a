/* The store's executor thread (see worker.h). */
#include "store/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "cql/proto.h"

struct sl_worker {
  uv_async_t async;
  sl_engine_t *engine;
  sl_worker_done_cb done;
  void *arg;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  sl_store_job_t *in_head, *in_tail;
  sl_store_job_t *out_head, *out_tail;
  bool stopping;
};

static void push(sl_store_job_t **head, sl_store_job_t **tail, sl_store_job_t *j) {
  j->next = NULL;
  if (*tail) (*tail)->next = j;
  else *head = j;
  *tail = j;
}

/* A group's execution time after which it stops taking jobs, syncs and replies: what group commit may add to the
 * latency of the group's first job. */
#define GROUP_BUDGET_NS 2000000

static sl_store_job_t *pop_locked(sl_worker_t *w) {
  sl_store_job_t *j = w->in_head;
  if (j) {
    w->in_head = j->next;
    if (!w->in_head) w->in_tail = NULL;
  }
  return j;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Group commit: jobs run back to back without waiting for the WAL fsync, then one fsync makes the whole group
 * durable and only then are its responses delivered. A group ends when the queue is empty or its budget is spent. */
static void *run(void *arg) {
  sl_worker_t *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->in_head && !w->stopping) pthread_cond_wait(&w->cv, &w->mu);
    sl_store_job_t *j = pop_locked(w);
    if (!j) break; /* stopping and drained */
    pthread_mutex_unlock(&w->mu);
    sl_store_job_t *group = NULL, *group_tail = NULL;
    sl_engine_group_begin(w->engine);
    int64_t start = now_ns();
    while (j) {
      sl_engine_execute(w->engine, j->session, j->opcode, j->body, j->len, &j->res);
      push(&group, &group_tail, j);
      if (now_ns() - start >= GROUP_BUDGET_NS) break;
      pthread_mutex_lock(&w->mu);
      j = pop_locked(w);
      pthread_mutex_unlock(&w->mu);
    }
    if (sl_engine_group_end(w->engine) != 0) {
      for (sl_store_job_t *g = group; g; g = g->next) { /* nothing of the group is durable: no acknowledgement */
        g->res.opcode = CQL_OP_ERROR;
        g->res.body.len = 0;
        cql_write_error_body(&g->res.body, CQL_ERR_SERVER, "the storage engine could not sync its write-ahead log");
        sl_buf_free(&g->res.event);
      }
    }
    pthread_mutex_lock(&w->mu);
    if (w->out_tail) w->out_tail->next = group;
    else w->out_head = group;
    w->out_tail = group_tail;
    uv_async_send(&w->async);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static void deliver(sl_worker_t *w) {
  pthread_mutex_lock(&w->mu);
  sl_store_job_t *j = w->out_head;
  w->out_head = w->out_tail = NULL;
  pthread_mutex_unlock(&w->mu);
  while (j) {
    sl_store_job_t *next = j->next;
    w->done(w->arg, j);
    j = next;
  }
}

static void on_async(uv_async_t *a) { deliver(a->data); }

static void on_closed(uv_handle_t *h) {
  sl_worker_t *w = h->data;
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  free(w);
}

int sl_worker_start(uv_loop_t *loop, sl_engine_t *engine, sl_worker_done_cb done, void *arg, sl_worker_t **out) {
  sl_worker_t *w = calloc(1, sizeof *w);
  if (!w) return -ENOMEM;
  w->engine = engine;
  w->done = done;
  w->arg = arg;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  int rc = uv_async_init(loop, &w->async, on_async);
  if (rc != 0) {
    free(w);
    return rc;
  }
  w->async.data = w;
  if ((rc = pthread_create(&w->thread, NULL, run, w)) != 0) {
    uv_close((uv_handle_t *)&w->async, on_closed);
    return -rc;
  }
  *out = w;
  return 0;
}

void sl_worker_submit(sl_worker_t *w, sl_store_job_t *job) {
  pthread_mutex_lock(&w->mu);
  push(&w->in_head, &w->in_tail, job);
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

void sl_worker_stop(sl_worker_t *w) {
  pthread_mutex_lock(&w->mu);
  w->stopping = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL); /* shutdown only: the queue is short and each job bounded */
  deliver(w);
  uv_close((uv_handle_t *)&w->async, on_closed);
}
