/* The simulator role (see simulate.h).
 *
 *   start ──pace timer / idle (produce_some)──> PRODUCING ──count or duration reached──> DRAINING
 *   DRAINING ──outq empty (on_events)──> finish(): final counts, destroy producer off-loop, finished()
 *   any ──sl_simulate_stop──> DRAINING (bounded by a deadline) ──> finish() without finished()
 *
 * Pacing: a 10 ms timer produces rate * elapsed - produced readings; unpaced runs produce from a uv_idle until
 * librdkafka's queue is full, then wait for delivery reports (no spinning). */
#include "sources/simulate.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "sources/sim.h"
#include "stream/coerce.h"
#include "stream/kafka_uv.h"

#define F(key, type, field, def, min, max, help) \
  {key, type, offsetof(sl_simulate_config_t, field), def, min, max, help}
const sl_config_field_t sl_simulate_config_fields[] = {
    F("simulate.brokers", SL_CONFIG_STRING, brokers, "127.0.0.1:9092", 0, 0, "Kafka bootstrap servers"),
    SL_KAFKA_SETTINGS_FIELDS("simulate", sl_simulate_config_t, kafka),
    F("simulate.profile", SL_CONFIG_STRING, profile, "vehicles", 0, 0,
      "device profiles, comma-separated: vehicles, wearables, users"),
    F("simulate.topic", SL_CONFIG_STRING, topic, "", 0, 0,
      "topic (empty: vehicles, wearables, users_created by profile)"),
    F("simulate.rate", SL_CONFIG_STRING, rate, "1000/s", 0, 0, "readings per second over all profiles; max = unpaced"),
    F("simulate.devices", SL_CONFIG_INT, devices, "100", 1, 10000000, "devices per profile"),
    F("simulate.count", SL_CONFIG_INT, count, "0", 0, INT64_MAX, "stop after this many readings (0: no limit)"),
    F("simulate.duration_ms", SL_CONFIG_INT, duration_ms, "0", 0, INT64_MAX, "stop after this long (0: no limit)"),
    F("simulate.seed", SL_CONFIG_INT, seed, "1", INT64_MIN, INT64_MAX, "random seed (same seed, same readings)"),
    F("simulate.start_time", SL_CONFIG_STRING, start_time, "", 0, 0,
      "timestamp of the first reading, ISO-8601 or epoch ms (empty: now)"),
    F("simulate.progress_ms", SL_CONFIG_INT, progress_ms, "1000", 0, INT64_MAX, "progress line interval (0: none)"),
    F("simulate.acks", SL_CONFIG_STRING, acks, "all", 0, 0, "producer acks: all, 1 or 0"),
    F("simulate.linger_ms", SL_CONFIG_INT, linger_ms, "-1", -1, 10000,
      "producer batching delay (-1: 5 ms unpaced, 0 when paced)"),
};
const size_t sl_simulate_config_field_count = sizeof sl_simulate_config_fields / sizeof sl_simulate_config_fields[0];

enum { MAX_PROFILES = 3, DRAIN_TIMEOUT_MS = 10000, CONNECT_TIMEOUT_MS = 10000 };

struct sl_simulate {
  uv_loop_t *loop;
  const sl_simulate_config_t *cfg;
  rd_kafka_t *rk;
  rd_kafka_topic_t *topics[MAX_PROFILES];
  sl_sim_t *gens[MAX_PROFILES];
  int ngens, next_gen;
  sl_kafka_uv_t *events;
  uv_timer_t pace, progress;
  uv_idle_t idle;
  uv_work_t connect; /* the connect check (thread pool): the producer must outlive it */
  bool connecting;
  rd_kafka_resp_err_t connect_err;
  int open_handles;
  double rate; /* 0: unpaced */
  int64_t started_ms, drain_deadline_ms;
  uint64_t limit; /* 0: none */
  sl_buf_t key, value;
  /* counters (loop thread only: delivery reports are served from on_events) */
  uint64_t produced, delivered, failed, last_progress_produced;
  int64_t last_progress_ms;
  bool draining, blocked, stopped_by_user, finished_called;
  void (*finished)(void *arg, int status);
  void *finished_arg;
  void (*stopped)(void *arg);
  void *stopped_arg;
};

