/* Pipeline status for the REST API (see status.h).
 *
 *   sl_status_new ──sl_status_setup──> SETUP (CREATE KEYSPACE, 3 x CREATE TABLE, 3 x PREPARE; one at a time)
 *   SETUP ──all done──> READY: every PUBLISH_MS the processor's snapshot is compared with what was last written;
 *         changed rows (or rows older than HEARTBEAT_MS) are upserted
 *   SETUP ──error──> FAILED: retried from the timer every SETUP_RETRY_MS; dead letters are not recorded meanwhile
 *   any ──sl_status_finish──> FINISHING: a last forced publish, then done() once nothing is in flight (or after
 *         FINISH_MS), the timer closes; sl_status_free releases the rest once the CQL client is closed. */
#include "stream/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"

enum {
  PUBLISH_MS = 1000,
  HEARTBEAT_MS = 30000,   /* an unchanged row is rewritten this often, so `updated` shows the processor is alive */
  SETUP_RETRY_MS = 10000,
  FINISH_MS = 3000,
  WRITE_TIMEOUT_MS = 5000,
  MAX_INFLIGHT = 512,     /* status writes in flight; dead letters beyond this are dropped */
  MAX_PARTS = 4096,       /* partitions reported per pipeline */
  MAX_TEXT = 8192,        /* bytes of a dead letter's payload kept in the table */
  DL_TTL_S = 7 * 86400,
};

static const char *const setup_cql[] = {
    "CREATE KEYSPACE IF NOT EXISTS sluice_meta WITH replication = {'class': 'SimpleStrategy', "
    "'replication_factor': 1}",
    "CREATE TABLE IF NOT EXISTS sluice_meta.pipeline_processors (pipeline text, processor text, topics text, "
    "keyspace_name text, table_name text, dead_letter_topic text, state text, consumed bigint, written bigint, "
    "dead_lettered bigint, filtered bigint, inflight bigint, lag bigint, updated timestamp, "
    "PRIMARY KEY ((pipeline), processor)) WITH default_time_to_live = 86400",
    "CREATE TABLE IF NOT EXISTS sluice_meta.pipeline_lag (pipeline text, topic text, partition int, "
    "committed bigint, high_watermark bigint, lag bigint, updated timestamp, "
    "PRIMARY KEY ((pipeline), topic, partition))",
    "CREATE TABLE IF NOT EXISTS sluice_meta.dead_letters (pipeline text, ts timestamp, topic text, partition int, "
    "offset bigint, field text, value text, reason text, payload text, "
    "PRIMARY KEY ((pipeline), ts, topic, partition, offset)) "
    "WITH CLUSTERING ORDER BY (ts DESC, topic ASC, partition ASC, offset ASC) AND default_time_to_live = 604800",
};
enum { N_DDL = sizeof setup_cql / sizeof setup_cql[0] };
static const char *const prepare_cql[] = {
    "INSERT INTO sluice_meta.pipeline_processors (pipeline, processor, topics, keyspace_name, table_name, "
    "dead_letter_topic, state, consumed, written, dead_lettered, filtered, inflight, lag, updated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO sluice_meta.pipeline_lag (pipeline, topic, partition, committed, high_watermark, lag, updated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO sluice_meta.dead_letters (pipeline, ts, topic, partition, offset, field, value, reason, payload) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
};
enum { P_STATUS, P_LAG, P_DL, N_PREP };
_Static_assert(DL_TTL_S == 604800, "the dead_letters DDL spells the TTL out");

typedef struct {
  char *topic;
  int32_t partition;
  int64_t committed, hw, lag;
  bool valid;
} last_part_t;

typedef struct {
  bool valid, busy;
  uint64_t consumed, written, dead_lettered, filtered, inflight;
  int64_t lag;
  char state[16];
  int64_t at_ms;
  last_part_t *parts;
  size_t nparts, cap;
} last_pipe_t;

