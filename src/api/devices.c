/* Device endpoints over the bucketed time-series tables the example pipelines create:
 *   PRIMARY KEY ((device_id, day), ts) WITH CLUSTERING ORDER BY (ts DESC)
 * Every query names one (device_id, day) partition and a ts slice, so no request scans a table: a range walks the
 * day partitions it covers, newest first (or oldest first with order=asc), and stops once the page is full.
 *
 * The device index (device -> table and newest day) comes from SELECT DISTINCT device_id, day over the device
 * tables; it is rebuilt by GET /devices at most every api.device_cache_ms and used as a hint elsewhere. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/clock.h"
#include "core/log.h"

struct dev_index {
  json_t *map; /* device_id -> [table index into api->tables by "ks.table", newest day] */
  int64_t at_ms;
};

void api_devidx_free(sl_api_t *api) {
  if (!api->devidx) return;
  json_decref(api->devidx->map);
  free(api->devidx);
  api->devidx = NULL;
}

static void table_qname(const api_table_t *t, char *out, size_t cap) { snprintf(out, cap, "%s.%s", t->ks, t->name); }

/* "ks.table" or "table" (unique among device tables). */
static const api_table_t *device_table_named(const sl_api_t *api, const char *name) {
  const api_table_t *found = NULL;
  for (int i = 0; i < api->ntables; i++) {
    const api_table_t *t = &api->tables[i];
    if (!t->device_table) continue;
    char q[200];
    table_qname(t, q, sizeof q);
    if (!strcmp(q, name) || !strcmp(t->name, name)) {
      if (found && strcmp(q, name)) return NULL;
      found = t;
    }
  }
  return found;
}

static bool index_lookup(const sl_api_t *api, const char *id, const api_table_t **t, int64_t *day) {
  if (!api->devidx) return false;
  json_t *e = json_object_get(api->devidx->map, id);
  if (!e) return false;
  const char *q = json_string_value(json_array_get(e, 0));
  const api_table_t *tt = q ? device_table_named(api, q) : NULL;
  if (!tt) return false;
  *t = tt;
  *day = json_integer_value(json_array_get(e, 1));
  return true;
}

static const char *latest_cql(const api_table_t *t, char *buf, size_t cap) {
  /* newest first whatever the table's clustering order */
  snprintf(buf, cap, "SELECT * FROM \"%s\".\"%s\" WHERE device_id = ? AND day = ?%s", t->ks, t->name,
           t->cols[t->ck[0]].desc ? "" : " ORDER BY ts DESC");
  return buf;
}

/* ------------------------------------------------------------------------------------------------ locate */

typedef struct {
  op_t base;
  char id[API_MAX_KEY];
  char table[200];
  bool keep[API_MAX_COLS];
  bool has_fields;
  int64_t from, to, limit;
  int order_desc;
  int64_t day, day_end;
  /* locate */
  api_locate_cb locate_cb;
  int cand[API_MAX_TABLES], ncand, ci;
  int64_t start_day, stop_day;
  bool need_latest;
  const api_table_t *t;
  /* readings */
  json_t *rows;
  sl_buf_t rbuf; /* readings: the rows' JSON so far, comma-separated (written directly, not as jansson trees) */
  int64_t got, last_ts;
  /* aggregate */
  int64_t interval, nbuckets, first_bucket, scanned;
  int agg;
  int fcol[API_MAX_COLS], nf; /* table column indexes */
  struct acc {
    double sum, min, max;
    int64_t n;
  } *acc;
  int64_t *bcount;
  /* device list, or a live table poll (mode 1) */
  json_t *devices;
  int outstanding;
  int mode;
  bool reported;
  void *poll_arg;
  void (*poll_row)(void *arg, const sl_cql_result_t *res);
  void (*poll_done)(void *arg, const sl_cql_error_t *err);
} dev_op_t;

static void dev_fail(op_t *op, const sl_cql_error_t *err) {
  dev_op_t *d = (dev_op_t *)op;
  if (d->mode == 1) {
    if (!d->reported) {
      d->reported = true;
      d->poll_done(d->poll_arg, err);
    }
    op->done = true;
    return;
  }
  op_cql_error(op, err);
}

static void dev_free(op_t *op) {
  dev_op_t *d = (dev_op_t *)op;
  json_decref(d->rows);
  sl_buf_free(&d->rbuf);
  json_decref(d->devices);
  free(d->acc);
  free(d->bcount);
}

static void locate_next(op_t *op);

static void on_locate_row(op_t *op, const sl_cql_result_t *res, const sl_cql_error_t *err) {
  dev_op_t *d = (dev_op_t *)op;
  if (err) {
    d->locate_cb(op, NULL, NULL, 0, err);
    return;
  }
  if (sl_cql_result_row_count(res) > 0) {
    d->locate_cb(op, d->t, res, d->day, NULL);
    return;
  }
  d->day--;
  locate_next(op);
}

