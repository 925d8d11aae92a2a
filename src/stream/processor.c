/* The stream processor role (see stream.h).
 *
 * Life of the role:
 *
 *   start ──sl_cql_client_connect──> CONNECTING ──on_connected──> SETUP (per pipeline: CREATE KEYSPACE,
 *   CREATE TABLE, PREPARE INSERT; setup_next) ──all prepared──> RUNNING (consumers subscribed; the ready file once
 *   every pipeline has its first assignment: maybe_ready)
 *   RUNNING ──sl_stream_stop──> DRAINING (no new records; in-flight rows finish; check_drained)
 *   DRAINING ──inflight 0 or deadline──> CLOSING (final commit, rd_kafka_consumer_close_queue, close_step)
 *   CLOSING ──consumers closed──> destroy consumers and producer off-loop, close the CQL client, free (finish)
 *
 * Exactly-once results. Every consumed record gets a slot in its partition's tracker (part_t) in offset order.
 * A slot is done when its row is acknowledged by the store, when the record was filtered, or when its dead-letter
 * copy is acknowledged by the brokers. The tracker's committable offset is one past the longest done prefix;
 * only that is ever committed (commit timer, revoke, stop). Rows are idempotent upserts keyed by the record's
 * data (or by a uuid derived from topic/partition/offset), so a replay after a crash rewrites the same rows.
 *
 * Rebalance. On revoke, the revoked partitions' acknowledged prefix is committed (asynchronously: the broker may
 * be served by this very loop), their trackers are detached, and rows still in flight finish without committing;
 * the partition's next owner replays them, writing the same rows again. On assign, fresh trackers start at the
 * committed offsets.
 *
 * Backpressure. The consumer queue is served only while fewer than max_inflight_rows records are unacknowledged;
 * librdkafka's prefetch is bounded by queued.max.messages.kbytes, so memory stays bounded when the store slows. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "cql/client.h"
#include "stream/kafka_uv.h"
#include "stream/pipeline.h"
#include "stream/status.h"
#include "stream/stream.h"

#define F(key, type, field, def, min, max, help) {key, type, offsetof(sl_stream_config_t, field), def, min, max, help}
const sl_config_field_t sl_stream_config_fields[] = {
    F("stream.brokers", SL_CONFIG_STRING, brokers, "127.0.0.1:9092", 0, 0, "Kafka bootstrap servers"),
    SL_KAFKA_SETTINGS_FIELDS("stream", sl_stream_config_t, kafka),
    F("stream.cql", SL_CONFIG_STRING, cql, "127.0.0.1:9042", 0, 0, "CQL contact points (host:port,...)"),
    F("stream.cql_username", SL_CONFIG_STRING, cql_username, "", 0, 0, "CQL user (PasswordAuthenticator)"),
    F("stream.cql_password", SL_CONFIG_STRING, cql_password, "", 0, 0, "CQL password"),
    SL_CQL_TLS_SETTINGS_FIELDS("stream", sl_stream_config_t, cql_tls),
    F("stream.pipelines", SL_CONFIG_STRING, pipelines, "", 0, 0, "pipeline YAML files, comma-separated"),
    F("pipelines", SL_CONFIG_DOCUMENT, pipelines_doc, NULL, 0, 0,
      "pipelines declared in the --config file, as a top-level `pipelines:` list like examples/*.yaml"),
    F("stream.ready_file", SL_CONFIG_STRING, ready_file, "", 0, 0, "written once every pipeline has its partitions"),
    F("stream.batch_rows", SL_CONFIG_INT, batch_rows, "64", 1, 10000, "rows per CQL batch"),
    F("stream.batch_max_bytes", SL_CONFIG_INT, batch_max_bytes, "40KiB", 1024, 16 << 20,
      "a batch is sent once its values reach this size (Cassandra's batch_size_fail_threshold is 50 KiB)"),
    F("stream.batch_by_table_partition", SL_CONFIG_BOOL, batch_by_table_partition, "false", 0, 0,
      "one batch per table partition, as Cassandra prefers (default: per Kafka partition, fewer requests)"),
    F("stream.max_inflight_rows", SL_CONFIG_INT, max_inflight_rows, "20000", 1, 10000000,
      "unacknowledged records before consumption pauses"),
    F("stream.commit_interval_ms", SL_CONFIG_INT, commit_interval_ms, "200", 1, 3600000, "offset commit interval"),
    F("stream.status_interval_ms", SL_CONFIG_INT, status_interval_ms, "10000", 0, INT64_MAX,
      "status log line interval (0: none)"),
    F("stream.session_timeout_ms", SL_CONFIG_INT, session_timeout_ms, "10000", 1000, 3600000,
      "consumer group session timeout"),
    F("stream.fetch_max_kbytes", SL_CONFIG_INT, fetch_max_kbytes, "65536", 64, 2097151,
      "records prefetched per consumer (KiB)"),
};
const size_t sl_stream_config_field_count = sizeof sl_stream_config_fields / sizeof sl_stream_config_fields[0];

enum { ST_CONNECTING, ST_SETUP, ST_RUNNING, ST_DRAINING, ST_CLOSING, ST_DONE };
#define LAT_RES_MS 0.25
enum { LAT_BUCKETS = 8000 }; /* up to 2 s; slower lands in the last bucket */
enum { DRAIN_BUDGET = 4096, STOP_DRAIN_MS = 10000, RETRY_MS = 200, SETUP_RETRY_MS = 1000 };

typedef struct pipe_rt pipe_rt_t;
typedef struct batch batch_t;

/* One assigned topic-partition and its slots (see the header comment). */
typedef struct part {
  struct part *next;
  pipe_rt_t *pl;
  char *topic;
  int32_t partition;
  struct slot {
    int64_t offset;
    uint8_t done;
  } *ring;
  uint64_t head, tail, cap;
  int64_t committable; /* -1: nothing yet */
  int64_t committed;
  int64_t next_offset; /* one past the last consumed */
  int refs;
  bool revoked;
  batch_t *cur; /* rows collected during this drain */
} part_t;

struct batch {
  batch_t *next; /* retry list */
  pipe_rt_t *pl;
  part_t *part;
  size_t nrows, cap;
  uint64_t *seqs;
  int64_t *produced_ms; /* Kafka timestamps, for the latency histogram */
  sl_value_t *vals;
  sl_buf_t text;
  /* each row's record, key then value, so a row the store refuses is dead-lettered with its original payload */
  sl_buf_t records;
  struct record_span {
    size_t at;
    uint32_t keylen, valuelen;
  } *spans;
  int attempts;
};

struct pipe_rt {
  sl_stream_t *s;
  sl_pipeline_t *def;
  rd_kafka_t *consumer;
  rd_kafka_queue_t *queue;
  sl_kafka_uv_t *watch;
  rd_kafka_topic_t *dlq;
  sl_cql_prepared_t *insert;
  part_t *parts;
  uint64_t consumed, written, dead_lettered, filtered, inflight;
  int setup_step;
  bool assigned; /* has had a first assignment from its group (possibly empty) */
  bool closed, destroyed;
};

