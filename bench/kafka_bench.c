/* Load generator for bench/run.sh, built on librdkafka.
 *
 *   kafka_bench produce --brokers B --topic T --records N --size S --acks A [--linger-ms L] [--timeout S]
 *   kafka_bench consume --brokers B --topic T --records N [--timeout S]
 *   kafka_bench latency --brokers B --topic T --rate R --seconds D --size S [--acks A] [--linger-ms L]
 *                       [--warmup W] [--timeout S]
 *   kafka_bench delete --brokers B --topic T
 *
 * Each mode prints one line "RESULT key=value ..." on stdout (read by run.sh) and diagnostics on stderr.
 * Exit status is non-zero on any client error, delivery failure, lost record or timeout.
 *
 * produce: N records of S bytes to the topic (keyless: librdkafka's sticky partitioner spreads batches over all
 *          partitions), acks as given, linger.ms, batch.size ~1 MB. Time runs from the first send to the last
 *          delivery report.
 * consume: assigns every partition of the topic from the beginning and reads until N records arrived. Time runs
 *          from the assignment to the N-th record.
 * latency: one thread produces at a fixed rate (bursts on absolute 1 ms deadlines, clock_nanosleep TIMER_ABSTIME),
 *          each payload starting with CLOCK_MONOTONIC nanoseconds; another thread consumes and records
 *          now - embedded time. Samples from the first W seconds are discarded. Prints p50/p99/p99.9/max in ms,
 *          and the same for send -> delivery report (ack_*).
 * delete:  deletes the topic (DeleteTopics), so long runs do not fill the disk.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  const char *mode, *brokers, *topic;
  long long records;
  long size, acks, linger_ms, timeout_s;
  double rate, seconds, warmup;
} opts_t;

static opts_t o = {.records = 1000000, .size = 200, .acks = 1, .linger_ms = 5, .timeout_s = 120, .seconds = 10,
                   .warmup = 2};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "kafka_bench: ");
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  exit(2);
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v) {
  char err[512];
  if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) die("config: %s", err);
}

static void setl(rd_kafka_conf_t *conf, const char *k, long long v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", v);
  set(conf, k, buf);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  if (level <= 4 || getenv("KAFKA_BENCH_DEBUG"))
    fprintf(stderr, "kafka_bench: %.3f rdkafka %s: %s\n", (double)(now_ns() % 1000000000000ull) / 1e6, fac, buf);
}

static atomic_int client_errors;
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  (void)rk, (void)opaque;
  fprintf(stderr, "kafka_bench: client error %s: %s\n", rd_kafka_err2name(err), reason);
  /* Transient connection-level notices are not fatal on their own; lost records are caught by counting. */
  if (err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) atomic_fetch_add(&client_errors, 1);
}

static rd_kafka_conf_t *base_conf(void) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", o.brokers);
  set(conf, "client.id", "sluice-bench");
  if (getenv("KAFKA_BENCH_DEBUG")) set(conf, "debug", getenv("KAFKA_BENCH_DEBUG"));
  rd_kafka_conf_set_log_cb(conf, log_cb);
  rd_kafka_conf_set_error_cb(conf, error_cb);
  return conf;
}

/* ---------- producer ---------- */

static atomic_llong delivered, failed;
static _Atomic uint64_t last_dr_ns;
/* latency mode: send -> delivery report times (us) of records sent after the warm-up, filled by dr_cb */
static uint32_t *ack_us;
static long long ack_n, ack_cap;
static uint64_t ack_from_ns;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk, (void)opaque;
  if (m->err) {
    if (atomic_fetch_add(&failed, 1) < 5)
      fprintf(stderr, "kafka_bench: delivery failed: %s\n", rd_kafka_err2str(m->err));
  } else {
    atomic_fetch_add(&delivered, 1);
  }
  uint64_t now = now_ns();
  atomic_store(&last_dr_ns, now);
  if (ack_us && !m->err && m->len >= 8 && ack_n < ack_cap) {
    uint64_t sent;
    memcpy(&sent, m->payload, sizeof sent);
    if (sent >= ack_from_ns) {
      uint64_t d = (now - sent) / 1000;
      ack_us[ack_n++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    }
  }
}