static void locate_next(op_t *op) {
  dev_op_t *d = (dev_op_t *)op;
  sl_api_t *api = op->api;
  while (d->ci < d->ncand) {
    const api_table_t *t = &api->tables[d->cand[d->ci]];
    if (d->t != t) {
      d->t = t;
      d->day = d->start_day;
    }
    if (d->day >= d->stop_day) {
      char q[600];
      api_bind_t b[2];
      bind_text(&b[0], d->id);
      bind_i64(&b[1], B_DATE, d->day);
      api_query(op, latest_cql(t, q, sizeof q), b, 2, 1, NULL, 0, on_locate_row);
      return;
    }
    d->ci++;
  }
  d->locate_cb(op, NULL, NULL, 0, NULL);
}

static void locate_with_schema(op_t *op, const sl_cql_error_t *err) {
  dev_op_t *d = (dev_op_t *)op;
  sl_api_t *api = op->api;
  if (err) {
    d->locate_cb(op, NULL, NULL, 0, err);
    return;
  }
  const api_table_t *hint = NULL;
  int64_t hint_day = 0;
  bool known = index_lookup(api, d->id, &hint, &hint_day);
  d->ncand = 0;
  if (d->table[0]) {
    const api_table_t *t = device_table_named(api, d->table);
    if (!t) {
      op_error(op, 404, "unknown_table", "no device table named '%.150s' (see /api/v1/tables)", d->table);
      return;
    }
    d->cand[d->ncand++] = (int)(t - api->tables);
    if (hint != t) known = false;
  } else {
    if (known) d->cand[d->ncand++] = (int)(hint - api->tables);
    for (int i = 0; i < api->ntables; i++)
      if (api->tables[i].device_table && (!known || &api->tables[i] != hint)) d->cand[d->ncand++] = i;
  }
  if (d->ncand == 0) {
    op_error(op, 404, "unknown_device", "no device table exists yet, so no device '%.100s'", d->id);
    return;
  }
  if (!d->need_latest && (known || d->ncand == 1)) {
    d->locate_cb(op, &api->tables[d->cand[0]], NULL, known ? hint_day : 0, NULL);
    return;
  }
  int64_t today = api_day_of(sl_wall_ms());
  d->start_day = known && hint_day > today ? hint_day : today;
  d->stop_day = d->start_day - api->cfg.lookback_days;
  if (known && hint_day < d->stop_day) d->stop_day = hint_day;
  d->ci = 0;
  d->t = NULL;
  locate_next(op);
}

void api_device_locate(op_t *op, const char *id, const char *table_param, api_locate_cb cb) {
  dev_op_t *d = (dev_op_t *)op;
  snprintf(d->id, sizeof d->id, "%s", id);
  snprintf(d->table, sizeof d->table, "%s", table_param ? table_param : "");
  d->locate_cb = cb;
  api_with_schema(op, locate_with_schema);
}

/* Common parameter parsing: table, fields (after the table is known). */
static dev_op_t *dev_op_new(sl_api_t *api, h2o_req_t *req, api_route_t route, const char *id) {
  if (!id[0] || strlen(id) >= API_MAX_KEY) {
    api_reply_error(api, req, route, 400, "bad_device", "device ids are 1 to %d bytes", API_MAX_KEY - 1);
    return NULL;
  }
  dev_op_t *d = (dev_op_t *)op_new(api, req, route, sizeof(dev_op_t), dev_free);
  if (!d) api_reply_error(api, req, route, 503, "overloaded", "out of memory");
  return d;
}

static int fields_param(dev_op_t *d, const api_table_t *t) {
  char buf[2048];
  bool too_long;
  d->has_fields = false;
  for (int i = 0; i < API_MAX_COLS; i++) d->keep[i] = true;
  if (!api_param(d->base.req, "fields", buf, sizeof buf, &too_long)) return 0;
  char err[300];
  if (too_long || api_fields_parse(t, buf, d->keep, err, sizeof err) != 0) {
    op_error(&d->base, 400, "bad_parameter", "%s", too_long ? "fields: too long" : err);
    return -1;
  }
  /* the keys always come along */
  for (int i = 0; i < t->npk; i++) d->keep[t->pk[i]] = true;
  for (int i = 0; i < t->nck; i++) d->keep[t->ck[i]] = true;
  d->has_fields = true;
  return 0;
}

static const char *param_table(h2o_req_t *req, char *buf, size_t cap) {
  bool tl;
  if (api_param(req, "table", buf, cap, &tl) && buf[0]) return buf;
  return NULL;
}

/* ------------------------------------------------------------------------------------------------ latest */