struct sl_stream {
  uv_loop_t *loop;
  const sl_stream_config_t *cfg;
  sl_pipeline_t *defs;
  size_t ndefs;
  pipe_rt_t *pls;
  sl_cql_client_t *cql;
  rd_kafka_t *producer;
  sl_kafka_uv_t *producer_watch;
  uv_timer_t commit_timer, status_timer, retry_timer, step_timer;
  int open_handles;
  int state;
  size_t setup_pl;
  batch_t *retry_head;
  uint64_t inflight, write_errors, committed_records;
  uint64_t writes_sent; /* CQL write requests (batches or single rows), retries included */
  int64_t deadline_ms, last_status_ms;
  uint64_t last_written;
  int pending_destroys;
  bool ready;
  sl_status_t *status; /* sluice_meta tables for the API (status.c) */
  bool status_setup_done;
  char last_setup_error[256];
  void (*stopped)(void *arg);
  void *stopped_arg;
  uint32_t latency[LAT_BUCKETS]; /* produce -> acknowledged, LAT_RES_MS per bucket */
  uint64_t latency_count;
};

void sl_stream_on_stopped(sl_stream_t *s, void (*stopped)(void *arg), void *arg) {
  s->stopped = stopped;
  s->stopped_arg = arg;
}

static void kick_all(sl_stream_t *s);
static void check_drained(sl_stream_t *s);

/* ------------------------------------------------------------------------------------------------ trackers */
static uint64_t part_add(part_t *p, int64_t offset) {
  if (p->tail - p->head == p->cap) {
    uint64_t ncap = p->cap ? p->cap * 2 : 1024;
    struct slot *nr = malloc(ncap * sizeof *nr);
    if (!nr) abort();
    for (uint64_t q = p->head; q < p->tail; q++) nr[q % ncap] = p->ring[q % p->cap];
    free(p->ring);
    p->ring = nr;
    p->cap = ncap;
  }
  uint64_t seq = p->tail++;
  p->ring[seq % p->cap] = (struct slot){offset, 0};
  p->next_offset = offset + 1;
  return seq;
}

static void part_done(part_t *p, uint64_t seq) {
  p->ring[seq % p->cap].done = 1;
  while (p->head < p->tail && p->ring[p->head % p->cap].done) {
    p->committable = p->ring[p->head % p->cap].offset + 1;
    p->head++;
  }
}

static void part_unref(part_t *p) {
  if (--p->refs > 0) return;
  free(p->topic);
  free(p->ring);
  free(p);
}

static part_t *find_part(pipe_rt_t *pl, const char *topic, int32_t partition) {
  for (part_t *p = pl->parts; p; p = p->next) {
    if (p->partition == partition && !strcmp(p->topic, topic)) return p;
  }
  return NULL;
}

/* Marks one record finished (written, filtered or dead-lettered). */
static void record_finished(pipe_rt_t *pl, part_t *p, uint64_t seq) {
  if (!p->revoked) part_done(p, seq);
  pl->inflight--;
  pl->s->inflight--;
}

/* ------------------------------------------------------------------------------------------------ commits */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets,
                      void *opaque) {
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
    SL_WARN("stream", "offset commit failed: %s (the next commit covers it)", rd_kafka_err2str(err));
}

/* Commits every acknowledged prefix of pl's partitions that moved since the last commit (async). If only is set,
 * only that partition. */
static void commit_pipeline(pipe_rt_t *pl, part_t *only) {
  if (!pl->consumer || pl->closed) return;
  rd_kafka_topic_partition_list_t *list = NULL;
  for (part_t *p = only ? only : pl->parts; p; p = only ? NULL : p->next) {
    if (p->committable < 0 || p->committable <= p->committed) continue;
    if (!list) list = rd_kafka_topic_partition_list_new(4);
    rd_kafka_topic_partition_list_add(list, p->topic, p->partition)->offset = p->committable;
    pl->s->committed_records += (uint64_t)(p->committable - (p->committed < 0 ? 0 : p->committed));
    p->committed = p->committable;
  }
  if (!list) return;
  rd_kafka_resp_err_t err = rd_kafka_commit(pl->consumer, list, 1);
  if (err) SL_WARN("stream", "pipeline %s: commit: %s", pl->def->name, rd_kafka_err2str(err));
  rd_kafka_topic_partition_list_destroy(list);
}

static void on_commit_timer(uv_timer_t *t) {
  sl_stream_t *s = t->data;
  for (size_t i = 0; i < s->ndefs; i++) commit_pipeline(&s->pls[i], NULL);
}

/* ------------------------------------------------------------------------------------------------ writes */
static void flush_batch(batch_t *b);
static batch_t *batch_of_rows(const batch_t *b, const size_t *rows, size_t n);

static void batch_free(batch_t *b) {
  sl_buf_free(&b->text);
  sl_buf_free(&b->records);
  free(b->spans);
  free(b->produced_ms);
  free(b->seqs);
  free(b->vals);
  free(b);
}

static void bind_row(const sl_pipeline_t *def, sl_cql_statement_t *st, const sl_value_t *vals, const sl_buf_t *text) {
  for (size_t c = 0; c < def->ncols; c++) {
    const sl_value_t *v = &vals[c];
    if (!v->set) {
      sl_cql_statement_bind_unset(st, c);
      continue;
    }
    switch (def->cols[c].type) {
      case SL_COL_TEXT: sl_cql_statement_bind_text(st, c, (const char *)text->data + v->v.s.off, v->v.s.len); break;
      case SL_COL_INT: sl_cql_statement_bind_int32(st, c, (int32_t)v->v.i); break;
      case SL_COL_BIGINT: sl_cql_statement_bind_int64(st, c, v->v.i); break;
      case SL_COL_DOUBLE: sl_cql_statement_bind_double(st, c, v->v.d); break;
      case SL_COL_FLOAT: sl_cql_statement_bind_float(st, c, (float)v->v.d); break;
      case SL_COL_BOOLEAN: sl_cql_statement_bind_bool(st, c, v->v.b); break;
      case SL_COL_TIMESTAMP: sl_cql_statement_bind_timestamp(st, c, v->v.i); break;
      case SL_COL_DATE: {
        uint8_t raw[4];
        sl_store_be32(raw, (uint32_t)((int64_t)v->v.i + (1LL << 31)));
        sl_cql_statement_bind_raw(st, c, raw, 4);
        break;
      }
      case SL_COL_UUID: sl_cql_statement_bind_uuid(st, c, v->v.uuid); break;
    }
  }
}

static bool transient(const sl_cql_error_t *err) {
  switch (err->code) {
    case SL_CQL_CLIENT_BAD_VALUE:
    case SL_CQL_CLIENT_PROTOCOL: return false;
    case 0x0000: /* server error */
    case 0x1000: /* unavailable */
    case 0x1001: /* overloaded */
    case 0x1002: /* bootstrapping */
    case 0x1100: /* write timeout */
    case 0x1300: /* write failure */
      return true;
    default: return err->code < 0;
  }
}

static void dead_letter(pipe_rt_t *pl, part_t *p, uint64_t seq, const void *key, size_t keylen, const void *value,
                        size_t valuelen, int64_t offset, const sl_map_error_t *e);

static void on_retry(uv_timer_t *t);