static rd_kafka_t *new_producer(long acks, long linger_ms) {
  rd_kafka_conf_t *conf = base_conf();
  setl(conf, "acks", acks);
  setl(conf, "linger.ms", linger_ms);
  set(conf, "batch.size", "1000000");
  set(conf, "batch.num.messages", "1000000");
  set(conf, "queue.buffering.max.messages", "2000000");
  set(conf, "queue.buffering.max.kbytes", "1048576");
  set(conf, "compression.codec", "none");
  setl(conf, "message.timeout.ms", o.timeout_s * 1000);
  rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
  char err[512];
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) die("producer: %s", err);
  return rk;
}

/* Waits until the topic exists with at least one partition (a Metadata request auto-creates it). */
static int topic_partitions(rd_kafka_t *rk, rd_kafka_topic_t *rkt) {
  uint64_t deadline = now_ns() + 30ull * 1000000000ull;
  while (now_ns() < deadline) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
    int n = 0;
    if (!err && md->topic_cnt == 1 && !md->topics[0].err) n = md->topics[0].partition_cnt;
    if (md) rd_kafka_metadata_destroy(md);
    if (n > 0) return n;
    struct timespec ts = {0, 100 * 1000000};
    nanosleep(&ts, NULL);
  }
  die("topic %s did not appear in metadata within 30 s", o.topic);
  return 0;
}

/* Produces one record, waiting for queue room. Returns 0 on success. */
static int produce_one(rd_kafka_t *rk, rd_kafka_topic_t *rkt, void *payload, size_t len, uint64_t deadline) {
  for (;;) {
    if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload, len, NULL, 0, NULL) == 0)
      return 0;
    rd_kafka_resp_err_t err = rd_kafka_last_error();
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      fprintf(stderr, "kafka_bench: produce: %s\n", rd_kafka_err2str(err));
      return -1;
    }
    rd_kafka_poll(rk, 1);
    if (now_ns() > deadline) {
      fprintf(stderr, "kafka_bench: produce: timed out waiting for queue room\n");
      return -1;
    }
  }
}

static int run_produce(void) {
  rd_kafka_t *rk = new_producer(o.acks, o.linger_ms);
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o.topic, NULL);
  int parts = topic_partitions(rk, rkt);
  char *payload = malloc((size_t)o.size);
  for (long i = 0; i < o.size; i++) payload[i] = (char)('a' + i % 26);

  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)o.timeout_s * 1000000000ull;
  int rc = 0;
  for (long long i = 0; i < o.records && rc == 0; i++) {
    memcpy(payload, &i, sizeof i < (size_t)o.size ? sizeof i : (size_t)o.size);
    rc = produce_one(rk, rkt, payload, (size_t)o.size, deadline);
    if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
  }
  while (rc == 0 && atomic_load(&delivered) + atomic_load(&failed) < o.records) {
    rd_kafka_poll(rk, 10);
    if (now_ns() > deadline) {
      fprintf(stderr, "kafka_bench: produce: timed out after %ld s with %lld/%lld delivered\n", o.timeout_s,
              (long long)atomic_load(&delivered), o.records);
      rc = -1;
    }
  }
  uint64_t t1 = atomic_load(&last_dr_ns);
  double secs = (double)(t1 - t0) / 1e9;
  long long ok = atomic_load(&delivered), bad = atomic_load(&failed);
  printf("RESULT mode=produce topic=%s partitions=%d records=%lld size=%ld acks=%ld linger_ms=%ld secs=%.3f "
         "rps=%.0f mbps=%.1f failed=%lld\n",
         o.topic, parts, ok, o.size, o.acks, o.linger_ms, secs, (double)ok / secs,
         (double)ok * (double)o.size / secs / 1e6, bad);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_flush(rk, 2000);
  rd_kafka_destroy(rk);
  free(payload);
  return rc || bad || atomic_load(&client_errors) ? 1 : 0;
}