struct sl_status {
  uv_loop_t *loop;
  char processor[320]; /* this process, "host:pid": the key of its pipeline_processors rows */
  sl_cql_client_t *cql;
  size_t npipes;
  sl_status_snapshot_fn snapshot;
  void *arg;
  uv_timer_t timer;
  bool timer_closing;
  int refs; /* the owner (sl_status_free) and the timer */

  int step; /* setup step: N_DDL statements, then N_PREP prepares */
  bool setup_requested, setting_up, ready;
  int64_t retry_at_ms;
  void (*setup_done)(void *arg, bool ok);
  void *setup_arg;
  sl_cql_prepared_t *prep[N_PREP];

  last_pipe_t *last;
  sl_status_part_t *parts; /* snapshot scratch, MAX_PARTS */
  int inflight;
  uint64_t dropped, failed;

  bool finishing, finished, timed_out;
  void (*finish_done)(void *arg);
  void *finish_arg;
};

typedef struct {
  sl_status_t *st;
  int kind;
  size_t pipe;
} wctx_t;

static void maybe_free(sl_status_t *st) {
  if (--st->refs > 0) return;
  for (int i = 0; i < N_PREP; i++) {
    if (st->prep[i]) sl_cql_prepared_release(st->prep[i]);
  }
  for (size_t i = 0; i < st->npipes; i++) {
    for (size_t k = 0; k < st->last[i].nparts; k++) free(st->last[i].parts[k].topic);
    free(st->last[i].parts);
  }
  free(st->last);
  free(st->parts);
  free(st);
}

static void on_timer_closed(uv_handle_t *h) { maybe_free(h->data); }

static void close_timer(sl_status_t *st) {
  if (st->timer_closing) return;
  st->timer_closing = true;
  uv_close((uv_handle_t *)&st->timer, on_timer_closed);
}

/* ------------------------------------------------------------------------------------------------ setup */
static void setup_step(sl_status_t *st);

static void setup_end(sl_status_t *st, bool ok, const char *what, const sl_cql_error_t *err) {
  st->setting_up = false;
  st->ready = ok;
  if (!ok) {
    st->retry_at_ms = sl_monotonic_ms() + SETUP_RETRY_MS;
    if (!st->finishing)
      SL_WARN("stream", "pipeline status tables (sluice_meta): %s: %s (not published; retrying in %d s)", what,
              err ? err->message : "?", SETUP_RETRY_MS / 1000);
  } else {
    SL_INFO("stream", "publishing pipeline status to sluice_meta");
  }
  void (*done)(void *, bool) = st->setup_done;
  st->setup_done = NULL;
  if (done) done(st->setup_arg, ok);
}

static void on_ddl(const sl_cql_result_t *res, const sl_cql_error_t *err, void *arg) {
  (void)res;
  sl_status_t *st = arg;
  if (err || st->finishing) return setup_end(st, false, "create table", err);
  st->step++;
  setup_step(st);
}

static void on_prepared(sl_cql_prepared_t *p, const sl_cql_error_t *err, void *arg) {
  sl_status_t *st = arg;
  if (err || st->finishing) return setup_end(st, false, "prepare", err);
  int i = st->step - N_DDL;
  if (st->prep[i]) sl_cql_prepared_release(st->prep[i]);
  sl_cql_prepared_keep(p);
  st->prep[i] = p;
  st->step++;
  setup_step(st);
}

static void setup_step(sl_status_t *st) {
  if (st->step < N_DDL) {
    sl_cql_statement_t *s = sl_cql_statement_new(setup_cql[st->step], 0);
    sl_cql_statement_set_timeout(s, WRITE_TIMEOUT_MS);
    sl_cql_execute(st->cql, s, on_ddl, st);
  } else if (st->step < N_DDL + N_PREP) {
    sl_cql_prepare(st->cql, prepare_cql[st->step - N_DDL], on_prepared, st);
  } else {
    setup_end(st, true, NULL, NULL);
  }
}

static void setup_begin(sl_status_t *st) {
  st->setting_up = true;
  st->step = 0;
  setup_step(st);
}