static void on_batch_done(const sl_cql_result_t *res, const sl_cql_error_t *err, void *arg) {
  batch_t *b = arg;
  pipe_rt_t *pl = b->pl;
  sl_stream_t *s = pl->s;
  if (err) {
    s->write_errors++;
    if (err->code == SL_CQL_CLIENT_CLOSING) {
      /* abandoned at shutdown: not acknowledged, so never committed; replayed on the next start */
      for (size_t i = 0; i < b->nrows; i++) pl->inflight--, s->inflight--;
      part_unref(b->part);
      batch_free(b);
      check_drained(s);
      return;
    }
    if (transient(err) && s->state < ST_CLOSING) {
      if (b->attempts++ < 3 || s->write_errors % 100 == 1)
        SL_WARN("stream", "pipeline %s: write of %zu rows failed (%s), retrying", pl->def->name, b->nrows,
                err->message);
      b->next = s->retry_head;
      s->retry_head = b;
      if (!uv_is_active((uv_handle_t *)&s->retry_timer)) uv_timer_start(&s->retry_timer, on_retry, RETRY_MS, 0);
      return;
    }
    if (b->nrows > 1) {
      /* one bad row fails its whole batch: write the rows one by one, so only the bad ones are dead-lettered */
      SL_WARN("stream", "pipeline %s: store rejected a batch of %zu rows (%s); writing them one by one",
              pl->def->name, b->nrows, err->message);
      for (size_t i = 0; i < b->nrows; i++) flush_batch(batch_of_rows(b, &i, 1));
      part_unref(b->part);
      batch_free(b);
      return;
    }
    /* the store refuses this row for good: it goes to the dead-letter topic with the store's reason */
    SL_WARN("stream", "pipeline %s: store rejected a row: %s", pl->def->name, err->message);
    for (size_t i = 0; i < b->nrows; i++) {
      sl_map_error_t e = {"", "", ""};
      snprintf(e.reason, sizeof e.reason, "store rejected the row: %.200s", err->message);
      int64_t off = b->part->ring[b->seqs[i] % b->part->cap].offset;
      const struct record_span *r = &b->spans[i];
      const uint8_t *key = b->records.data + r->at;
      dead_letter(pl, b->part, b->seqs[i], r->keylen ? key : NULL, r->keylen, key + r->keylen, r->valuelen, off, &e);
      pl->inflight--, s->inflight--; /* dead_letter counted it again */
    }
    part_unref(b->part);
    batch_free(b);
    return;
  }
  int64_t now = sl_wall_ms();
  for (size_t i = 0; i < b->nrows; i++) {
    record_finished(pl, b->part, b->seqs[i]);
    if (b->produced_ms[i] > 0) {
      double ms = (double)(now - b->produced_ms[i]);
      size_t k = ms <= 0 ? 0 : (size_t)(ms / LAT_RES_MS);
      s->latency[k < LAT_BUCKETS ? k : LAT_BUCKETS - 1]++;
      s->latency_count++;
    }
  }
  pl->written += b->nrows;
  part_unref(b->part);
  batch_free(b);
  if (s->state == ST_RUNNING && s->inflight < (uint64_t)s->cfg->max_inflight_rows / 2) kick_all(s);
  check_drained(s);
}

static void on_retry(uv_timer_t *t) {
  sl_stream_t *s = t->data;
  batch_t *list = s->retry_head;
  s->retry_head = NULL;
  while (list) {
    batch_t *b = list;
    list = b->next;
    flush_batch(b);
  }
}

static void flush_batch(batch_t *b) {
  pipe_rt_t *pl = b->pl;
  const sl_pipeline_t *def = pl->def;
  pl->s->writes_sent++;
  if (b->nrows == 1) {
    sl_cql_statement_t *st = sl_cql_statement_new_prepared(pl->insert);
    bind_row(def, st, b->vals, &b->text);
    sl_cql_statement_set_idempotent(st, true);
    sl_cql_execute(pl->s->cql, st, on_batch_done, b);
    return;
  }
  sl_cql_batch_t *cb = sl_cql_batch_new(SL_CQL_BATCH_UNLOGGED);
  for (size_t i = 0; i < b->nrows; i++) {
    sl_cql_statement_t *st = sl_cql_statement_new_prepared(pl->insert);
    bind_row(def, st, b->vals + i * def->ncols, &b->text);
    sl_cql_batch_add(cb, st);
  }
  sl_cql_batch_set_idempotent(cb, true);
  sl_cql_execute_batch(pl->s->cql, cb, on_batch_done, b);
}

static batch_t *batch_new(pipe_rt_t *pl, part_t *p, size_t cap) {
  batch_t *b = calloc(1, sizeof *b);
  if (!b) abort();
  b->pl = pl;
  b->part = p;
  p->refs++;
  b->cap = cap;
  b->seqs = malloc(b->cap * sizeof *b->seqs);
  b->produced_ms = malloc(b->cap * sizeof *b->produced_ms);
  b->vals = malloc(b->cap * pl->def->ncols * sizeof *b->vals);
  b->spans = malloc(b->cap * sizeof *b->spans);
  if (!b->seqs || !b->vals || !b->produced_ms || !b->spans) abort();
  sl_buf_init(&b->text);
  sl_buf_init(&b->records);
  return b;
}

static batch_t *batch_for(pipe_rt_t *pl, part_t *p) {
  if (!p->cur) p->cur = batch_new(pl, p, (size_t)pl->s->cfg->batch_rows);
  return p->cur;
}

/* Rows `rows[0..n)` of b as a batch of their own (their text values and records copied). */
static batch_t *batch_of_rows(const batch_t *b, const size_t *rows, size_t n) {
  const sl_pipeline_t *def = b->pl->def;
  batch_t *sub = batch_new(b->pl, b->part, n);
  for (size_t k = 0; k < n; k++) {
    size_t i = rows[k];
    sub->seqs[k] = b->seqs[i];
    sub->produced_ms[k] = b->produced_ms[i];
    for (size_t c = 0; c < def->ncols; c++) {
      sl_value_t v = b->vals[i * def->ncols + c];
      if (v.set && def->cols[c].type == SL_COL_TEXT) {
        size_t at = sub->text.len;
        sl_buf_put(&sub->text, b->text.data + v.v.s.off, v.v.s.len);
        v.v.s.off = (uint32_t)at;
      }
      sub->vals[k * def->ncols + c] = v;
    }
    const struct record_span *r = &b->spans[i];
    sub->spans[k] = (struct record_span){sub->records.len, r->keylen, r->valuelen};
    sl_buf_put(&sub->records, b->records.data + r->at, (size_t)r->keylen + r->valuelen);
  }
  sub->nrows = n;
  return sub;
}

/* Do rows i and j of b have the same table partition (equal partition key values)? */
static bool same_table_partition(const batch_t *b, size_t i, size_t j) {
  const sl_pipeline_t *def = b->pl->def;
  for (size_t k = 0; k < def->npartition_key; k++) {
    size_t c = def->partition_key[k];
    const sl_value_t *x = &b->vals[i * def->ncols + c], *y = &b->vals[j * def->ncols + c];
    if (x->set != y->set) return false;
    if (!x->set) continue;
    switch (def->cols[c].type) {
      case SL_COL_TEXT:
        if (x->v.s.len != y->v.s.len || memcmp(b->text.data + x->v.s.off, b->text.data + y->v.s.off, x->v.s.len))
          return false;
        break;
      case SL_COL_DOUBLE:
      case SL_COL_FLOAT:
        if (x->v.d != y->v.d) return false;
        break;
      case SL_COL_BOOLEAN:
        if (x->v.b != y->v.b) return false;
        break;
      case SL_COL_UUID:
        if (memcmp(x->v.uuid, y->v.uuid, 16)) return false;
        break;
      default:
        if (x->v.i != y->v.i) return false;
        break;
    }
  }
  return true;
}