static void latest_located(op_t *op, const api_table_t *t, const sl_cql_result_t *res, int64_t day,
                           const sl_cql_error_t *err) {
  dev_op_t *d = (dev_op_t *)op;
  if (err) return op_cql_error(op, err);
  if (!t) return op_error(op, 404, "unknown_device", "no readings for device '%.100s' in the last %lld days",
                          d->id, (long long)op->api->cfg.lookback_days);
  if (fields_param(d, t) != 0) return;
  bool keep[API_MAX_COLS];
  api_keep_for_result(res, t, d->keep, keep);
  char q[200];
  table_qname(t, q, sizeof q);
  api_rowfmt_t fmt;
  api_rowfmt_init(&fmt, res, keep);
  if (!fmt.fallback) {
    /* the bytes of the json_pack below dumped compact, written directly */
    int tscol = -1;
    for (size_t c = 0; c < fmt.n; c++)
      if (!strcmp(sl_cql_result_column_name(res, c), "ts")) tscol = (int)c;
    sl_buf_t row, b;
    sl_buf_init(&row);
    sl_buf_init(&b);
    size_t span[2] = {0, 0};
    api_rowfmt_write(&row, &fmt, 0, tscol, span);
    api_rowfmt_free(&fmt);
    sl_buf_reserve(&b, row.len + (span[1] - span[0]) + 128 + strlen(d->id) + strlen(q));
    bool ok = true;
    sl_buf_put(&b, "{\"device_id\":", 13);
    ok = api_json_str(&b, d->id, strlen(d->id)) && ok;
    sl_buf_put(&b, ",\"table\":", 9);
    ok = api_json_str(&b, q, strlen(q)) && ok;
    sl_buf_put(&b, ",\"last_seen\":", 13);
    if (span[1] > span[0]) sl_buf_put(&b, row.data + span[0], span[1] - span[0]);
    else sl_buf_put(&b, "null", 4);
    sl_buf_put(&b, ",\"reading\":", 11);
    sl_buf_put(&b, row.data, row.len);
    sl_buf_put_u8(&b, '}');
    sl_buf_free(&row);
    if (!ok) {
      sl_buf_free(&b);
      return op_reply_buf(op, 200, NULL);
    }
    return op_reply_buf(op, 200, &b);
  }
  api_rowfmt_free(&fmt);
  json_t *row = api_row_json(res, 0, keep);
  json_t *ts = json_object_get(row, "ts");
  op_reply_json(op, 200, json_pack("{s:s,s:s,s:O,s:o}", "device_id", d->id, "table", q, "last_seen",
                                   ts ? ts : json_null(), "reading", row));
}

void api_device_latest(sl_api_t *api, h2o_req_t *req, const char *id) {
  dev_op_t *d = dev_op_new(api, req, R_DEVICE_LATEST, id);
  if (!d) return;
  char tb[200];
  d->need_latest = true;
  api_device_locate(&d->base, id, param_table(req, tb, sizeof tb), latest_located);
}

/* ------------------------------------------------------------------------------------------- range params */

static int range_params(dev_op_t *d, int64_t max_range) {
  sl_api_t *api = d->base.api;
  h2o_req_t *req = d->base.req;
  char buf[128];
  bool tl;
  int64_t now = sl_wall_ms();
  d->to = now + 1;
  if (api_param(req, "to", buf, sizeof buf, &tl) && (tl || api_parse_time(buf, &d->to) != 0)) {
    op_error(&d->base, 400, "bad_parameter", "to: '%.60s' is not an ISO-8601 time or epoch milliseconds", buf);
    return -1;
  }
  d->from = d->to - api->cfg.default_range_ms;
  if (api_param(req, "from", buf, sizeof buf, &tl) && (tl || api_parse_time(buf, &d->from) != 0)) {
    op_error(&d->base, 400, "bad_parameter", "from: '%.60s' is not an ISO-8601 time or epoch milliseconds", buf);
    return -1;
  }
  if (d->from >= d->to) {
    op_error(&d->base, 400, "bad_range", "from must be before to (from is inclusive, to exclusive)");
    return -1;
  }
  if (d->to - d->from > max_range) {
    op_error(&d->base, 400, "range_too_large", "the range spans %lld ms; at most %lld ms (%lld days) are served",
             (long long)(d->to - d->from), (long long)max_range, (long long)(max_range / 86400000));
    return -1;
  }
  return 0;
}

