/* Live streams (Server-Sent Events): GET /api/v1/live/devices/{id} sends each new reading of one device;
 * GET /api/v1/live/tables/{ks}/{table} sends the newest reading of every device of a device table as it changes.
 *
 * One watch per device (or table) polls the store every api.live_poll_ms, whatever the number of subscribers;
 * each new row is encoded once and offered to every subscriber. A subscriber has at most one write in flight
 * (h2o's generator: the next write waits for proceed()); events arriving meanwhile are coalesced: a device stream
 * keeps the newest api.live_max_pending readings (older ones are dropped and the client gets an `event: dropped`
 * with the count), a table stream keeps only the newest reading per device. So a slow browser is never flooded and
 * nothing buffers without bound.
 *
 *   subscribe ──locate (device) / first poll──> STREAMING ──client gone (pool dispose)──> removed from its watch
 *   STREAMING ──sl_api_stop──> final write, then h2o ends the response         watch without subscribers: freed */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/clock.h"
#include "core/log.h"

enum { KEEPALIVE_MS = 15000, MAX_TABLE_DEVICES = 10000 };

typedef struct watch watch_t;
typedef struct sub sub_t;

struct sub {
  h2o_generator_t gen; /* first: h2o passes it back */
  sub_t *next;
  watch_t *w;
  h2o_req_t *req;
  sl_api_t *api;
  bool busy, final_sent, stopping;
  sl_buf_t sending;
  json_t *pending;  /* device: array of encoded events; table: object device -> encoded event */
  int64_t dropped;
  int64_t last_write_ms;
};

struct watch {
  watch_t *next;
  sl_api_t *api;
  bool table_wide;
  char ks[64], name[128], id[API_MAX_KEY];
  int64_t last_ts;
  json_t *seen; /* table watch: device -> newest ts sent */
  sub_t *subs;
  bool polling, dead;
  int64_t next_poll_ms;
};

struct live {
  watch_t *watches;
};

static struct live *live_of(sl_api_t *api) {
  if (!api->live) api->live = calloc(1, sizeof *api->live);
  return api->live;
}

static void watch_free(watch_t *w) {
  json_decref(w->seen);
  free(w);
}

static void watch_unlink(sl_api_t *api, watch_t *w) {
  if (!api->live) return;
  for (watch_t **p = &api->live->watches; *p; p = &(*p)->next)
    if (*p == w) {
      *p = w->next;
      break;
    }
}

static void watch_release(watch_t *w) {
  if (w->subs) return;
  sl_api_t *api = w->api;
  watch_unlink(api, w);
  if (w->polling) w->dead = true; /* the poll's callback frees it */
  else watch_free(w);
  if (api->live && !api->live->watches) {
    /* whether stopping or not: a stop waits for api->live to go, and the last stream may end before the stop (an
     * HTTP/2 client that goes away is seen at once) */
    free(api->live);
    api->live = NULL;
  }
}