/* stream.batch_by_table_partition: one batch per table partition (what Cassandra expects of a batch), in the
 * order their first rows came. */
static void flush_by_table_partition(batch_t *b) {
  size_t *group = malloc(b->nrows * sizeof *group);
  bool *taken = calloc(b->nrows, sizeof *taken);
  if (!group || !taken) abort();
  for (size_t i = 0; i < b->nrows; i++) {
    if (taken[i]) continue;
    size_t n = 0;
    for (size_t j = i; j < b->nrows; j++)
      if (!taken[j] && (j == i || same_table_partition(b, i, j))) taken[j] = true, group[n++] = j;
    flush_batch(batch_of_rows(b, group, n));
  }
  free(group);
  free(taken);
  part_unref(b->part);
  batch_free(b);
}

static void flush_part(part_t *p) {
  batch_t *b = p->cur;
  if (!b) return;
  p->cur = NULL;
  if (b->pl->s->cfg->batch_by_table_partition && b->nrows > 1) flush_by_table_partition(b);
  else flush_batch(b);
}

/* ------------------------------------------------------------------------------------------------ dead letters */
typedef struct {
  pipe_rt_t *pl;
  part_t *part;
  uint64_t seq;
} dl_t;

static void dead_letter(pipe_rt_t *pl, part_t *p, uint64_t seq, const void *key, size_t keylen, const void *value,
                        size_t valuelen, int64_t offset, const sl_map_error_t *e) {
  dl_t *d = malloc(sizeof *d);
  if (!d) abort();
  *d = (dl_t){pl, p, seq};
  p->refs++;
  pl->inflight++, pl->s->inflight++; /* balanced by record_finished in on_delivery */
  rd_kafka_headers_t *h = rd_kafka_headers_new(7);
  char part_s[16], off_s[24];
  snprintf(part_s, sizeof part_s, "%d", p->partition);
  snprintf(off_s, sizeof off_s, "%lld", (long long)offset);
  rd_kafka_header_add(h, "pipeline", -1, pl->def->name, -1);
  rd_kafka_header_add(h, "field", -1, e->field, -1);
  rd_kafka_header_add(h, "value", -1, e->value, -1);
  rd_kafka_header_add(h, "reason", -1, e->reason, -1);
  rd_kafka_header_add(h, "topic", -1, p->topic, -1);
  rd_kafka_header_add(h, "partition", -1, part_s, -1);
  rd_kafka_header_add(h, "offset", -1, off_s, -1);
  rd_kafka_resp_err_t err =
      rd_kafka_producev(pl->s->producer, RD_KAFKA_V_RKT(pl->dlq), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_VALUE((void *)value, valuelen), RD_KAFKA_V_KEY(key, keylen),
                        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
  if (!err)
    sl_status_dead_letter(pl->s->status, pl->def->name, p->topic, p->partition, offset, e->field, e->value, e->reason,
                          value, valuelen);
  if (err) {
    /* not sent: the slot stays open, so its offset is never committed and the record is retried on restart */
    SL_ERROR("stream", "pipeline %s: cannot dead-letter offset %lld: %s", pl->def->name, (long long)offset,
             rd_kafka_err2str(err));
    rd_kafka_headers_destroy(h);
    pl->inflight--, pl->s->inflight--;
    part_unref(p);
    free(d);
  }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  dl_t *d = m->_private;
  if (!d) return;
  if (m->err) {
    SL_ERROR("stream", "pipeline %s: dead letter not delivered: %s (offset left uncommitted)", d->pl->def->name,
             rd_kafka_err2str(m->err));
    d->pl->inflight--, d->pl->s->inflight--;
  } else {
    d->pl->dead_lettered++;
    record_finished(d->pl, d->part, d->seq);
  }
  part_unref(d->part);
  sl_stream_t *s = d->pl->s;
  free(d);
  check_drained(s);
}

static void on_producer_events(void *arg) {
  sl_stream_t *s = arg;
  if (s->producer) rd_kafka_poll(s->producer, 0);
}

/* ------------------------------------------------------------------------------------------------ consuming */
static void handle_message(pipe_rt_t *pl, rd_kafka_message_t *m) {
  sl_stream_t *s = pl->s;
  if (m->err) {
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
      SL_WARN("stream", "pipeline %s: consumer: %s", pl->def->name, rd_kafka_message_errstr(m));
    return;
  }
  const char *topic = rd_kafka_topic_name(m->rkt);
  part_t *p = find_part(pl, topic, m->partition);
  if (!p) return; /* not (or no longer) ours: the owner consumes it */
  uint64_t seq = part_add(p, m->offset);
  pl->consumed++;
  pl->inflight++, s->inflight++;
  batch_t *b = batch_for(pl, p);
  sl_map_error_t err;
  int rc = sl_pipeline_map(pl->def, m->payload, m->len, topic, m->partition, m->offset,
                           b->vals + b->nrows * pl->def->ncols, &b->text, &err);
  if (rc == SL_MAP_ROW) {
    rd_kafka_timestamp_type_t tstype;
    b->produced_ms[b->nrows] = rd_kafka_message_timestamp(m, &tstype);
    b->spans[b->nrows] = (struct record_span){b->records.len, (uint32_t)m->key_len, (uint32_t)m->len};
    sl_buf_put(&b->records, m->key, m->key_len);
    sl_buf_put(&b->records, m->payload, m->len);
    b->seqs[b->nrows++] = seq;
    /* text values plus 8 bytes per other value: close to the batch's size on the wire */
    if (b->nrows == b->cap || b->text.len + b->nrows * pl->def->ncols * 8 >= (size_t)s->cfg->batch_max_bytes)
      flush_part(p);
  } else if (rc == SL_MAP_FILTERED) {
    pl->filtered++;
    record_finished(pl, p, seq);
  } else {
    SL_DEBUG("stream", "pipeline %s: %s[%d]@%lld -> dead letter: %s: %s", pl->def->name, topic, m->partition,
             (long long)m->offset, err.field, err.reason);
    dead_letter(pl, p, seq, m->key, m->key_len, m->payload, m->len, m->offset, &err);
    pl->inflight--, s->inflight--; /* dead_letter took its own count */
  }
}

static void write_ready(sl_stream_t *s);

/* Ready once every pipeline's consumer has been given its partitions: before that, records would wait. */
static void maybe_ready(sl_stream_t *s) {
  if (s->ready || s->state != ST_RUNNING) return;
  for (size_t i = 0; i < s->ndefs; i++)
    if (!s->pls[i].assigned) return;
  SL_INFO("stream", "%zu pipeline(s) consuming from %s, writing to %s", s->ndefs, s->cfg->brokers, s->cfg->cql);
  write_ready(s);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
  pipe_rt_t *pl = opaque;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < parts->cnt; i++) {
      part_t *p = calloc(1, sizeof *p);
      if (!p) abort();
      p->pl = pl;
      p->topic = strdup(parts->elems[i].topic);
      p->partition = parts->elems[i].partition;
      p->committable = p->committed = -1;
      p->next_offset = -1;
      p->refs = 1;
      p->next = pl->parts;
      pl->parts = p;
    }
    SL_INFO("stream", "pipeline %s: assigned %d partition(s)", pl->def->name, parts->cnt);
    rd_kafka_assign(rk, parts);
    pl->assigned = true;
    maybe_ready(pl->s);
    return;
  }
  /* revoke (or an error): commit what is acknowledged, abandon the rest (see the header comment) */
  for (part_t **pp = &pl->parts; *pp;) {
    part_t *p = *pp;
    flush_part(p);
    if (!pl->closed) commit_pipeline(pl, p);
    *pp = p->next;
    p->revoked = true;
    part_unref(p);
  }
  if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
    SL_WARN("stream", "pipeline %s: rebalance error: %s", pl->def->name, rd_kafka_err2str(err));
  SL_INFO("stream", "pipeline %s: revoked %d partition(s)", pl->def->name, parts ? parts->cnt : 0);
  rd_kafka_assign(rk, NULL);
}

