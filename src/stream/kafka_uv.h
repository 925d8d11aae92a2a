/* librdkafka on the libuv loop. librdkafka runs its own threads; its results (messages, delivery reports,
 * rebalances, commit results) wait on rd_kafka queues. This module makes a queue wake the loop: librdkafka writes
 * a byte to a pipe when the queue turns non-empty (rd_kafka_queue_io_event_enable), a uv_poll watches the pipe, and
 * the owner's callback then serves the queue with non-blocking calls. No busy polling, no blocking on the loop.
 *
 * librdkafka only signals the empty -> non-empty transition, so an owner that stops serving before the queue is
 * empty (a budget, backpressure) calls sl_kafka_uv_kick to be called again on the next loop iteration. */
#ifndef SL_STREAM_KAFKA_UV_H
#define SL_STREAM_KAFKA_UV_H
#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "stream/kafka_settings.h"

typedef struct sl_kafka_uv sl_kafka_uv_t;
typedef void (*sl_kafka_uv_cb)(void *arg);

/* Watches q (owned from now on: destroyed by sl_kafka_uv_close) and calls cb(arg) on the loop thread when it has something. Returns 0 or -errno. */
int sl_kafka_uv_open(uv_loop_t *loop, rd_kafka_queue_t *q, sl_kafka_uv_cb cb, void *arg, sl_kafka_uv_t **out);
void sl_kafka_uv_kick(sl_kafka_uv_t *w);
/* Stops watching and frees w once its handles are closed; cb is not called afterwards. */
void sl_kafka_uv_close(sl_kafka_uv_t *w);

/* rd_kafka_destroy() joins librdkafka's threads and may wait for brokers: it runs on a worker thread so the loop
 * (which may be serving the embedded broker those threads talk to) keeps running. done(arg) runs on the loop. */
void sl_kafka_destroy_async(uv_loop_t *loop, rd_kafka_t *rk, int flags, void (*done)(void *arg), void *arg);

/* Builds "host:port,..." bootstrap configuration plus the common settings and the security settings (NULL: none);
 * returns NULL and fills err on error (a bad value names the setting). */
rd_kafka_conf_t *sl_kafka_conf_new(const char *brokers, const sl_kafka_settings_t *settings, char *err,
                                   size_t errlen);
int sl_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err, size_t errlen);

#endif