void sl_simulate_on_stopped(sl_simulate_t *s, void (*stopped)(void *arg), void *arg) {
  s->stopped = stopped;
  s->stopped_arg = arg;
}

int sl_simulate_parse_rate(const char *s, double *out) {
  if (!strcmp(s, "max") || !strcmp(s, "unlimited")) return *out = 0, 0;
  char *end;
  double v = strtod(s, &end);
  if (end == s || v < 0 || isnan(v) || isinf(v)) return -EINVAL;
  if (*end == 'k' || *end == 'K') v *= 1000, end++;
  else if (*end == 'M') v *= 1e6, end++;
  if (!strcmp(end, "/s") || !*end) return *out = v, 0;
  return -EINVAL;
}

int sl_simulate_parse_time(const char *s, int64_t *ms) {
  size_t n = strlen(s);
  if (sl_coerce_parse_int(s, n, ms) == 0) {
    *ms = sl_coerce_epoch_int(*ms);
    return 0;
  }
  return sl_coerce_iso8601(s, n, ms);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  sl_simulate_t *s = opaque;
  if (m->err) {
    s->failed++;
    if (s->failed <= 5) SL_WARN("simulate", "delivery failed: %s", rd_kafka_err2str(m->err));
  } else {
    s->delivered++;
  }
}

static void print_progress(sl_simulate_t *s, const char *what) {
  int64_t now = sl_monotonic_ms();
  double secs = (double)(now - s->last_progress_ms) / 1000.0;
  double rate = secs > 0 ? (double)(s->produced - s->last_progress_produced) / secs : 0;
  SL_INFO("simulate", "%s: produced %llu (%.0f/s), delivered %llu, failed %llu, queued %d", what,
          (unsigned long long)s->produced, rate, (unsigned long long)s->delivered, (unsigned long long)s->failed,
          s->rk ? rd_kafka_outq_len(s->rk) : 0);
  s->last_progress_ms = now;
  s->last_progress_produced = s->produced;
}

static void on_handle_closed(uv_handle_t *h) {
  sl_simulate_t *s = h->data;
  if (--s->open_handles > 0) return;
  for (int i = 0; i < s->ngens; i++) sl_sim_destroy(s->gens[i]);
  sl_buf_free(&s->key);
  sl_buf_free(&s->value);
  bool notify = !s->stopped_by_user && s->finished;
  void (*finished)(void *, int) = s->finished;
  void *arg = s->finished_arg;
  int status = s->failed ? 1 : 0;
  void (*stopped)(void *) = s->stopped;
  void *stopped_arg = s->stopped_arg;
  free(s);
  if (notify) finished(arg, status);
  if (stopped) stopped(stopped_arg);
}

static void on_destroyed(void *arg) {
  sl_simulate_t *s = arg;
  uv_close((uv_handle_t *)&s->pace, on_handle_closed);
  uv_close((uv_handle_t *)&s->progress, on_handle_closed);
  uv_close((uv_handle_t *)&s->idle, on_handle_closed);
}

static void finish(sl_simulate_t *s) {
  if (s->finished_called || s->connecting) return; /* connecting: the drain timer calls again */
  s->finished_called = true;
  uv_timer_stop(&s->pace);
  uv_timer_stop(&s->progress);
  uv_idle_stop(&s->idle);
  print_progress(s, "done");
  uint64_t unacked = s->produced - s->delivered - s->failed;
  if (unacked) {
    SL_WARN("simulate", "%llu readings still unacknowledged at exit", (unsigned long long)unacked);
    s->failed += unacked;
  }
  sl_kafka_uv_close(s->events);
  for (int i = 0; i < s->ngens; i++) rd_kafka_topic_destroy(s->topics[i]);
  rd_kafka_t *rk = s->rk;
  s->rk = NULL;
  sl_kafka_destroy_async(s->loop, rk, 0, on_destroyed, s);
}