static void close_step(sl_stream_t *s);

static void on_consumer_events(void *arg) {
  pipe_rt_t *pl = arg;
  sl_stream_t *s = pl->s;
  if (!pl->consumer || pl->destroyed) return;
  if (s->state >= ST_CLOSING) {
    /* closing: serve the queue (rebalance, leave) and drop records; they are not ours any more */
    for (int i = 0; i < DRAIN_BUDGET; i++) {
      rd_kafka_message_t *m = rd_kafka_consumer_poll(pl->consumer, 0);
      if (!m) break;
      rd_kafka_message_destroy(m);
    }
    close_step(s);
    return;
  }
  if (s->state != ST_RUNNING) {
    /* draining: serve callbacks only once nothing is in flight would be cleaner, but records must not be
     * taken: leave them in the queue */
    return;
  }
  int n = 0;
  while (n < DRAIN_BUDGET && s->inflight < (uint64_t)s->cfg->max_inflight_rows) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(pl->consumer, 0);
    if (!m) break;
    handle_message(pl, m);
    rd_kafka_message_destroy(m);
    n++;
  }
  for (part_t *p = pl->parts; p; p = p->next) flush_part(p);
  rd_kafka_poll(s->producer, 0);
  /* more may be waiting: the pipe only signals empty -> non-empty */
  if (n == DRAIN_BUDGET) sl_kafka_uv_kick(pl->watch);
}

static void kick_all(sl_stream_t *s) {
  for (size_t i = 0; i < s->ndefs; i++) {
    if (s->pls[i].watch) sl_kafka_uv_kick(s->pls[i].watch);
  }
}

