/* librdkafka queues on the libuv loop (see kafka_uv.h). */
#include "stream/kafka_uv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

struct sl_kafka_uv {
  uv_poll_t poll;
  uv_timer_t kick;
  rd_kafka_queue_t *q;
  int fds[2];
  int open_handles;
  sl_kafka_uv_cb cb;
  void *arg;
  int closing;
};

static void on_readable(uv_poll_t *p, int status, int events) {
  sl_kafka_uv_t *w = p->data;
  char drain[256];
  while (read(w->fds[0], drain, sizeof drain) > 0) {
  }
  if (!w->closing) w->cb(w->arg);
}

static void on_kick(uv_timer_t *t) {
  sl_kafka_uv_t *w = t->data;
  if (!w->closing) w->cb(w->arg);
}

int sl_kafka_uv_open(uv_loop_t *loop, rd_kafka_queue_t *q, sl_kafka_uv_cb cb, void *arg, sl_kafka_uv_t **out) {
  sl_kafka_uv_t *w = calloc(1, sizeof *w);
  if (!w) return -ENOMEM;
  if (pipe2(w->fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    int rc = -errno;
    rd_kafka_queue_destroy(q);
    free(w);
    return rc;
  }
  w->q = q;
  w->cb = cb;
  w->arg = arg;
  uv_poll_init(loop, &w->poll, w->fds[0]);
  uv_timer_init(loop, &w->kick);
  w->poll.data = w->kick.data = w;
  w->open_handles = 2;
  uv_poll_start(&w->poll, UV_READABLE, on_readable);
  rd_kafka_queue_io_event_enable(q, w->fds[1], "1", 1);
  *out = w;
  /* the queue may already hold events (enabling only signals later transitions) */
  sl_kafka_uv_kick(w);
  return 0;
}

void sl_kafka_uv_kick(sl_kafka_uv_t *w) {
  if (!w->closing && !uv_is_active((uv_handle_t *)&w->kick)) uv_timer_start(&w->kick, on_kick, 0, 0);
}

static void on_closed(uv_handle_t *h) {
  sl_kafka_uv_t *w = h->data;
  if (--w->open_handles > 0) return;
  close(w->fds[0]);
  close(w->fds[1]);
  free(w);
}

void sl_kafka_uv_close(sl_kafka_uv_t *w) {
  if (!w || w->closing) return;
  w->closing = 1;
  rd_kafka_queue_io_event_enable(w->q, -1, NULL, 0);
  rd_kafka_queue_destroy(w->q);
  w->q = NULL;
  uv_close((uv_handle_t *)&w->poll, on_closed);
  uv_close((uv_handle_t *)&w->kick, on_closed);
}

typedef struct {
  uv_work_t work;
  rd_kafka_t *rk;
  int flags;
  void (*done)(void *);
  void *arg;
} destroy_t;

static void destroy_work(uv_work_t *w) {
  destroy_t *d = w->data;
  rd_kafka_destroy_flags(d->rk, d->flags);
}
static void destroy_done(uv_work_t *w, int status) {
  destroy_t *d = w->data;
  if (d->done) d->done(d->arg);
  free(d);
}

void sl_kafka_destroy_async(uv_loop_t *loop, rd_kafka_t *rk, int flags, void (*done)(void *arg), void *arg) {
  destroy_t *d = calloc(1, sizeof *d);
  if (!d) abort();
  d->rk = rk;
  d->flags = flags;
  d->done = done;
  d->arg = arg;
  d->work.data = d;
  uv_queue_work(loop, &d->work, destroy_work, destroy_done);
}

int sl_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err, size_t errlen) {
  char e[256];
  if (rd_kafka_conf_set(conf, key, value, e, sizeof e) != RD_KAFKA_CONF_OK) {
    snprintf(err, errlen, "kafka setting %s=%s: %s", key, value, e);
    return -EINVAL;
  }
  return 0;
}

static bool set_opt(rd_kafka_conf_t *conf, const char *key, const char *value, char *err, size_t errlen) {
  return !value || !value[0] || sl_kafka_conf_set(conf, key, value, err, errlen) == 0;
}

/* "key=value,key=value": each handed to librdkafka as is. */
static int set_properties(rd_kafka_conf_t *conf, const char *list, char *err, size_t errlen) {
  char *copy = strdup(list);
  if (!copy) return -ENOMEM;
  int rc = 0;
  for (char *save = NULL, *kv = strtok_r(copy, ",", &save); kv && rc == 0; kv = strtok_r(NULL, ",", &save)) {
    while (*kv == ' ') kv++;
    char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
      snprintf(err, errlen, "kafka.properties: '%s' is not key=value", kv);
      rc = -EINVAL;
      break;
    }
    *eq = 0;
    rc = sl_kafka_conf_set(conf, kv, eq + 1, err, errlen);
  }
  free(copy);
  return rc;
}

rd_kafka_conf_t *sl_kafka_conf_new(const char *brokers, const sl_kafka_settings_t *settings, char *err,
                                   size_t errlen) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (sl_kafka_conf_set(conf, "bootstrap.servers", brokers, err, errlen) != 0 ||
      sl_kafka_conf_set(conf, "client.id", "sluice", err, errlen) != 0 ||
      /* fewer, faster reconnect attempts: the embedded broker starts in the same process */
      sl_kafka_conf_set(conf, "reconnect.backoff.ms", "20", err, errlen) != 0 ||
      sl_kafka_conf_set(conf, "reconnect.backoff.max.ms", "1000", err, errlen) != 0 ||
      sl_kafka_conf_set(conf, "log.connection.close", "false", err, errlen) != 0)
    goto fail;
  if (settings) {
    const sl_kafka_settings_t *k = settings;
    if (!set_opt(conf, "security.protocol", k->security_protocol, err, errlen) ||
        !set_opt(conf, "sasl.mechanisms", k->sasl_mechanism, err, errlen) ||
        !set_opt(conf, "sasl.username", k->sasl_username, err, errlen) ||
        !set_opt(conf, "sasl.password", k->sasl_password, err, errlen) ||
        !set_opt(conf, "ssl.ca.location", k->ssl_ca_file, err, errlen))
      goto fail;
    if (k->properties && k->properties[0] && set_properties(conf, k->properties, err, errlen) != 0) goto fail;
  }
  return conf;
fail:
  rd_kafka_conf_destroy(conf);
  return NULL;
}