static int limit_param(dev_op_t *d) {
  sl_api_t *api = d->base.api;
  char buf[64];
  bool tl;
  d->limit = api->cfg.default_limit;
  if (api_param(d->base.req, "limit", buf, sizeof buf, &tl)) {
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (tl || !buf[0] || *end || errno || v < 1 || v > api->cfg.max_limit) {
      op_error(&d->base, 400, "bad_parameter", "limit: must be an integer from 1 to %lld",
               (long long)api->cfg.max_limit);
      return -1;
    }
    d->limit = v;
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------------- readings */

static void readings_next(op_t *op);

static void readings_done(dev_op_t *d, const char *cursor) {
  char q[200], f[32], t[32];
  table_qname(d->t, q, sizeof q);
  api_format_time(d->from, f);
  api_format_time(d->to, t);
  /* the bytes of json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:o,s:s?}", ...) dumped compact; a string jansson would refuse
   * fails the whole answer, as json_pack would */
  sl_buf_t b[2]; /* the head and tail around the rows, which are sent from d->rbuf without a copy */
  sl_buf_init(&b[0]);
  sl_buf_reserve(&b[0], 512);
  bool ok = true;
  sl_buf_put(&b[0], "{\"device_id\":", 13);
  ok = api_json_str(&b[0], d->id, strlen(d->id)) && ok;
  sl_buf_put(&b[0], ",\"table\":", 9);
  ok = api_json_str(&b[0], q, strlen(q)) && ok;
  sl_buf_put(&b[0], ",\"from\":", 8);
  ok = api_json_str(&b[0], f, strlen(f)) && ok;
  sl_buf_put(&b[0], ",\"to\":", 6);
  ok = api_json_str(&b[0], t, strlen(t)) && ok;
  if (d->order_desc) sl_buf_put(&b[0], ",\"order\":\"desc\",\"count\":", 24);
  else sl_buf_put(&b[0], ",\"order\":\"asc\",\"count\":", 23);
  api_json_i64(&b[0], d->got);
  sl_buf_put(&b[0], ",\"readings\":[", 13);
  size_t head = b[0].len;
  sl_buf_put(&b[0], "],\"next_cursor\":", 16);
  if (cursor) ok = api_json_str(&b[0], cursor, strlen(cursor)) && ok;
  else sl_buf_put(&b[0], "null", 4);
  sl_buf_put(&b[0], "}\n", 2);
  if (!ok) {
    sl_buf_free(&b[0]);
    return op_reply_iov(&d->base, 200, NULL, 0, NULL, 0);
  }
  b[1] = d->rbuf;
  sl_buf_init(&d->rbuf);
  h2o_iovec_t iov[3];
  size_t n = 0;
  iov[n++] = h2o_iovec_init(b[0].data, head);
  if (b[1].len) iov[n++] = h2o_iovec_init(b[1].data, b[1].len);
  iov[n++] = h2o_iovec_init(b[0].data + head, b[0].len - head);
  op_reply_iov(&d->base, 200, iov, n, b, 2);
}

static void on_readings(op_t *op, const sl_cql_result_t *res, const sl_cql_error_t *err) {
  dev_op_t *d = (dev_op_t *)op;
  if (err) return op_cql_error(op, err);
  bool keep[API_MAX_COLS];
  api_keep_for_result(res, d->t, d->keep, keep);
  api_rowfmt_t fmt;
  api_rowfmt_init(&fmt, res, keep);
  if (!d->rbuf.cap) sl_buf_reserve(&d->rbuf, 256 * (sl_cql_result_row_count(res) + 1));
  int tscol = -1;
  for (size_t c = 0; c < sl_cql_result_column_count(res); c++)
    if (!strcmp(sl_cql_result_column_name(res, c), "ts")) tscol = (int)c;
  for (size_t r = 0; r < sl_cql_result_row_count(res); r++) {
    if (d->got == d->limit) {
      /* one row beyond the page: the next page starts after the last row returned */
      char cur[40];
      snprintf(cur, sizeof cur, "%c%lld", d->order_desc ? 'd' : 'a', (long long)d->last_ts);
      api_rowfmt_free(&fmt);
      return readings_done(d, cur);
    }
    if (d->got) sl_buf_put_u8(&d->rbuf, ',');
    api_rowfmt_write(&d->rbuf, &fmt, r, -1, NULL);
    sl_slice_t c = tscol >= 0 ? sl_cql_result_cell(res, r, (size_t)tscol) : (sl_slice_t){0};
    if (c.ptr && c.len == 8) d->last_ts = (int64_t)sl_load_be64(c.ptr);
    d->got++;
  }
  api_rowfmt_free(&fmt);
  if (d->order_desc) d->day--;
  else d->day++;
  readings_next(op);
}

static void readings_next(op_t *op) {
  dev_op_t *d = (dev_op_t *)op;
  const api_table_t *t = d->t;
  if ((d->order_desc && d->day < d->day_end) || (!d->order_desc && d->day > d->day_end))
    return readings_done(d, NULL);
  bool native = d->order_desc == (t->cols[t->ck[0]].desc ? 1 : 0);
  char q[600];
  snprintf(q, sizeof q, "SELECT * FROM \"%s\".\"%s\" WHERE device_id = ? AND day = ? AND ts >= ? AND ts < ?%s",
           t->ks, t->name, native ? "" : d->order_desc ? " ORDER BY ts DESC" : " ORDER BY ts ASC");
  api_bind_t b[4];
  bind_text(&b[0], d->id);
  bind_i64(&b[1], B_DATE, d->day);
  bind_i64(&b[2], B_TS, d->from);
  bind_i64(&b[3], B_TS, d->to);
  api_query(op, q, b, 4, (int32_t)(d->limit + 1 - d->got), NULL, 0, on_readings);
}

static void readings_located(op_t *op, const api_table_t *t, const sl_cql_result_t *res, int64_t day,
                             const sl_cql_error_t *err) {
  dev_op_t *d = (dev_op_t *)op;
  if (err) return op_cql_error(op, err);
  if (!t) return op_error(op, 404, "unknown_device", "no readings for device '%.100s' in the last %lld days", d->id,
                          (long long)op->api->cfg.lookback_days);
  d->t = t;
  if (fields_param(d, t) != 0) return;
  int64_t first = api_day_of(d->from), last = api_day_of(d->to - 1);
  d->day = d->order_desc ? last : first;
  d->day_end = d->order_desc ? first : last;
  readings_next(op);
}

void api_device_readings(sl_api_t *api, h2o_req_t *req, const char *id) {
  dev_op_t *d = dev_op_new(api, req, R_DEVICE_READINGS, id);
  if (!d) return;
  if (range_params(d, api->cfg.max_range_ms) != 0 || limit_param(d) != 0) return;
  char buf[64];
  bool tl;
  d->order_desc = 1;
  if (api_param(req, "order", buf, sizeof buf, &tl)) {
    if (!strcmp(buf, "asc")) d->order_desc = 0;
    else if (strcmp(buf, "desc")) return op_error(&d->base, 400, "bad_parameter", "order: asc or desc");
  }
  if (api_param(req, "cursor", buf, sizeof buf, &tl)) {
    /* d<ts>: continue below ts (newest first); a<ts>: continue above ts */
    char *end;
    errno = 0;
    long long ts = tl || strlen(buf) < 2 ? 0 : strtoll(buf + 1, &end, 10);
    if (tl || strlen(buf) < 2 || (buf[0] != 'd' && buf[0] != 'a') || *end || errno ||
        (buf[0] == 'd') != (d->order_desc == 1))
      return op_error(&d->base, 400, "bad_cursor", "cursor: pass back next_cursor unchanged, with the same order");
    if (d->order_desc) {
      if (ts < d->to) d->to = ts;
    } else if (ts + 1 > d->from) {
      d->from = ts + 1;
    }
  }
  char tb[200];
  api_device_locate(&d->base, id, param_table(req, tb, sizeof tb), readings_located);
}

/* --------------------------------------------------------------------------------------------- aggregate */

enum { AGG_AVG, AGG_MIN, AGG_MAX, AGG_SUM, AGG_COUNT };
static const char *const agg_names[] = {"avg", "min", "max", "sum", "count"};

static void agg_next(op_t *op, const void *paging, size_t paging_len);

static void agg_done(dev_op_t *d) {
  const api_table_t *t = d->t;
  json_t *buckets = json_array();
  for (int64_t b = 0; b < d->nbuckets; b++) {
    if (!d->bcount[b]) continue;
    char ts[32];
    api_format_time((d->first_bucket + b) * d->interval, ts);
    json_t *vals = json_object();
    for (int f = 0; f < d->nf; f++) {
      struct acc *a = &d->acc[b * d->nf + f];
      json_t *v;
      if (d->agg == AGG_COUNT) v = json_integer(a->n);
      else if (!a->n) v = json_null();
      else if (d->agg == AGG_AVG) v = json_real(a->sum / (double)a->n);
      else if (d->agg == AGG_SUM) v = json_real(a->sum);
      else v = json_real(d->agg == AGG_MIN ? a->min : a->max);
      json_object_set_new(vals, t->cols[d->fcol[f]].name, v);
    }
    json_array_append_new(buckets, json_pack("{s:s,s:I,s:o}", "ts", ts, "count", (json_int_t)d->bcount[b], "values", vals));
  }
  json_t *fields = json_array();
  for (int f = 0; f < d->nf; f++) json_array_append_new(fields, json_string(t->cols[d->fcol[f]].name));
  char q[200], f1[32], f2[32], iv[8];
  table_qname(t, q, sizeof q);
  api_format_time(d->from, f1);
  api_format_time(d->to, f2);
  snprintf(iv, sizeof iv, "%s", d->interval == 60000 ? "1m" : d->interval == 3600000 ? "1h" : "1d");
  op_reply_json(&d->base, 200, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:I,s:o}", "device_id", d->id, "table", q,
                                         "from", f1, "to", f2, "interval", iv, "agg", agg_names[d->agg], "fields",
                                         fields, "rows", (json_int_t)d->scanned, "buckets", buckets));
}