void sl_status_setup(sl_status_t *st, void (*done)(void *arg, bool ok), void *arg) {
  st->setup_requested = true;
  st->setup_done = done;
  st->setup_arg = arg;
  if (st->setting_up || st->finishing) return;
  if (st->ready) return setup_end(st, true, NULL, NULL);
  setup_begin(st);
}

/* ------------------------------------------------------------------------------------------------ writes */
static void finish_check(sl_status_t *st);

static void on_written(const sl_cql_result_t *res, const sl_cql_error_t *err, void *arg) {
  (void)res;
  wctx_t *w = arg;
  sl_status_t *st = w->st;
  st->inflight--;
  if (w->kind == P_STATUS) st->last[w->pipe].busy = false;
  if (err) {
    st->failed++;
    if (err->code != SL_CQL_CLIENT_CLOSING && (st->failed & (st->failed - 1)) == 0) /* 1, 2, 4, 8 ... */
      SL_WARN("stream", "pipeline status write failed: %s (%llu so far)", err->message,
              (unsigned long long)st->failed);
    /* write it again at the next publish */
    if (w->kind == P_STATUS) st->last[w->pipe].valid = false;
    if (w->kind == P_LAG) {
      last_pipe_t *lp = &st->last[w->pipe];
      for (size_t k = 0; k < lp->nparts; k++) lp->parts[k].valid = false;
    }
  }
  free(w);
  finish_check(st);
}

static void execute(sl_status_t *st, sl_cql_statement_t *s, int kind, size_t pipe) {
  wctx_t *w = malloc(sizeof *w);
  if (!w) abort();
  *w = (wctx_t){st, kind, pipe};
  sl_cql_statement_set_idempotent(s, true);
  sl_cql_statement_set_timeout(s, WRITE_TIMEOUT_MS);
  st->inflight++;
  sl_cql_execute(st->cql, s, on_written, w);
}

static void bind_str(sl_cql_statement_t *s, size_t i, const char *v) {
  if (v)
    sl_cql_statement_bind_text(s, i, v, strlen(v));
  else
    sl_cql_statement_bind_null(s, i);
}

static void bind_opt64(sl_cql_statement_t *s, size_t i, int64_t v) {
  if (v >= 0)
    sl_cql_statement_bind_int64(s, i, v);
  else
    sl_cql_statement_bind_null(s, i);
}

/* Appends s[0..len) as valid UTF-8 (invalid bytes become '?'), at most max bytes, NUL-terminated. */
static char *utf8_copy(const void *p, size_t len, size_t max) {
  const unsigned char *s = p;
  if (len > max) len = max;
  char *out = malloc(len + 1);
  if (!out) abort();
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    unsigned char c = s[i];
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    bool ok = n > 0 && i + n <= len && !(n == 2 && c < 0xC2) && !(n == 4 && c > 0xF4) && c != 0;
    for (size_t k = 1; ok && k < n; k++) ok = (s[i + k] & 0xC0) == 0x80;
    if (ok && n == 3) {
      unsigned cp = ((c & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
      ok = cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF);
    }
    if (ok && n == 4) {
      unsigned cp = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) | (s[i + 3] & 0x3Fu);
      ok = cp >= 0x10000 && cp <= 0x10FFFF;
    }
    if (!ok) {
      out[o++] = '?';
      i++;
      continue;
    }
    memcpy(out + o, s + i, n);
    o += n;
    i += n;
  }
  out[o] = 0;
  return out;
}

static last_part_t *find_last_part(last_pipe_t *lp, const char *topic, int32_t partition) {
  for (size_t k = 0; k < lp->nparts; k++) {
    if (lp->parts[k].partition == partition && !strcmp(lp->parts[k].topic, topic)) return &lp->parts[k];
  }
  if (lp->nparts == lp->cap) {
    size_t ncap = lp->cap ? lp->cap * 2 : 8;
    last_part_t *n = realloc(lp->parts, ncap * sizeof *n);
    if (!n) abort();
    lp->parts = n;
    lp->cap = ncap;
  }
  last_part_t *p = &lp->parts[lp->nparts++];
  *p = (last_part_t){strdup(topic), partition, 0, 0, 0, false};
  if (!p->topic) abort();
  return p;
}