static int start_consumer(pipe_rt_t *pl) {
  sl_stream_t *s = pl->s;
  const sl_stream_config_t *cfg = s->cfg;
  char err[512], num[32];
  rd_kafka_conf_t *conf = sl_kafka_conf_new(cfg->brokers, &cfg->kafka, err, sizeof err);
  if (!conf) goto fail;
  snprintf(num, sizeof num, "%lld", (long long)cfg->session_timeout_ms);
  int rc = sl_kafka_conf_set(conf, "group.id", pl->def->group, err, sizeof err);
  if (!rc) rc = sl_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
  if (!rc) rc = sl_kafka_conf_set(conf, "enable.auto.offset.store", "false", err, sizeof err);
  if (!rc) rc = sl_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err);
  if (!rc) rc = sl_kafka_conf_set(conf, "session.timeout.ms", num, err, sizeof err);
  if (!rc) rc = sl_kafka_conf_set(conf, "heartbeat.interval.ms", "1000", err, sizeof err);
  if (!rc) rc = sl_kafka_conf_set(conf, "enable.partition.eof", "false", err, sizeof err);
  snprintf(num, sizeof num, "%lld", (long long)cfg->fetch_max_kbytes);
  if (!rc) rc = sl_kafka_conf_set(conf, "queued.max.messages.kbytes", num, err, sizeof err);
  /* librdkafka (2.0) stops fetching a partition once its prefetch queue reaches queued.min.messages or
   * queued.max.messages.kbytes and looks again only 1 s later (fetch.queue.backoff.ms, not settable before 2.1).
   * With a backlog, the default 100000 messages drained in ~0.5 s and the consumer then sat idle for ~0.5 s:
   * throughput went 180k/s, 0, 0, 180k/s... (measured). The bounds are therefore sized to more than 1 s of
   * processing (the byte bound, stream.fetch_max_kbytes, still caps memory). */
  snprintf(num, sizeof num, "%lld", (long long)(cfg->fetch_max_kbytes * 4 > 1000000 ? 1000000 : cfg->fetch_max_kbytes * 4));
  if (!rc) rc = sl_kafka_conf_set(conf, "queued.min.messages", num, err, sizeof err);
  if (!rc) rc = sl_kafka_conf_set(conf, "fetch.wait.max.ms", "100", err, sizeof err);
  if (!rc) rc = sl_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", "5000", err, sizeof err);
  if (rc) {
    rd_kafka_conf_destroy(conf);
    goto fail;
  }
  rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
  rd_kafka_conf_set_opaque(conf, pl);
  pl->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!pl->consumer) goto fail;
  rd_kafka_poll_set_consumer(pl->consumer);
  pl->queue = rd_kafka_queue_get_consumer(pl->consumer);
  if (sl_kafka_uv_open(s->loop, pl->queue, on_consumer_events, pl, &pl->watch) != 0) {
    pl->queue = NULL;
    snprintf(err, sizeof err, "cannot watch the consumer queue");
    goto fail;
  }
  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new((int)pl->def->ntopics);
  for (size_t i = 0; i < pl->def->ntopics; i++)
    rd_kafka_topic_partition_list_add(topics, pl->def->topics[i], RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(pl->consumer, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (e) {
    snprintf(err, sizeof err, "subscribe: %s", rd_kafka_err2str(e));
    goto fail;
  }
  pl->dlq = rd_kafka_topic_new(s->producer, pl->def->dead_letter, NULL);
  return 0;
fail:
  SL_ERROR("stream", "pipeline %s: %s", pl->def->name, err);
  return -EINVAL;
}

/* ------------------------------------------------------------------------------------------------ setup */
static void setup_next(sl_stream_t *s);

static void write_ready(sl_stream_t *s) {
  s->ready = true;
  const char *path = s->cfg->ready_file;
  if (!path || !path[0]) return;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return;
  fprintf(f, "ready\n");
  fclose(f);
  rename(tmp, path);
}

static void on_step_timer(uv_timer_t *t) { setup_next(t->data); }

static void setup_failed(sl_stream_t *s, const char *what, const sl_cql_error_t *err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %.200s", what, err->message);
  if (strcmp(msg, s->last_setup_error)) SL_WARN("stream", "%s (retrying)", msg);
  snprintf(s->last_setup_error, sizeof s->last_setup_error, "%s", msg);
  uv_timer_start(&s->step_timer, on_step_timer, SETUP_RETRY_MS, 0);
}

static void on_setup_result(const sl_cql_result_t *res, const sl_cql_error_t *err, void *arg) {
  sl_stream_t *s = arg;
  if (s->state != ST_SETUP) return;
  if (err) return setup_failed(s, s->pls[s->setup_pl].setup_step == 0 ? "create keyspace" : "create table", err);
  s->pls[s->setup_pl].setup_step++;
  setup_next(s);
}

static void on_prepared(sl_cql_prepared_t *p, const sl_cql_error_t *err, void *arg) {
  sl_stream_t *s = arg;
  if (s->state != ST_SETUP) return;
  if (err) return setup_failed(s, "prepare insert", err);
  pipe_rt_t *pl = &s->pls[s->setup_pl];
  sl_cql_prepared_keep(p);
  pl->insert = p;
  pl->setup_step++;
  setup_next(s);
}

static void on_status_setup(void *arg, bool ok) {
  sl_stream_t *s = arg;
  (void)ok; /* without the status tables the pipelines still run; status.c retries */
  if (s->state != ST_SETUP || s->status_setup_done) return;
  s->status_setup_done = true;
  setup_next(s);
}

static void setup_next(sl_stream_t *s) {
  if (s->state != ST_SETUP) return;
  if (s->setup_pl == s->ndefs) {
    if (!s->status_setup_done) return sl_status_setup(s->status, on_status_setup, s);
    for (size_t i = 0; i < s->ndefs; i++) {
      if (start_consumer(&s->pls[i]) != 0) {
        SL_ERROR("stream", "cannot start the consumers; stopping");
        sl_stream_stop(s);
        return;
      }
    }
    s->state = ST_RUNNING;
    SL_INFO("stream", "%zu pipeline(s) subscribed, waiting for their partitions", s->ndefs);
    maybe_ready(s); /* a rebalance may have run while starting */
    return;
  }
  pipe_rt_t *pl = &s->pls[s->setup_pl];
  sl_buf_t q;
  sl_buf_init(&q);
  if (pl->setup_step == 0)
    sl_pipeline_keyspace_cql(pl->def, &q);
  else if (pl->setup_step == 1)
    sl_pipeline_table_cql(pl->def, &q);
  else if (pl->setup_step == 2)
    sl_pipeline_insert_cql(pl->def, &q);
  sl_buf_put_u8(&q, 0);
  if (pl->setup_step < 2) {
    SL_DEBUG("stream", "pipeline %s: %s", pl->def->name, (char *)q.data);
    sl_cql_execute(s->cql, sl_cql_statement_new((char *)q.data, 0), on_setup_result, s);
  } else if (pl->setup_step == 2) {
    sl_cql_prepare(s->cql, (char *)q.data, on_prepared, s);
  } else {
    s->setup_pl++;
    sl_buf_free(&q);
    setup_next(s);
    return;
  }
  sl_buf_free(&q);
}

static void on_connected(sl_cql_client_t *c, const sl_cql_error_t *err, void *arg) {
  sl_stream_t *s = arg;
  if (s->state != ST_CONNECTING) return;
  if (err) {
    SL_WARN("stream", "cannot connect to %s: %s (retrying)", s->cfg->cql, err->message);
    uv_timer_start(&s->step_timer, on_step_timer, SETUP_RETRY_MS, 0);
    return;
  }
  s->state = ST_SETUP;
  setup_next(s);
}

/* ------------------------------------------------------------------------------------------------ status */
void sl_stream_get_stats(const sl_stream_t *s, sl_stream_stats_t *out) {
  memset(out, 0, sizeof *out);
  out->lag = 0;
  for (size_t i = 0; i < s->ndefs; i++) {
    const pipe_rt_t *pl = &s->pls[i];
    out->consumed += pl->consumed;
    out->written += pl->written;
    out->dead_lettered += pl->dead_lettered;
    out->filtered += pl->filtered;
    if (!pl->consumer || pl->closed || !pl->parts) continue;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    for (part_t *p = pl->parts; p; p = p->next) rd_kafka_topic_partition_list_add(list, p->topic, p->partition);
    rd_kafka_position(pl->consumer, list); /* local fetch positions, no round trip */
    for (int k = 0; k < list->cnt; k++) {
      int64_t lo, hi, pos = list->elems[k].offset;
      if (rd_kafka_get_watermark_offsets(pl->consumer, list->elems[k].topic, list->elems[k].partition, &lo,
                                         &hi) != 0 || hi < 0) {
        out->lag = -1;
        break;
      }
      if (pos < 0) continue; /* nothing consumed since the assignment: at the committed offset, unknown here */
      if (out->lag >= 0 && hi > pos) out->lag += hi - pos;
    }
    rd_kafka_topic_partition_list_destroy(list);
  }
  out->inflight = s->inflight;
  uint64_t seen = 0;
  for (size_t k = 0; k < LAT_BUCKETS && s->latency_count; k++) {
    uint64_t before = seen;
    seen += s->latency[k];
    if (before < s->latency_count / 2 && seen >= s->latency_count / 2) out->latency_p50_ms = (double)(k + 1) * LAT_RES_MS;
    if (before < s->latency_count * 99 / 100 && seen >= s->latency_count * 99 / 100)
      out->latency_p99_ms = (double)(k + 1) * LAT_RES_MS;
  }
  out->committed = s->committed_records;
  out->write_errors = s->write_errors;
}

bool sl_stream_ready(const sl_stream_t *s) { return s->ready; }

static void on_status(uv_timer_t *t) {
  sl_stream_t *s = t->data;
  sl_stream_stats_t st;
  sl_stream_get_stats(s, &st);
  int64_t now = sl_monotonic_ms();
  double secs = (double)(now - s->last_status_ms) / 1000.0;
  SL_INFO("stream",
          "consumed %llu, written %llu (%.0f/s), dead-lettered %llu, filtered %llu, in flight %llu, lag %lld, "
          "latency p50 %.2f ms p99 %.2f ms, %llu write requests",
          (unsigned long long)st.consumed, (unsigned long long)st.written,
          secs > 0 ? (double)(st.written - s->last_written) / secs : 0.0, (unsigned long long)st.dead_lettered,
          (unsigned long long)st.filtered, (unsigned long long)st.inflight, (long long)st.lag, st.latency_p50_ms,
          st.latency_p99_ms, (unsigned long long)s->writes_sent);
  s->last_status_ms = now;
  s->last_written = st.written;
}

/* The snapshot status.c publishes (sluice_meta.pipeline_processors / pipeline_lag). */
static size_t status_snapshot(void *arg, size_t i, sl_status_pipe_t *out, sl_status_part_t *parts, size_t cap) {
  sl_stream_t *s = arg;
  pipe_rt_t *pl = &s->pls[i];
  const sl_pipeline_t *d = pl->def;
  static const char *const names[] = {"starting", "starting", "running", "stopping", "stopping", "stopped"};
  *out = (sl_status_pipe_t){d->name, d->keyspace, d->table, d->dead_letter, (const char *const *)d->topics,
                            d->ntopics, names[s->state], pl->consumed, pl->written, pl->dead_lettered, pl->filtered,
                            pl->inflight, -1};
  if (!pl->consumer || pl->closed || pl->destroyed || !pl->parts) return 0;
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
  for (part_t *p = pl->parts; p; p = p->next) rd_kafka_topic_partition_list_add(list, p->topic, p->partition);
  rd_kafka_position(pl->consumer, list); /* local, no round trip */
  size_t n = 0;
  for (part_t *p = pl->parts; p && n < cap; p = p->next) {
    rd_kafka_topic_partition_t *e = rd_kafka_topic_partition_list_find(list, p->topic, p->partition);
    int64_t lo = -1, hi = -1, pos = e && e->offset >= 0 ? e->offset : p->committed, lag = -1;
    if (rd_kafka_get_watermark_offsets(pl->consumer, p->topic, p->partition, &lo, &hi) != 0) lo = hi = -1;
    if (hi >= 0 && pos >= 0)
      lag = hi > pos ? hi - pos : 0;
    else if (hi >= 0 && lo == hi)
      lag = 0; /* empty partition */
    parts[n++] = (sl_status_part_t){p->topic, p->partition, p->committed, hi, lag};
    if (lag >= 0) out->lag = (out->lag < 0 ? 0 : out->lag) + lag;
  }
  rd_kafka_topic_partition_list_destroy(list);
  return n;
}

/* ------------------------------------------------------------------------------------------------ start */
static int start_common(uv_loop_t *loop, const sl_stream_config_t *cfg, sl_pipeline_t *defs, size_t ndefs,
                        sl_stream_t **out) {
  char err[512];
  sl_stream_t *s = calloc(1, sizeof *s);
  if (!s) abort();
  s->loop = loop;
  s->cfg = cfg;
  s->defs = defs;
  s->ndefs = ndefs;
  s->pls = calloc(ndefs, sizeof *s->pls);
  for (size_t i = 0; i < ndefs; i++) s->pls[i] = (pipe_rt_t){.s = s, .def = &defs[i]};

  /* the dead-letter producer: idempotent, acks=all, shared by the pipelines */
  rd_kafka_conf_t *conf = sl_kafka_conf_new(cfg->brokers, &cfg->kafka, err, sizeof err);
  if (!conf || sl_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err) ||
      sl_kafka_conf_set(conf, "linger.ms", "5", err, sizeof err) ||
      sl_kafka_conf_set(conf, "message.timeout.ms", "0", err, sizeof err)) {
    if (conf) rd_kafka_conf_destroy(conf);
    goto fail;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, s);
  s->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!s->producer) goto fail;
  rd_kafka_queue_t *mainq = rd_kafka_queue_get_main(s->producer);
  int rc = sl_kafka_uv_open(loop, mainq, on_producer_events, s, &s->producer_watch);
  if (rc) {
    snprintf(err, sizeof err, "cannot watch the producer queue");
    rd_kafka_destroy(s->producer);
    goto fail;
  }
  /* Source topics that do not exist yet: the producer's metadata request for them makes the brokers auto-create
   * them (when allowed) while the CQL setup runs, so the consumers find them when they subscribe. librdkafka's
   * consumer never asks for creation and, finding a topic missing, retries its group join only every ~2 s: records
   * produced meanwhile waited that long (measured: p50 1.3 s, p99 > 2 s at 20k/s when the processor starts
   * first; 'allow.auto.create.topics' on the consumer does not help with librdkafka 2.0). */
  for (size_t i = 0; i < s->ndefs; i++) {
    for (size_t k = 0; k < s->defs[i].ntopics; k++) {
      rd_kafka_topic_t *t = rd_kafka_topic_new(s->producer, s->defs[i].topics[k], NULL);
      if (t) rd_kafka_topic_destroy(t);
    }
  }

  sl_cql_client_config_t cc;
  sl_cql_client_config_defaults(&cc);
  cc.contact_points = cfg->cql;
  if (cfg->cql_username[0]) {
    cc.username = cfg->cql_username;
    cc.password = cfg->cql_password;
  }
  sl_cql_tls_settings_apply(&cfg->cql_tls, &cc);
  char why[400];
  if (sl_cql_client_create_with_error(loop, &cc, &s->cql, why, sizeof why) != 0) {
    snprintf(err, sizeof err, "cannot create the CQL client for %s: %s", cfg->cql, why);
    sl_kafka_uv_close(s->producer_watch);
    rd_kafka_destroy(s->producer);
    goto fail;
  }
  uv_timer_init(loop, &s->commit_timer);
  uv_timer_init(loop, &s->status_timer);
  uv_timer_init(loop, &s->retry_timer);
  uv_timer_init(loop, &s->step_timer);
  s->commit_timer.data = s->status_timer.data = s->retry_timer.data = s->step_timer.data = s;
  s->open_handles = 4;
  s->status = sl_status_new(loop, s->cql, ndefs, status_snapshot, s);
  uv_timer_start(&s->commit_timer, on_commit_timer, (uint64_t)cfg->commit_interval_ms,
                 (uint64_t)cfg->commit_interval_ms);
  if (cfg->status_interval_ms > 0)
    uv_timer_start(&s->status_timer, on_status, (uint64_t)cfg->status_interval_ms, (uint64_t)cfg->status_interval_ms);
  s->last_status_ms = sl_monotonic_ms();
  s->state = ST_CONNECTING;
  sl_cql_client_connect(s->cql, on_connected, s);
  *out = s;
  return 0;