static void on_agg(op_t *op, const sl_cql_result_t *res, const sl_cql_error_t *err) {
  dev_op_t *d = (dev_op_t *)op;
  if (err) return op_cql_error(op, err);
  size_t ncols = sl_cql_result_column_count(res);
  int rc[API_MAX_COLS], tscol = -1;
  for (int f = 0; f < d->nf; f++) rc[f] = -1;
  for (size_t c = 0; c < ncols; c++) {
    const char *name = sl_cql_result_column_name(res, c);
    if (!strcmp(name, "ts")) tscol = (int)c;
    for (int f = 0; f < d->nf; f++)
      if (!strcmp(name, d->t->cols[d->fcol[f]].name)) rc[f] = (int)c;
  }
  size_t n = sl_cql_result_row_count(res);
  d->scanned += (int64_t)n;
  if (d->scanned > op->api->cfg.max_scan_rows)
    return op_error(op, 413, "too_many_rows", "the range holds more than %lld rows; ask for a shorter range",
                    (long long)op->api->cfg.max_scan_rows);
  for (size_t r = 0; r < n; r++) {
    sl_slice_t c = tscol >= 0 ? sl_cql_result_cell(res, r, (size_t)tscol) : (sl_slice_t){0};
    if (!c.ptr || c.len != 8) continue;
    int64_t ts = (int64_t)sl_load_be64(c.ptr);
    int64_t b = (ts >= 0 ? ts / d->interval : -((-ts + d->interval - 1) / d->interval)) - d->first_bucket;
    if (b < 0 || b >= d->nbuckets) continue;
    d->bcount[b]++;
    for (int f = 0; f < d->nf; f++) {
      double v;
      if (rc[f] < 0 || !api_cell_number(sl_cql_result_column_type(res, (size_t)rc[f]),
                                        sl_cql_result_cell(res, r, (size_t)rc[f]), &v))
        continue;
      struct acc *a = &d->acc[b * d->nf + f];
      if (!a->n || v < a->min) a->min = v;
      if (!a->n || v > a->max) a->max = v;
      a->sum += v;
      a->n++;
    }
  }
  if (sl_cql_result_has_more_pages(res)) {
    sl_slice_t ps = sl_cql_result_paging_state(res);
    return agg_next(op, ps.ptr, ps.len);
  }
  d->day++;
  agg_next(op, NULL, 0);
}