static void on_events(void *arg);
static void on_pace(uv_timer_t *t);

static bool limit_reached(sl_simulate_t *s) {
  if (s->limit && s->produced >= s->limit) return true;
  if (s->cfg->duration_ms && sl_monotonic_ms() - s->started_ms >= s->cfg->duration_ms) return true;
  return false;
}

static void start_draining(sl_simulate_t *s) {
  if (s->draining) return;
  s->draining = true;
  s->drain_deadline_ms = sl_monotonic_ms() + DRAIN_TIMEOUT_MS;
  uv_idle_stop(&s->idle);
  uv_timer_start(&s->pace, on_pace, 50, 50); /* now checks the drain deadline */
  rd_kafka_poll(s->rk, 0);
  if (rd_kafka_outq_len(s->rk) == 0) finish(s);
}

/* Produces up to n readings; returns false when librdkafka's queue is full. */
static bool produce_some(sl_simulate_t *s, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    if (s->limit && s->produced >= s->limit) return true;
    int g = s->next_gen;
    sl_sim_t *gen = s->gens[g];
    sl_sim_next(gen, &s->key, &s->value);
    int rc = rd_kafka_produce(s->topics[g], RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, s->value.data,
                              s->value.len, s->key.data, s->key.len, NULL);
    if (rc != 0) {
      rd_kafka_resp_err_t err = rd_kafka_last_error();
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        /* the generator already advanced: rewind is not possible, so keep the reading and retry it */
        for (;;) {
          rd_kafka_poll(s->rk, 0);
          rc = rd_kafka_produce(s->topics[g], RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, s->value.data,
                                s->value.len, s->key.data, s->key.len, NULL);
          if (rc == 0 || rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
          rd_kafka_poll(s->rk, 1); /* bounded: the queue drains as the brokers acknowledge */
        }
        if (rc != 0) s->failed++;
        s->produced++;
        s->next_gen = (g + 1) % s->ngens;
        return false;
      }
      s->failed++;
      SL_WARN("simulate", "produce failed: %s", rd_kafka_err2str(err));
    }
    s->produced++;
    s->next_gen = (g + 1) % s->ngens;
  }
  return true;
}

static void on_events(void *arg) {
  sl_simulate_t *s = arg;
  if (!s->rk) return;
  rd_kafka_poll(s->rk, 0);
  if (s->blocked && rd_kafka_outq_len(s->rk) < 50000) {
    s->blocked = false;
    if (!s->draining && s->rate == 0) {
      uv_timer_stop(&s->pace);
      uv_idle_start(&s->idle, NULL);
    }
  }
  if (s->draining && (rd_kafka_outq_len(s->rk) == 0 || sl_monotonic_ms() >= s->drain_deadline_ms)) finish(s);
}

static void on_idle(uv_idle_t *h) {
  sl_simulate_t *s = h->data;
  if (limit_reached(s)) {
    start_draining(s);
    return;
  }
  if (!produce_some(s, 2000)) {
    s->blocked = true;
    uv_idle_stop(&s->idle);
    /* the retry loop in produce_some may itself have served the delivery reports that would have woken
     * on_events (the queue's fd only signals empty -> non-empty): poll on a timer until unblocked */
    uv_timer_start(&s->pace, on_pace, 1, 1);
  }
  rd_kafka_poll(s->rk, 0);
}

static void on_pace(uv_timer_t *t) {
  sl_simulate_t *s = t->data;
  if (s->draining) {
    on_events(s);
    return;
  }
  if (s->rate == 0) { /* unpaced: only runs while blocked on a full librdkafka queue (on_idle) */
    on_events(s);
    return;
  }
  if (limit_reached(s)) {
    start_draining(s);
    return;
  }
  double due = s->rate * (double)(sl_monotonic_ms() - s->started_ms) / 1000.0;
  if (due > (double)s->produced) {
    uint64_t n = (uint64_t)(due - (double)s->produced);
    if (n > 100000) n = 100000; /* keep the loop responsive when far behind */
    produce_some(s, n);
  }
  rd_kafka_poll(s->rk, 0);
  if (limit_reached(s)) start_draining(s);
}

