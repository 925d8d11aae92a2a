/* The store's executor thread: every request that touches the catalogue or RocksDB runs here, in arrival order,
 * so the event loop never blocks on disk and the engine needs no locks.
 *
 *   loop thread                         executor thread
 *   sl_worker_submit(job) --queue--->   sl_engine_execute(job)
 *   done_cb(job)  <--uv_async_send---   (done queue)
 *
 * Jobs are FIFO, so a connection's requests complete in the order it sent them. Writes are group-committed: the
 * executor runs the jobs queued behind each other, fsyncs the WAL once, then delivers the group (worker.c). */
#ifndef SL_STORE_WORKER_H
#define SL_STORE_WORKER_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store/engine.h"

typedef struct sl_store_job sl_store_job_t;
struct sl_store_job {
  sl_store_job_t *next;
  void *conn;            /* the server's connection; opaque here */
  sl_session_t *session; /* touched only by the executor thread while the job is queued or running */
  uint8_t opcode;
  int16_t stream;
  uint8_t *body; /* owned (malloc) */
  size_t len;
  sl_exec_result_t res;
};

typedef struct sl_worker sl_worker_t;
typedef void (*sl_worker_done_cb)(void *arg, sl_store_job_t *job);

int sl_worker_start(uv_loop_t *loop, sl_engine_t *engine, sl_worker_done_cb done, void *arg, sl_worker_t **out);
void sl_worker_submit(sl_worker_t *w, sl_store_job_t *job);
/* Finishes queued jobs, joins the thread, delivers the remaining completions, and closes the async handle (the
 * worker is freed when the loop runs its close callback). */
void sl_worker_stop(sl_worker_t *w);

#endif