static void publish(sl_status_t *st, bool force) {
  if (!st->ready) return;
  int64_t now_ms = sl_monotonic_ms(), wall = sl_wall_ms();
  for (size_t i = 0; i < st->npipes; i++) {
    sl_status_pipe_t p;
    memset(&p, 0, sizeof p);
    size_t nparts = st->snapshot(st->arg, i, &p, st->parts, MAX_PARTS);
    last_pipe_t *lp = &st->last[i];
    const char *state = p.state ? p.state : "unknown";
    bool changed = !lp->valid || lp->consumed != p.consumed || lp->written != p.written ||
                   lp->dead_lettered != p.dead_lettered || lp->filtered != p.filtered ||
                   lp->inflight != p.inflight || lp->lag != p.lag || strcmp(lp->state, state) ||
                   now_ms - lp->at_ms >= HEARTBEAT_MS;
    if ((changed && !lp->busy) || force) {
      char topics[1024];
      size_t o = 0;
      topics[0] = 0;
      for (size_t t = 0; t < p.ntopics && o < sizeof topics; t++)
        o += (size_t)snprintf(topics + o, sizeof topics - o, "%s%s", t ? "," : "", p.topics[t]);
      sl_cql_statement_t *s = sl_cql_statement_new_prepared(st->prep[P_STATUS]);
      bind_str(s, 0, p.name);
      bind_str(s, 1, st->processor);
      bind_str(s, 2, topics);
      bind_str(s, 3, p.keyspace);
      bind_str(s, 4, p.table);
      bind_str(s, 5, p.dead_letter);
      bind_str(s, 6, state);
      sl_cql_statement_bind_int64(s, 7, (int64_t)p.consumed);
      sl_cql_statement_bind_int64(s, 8, (int64_t)p.written);
      sl_cql_statement_bind_int64(s, 9, (int64_t)p.dead_lettered);
      sl_cql_statement_bind_int64(s, 10, (int64_t)p.filtered);
      sl_cql_statement_bind_int64(s, 11, (int64_t)p.inflight);
      bind_opt64(s, 12, p.lag);
      sl_cql_statement_bind_timestamp(s, 13, wall);
      lp->valid = true;
      lp->busy = true;
      lp->consumed = p.consumed;
      lp->written = p.written;
      lp->dead_lettered = p.dead_lettered;
      lp->filtered = p.filtered;
      lp->inflight = p.inflight;
      lp->lag = p.lag;
      snprintf(lp->state, sizeof lp->state, "%s", state);
      lp->at_ms = now_ms;
      execute(st, s, P_STATUS, i);
    }
    for (size_t k = 0; k < nparts; k++) {
      const sl_status_part_t *sp = &st->parts[k];
      last_part_t *l = find_last_part(lp, sp->topic, sp->partition);
      if (l->valid && l->committed == sp->committed && l->hw == sp->high_watermark && l->lag == sp->lag && !force)
        continue;
      if (st->inflight >= MAX_INFLIGHT) break;
      sl_cql_statement_t *s = sl_cql_statement_new_prepared(st->prep[P_LAG]);
      bind_str(s, 0, p.name);
      bind_str(s, 1, sp->topic);
      sl_cql_statement_bind_int32(s, 2, sp->partition);
      bind_opt64(s, 3, sp->committed);
      bind_opt64(s, 4, sp->high_watermark);
      bind_opt64(s, 5, sp->lag);
      sl_cql_statement_bind_timestamp(s, 6, wall);
      *l = (last_part_t){l->topic, sp->partition, sp->committed, sp->high_watermark, sp->lag, true};
      execute(st, s, P_LAG, i);
    }
  }
}