static void on_progress(uv_timer_t *t) {
  sl_simulate_t *s = t->data;
  print_progress(s, "progress");
  if (s->draining && sl_monotonic_ms() >= s->drain_deadline_ms) finish(s);
}

/* The readings clock starts once the brokers answer a metadata request for the first topic (which also creates it
 * when the brokers auto-create topics): readings timed before the producer can send would only queue up and reach
 * the brokers late, in a burst. Runs on the thread pool because rd_kafka_metadata blocks. */
static void connect_check(uv_work_t *w) {
  sl_simulate_t *s = w->data;
  const struct rd_kafka_metadata *md = NULL;
  s->connect_err = rd_kafka_metadata(s->rk, 0, s->topics[0], &md, CONNECT_TIMEOUT_MS);
  if (md) rd_kafka_metadata_destroy(md);
}

static void begin_producing(sl_simulate_t *s) {
  s->started_ms = s->last_progress_ms = sl_monotonic_ms();
  if (s->rate > 0)
    uv_timer_start(&s->pace, on_pace, 0, 10);
  else
    uv_idle_start(&s->idle, on_idle);
}

static void connect_done(uv_work_t *w, int status) {
  sl_simulate_t *s = w->data;
  s->connecting = false;
  if (s->draining) return; /* stopped meanwhile: the drain timer finishes */
  if (status != 0 || s->connect_err)
    SL_WARN("simulate", "brokers %s did not answer (%s): producing anyway, readings wait in the producer's queue",
            s->cfg->brokers, status != 0 ? uv_strerror(status) : rd_kafka_err2str(s->connect_err));
  begin_producing(s);
}