static void sub_flush(sub_t *s) {
  if (s->busy || s->final_sent || !s->req) return;
  int64_t now = sl_monotonic_ms();
  s->sending.len = 0;
  if (s->dropped) {
    char line[96];
    int n = snprintf(line, sizeof line, "event: dropped\ndata: {\"dropped\":%lld}\n\n", (long long)s->dropped);
    sl_buf_put(&s->sending, line, (size_t)n);
    s->api->live_dropped += (uint64_t)s->dropped;
    s->dropped = 0;
  }
  if (json_is_array(s->pending)) {
    size_t i;
    json_t *e;
    json_array_foreach(s->pending, i, e) sl_buf_put(&s->sending, json_string_value(e), json_string_length(e));
    s->api->live_events += json_array_size(s->pending);
    json_array_clear(s->pending);
  } else {
    const char *k;
    json_t *e;
    json_object_foreach(s->pending, k, e) sl_buf_put(&s->sending, json_string_value(e), json_string_length(e));
    s->api->live_events += json_object_size(s->pending);
    json_object_clear(s->pending);
  }
  if (!s->sending.len && !s->stopping && now - s->last_write_ms >= KEEPALIVE_MS)
    sl_buf_put(&s->sending, ": keepalive\n\n", 13);
  if (!s->sending.len && !s->stopping) return;
  s->busy = true;
  s->last_write_ms = now;
  h2o_iovec_t v = h2o_iovec_init(s->sending.data ? (char *)s->sending.data : "", s->sending.len);
  if (s->stopping) s->final_sent = true;
  h2o_send(s->req, &v, 1, s->stopping ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void sub_proceed(h2o_generator_t *g, h2o_req_t *req) {
  sub_t *s = (sub_t *)g;
  s->busy = false;
  sub_flush(s);
}

static void sub_stop(h2o_generator_t *g, h2o_req_t *req) {
  sub_t *s = (sub_t *)g;
  s->final_sent = true; /* the connection is gone: write nothing more */
}

static void sub_dispose(void *p) {
  sub_t *s = p;
  s->req = NULL;
  s->api->live_clients--;
  watch_t *w = s->w;
  if (w) {
    for (sub_t **q = &w->subs; *q; q = &(*q)->next)
      if (*q == s) {
        *q = s->next;
        break;
      }
    watch_release(w);
  }
  sl_buf_free(&s->sending);
  json_decref(s->pending);
}

static void offer(watch_t *w, const char *device, const char *event) {
  for (sub_t *s = w->subs; s; s = s->next) {
    if (json_is_array(s->pending)) {
      json_array_append_new(s->pending, json_string(event));
      while ((int64_t)json_array_size(s->pending) > w->api->cfg.live_max_pending) {
        json_array_remove(s->pending, 0);
        s->dropped++;
      }
    } else if (json_object_size(s->pending) < MAX_TABLE_DEVICES || json_object_get(s->pending, device)) {
      if (json_object_get(s->pending, device)) s->dropped++;
      json_object_set_new(s->pending, device, json_string(event));
    } else {
      s->dropped++;
    }
    sub_flush(s);
  }
}

/* "event: reading\ndata: {...}\n\n" for one row; returns the row's ts (or INT64_MIN). */
static int64_t offer_row(watch_t *w, const sl_cql_result_t *res, size_t r) {
  json_t *row = api_row_json(res, r, NULL);
  int64_t ts = INT64_MIN;
  for (size_t c = 0; c < sl_cql_result_column_count(res); c++)
    if (!strcmp(sl_cql_result_column_name(res, c), "ts")) {
      sl_slice_t v = sl_cql_result_cell(res, r, c);
      if (v.ptr && v.len == 8) ts = (int64_t)sl_load_be64(v.ptr);
    }
  const char *dev = json_string_value(json_object_get(row, "device_id"));
  char dev_copy[API_MAX_KEY];
  snprintf(dev_copy, sizeof dev_copy, "%s", dev ? dev : "");
  json_t *ev = json_pack("{s:s,s:s,s:o}", "device_id", dev_copy, "table", "", "reading", row);
  char qn[200];
  snprintf(qn, sizeof qn, "%s.%s", w->ks, w->name);
  json_object_set_new(ev, "table", json_string(qn));
  char *data = json_dumps(ev, JSON_COMPACT);
  json_decref(ev);
  if (data) {
    size_t n = strlen(data) + 40;
    char *line = malloc(n);
    snprintf(line, n, "event: reading\ndata: %s\n\n", data);
    offer(w, dev_copy, line);
    free(line);
    free(data);
  }
  return ts;
}

/* ------------------------------------------------------------------------------------------------- polling */

typedef struct {
  op_t base;
  watch_t *w;
} poll_op_t;

static void poll_finished(watch_t *w) {
  w->polling = false;
  w->next_poll_ms = sl_monotonic_ms() + w->api->cfg.live_poll_ms;
  if (w->dead) watch_free(w);
}

static void on_device_poll(op_t *op, const sl_cql_result_t *res, const sl_cql_error_t *err) {
  watch_t *w = ((poll_op_t *)op)->w;
  op->done = true;
  if (!err && !w->dead) {
    size_t n = sl_cql_result_row_count(res);
    /* rows come newest first: offer them oldest first */
    for (size_t i = n; i-- > 0;) {
      int64_t ts = offer_row(w, res, i);
      if (ts > w->last_ts) w->last_ts = ts;
    }
  }
  poll_finished(w);
}

static void on_table_row(void *arg, const sl_cql_result_t *res) {
  watch_t *w = arg;
  if (w->dead) return;
  json_t *row = api_row_json(res, 0, NULL);
  const char *dev = json_string_value(json_object_get(row, "device_id"));
  int64_t ts = INT64_MIN;
  for (size_t c = 0; c < sl_cql_result_column_count(res); c++)
    if (!strcmp(sl_cql_result_column_name(res, c), "ts")) {
      sl_slice_t v = sl_cql_result_cell(res, 0, c);
      if (v.ptr && v.len == 8) ts = (int64_t)sl_load_be64(v.ptr);
    }
  if (dev) {
    json_t *seen = json_object_get(w->seen, dev);
    if (!seen || json_integer_value(seen) < ts) {
      if (json_object_size(w->seen) < MAX_TABLE_DEVICES || seen) {
        json_object_set_new(w->seen, dev, json_integer(ts));
        offer_row(w, res, 0);
      }
    }
  }
  json_decref(row);
}

static void on_table_done(void *arg, const sl_cql_error_t *err) { poll_finished(arg); }

static void poll(watch_t *w) {
  sl_api_t *api = w->api;
  w->polling = true;
  if (w->table_wide) {
    char qn[200];
    snprintf(qn, sizeof qn, "%s.%s", w->ks, w->name);
    api_poll_table(api, qn, w, on_table_row, on_table_done);
    return;
  }
  poll_op_t *p = (poll_op_t *)op_new(api, NULL, R_LIVE, sizeof(poll_op_t), NULL);
  p->w = w;
  char q[600];
  snprintf(q, sizeof q, "SELECT * FROM \"%s\".\"%s\" WHERE device_id = ? AND day = ? AND ts > ?", w->ks, w->name);
  api_bind_t b[3];
  bind_text(&b[0], w->id);
  int64_t now = sl_wall_ms();
  int64_t day = api_day_of(now);
  if (api_day_of(w->last_ts) < day && api_day_of(w->last_ts) >= day - 1 && (now / 1000) % 2 == 0)
    day = api_day_of(w->last_ts); /* across midnight: look at the previous day too, every other poll */
  bind_i64(&b[1], B_DATE, day);
  bind_i64(&b[2], B_TS, w->last_ts);
  api_query(&p->base, q, b, 3, 100, NULL, 0, on_device_poll);
}

void api_live_tick(sl_api_t *api) {
  if (!api->live || !api->cql_ready) return;
  int64_t now = sl_monotonic_ms();
  for (watch_t *w = api->live->watches; w; w = w->next) {
    if (!w->polling && now >= w->next_poll_ms) poll(w);
    for (sub_t *s = w->subs; s; s = s->next) sub_flush(s); /* keep-alives */
  }
}

/* ----------------------------------------------------------------------------------------------- subscribe */

static watch_t *watch_get(sl_api_t *api, const api_table_t *t, const char *id) {
  struct live *l = live_of(api);
  for (watch_t *w = l->watches; w; w = w->next)
    if (!strcmp(w->ks, t->ks) && !strcmp(w->name, t->name) && (id ? !w->table_wide && !strcmp(w->id, id) : w->table_wide))
      return w;
  watch_t *w = calloc(1, sizeof *w);
  w->api = api;
  snprintf(w->ks, sizeof w->ks, "%s", t->ks);
  snprintf(w->name, sizeof w->name, "%s", t->name);
  if (id) snprintf(w->id, sizeof w->id, "%s", id);
  w->table_wide = id == NULL;
  w->seen = json_object();
  w->last_ts = INT64_MIN;
  w->next = l->watches;
  l->watches = w;
  return w;
}

static sub_t *subscribe(sl_api_t *api, h2o_req_t *req, watch_t *w) {
  sub_t *s = h2o_mem_alloc_shared(&req->pool, sizeof *s, sub_dispose);
  memset(s, 0, sizeof *s);
  s->gen.proceed = sub_proceed;
  s->gen.stop = sub_stop;
  s->req = req;
  s->api = api;
  s->w = w;
  s->pending = w->table_wide ? json_object() : json_array();
  sl_buf_init(&s->sending);
  s->next = w->subs;
  w->subs = s;
  api->live_clients++;
  api_count(api, R_LIVE, 200, 0);
  req->res.status = 200;
  req->res.reason = "OK";
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream"));
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
  h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-accel-buffering"), 0, NULL, H2O_STRLIT("no"));
  h2o_start_response(req, &s->gen);
  s->busy = true;
  s->last_write_ms = sl_monotonic_ms();
  static const char hello[] = "retry: 2000\n: sluice live stream\n\n";
  h2o_iovec_t v = h2o_iovec_init(H2O_STRLIT(hello));
  h2o_send(req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
  return s;
}

typedef struct {
  op_t base;
  char ks[64], name[128];
} live_op_t;

static void live_device_located(op_t *op, const api_table_t *t, const sl_cql_result_t *res, int64_t day,
                                const sl_cql_error_t *err) {
  sl_api_t *api = op->api;
  if (err) return op_cql_error(op, err);
  if (!t) return op_error(op, 404, "unknown_device", "no readings for this device in the last %lld days",
                          (long long)api->cfg.lookback_days);
  if (api->live_clients >= api->cfg.live_max_clients)
    return op_error(op, 429, "too_many_streams", "at most %lld live streams", (long long)api->cfg.live_max_clients);
  if (api->stopping) return op_error(op, 503, "stopping", "the server is shutting down");
  h2o_req_t *req = op->req;
  op->done = true; /* the response now belongs to the subscriber */
  const char *dev = NULL;
  json_t *row = api_row_json(res, 0, NULL);
  dev = json_string_value(json_object_get(row, "device_id"));
  watch_t *w = watch_get(api, t, dev ? dev : "");
  json_decref(row);
  subscribe(api, req, w);
  int64_t ts = offer_row(w, res, 0); /* the latest reading first */
  if (ts > w->last_ts) w->last_ts = ts;
  if (!w->polling && w->next_poll_ms == 0) w->next_poll_ms = sl_monotonic_ms() + api->cfg.live_poll_ms;
  op_maybe_free(op);
}

void api_live_device(sl_api_t *api, h2o_req_t *req, const char *id) {
  if (!id[0] || strlen(id) >= API_MAX_KEY)
    return api_reply_error(api, req, R_LIVE, 400, "bad_device", "device ids are 1 to %d bytes", API_MAX_KEY - 1);
  if (api->live_clients >= api->cfg.live_max_clients)
    return api_reply_error(api, req, R_LIVE, 429, "too_many_streams", "at most %lld live streams",
                           (long long)api->cfg.live_max_clients);
  /* locate needs a dev_op_t-sized op: devices.c owns that layout */
  char tb[200];
  bool tl;
  const char *table = api_param(req, "table", tb, sizeof tb, &tl) && tb[0] ? tb : NULL;
  op_t *op = op_new(api, req, R_LIVE, api_dev_op_size(), NULL);
  if (!op) return api_reply_error(api, req, R_LIVE, 503, "overloaded", "out of memory");
  api_dev_op_prepare(op, true);
  api_device_locate(op, id, table, live_device_located);
}

static void live_table_with_schema(op_t *op, const sl_cql_error_t *err) {
  live_op_t *l = (live_op_t *)op;
  sl_api_t *api = op->api;
  if (err) return op_cql_error(op, err);
  const api_table_t *t = api_table_find(api, l->ks, l->name);
  if (!t) return op_error(op, 404, "unknown_table", "no table %.60s.%.100s", l->ks, l->name);
  if (!t->device_table)
    return op_error(op, 400, "not_a_device_table", "live streams serve tables keyed ((device_id, day), ts)");
  if (api->live_clients >= api->cfg.live_max_clients)
    return op_error(op, 429, "too_many_streams", "at most %lld live streams", (long long)api->cfg.live_max_clients);
  h2o_req_t *req = op->req;
  op->done = true;
  watch_t *w = watch_get(api, t, NULL);
  subscribe(api, req, w);
  /* a new subscriber gets every device's newest reading: forget what was sent to the others */
  json_object_clear(w->seen);
  if (!w->polling) w->next_poll_ms = 0;
  op_maybe_free(op);
}

void api_live_table(sl_api_t *api, h2o_req_t *req, const char *ks, const char *name) {
  live_op_t *l = (live_op_t *)op_new(api, req, R_LIVE, sizeof(live_op_t), NULL);
  if (!l) return api_reply_error(api, req, R_LIVE, 503, "overloaded", "out of memory");
  snprintf(l->ks, sizeof l->ks, "%s", ks);
  snprintf(l->name, sizeof l->name, "%s", name);
  api_with_schema(&l->base, live_table_with_schema);
}

void api_live_stop_all(sl_api_t *api) {
  if (!api->live) return;
  for (watch_t *w = api->live->watches; w; w = w->next)
    for (sub_t *s = w->subs; s; s = s->next) {
      s->stopping = true;
      sub_flush(s);
    }
}

void api_live_free(sl_api_t *api) {
  if (!api->live) return;
  while (api->live->watches) {
    watch_t *w = api->live->watches;
    api->live->watches = w->next;
    for (sub_t *s = w->subs; s; s = s->next) s->w = NULL;
    if (w->polling) w->dead = true;
    else watch_free(w);
  }
  free(api->live);
  api->live = NULL;
}