/* ---------- consumer ---------- */

static rd_kafka_t *new_consumer(void) {
  rd_kafka_conf_t *conf = base_conf();
  set(conf, "group.id", "sluice-bench");
  set(conf, "enable.auto.commit", "false");
  set(conf, "enable.auto.offset.store", "false");
  set(conf, "auto.offset.reset", "earliest");
  /* librdkafka stops fetching once its local queue holds queued.min.messages (default 100k) and only re-checks on a
   * ~1 s timer, so a consumer that drains faster than that idles for most of each second. A larger local queue keeps
   * the fetcher busy. */
  set(conf, "queued.min.messages", getenv("KAFKA_BENCH_QUEUED_MIN") ? getenv("KAFKA_BENCH_QUEUED_MIN") : "1000000");
  set(conf, "queued.max.messages.kbytes", "262144");
  char err[512];
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) die("consumer: %s", err);
  rd_kafka_poll_set_consumer(rk);
  return rk;
}

static int assign_all(rd_kafka_t *rk) {
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o.topic, NULL);
  int parts = topic_partitions(rk, rkt);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(parts);
  for (int p = 0; p < parts; p++) rd_kafka_topic_partition_list_add(tp, o.topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_resp_err_t err = rd_kafka_assign(rk, tp);
  rd_kafka_topic_partition_list_destroy(tp);
  if (err) die("assign: %s", rd_kafka_err2str(err));
  return parts;
}

/* Waits up to 100 ms for the first record, then takes whatever else is already queued (up to max) without waiting:
 * per-record rd_kafka_consumer_poll() costs enough to make the benchmark client the bottleneck. */
static size_t next_batch(rd_kafka_t *rk, rd_kafka_queue_t *q, rd_kafka_message_t **msgs, size_t max) {
  ssize_t k = rd_kafka_consume_batch_queue(q, 0, msgs, max);
  if (k > 0) return (size_t)k;
  if (k < 0) die("consume_batch_queue: %s", rd_kafka_err2str(rd_kafka_last_error()));
  msgs[0] = rd_kafka_consumer_poll(rk, 100);
  return msgs[0] ? 1 : 0;
}

enum { BATCH = 8192 };
static rd_kafka_message_t *batch[BATCH];

/* Reports a consumer error record; returns 1 if it is fatal. */
static int consume_error(const rd_kafka_message_t *m) {
  fprintf(stderr, "kafka_bench: consume: %s\n", rd_kafka_message_errstr(m));
  return m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF;
}

static int run_consume(void) {
  rd_kafka_t *rk = new_consumer();
  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)o.timeout_s * 1000000000ull, first = 0;
  int parts = assign_all(rk);
  long long n = 0, bytes = 0;
  int rc = 0;
  rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
  while (n < o.records && !rc) {
    size_t k = next_batch(rk, q, batch, BATCH);
    for (size_t i = 0; i < k; i++) {
      rd_kafka_message_t *m = batch[i];
      if (m->err) {
        rc |= consume_error(m);
      } else {
        if (!first) first = now_ns();
        n++;
        bytes += (long long)m->len;
      }
      rd_kafka_message_destroy(m);
    }
    if (now_ns() > deadline) {
      fprintf(stderr, "kafka_bench: consume: timed out after %ld s with %lld/%lld records\n", o.timeout_s, n,
              o.records);
      rc = 1;
      break;
    }
  }
  uint64_t t1 = now_ns();
  double secs = (double)(t1 - t0) / 1e9;
  printf("RESULT mode=consume topic=%s partitions=%d records=%lld secs=%.3f rps=%.0f mbps=%.1f "
         "first_record_ms=%.1f\n",
         o.topic, parts, n, secs, (double)n / secs, (double)bytes / secs / 1e6,
         first ? (double)(first - t0) / 1e6 : -1.0);
  rd_kafka_queue_destroy(q);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return rc || atomic_load(&client_errors) ? 1 : 0;
}