int sl_simulate_start(uv_loop_t *loop, const sl_simulate_config_t *cfg, void (*finished)(void *arg, int status),
                      void *arg, sl_simulate_t **out) {
  char err[512];
  double rate;
  int64_t start_ms = sl_wall_ms();
  if (sl_simulate_parse_rate(cfg->rate, &rate) != 0) {
    SL_ERROR("simulate", "bad rate '%s' (use e.g. 1000/s or max)", cfg->rate);
    return -EINVAL;
  }
  if (cfg->start_time[0] && sl_simulate_parse_time(cfg->start_time, &start_ms) != 0) {
    SL_ERROR("simulate", "bad start time '%s' (ISO-8601 or epoch ms)", cfg->start_time);
    return -EINVAL;
  }
  sl_simulate_t *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->loop = loop;
  s->cfg = cfg;
  s->rate = rate;
  s->limit = (uint64_t)cfg->count;
  s->finished = finished;
  s->finished_arg = arg;
  sl_buf_init(&s->key);
  sl_buf_init(&s->value);

  /* profiles */
  char list[256];
  snprintf(list, sizeof list, "%s", cfg->profile);
  sl_sim_profile_t profiles[MAX_PROFILES];
  int n = 0;
  for (char *save = NULL, *tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    if (n == MAX_PROFILES || sl_sim_parse_profile(tok, &profiles[n]) != 0) {
      SL_ERROR("simulate", "unknown or repeated profile '%s' (vehicles, wearables, users)", tok);
      goto fail;
    }
    n++;
  }
  if (n == 0) {
    SL_ERROR("simulate", "no profile given");
    goto fail;
  }
  /* the per-profile rate spaces each generator's timestamps */
  double per_profile = rate > 0 ? rate / n : 1000.0;
  for (int i = 0; i < n; i++) {
    if (sl_sim_create(profiles[i], (uint32_t)cfg->devices, (uint64_t)cfg->seed, start_ms, per_profile,
                      &s->gens[i]) != 0)
      goto fail;
    s->ngens++;
  }

  rd_kafka_conf_t *conf = sl_kafka_conf_new(cfg->brokers, &cfg->kafka, err, sizeof err);
  char linger[32];
  /* paced runs already hand readings over in 10 ms ticks: lingering on top only delays them (it was most of the
   * produce -> queryable p50 at 20k/s); unpaced runs fill batches while requests are in flight anyway */
  int64_t linger_ms = cfg->linger_ms >= 0 ? cfg->linger_ms : rate > 0 ? 0 : 5;
  snprintf(linger, sizeof linger, "%lld", (long long)linger_ms);
  if (!conf || sl_kafka_conf_set(conf, "acks", cfg->acks, err, sizeof err) != 0 ||
      sl_kafka_conf_set(conf, "linger.ms", linger, err, sizeof err) != 0 ||
      sl_kafka_conf_set(conf, "enable.idempotence", strcmp(cfg->acks, "all") && strcmp(cfg->acks, "-1") ? "false"
                                                                                                          : "true",
                        err, sizeof err) != 0 ||
      sl_kafka_conf_set(conf, "batch.num.messages", "10000", err, sizeof err) != 0 ||
      sl_kafka_conf_set(conf, "queue.buffering.max.messages", "200000", err, sizeof err) != 0 ||
      sl_kafka_conf_set(conf, "queue.buffering.max.kbytes", "65536", err, sizeof err) != 0 ||
      sl_kafka_conf_set(conf, "partitioner", "murmur2_random", err, sizeof err) != 0) {
    if (conf) rd_kafka_conf_destroy(conf);
    SL_ERROR("simulate", "%s", err);
    goto fail;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, s);
  s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!s->rk) {
    SL_ERROR("simulate", "cannot create producer: %s", err);
    goto fail;
  }
  for (int i = 0; i < n; i++) {
    const char *topic = cfg->topic[0] ? cfg->topic : sl_sim_default_topic(profiles[i]);
    s->topics[i] = rd_kafka_topic_new(s->rk, topic, NULL);
  }
  rd_kafka_queue_t *mainq = rd_kafka_queue_get_main(s->rk);
  int rc = sl_kafka_uv_open(loop, mainq, on_events, s, &s->events);
  if (rc != 0) {
    SL_ERROR("simulate", "cannot watch the producer queue: %s", strerror(-rc));
    for (int i = 0; i < n; i++) rd_kafka_topic_destroy(s->topics[i]);
    rd_kafka_destroy(s->rk);
    goto fail;
  }
  uv_timer_init(loop, &s->pace);
  uv_timer_init(loop, &s->progress);
  uv_idle_init(loop, &s->idle);
  s->pace.data = s->progress.data = s->idle.data = s;
  s->open_handles = 3;
  s->started_ms = s->last_progress_ms = sl_monotonic_ms();
  s->connect.data = s;
  s->connecting = uv_queue_work(loop, &s->connect, connect_check, connect_done) == 0;
  if (!s->connecting) begin_producing(s);
  if (cfg->progress_ms > 0) uv_timer_start(&s->progress, on_progress, (uint64_t)cfg->progress_ms,
                                           (uint64_t)cfg->progress_ms);
  SL_INFO("simulate", "producing %s to %s at %s (count %lld, duration %lld ms; 0 = no limit)", cfg->profile,
          cfg->brokers, rate > 0 ? cfg->rate : "max rate", (long long)cfg->count, (long long)cfg->duration_ms);
  *out = s;
  return 0;

fail:
  for (int i = 0; i < s->ngens; i++) sl_sim_destroy(s->gens[i]);
  sl_buf_free(&s->key);
  sl_buf_free(&s->value);
  free(s);
  return -EINVAL;
}

void sl_simulate_stop(sl_simulate_t *s) {
  if (!s) return;
  s->stopped_by_user = true;
  if (s->finished_called) return;
  start_draining(s);
  if (!s->finished_called) s->drain_deadline_ms = sl_monotonic_ms() + 5000;
}

void sl_simulate_get_stats(const sl_simulate_t *s, sl_simulate_stats_t *out) {
  out->produced = s->produced;
  out->delivered = s->delivered;
  out->failed = s->failed;
}