fail:
  SL_ERROR("stream", "%s", err);
  free(s->pls);
  free(s);
  sl_pipelines_free(defs, ndefs);
  return -EINVAL;
}

/* Appends the pipelines of one YAML text to (*defs, *n). */
static int add_pipelines(const char *text, size_t len, const char *origin, sl_pipeline_t **defs, size_t *n) {
  char err[512];
  sl_pipeline_t *more;
  size_t m;
  if (sl_pipelines_parse(text, len, origin, &more, &m, err, sizeof err) != 0) {
    SL_ERROR("stream", "%s", err);
    return -EINVAL;
  }
  sl_pipeline_t *all = realloc(*defs, (*n + m) * sizeof *all);
  if (!all) abort();
  memcpy(all + *n, more, m * sizeof *more);
  free(more);
  *defs = all;
  *n += m;
  return 0;
}

static int read_file(const char *path, sl_buf_t *text) {
  FILE *f = fopen(path, "r");
  if (!f) return -errno;
  char chunk[4096];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) sl_buf_put(text, chunk, got);
  int rc = ferror(f) ? -EIO : 0;
  fclose(f);
  return rc;
}

/* Appends the pipelines of the --config file's `pipelines:` list, then those of the --pipelines files. */
static int add_configured(const sl_stream_config_t *cfg, sl_pipeline_t **defs, size_t *n) {
  char list[4096];
  snprintf(list, sizeof list, "%s%s%s", cfg->pipelines_doc ? cfg->pipelines_doc : "",
           cfg->pipelines_doc && cfg->pipelines && cfg->pipelines[0] ? "," : "", cfg->pipelines ? cfg->pipelines : "");
  for (char *save = NULL, *path = strtok_r(list, ",", &save); path; path = strtok_r(NULL, ",", &save)) {
    sl_buf_t text;
    sl_buf_init(&text);
    int rc = read_file(path, &text);
    if (rc != 0) SL_ERROR("stream", "cannot read pipeline file %s: %s", path, strerror(-rc));
    else rc = add_pipelines((const char *)text.data, text.len, path, defs, n);
    sl_buf_free(&text);
    if (rc != 0) return rc;
  }
  return 0;
}