/* ---------- end-to-end latency ---------- */

static atomic_int producer_done;
static atomic_llong produced;
static uint64_t lat_t0;

typedef struct {
  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;
  int rc;
  double achieved_rate;
} lat_producer_t;

static void *latency_producer(void *arg) {
  lat_producer_t *lp = arg;
  char *payload = malloc((size_t)o.size);
  memset(payload, 'x', (size_t)o.size);
  const uint64_t tick = 1000000; /* 1 ms */
  double per_tick = o.rate * (double)tick / 1e9, owed = 0;
  long long total = (long long)(o.rate * o.seconds);
  uint64_t start = now_ns(), next = start, deadline = start + (uint64_t)o.timeout_s * 1000000000ull;
  long long sent = 0;
  while (sent < total) {
    owed += per_tick;
    while (owed >= 1 && sent < total) {
      uint64_t t = now_ns();
      memcpy(payload, &t, sizeof t);
      if (produce_one(lp->rk, lp->rkt, payload, (size_t)o.size, deadline)) {
        lp->rc = 1;
        goto out;
      }
      sent++;
      owed -= 1;
    }
    atomic_store(&produced, sent);
    rd_kafka_poll(lp->rk, 0);
    next += tick;
    struct timespec ts = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
  }
out:
  lp->achieved_rate = (double)sent / ((double)(now_ns() - start) / 1e9);
  atomic_store(&produced, sent);
  rd_kafka_flush(lp->rk, (int)o.timeout_s * 1000);
  atomic_store(&producer_done, 1);
  free(payload);
  return NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static int run_latency(void) {
  if (o.size < 8) die("latency: --size must be >= 8, got %s", "less");
  o.records = (long long)(o.rate * o.seconds);
  lat_producer_t lp = {.rk = new_producer(o.acks, o.linger_ms)};
  lp.rkt = rd_kafka_topic_new(lp.rk, o.topic, NULL);
  topic_partitions(lp.rk, lp.rkt); /* the producer's Metadata request auto-creates the topic */
  rd_kafka_t *crk = new_consumer();
  int parts = assign_all(crk);

  uint32_t *us = malloc(sizeof *us * (size_t)(o.records + 1));
  long long n = 0, kept = 0;
  lat_t0 = now_ns();
  uint64_t warm_end = lat_t0 + (uint64_t)(o.warmup * 1e9);
  ack_cap = o.records + 1;
  ack_us = malloc(sizeof *ack_us * (size_t)ack_cap);
  ack_from_ns = warm_end;
  uint64_t deadline = lat_t0 + (uint64_t)o.timeout_s * 1000000000ull;
  pthread_t th;
  pthread_create(&th, NULL, latency_producer, &lp);
  int rc = 0;
  rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(crk);
  while (n < o.records && !rc) {
    size_t k = next_batch(crk, q, batch, BATCH);
    uint64_t now = now_ns(); /* the whole batch reached the application now */
    for (size_t i = 0; i < k; i++) {
      rd_kafka_message_t *m = batch[i];
      if (m->err) {
        rc |= consume_error(m);
      } else if (m->len >= 8) {
        uint64_t sent;
        memcpy(&sent, m->payload, sizeof sent);
        n++;
        if (sent >= warm_end && kept <= o.records) {
          uint64_t d = (now - sent) / 1000;
          us[kept++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
        }
      }
      rd_kafka_message_destroy(m);
    }
    if (atomic_load(&producer_done) && n >= atomic_load(&produced)) break;
    if (now_ns() > deadline) {
      fprintf(stderr, "kafka_bench: latency: timed out with %lld/%lld records\n", n, o.records);
      rc = 1;
      break;
    }
  }
  if (rc) _Exit(1); /* the producer thread may be stuck; the process state does not matter any more */
  pthread_join(th, NULL);
  if (n < o.records) {
    fprintf(stderr, "kafka_bench: latency: received %lld of %lld records\n", n, o.records);
    rc = 1;
  }
  qsort(us, (size_t)kept, sizeof *us, cmp_u32);
  qsort(ack_us, (size_t)ack_n, sizeof *ack_us, cmp_u32);
#define PCT(a, k, q) ((k) ? (double)(a)[(size_t)((double)((k) - 1) * (q))] / 1000.0 : -1.0)
  printf("RESULT mode=latency topic=%s partitions=%d rate=%.0f achieved_rate=%.0f size=%ld acks=%ld linger_ms=%ld "
         "records=%lld samples=%lld p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f ack_p50_ms=%.2f "
         "ack_p99_ms=%.2f\n",
         o.topic, parts, o.rate, lp.achieved_rate, o.size, o.acks, o.linger_ms, n, kept, PCT(us, kept, 0.5),
         PCT(us, kept, 0.99), PCT(us, kept, 0.999), PCT(us, kept, 1.0), PCT(ack_us, ack_n, 0.5),
         PCT(ack_us, ack_n, 0.99));
  rd_kafka_topic_destroy(lp.rkt);
  rd_kafka_destroy(lp.rk);
  rd_kafka_queue_destroy(q);
  rd_kafka_consumer_close(crk);
  rd_kafka_destroy(crk);
  free(us);
  free(ack_us);
  return rc || lp.rc || atomic_load(&failed) || atomic_load(&client_errors) ? 1 : 0;
}

/* ---------- delete (frees the disk between phases) ---------- */

static int run_delete(void) {
  rd_kafka_t *rk = new_producer(1, 0);
  rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(o.topic);
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)o.timeout_s * 1000);
  int rc = 1;
  if (!ev) {
    fprintf(stderr, "kafka_bench: delete: no answer within %ld s\n", o.timeout_s);
  } else if (rd_kafka_event_error(ev)) {
    fprintf(stderr, "kafka_bench: delete: %s\n", rd_kafka_event_error_string(ev));
  } else {
    size_t n;
    const rd_kafka_topic_result_t **res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    rc = 0;
    for (size_t i = 0; i < n; i++)
      if (rd_kafka_topic_result_error(res[i])) {
        fprintf(stderr, "kafka_bench: delete %s: %s\n", rd_kafka_topic_result_name(res[i]),
                rd_kafka_topic_result_error_string(res[i]));
        rc = 1;
      }
    if (!rc) printf("RESULT mode=delete topic=%s\n", o.topic);
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_DeleteTopic_destroy(dt);
  rd_kafka_destroy(rk);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) die("usage: kafka_bench produce|consume|latency --brokers B --topic T [options]%s", "");
  o.mode = argv[1];
  for (int i = 2; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) die("missing value for %s", k);
    i++;
    if (!strcmp(k, "--brokers")) o.brokers = v;
    else if (!strcmp(k, "--topic")) o.topic = v;
    else if (!strcmp(k, "--records")) o.records = atoll(v);
    else if (!strcmp(k, "--size")) o.size = atol(v);
    else if (!strcmp(k, "--acks")) o.acks = atol(v);
    else if (!strcmp(k, "--linger-ms")) o.linger_ms = atol(v);
    else if (!strcmp(k, "--timeout")) o.timeout_s = atol(v);
    else if (!strcmp(k, "--rate")) o.rate = atof(v);
    else if (!strcmp(k, "--seconds")) o.seconds = atof(v);
    else if (!strcmp(k, "--warmup")) o.warmup = atof(v);
    else die("unknown option %s", k);
  }
  if (!o.brokers || !o.topic) die("--brokers and --topic are required%s", "");
  if (o.size < 1 || o.records < 1) die("--size and --records must be positive%s", "");
  if (!strcmp(o.mode, "produce")) return run_produce();
  if (!strcmp(o.mode, "consume")) return run_consume();
  if (!strcmp(o.mode, "delete")) return run_delete();
  if (!strcmp(o.mode, "latency")) {
    if (o.rate <= 0) die("latency needs --rate%s", "");
    return run_latency();
  }
  die("unknown mode %s", o.mode);
}
