/* The flusher: a thread that makes appended data durable off the event loop, with group commit.
 *
 * Producers with acks=all call sl_flusher_request() after appending; the flusher thread syncs every partition that
 * has waiters (one fdatasync covers every append made before it started) and then runs each waiter's callback on the
 * loop thread. Waiters that arrive while a sync is running are covered by the next one. */
#ifndef SL_LOG_FLUSHER_H
#define SL_LOG_FLUSHER_H
#include <uv.h>

#include "log/partition.h"

typedef struct sl_flusher sl_flusher_t;

/* status is 0 when the data is durable, or a negative errno (sync failed, or -ECANCELED at shutdown). */
typedef void (*sl_flush_cb)(void *arg, int status);

int sl_flusher_create(uv_loop_t *loop, sl_flusher_t **out);
/* Stops the thread after finishing in-flight work; pending callbacks run with -ECANCELED (before this returns).
 * Call on the loop thread. The uv_async_t is closed here and the flusher's memory is freed by its close callback,
 * so the loop must run once more afterwards (uv_run(loop, UV_RUN_DEFAULT) before uv_loop_close, as for any
 * handle) for that memory to be released. */
void sl_flusher_destroy(sl_flusher_t *f);
/* Runs cb(arg, status) on the loop thread once everything appended to `p` before this call is durable. Keeps a
 * reference to `p` until then. */
void sl_flusher_request(sl_flusher_t *f, sl_partition_t *p, sl_flush_cb cb, void *arg);

#endif