void sl_status_dead_letter(sl_status_t *st, const char *pipeline, const char *topic, int32_t partition,
                           int64_t offset, const char *field, const char *value, const char *reason,
                           const void *payload, size_t payload_len) {
  if (!st || !st->ready || st->finished) return;
  if (st->inflight >= MAX_INFLIGHT) {
    if (st->dropped++ % 1000 == 0)
      SL_WARN("stream", "too many status writes in flight: dead letter rows dropped (%llu so far; the dead-letter "
              "topic has them all)", (unsigned long long)st->dropped);
    return;
  }
  sl_cql_statement_t *s = sl_cql_statement_new_prepared(st->prep[P_DL]);
  bind_str(s, 0, pipeline);
  sl_cql_statement_bind_timestamp(s, 1, sl_wall_ms());
  bind_str(s, 2, topic);
  sl_cql_statement_bind_int32(s, 3, partition);
  sl_cql_statement_bind_int64(s, 4, offset);
  char *f = utf8_copy(field ? field : "", field ? strlen(field) : 0, MAX_TEXT);
  char *v = utf8_copy(value ? value : "", value ? strlen(value) : 0, MAX_TEXT);
  char *r = utf8_copy(reason ? reason : "", reason ? strlen(reason) : 0, MAX_TEXT);
  bind_str(s, 5, f);
  bind_str(s, 6, v);
  bind_str(s, 7, r);
  if (payload) {
    char *pl = utf8_copy(payload, payload_len, MAX_TEXT);
    bind_str(s, 8, pl);
    free(pl);
  } else {
    sl_cql_statement_bind_null(s, 8);
  }
  free(f);
  free(v);
  free(r);
  execute(st, s, P_DL, 0);
}

/* ------------------------------------------------------------------------------------------------ life */
static void on_tick(uv_timer_t *t) {
  sl_status_t *st = t->data;
  if (st->finishing) {
    /* FINISH_MS passed: give up on what is still in flight (the client fails it when it closes) */
    st->timed_out = true;
    finish_check(st);
    return;
  }
  if (st->ready) {
    publish(st, false);
  } else if (st->setup_requested && !st->setting_up && sl_monotonic_ms() >= st->retry_at_ms) {
    setup_begin(st);
  }
}

sl_status_t *sl_status_new(uv_loop_t *loop, sl_cql_client_t *cql, size_t npipes, sl_status_snapshot_fn snapshot,
                           void *arg) {
  sl_status_t *st = calloc(1, sizeof *st);
  if (!st) abort();
  st->loop = loop;
  char host[256];
  if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
  host[sizeof host - 1] = 0;
  snprintf(st->processor, sizeof st->processor, "%s:%ld", host, (long)getpid());
  st->cql = cql;
  st->npipes = npipes;
  st->snapshot = snapshot;
  st->arg = arg;
  st->last = calloc(npipes ? npipes : 1, sizeof *st->last);
  st->parts = calloc(MAX_PARTS, sizeof *st->parts);
  if (!st->last || !st->parts) abort();
  st->refs = 2;
  uv_timer_init(loop, &st->timer);
  st->timer.data = st;
  uv_timer_start(&st->timer, on_tick, PUBLISH_MS, PUBLISH_MS);
  return st;
}

static void finish_check(sl_status_t *st) {
  if (!st->finishing || st->finished || (st->inflight > 0 && !st->timed_out)) return;
  st->finished = true;
  uv_timer_stop(&st->timer);
  close_timer(st);
  if (st->dropped)
    SL_INFO("stream", "%llu dead letter rows were not recorded in sluice_meta.dead_letters",
            (unsigned long long)st->dropped);
  void (*done)(void *) = st->finish_done;
  st->finish_done = NULL;
  if (done) done(st->finish_arg);
}

void sl_status_finish(sl_status_t *st, void (*done)(void *arg), void *arg) {
  st->finish_done = done;
  st->finish_arg = arg;
  if (st->finishing) return;
  publish(st, true);
  st->finishing = true;
  uv_timer_stop(&st->timer);
  uv_timer_start(&st->timer, on_tick, FINISH_MS, 0);
  finish_check(st);
}

void sl_status_free(sl_status_t *st) {
  if (!st) return;
  close_timer(st);
  maybe_free(st);
}

uint64_t sl_status_dropped(const sl_status_t *st) { return st ? st->dropped : 0; }