static void agg_next(op_t *op, const void *paging, size_t paging_len) {
  dev_op_t *d = (dev_op_t *)op;
  if (d->day > d->day_end) return agg_done(d);
  char q[600];
  snprintf(q, sizeof q, "SELECT * FROM \"%s\".\"%s\" WHERE device_id = ? AND day = ? AND ts >= ? AND ts < ?",
           d->t->ks, d->t->name);
  api_bind_t b[4];
  bind_text(&b[0], d->id);
  bind_i64(&b[1], B_DATE, d->day);
  bind_i64(&b[2], B_TS, d->from);
  bind_i64(&b[3], B_TS, d->to);
  api_query(op, q, b, 4, 5000, paging, paging_len, on_agg);
}

static void agg_located(op_t *op, const api_table_t *t, const sl_cql_result_t *res, int64_t day,
                        const sl_cql_error_t *err) {
  dev_op_t *d = (dev_op_t *)op;
  sl_api_t *api = op->api;
  if (err) return op_cql_error(op, err);
  if (!t) return op_error(op, 404, "unknown_device", "no readings for device '%.100s' in the last %lld days", d->id,
                          (long long)api->cfg.lookback_days);
  d->t = t;
  char buf[2048];
  bool tl;
  d->nf = 0;
  if (api_param(op->req, "fields", buf, sizeof buf, &tl)) {
    bool keep[API_MAX_COLS];
    char why[300];
    if (tl || api_fields_parse(t, buf, keep, why, sizeof why) != 0)
      return op_error(op, 400, "bad_parameter", "%s", tl ? "fields: too long" : why);
    for (int i = 0; i < t->ncols; i++) {
      if (!keep[i]) continue;
      if (!api_type_numeric(t->cols[i].ctype) || t->cols[i].kind != 2)
        return op_error(op, 400, "bad_parameter", "fields: '%s' is not a numeric value column", t->cols[i].name);
      d->fcol[d->nf++] = i;
    }
  } else {
    for (int i = 0; i < t->ncols; i++)
      if (t->cols[i].kind == 2 && api_type_numeric(t->cols[i].ctype)) d->fcol[d->nf++] = i;
  }
  d->first_bucket = (d->from >= 0 ? d->from / d->interval : -((-d->from + d->interval - 1) / d->interval));
  int64_t last_bucket = (d->to - 1) / d->interval;
  d->nbuckets = last_bucket - d->first_bucket + 1;
  if (d->nbuckets > api->cfg.max_buckets)
    return op_error(op, 400, "too_many_intervals", "%lld intervals asked; at most %lld (use a longer interval)",
                    (long long)d->nbuckets, (long long)api->cfg.max_buckets);
  d->acc = calloc((size_t)(d->nbuckets * (d->nf ? d->nf : 1)), sizeof *d->acc);
  d->bcount = calloc((size_t)d->nbuckets, sizeof *d->bcount);
  if (!d->acc || !d->bcount) return op_error(op, 503, "overloaded", "out of memory");
  d->day = api_day_of(d->from);
  d->day_end = api_day_of(d->to - 1);
  agg_next(op, NULL, 0);
}