int sl_stream_start_texts(uv_loop_t *loop, const sl_stream_config_t *cfg, const char *const *texts, size_t count,
                          sl_stream_t **out) {
  sl_pipeline_t *defs = NULL;
  size_t n = 0;
  for (size_t i = 0; i < count; i++) {
    char origin[32];
    snprintf(origin, sizeof origin, "pipelines #%zu", i + 1);
    if (add_pipelines(texts[i], strlen(texts[i]), origin, &defs, &n) != 0) {
      sl_pipelines_free(defs, n);
      return -EINVAL;
    }
  }
  int rc = add_configured(cfg, &defs, &n);
  if (rc != 0) {
    sl_pipelines_free(defs, n);
    return rc;
  }
  if (n == 0) {
    SL_ERROR("stream", "no pipelines");
    return -EINVAL;
  }
  return start_common(loop, cfg, defs, n, out);
}

int sl_stream_start(uv_loop_t *loop, const sl_stream_config_t *cfg, sl_stream_t **out) {
  sl_pipeline_t *defs = NULL;
  size_t n = 0;
  int rc = add_configured(cfg, &defs, &n);
  if (rc != 0) {
    sl_pipelines_free(defs, n);
    return rc;
  }
  if (n == 0) {
    SL_ERROR("stream", "no pipelines: declare them under `pipelines:` in the --config file, or give pipeline files "
                       "with --pipelines FILE[,FILE] (see examples/)");
    return -EINVAL;
  }
  return start_common(loop, cfg, defs, n, out);
}

/* ------------------------------------------------------------------------------------------------ stop */
static void on_handle_closed(uv_handle_t *h) {
  sl_stream_t *s = h->data;
  if (--s->open_handles > 0) return;
  for (size_t i = 0; i < s->ndefs; i++) {
    if (s->pls[i].insert) sl_cql_prepared_release(s->pls[i].insert);
  }
  sl_status_free(s->status);
  free(s->pls);
  sl_pipelines_free(s->defs, s->ndefs);
  void (*stopped)(void *) = s->stopped;
  void *arg = s->stopped_arg;
  free(s);
  if (stopped) stopped(arg);
}

static void on_cql_closed(void *arg) {
  sl_stream_t *s = arg;
  SL_INFO("stream", "stopped");
  uv_close((uv_handle_t *)&s->commit_timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->status_timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->retry_timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->step_timer, on_handle_closed);
}

static void close_cql(void *arg) {
  sl_stream_t *s = arg;
  sl_cql_client_close(s->cql, on_cql_closed, s);
}

static void on_producer_destroyed(void *arg) {
  sl_stream_t *s = arg;
  sl_status_finish(s->status, close_cql, s); /* the final status first: it needs the client */
}

static void on_consumer_destroyed(void *arg) {
  sl_stream_t *s = arg;
  if (--s->pending_destroys > 0) return;
  /* every dead letter is delivered or given up by now (check_drained waited for them) */
  sl_kafka_uv_close(s->producer_watch);
  s->producer_watch = NULL;
  for (size_t i = 0; i < s->ndefs; i++) {
    if (s->pls[i].dlq) rd_kafka_topic_destroy(s->pls[i].dlq);
  }
  rd_kafka_t *rk = s->producer;
  s->producer = NULL;
  sl_kafka_destroy_async(s->loop, rk, 0, on_producer_destroyed, s);
}

static void finish(sl_stream_t *s) {
  s->state = ST_DONE;
  while (s->retry_head) {
    batch_t *b = s->retry_head;
    s->retry_head = b->next;
    part_unref(b->part);
    batch_free(b);
  }
  s->pending_destroys = 1; /* held until every consumer is queued for destruction */
  for (size_t i = 0; i < s->ndefs; i++) {
    pipe_rt_t *pl = &s->pls[i];
    for (part_t *p = pl->parts, *next; p; p = next) {
      next = p->next;
      p->revoked = true;
      part_unref(p);
    }
    pl->parts = NULL;
    if (!pl->consumer) continue;
    pl->destroyed = true;
    sl_kafka_uv_close(pl->watch);
    pl->watch = NULL; /* and the queue with it */
    pl->queue = NULL;
    s->pending_destroys++;
    rd_kafka_t *rk = pl->consumer;
    pl->consumer = NULL;
    sl_kafka_destroy_async(s->loop, rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE, on_consumer_destroyed, s);
  }
  on_consumer_destroyed(s);
}

/* CLOSING: waits until every consumer has left its group (rd_kafka_consumer_closed), or the deadline. */
static void close_step(sl_stream_t *s) {
  if (s->state != ST_CLOSING) return;
  bool all = true;
  for (size_t i = 0; i < s->ndefs; i++) {
    pipe_rt_t *pl = &s->pls[i];
    if (pl->consumer && !rd_kafka_consumer_closed(pl->consumer)) all = false;
  }
  if (all || sl_monotonic_ms() >= s->deadline_ms) {
    if (!all) SL_WARN("stream", "consumers did not leave their groups in time");
    uv_timer_stop(&s->step_timer);
    finish(s);
  }
}

static void on_close_tick(uv_timer_t *t) {
  sl_stream_t *s = t->data;
  for (size_t i = 0; i < s->ndefs; i++) {
    if (s->pls[i].watch) sl_kafka_uv_kick(s->pls[i].watch);
  }
  close_step(s);
}

static void begin_close(sl_stream_t *s) {
  for (size_t i = 0; i < s->ndefs; i++) commit_pipeline(&s->pls[i], NULL);
  s->state = ST_CLOSING;
  s->deadline_ms = sl_monotonic_ms() + 10000;
  for (size_t i = 0; i < s->ndefs; i++) {
    pipe_rt_t *pl = &s->pls[i];
    if (!pl->consumer) continue;
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(pl->consumer, pl->queue);
    if (e) {
      SL_WARN("stream", "pipeline %s: close: %s", pl->def->name, rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    }
    pl->closed = true;
  }
  uv_timer_start(&s->step_timer, on_close_tick, 20, 20);
  close_step(s);
}

static void check_drained(sl_stream_t *s) {
  if (s->state != ST_DRAINING) return;
  if (s->producer) rd_kafka_poll(s->producer, 0);
  if (s->inflight == 0 || sl_monotonic_ms() >= s->deadline_ms) {
    if (s->inflight) SL_WARN("stream", "%llu records still in flight at stop: they will be replayed",
                             (unsigned long long)s->inflight);
    uv_timer_stop(&s->step_timer);
    begin_close(s);
  }
}

static void on_drain_tick(uv_timer_t *t) { check_drained(t->data); }

void sl_stream_stop(sl_stream_t *s) {
  if (!s || s->state >= ST_DRAINING) return;
  int prev = s->state;
  uv_timer_stop(&s->step_timer);
  uv_timer_stop(&s->status_timer);
  if (prev == ST_RUNNING) on_status(&s->status_timer);
  s->state = ST_DRAINING;
  s->deadline_ms = sl_monotonic_ms() + STOP_DRAIN_MS;
  uv_timer_stop(&s->retry_timer);
  /* retries still pending are abandoned (never acknowledged, never committed) */
  while (s->retry_head) {
    batch_t *b = s->retry_head;
    s->retry_head = b->next;
    for (size_t i = 0; i < b->nrows; i++) b->pl->inflight--, s->inflight--;
    part_unref(b->part);
    batch_free(b);
  }
  uv_timer_start(&s->step_timer, on_drain_tick, 20, 20);
  check_drained(s);
}