void api_device_aggregate(sl_api_t *api, h2o_req_t *req, const char *id) {
  dev_op_t *d = dev_op_new(api, req, R_DEVICE_AGG, id);
  if (!d) return;
  if (range_params(d, api->cfg.max_agg_range_ms) != 0) return;
  char buf[64];
  bool tl;
  d->interval = 60000;
  if (api_param(req, "interval", buf, sizeof buf, &tl)) {
    if (!strcmp(buf, "1m")) d->interval = 60000;
    else if (!strcmp(buf, "1h")) d->interval = 3600000;
    else if (!strcmp(buf, "1d")) d->interval = 86400000;
    else return op_error(&d->base, 400, "bad_parameter", "interval: one of 1m, 1h, 1d");
  }
  d->agg = AGG_AVG;
  if (api_param(req, "agg", buf, sizeof buf, &tl)) {
    d->agg = -1;
    for (int i = 0; i < 5; i++)
      if (!strcmp(buf, agg_names[i])) d->agg = i;
    if (d->agg < 0) return op_error(&d->base, 400, "bad_parameter", "agg: one of avg, min, max, sum, count");
  }
  char tb[200];
  api_device_locate(&d->base, id, param_table(req, tb, sizeof tb), agg_located);
}

/* ---------------------------------------------------------------------------------------------- device list */

static void list_done(dev_op_t *d) {
  /* sort by device id for stable answers */
  size_t n = json_array_size(d->devices);
  json_t **items = malloc((n ? n : 1) * sizeof *items);
  for (size_t i = 0; i < n; i++) items[i] = json_array_get(d->devices, i);
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && strcmp(json_string_value(json_object_get(items[j - 1], "device_id")),
                                       json_string_value(json_object_get(items[j], "device_id"))) > 0;
         j--) {
      json_t *tmp = items[j];
      items[j] = items[j - 1];
      items[j - 1] = tmp;
    }
  json_t *sorted = json_array();
  for (size_t i = 0; i < n; i++) json_array_append(sorted, items[i]);
  free(items);
  op_reply_json(&d->base, 200, json_pack("{s:I,s:o}", "count", (json_int_t)n, "devices", sorted));
}

static void list_finish(dev_op_t *d) {
  if (d->mode == 1) {
    if (!d->reported) {
      d->reported = true;
      d->poll_done(d->poll_arg, NULL);
    }
    d->base.done = true;
    return;
  }
  list_done(d);
}

static void on_list_latest(op_t *op, const sl_cql_result_t *res, const sl_cql_error_t *err) {
  dev_op_t *d = (dev_op_t *)op;
  d->outstanding--;
  if (err) return dev_fail(op, err);
  if (d->mode == 1) {
    if (sl_cql_result_row_count(res) > 0) d->poll_row(d->poll_arg, res);
  } else if (sl_cql_result_row_count(res) > 0) {
    json_t *row = api_row_json(res, 0, NULL);
    const char *id = json_string_value(json_object_get(row, "device_id"));
    const api_table_t *t = NULL;
    int64_t day;
    char q[200] = "";
    if (id && index_lookup(op->api, id, &t, &day)) table_qname(t, q, sizeof q);
    json_t *ts = json_object_get(row, "ts");
    json_array_append_new(d->devices, json_pack("{s:s?,s:s,s:O,s:o}", "device_id", id, "table", q, "last_seen",
                                                ts ? ts : json_null(), "latest", row));
  }
  if (d->outstanding == 0) list_finish(d);
}

static void list_latest(dev_op_t *d) {
  sl_api_t *api = d->base.api;
  const char *id;
  json_t *e;
  d->devices = json_array();
  d->base.queries++; /* hold the op while queries are issued */
  d->outstanding = 1;
  json_object_foreach(api->devidx->map, id, e) {
    const api_table_t *t = device_table_named(api, json_string_value(json_array_get(e, 0)));
    if (!t) continue;
    if (d->t && d->t != t) continue;
    char q[600];
    api_bind_t b[2];
    bind_text(&b[0], id);
    bind_i64(&b[1], B_DATE, json_integer_value(json_array_get(e, 1)));
    d->outstanding++;
    api_query(&d->base, latest_cql(t, q, sizeof q), b, 2, 1, NULL, 0, on_list_latest);
    if (d->base.done) break;
  }
  d->outstanding--;
  if (!d->base.done && d->outstanding == 0) list_finish(d);
  d->base.queries--;
  op_maybe_free(&d->base);
}

static void on_distinct(op_t *op, const sl_cql_result_t *res, const sl_cql_error_t *err);

static void distinct_next(op_t *op, const void *paging, size_t plen) {
  dev_op_t *d = (dev_op_t *)op;
  sl_api_t *api = op->api;
  while (d->ci < api->ntables && !api->tables[d->ci].device_table) d->ci++;
  if (d->ci >= api->ntables) {
    api_devidx_free(api);
    api->devidx = calloc(1, sizeof *api->devidx);
    api->devidx->map = d->rows;
    d->rows = NULL;
    api->devidx->at_ms = sl_monotonic_ms();
    return list_latest(d);
  }
  const api_table_t *t = &api->tables[d->ci];
  char q[400];
  snprintf(q, sizeof q, "SELECT DISTINCT device_id, day FROM \"%s\".\"%s\"", t->ks, t->name);
  api_query(op, q, NULL, 0, 100000, paging, plen, on_distinct);
}

static void on_distinct(op_t *op, const sl_cql_result_t *res, const sl_cql_error_t *err) {
  dev_op_t *d = (dev_op_t *)op;
  sl_api_t *api = op->api;
  if (err) return dev_fail(op, err);
  const api_table_t *t = &api->tables[d->ci];
  char qn[200];
  table_qname(t, qn, sizeof qn);
  for (size_t r = 0; r < sl_cql_result_row_count(res); r++) {
    sl_slice_t id = sl_cql_result_cell(res, r, 0), day = sl_cql_result_cell(res, r, 1);
    if (!id.ptr || !day.ptr || day.len != 4 || id.len >= API_MAX_KEY) continue;
    char ids[API_MAX_KEY];
    memcpy(ids, id.ptr, id.len);
    ids[id.len] = 0;
    int64_t dd = (int64_t)sl_load_be32(day.ptr) - (INT64_C(1) << 31);
    json_t *e = json_object_get(d->rows, ids);
    if (e && json_integer_value(json_array_get(e, 1)) >= dd) continue;
    json_object_set_new(d->rows, ids, json_pack("[s,I]", qn, (json_int_t)dd));
  }
  if (sl_cql_result_has_more_pages(res)) {
    sl_slice_t ps = sl_cql_result_paging_state(res);
    return distinct_next(op, ps.ptr, ps.len);
  }
  d->ci++;
  distinct_next(op, NULL, 0);
}

static void list_with_schema(op_t *op, const sl_cql_error_t *err) {
  dev_op_t *d = (dev_op_t *)op;
  sl_api_t *api = op->api;
  if (err) return dev_fail(op, err);
  if (d->table[0]) {
    d->t = device_table_named(api, d->table);
    if (!d->t && d->mode == 1) {
      sl_cql_error_t e = {.code = 0x2200};
      snprintf(e.message, sizeof e.message, "no device table named '%.150s'", d->table);
      return dev_fail(op, &e);
    }
    if (!d->t) return op_error(op, 404, "unknown_table", "no device table named '%.150s'", d->table);
  }
  if (api->devidx && sl_monotonic_ms() - api->devidx->at_ms < api->cfg.device_cache_ms) return list_latest(d);
  d->rows = json_object();
  d->ci = 0;
  distinct_next(op, NULL, 0);
}

void api_devices(sl_api_t *api, h2o_req_t *req) {
  dev_op_t *d = (dev_op_t *)op_new(api, req, R_DEVICES, sizeof(dev_op_t), dev_free);
  if (!d) return api_reply_error(api, req, R_DEVICES, 503, "overloaded", "out of memory");
  char tb[200];
  const char *t = param_table(req, tb, sizeof tb);
  snprintf(d->table, sizeof d->table, "%s", t ? t : "");
  api_with_schema(&d->base, list_with_schema);
}

/* Live table streams: the newest row of every device of one device table (rebuilding the device index when it is
 * older than api.device_cache_ms). row() runs per device with a row; done() runs once at the end. */
void api_poll_table(sl_api_t *api, const char *qname, void *arg, void (*row)(void *arg, const sl_cql_result_t *res),
                    void (*done)(void *arg, const sl_cql_error_t *err)) {
  dev_op_t *d = (dev_op_t *)op_new(api, NULL, R_LIVE, sizeof(dev_op_t), dev_free);
  d->mode = 1;
  d->poll_arg = arg;
  d->poll_row = row;
  d->poll_done = done;
  snprintf(d->table, sizeof d->table, "%s", qname);
  d->base.queries++;
  api_with_schema(&d->base, list_with_schema);
  d->base.queries--;
  op_maybe_free(&d->base);
}

size_t api_dev_op_size(void) { return sizeof(dev_op_t); }
void api_dev_op_prepare(op_t *op, bool need_latest) {
  dev_op_t *d = (dev_op_t *)op;
  d->base.free_fn = dev_free;
  d->need_latest = need_latest;
}
