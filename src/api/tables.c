/* Generic table endpoints: the pipelines' tables with their columns (from system_schema), and rows of one
 * partition (or of the whole table, page by page) with the same range, pagination and typed JSON as the device
 * endpoints. Pages follow the store's own paging state, carried to the client as an opaque base64url cursor, so
 * any instance can serve the next page. Pipeline status and dead letters live here too (sluice_meta tables). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/clock.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64url_encode(const uint8_t *p, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    out[o++] = b64[v >> 18 & 63];
    out[o++] = b64[v >> 12 & 63];
    if (i + 1 < n) out[o++] = b64[v >> 6 & 63];
    if (i + 2 < n) out[o++] = b64[v & 63];
  }
  out[o] = 0;
}

static long b64url_decode(const char *s, uint8_t *out, size_t cap) {
  size_t n = strlen(s), o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    const char *pos = memchr(b64, s[i], 64);
    if (!pos || !s[i]) return -1;
    acc = acc << 6 | (uint32_t)(pos - b64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o == cap) return -1;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  return (long)o;
}

typedef struct {
  op_t base;
  char ks[64], name[128];
  const api_table_t *t;
  bool keep[API_MAX_COLS];
  int64_t limit;
  char pipeline[API_MAX_KEY];
  json_t *out;
} tab_op_t;

static void tab_free(op_t *op) { json_decref(((tab_op_t *)op)->out); }

static void tables_with_schema(op_t *op, const sl_cql_error_t *err) {
  tab_op_t *d = (tab_op_t *)op;
  sl_api_t *api = op->api;
  if (err) return op_cql_error(op, err);
  if (d->ks[0]) {
    const api_table_t *t = api_table_find(api, d->ks, d->name);
    if (!t) return op_error(op, 404, "unknown_table", "no table %.60s.%.100s", d->ks, d->name);
    return op_reply_json(op, 200, api_table_json(t));
  }
  json_t *arr = json_array();
  for (int i = 0; i < api->ntables; i++) json_array_append_new(arr, api_table_json(&api->tables[i]));
  op_reply_json(op, 200, json_pack("{s:I,s:o}", "count", (json_int_t)api->ntables, "tables", arr));
}

void api_tables(sl_api_t *api, h2o_req_t *req, const char *ks, const char *name) {
  tab_op_t *d = (tab_op_t *)op_new(api, req, R_TABLES, sizeof(tab_op_t), tab_free);
  if (!d) return api_reply_error(api, req, R_TABLES, 503, "overloaded", "out of memory");
  if (ks) {
    snprintf(d->ks, sizeof d->ks, "%s", ks);
    snprintf(d->name, sizeof d->name, "%s", name);
  }
  api_with_schema(&d->base, tables_with_schema);
}

/* -------------------------------------------------------------------------------------------------- rows */

static void on_rows(op_t *op, const sl_cql_result_t *res, const sl_cql_error_t *err) {
  tab_op_t *d = (tab_op_t *)op;
  if (err) return op_cql_error(op, err);
  bool keep[API_MAX_COLS];
  api_keep_for_result(res, d->t, d->keep, keep);
  json_t *rows = json_array();
  for (size_t r = 0; r < sl_cql_result_row_count(res); r++) json_array_append_new(rows, api_row_json(res, r, keep));
  char cursor[1400] = "";
  if (sl_cql_result_has_more_pages(res)) {
    sl_slice_t ps = sl_cql_result_paging_state(res);
    if (ps.len < 1000) b64url_encode(ps.ptr, ps.len, cursor);
  }
  op_reply_json(op, 200, json_pack("{s:s,s:s,s:I,s:o,s:s?}", "keyspace", d->t->ks, "table", d->t->name, "count",
                                   (json_int_t)json_array_size(rows), "rows", rows, "next_cursor",
                                   cursor[0] ? cursor : NULL));
}

static void rows_with_schema(op_t *op, const sl_cql_error_t *err) {
  tab_op_t *d = (tab_op_t *)op;
  sl_api_t *api = op->api;
  h2o_req_t *req = op->req;
  if (err) return op_cql_error(op, err);
  const api_table_t *t = d->t = api_table_find(api, d->ks, d->name);
  if (!t) return op_error(op, 404, "unknown_table", "no table %.60s.%.100s", d->ks, d->name);
  /* parameters: the partition key columns, from, to, limit, cursor, fields; nothing else */
  if (req->query_at != SIZE_MAX) {
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    while (q < end) {
      const char *amp = memchr(q, '&', (size_t)(end - q));
      if (!amp) amp = end;
      const char *eq = memchr(q, '=', (size_t)(amp - q));
      size_t kl = (size_t)((eq ? eq : amp) - q);
      char key[128];
      if (kl && kl < sizeof key) {
        memcpy(key, q, kl);
        key[kl] = 0;
        bool ok = !strcmp(key, "from") || !strcmp(key, "to") || !strcmp(key, "limit") || !strcmp(key, "cursor") ||
                  !strcmp(key, "fields");
        for (int i = 0; !ok && i < t->npk; i++) ok = !strcmp(key, t->cols[t->pk[i]].name);
        if (!ok)
          return op_error(op, 400, "bad_parameter", "unknown query parameter '%.100s' (partition key columns, from, "
                                                    "to, limit, cursor, fields)", key);
      } else if (kl) {
        return op_error(op, 400, "bad_parameter", "query parameter name too long");
      }
      q = amp + 1;
    }
  }
  api_bind_t binds[10];
  size_t nb = 0;
  int given = 0;
  char where[1200] = "";
  size_t wl = 0;
  for (int i = 0; i < t->npk; i++) {
    const char *cn = t->cols[t->pk[i]].name;
    bool tl;
    if (!api_param(req, cn, binds[nb].s, sizeof binds[nb].s, &tl)) continue;
    if (tl) return op_error(op, 400, "bad_parameter", "%s: value too long or not decodable", cn);
    binds[nb].kind = B_STR;
    binds[nb].len = strlen(binds[nb].s);
    wl += (size_t)snprintf(where + wl, sizeof where - wl, "%s\"%s\" = ?", nb ? " AND " : " WHERE ", cn);
    nb++;
    given++;
  }
  if (given && given != t->npk) {
    char names[400] = "";
    for (int i = 0; i < t->npk; i++)
      snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", t->cols[t->pk[i]].name);
    return op_error(op, 400, "incomplete_key", "give every partition key column (%s) or none", names);
  }
  char buf[2048];
  bool tl;
  bool has_from = api_param(req, "from", buf, 128, &tl), has_to;
  int64_t from = INT64_MIN, to = INT64_MAX;
  if (has_from && (tl || api_parse_time(buf, &from) != 0))
    return op_error(op, 400, "bad_parameter", "from: not an ISO-8601 time or epoch milliseconds");
  has_to = api_param(req, "to", buf, 128, &tl);
  if (has_to && (tl || api_parse_time(buf, &to) != 0))
    return op_error(op, 400, "bad_parameter", "to: not an ISO-8601 time or epoch milliseconds");
  if (has_from || has_to) {
    if (!given) return op_error(op, 400, "bad_parameter", "from/to need the partition key");
    if (t->nck == 0 || t->cols[t->ck[0]].ctype->id != CQL_TYPE_TIMESTAMP)
      return op_error(op, 400, "bad_parameter", "from/to apply to a first clustering column of type timestamp");
    if (!has_from) from = to - api->cfg.default_range_ms;
    if (!has_to) to = from + api->cfg.default_range_ms;
    if (from >= to) return op_error(op, 400, "bad_range", "from must be before to");
    if (to - from > api->cfg.max_range_ms)
      return op_error(op, 400, "range_too_large", "the range spans %lld ms; at most %lld ms are served",
                      (long long)(to - from), (long long)api->cfg.max_range_ms);
    const char *ck = t->cols[t->ck[0]].name;
    wl += (size_t)snprintf(where + wl, sizeof where - wl, " AND \"%s\" >= ? AND \"%s\" < ?", ck, ck);
    bind_i64(&binds[nb++], B_TS, from);
    bind_i64(&binds[nb++], B_TS, to);
  }
  d->limit = api->cfg.default_limit;
  if (api_param(req, "limit", buf, 64, &tl)) {
    char *e;
    errno = 0;
    long long v = strtoll(buf, &e, 10);
    if (tl || !buf[0] || *e || errno || v < 1 || v > api->cfg.max_limit)
      return op_error(op, 400, "bad_parameter", "limit: must be an integer from 1 to %lld",
                      (long long)api->cfg.max_limit);
    d->limit = v;
  }
  for (int i = 0; i < API_MAX_COLS; i++) d->keep[i] = true;
  if (api_param(req, "fields", buf, sizeof buf, &tl)) {
    char why[300];
    if (tl || api_fields_parse(t, buf, d->keep, why, sizeof why) != 0)
      return op_error(op, 400, "bad_parameter", "%s", tl ? "fields: too long" : why);
  }
  uint8_t state[1024];
  long slen = 0;
  if (api_param(req, "cursor", buf, sizeof buf, &tl)) {
    slen = tl ? -1 : b64url_decode(buf, state, sizeof state);
    if (slen <= 0) return op_error(op, 400, "bad_cursor", "cursor: pass back next_cursor unchanged");
  }
  char q[1600];
  snprintf(q, sizeof q, "SELECT * FROM \"%s\".\"%s\"%s", t->ks, t->name, where);
  api_query(op, q, binds, nb, (int32_t)d->limit, slen > 0 ? state : NULL, (size_t)(slen > 0 ? slen : 0), on_rows);
}

void api_table_rows(sl_api_t *api, h2o_req_t *req, const char *ks, const char *name) {
  tab_op_t *d = (tab_op_t *)op_new(api, req, R_TABLE_ROWS, sizeof(tab_op_t), tab_free);
  if (!d) return api_reply_error(api, req, R_TABLE_ROWS, 503, "overloaded", "out of memory");
  snprintf(d->ks, sizeof d->ks, "%s", ks);
  snprintf(d->name, sizeof d->name, "%s", name);
  api_with_schema(&d->base, rows_with_schema);
}

/* -------------------------------------------------------------------------------------------- pipelines */

static bool missing_table(const sl_cql_error_t *err) { return err->code == 0x2200; }

static void on_lag(op_t *op, const sl_cql_result_t *res, const sl_cql_error_t *err) {
  tab_op_t *d = (tab_op_t *)op;
  if (err && !missing_table(err)) return op_cql_error(op, err);
  json_t *pipes = json_object_get(d->out, "pipelines");
  for (size_t r = 0; !err && r < sl_cql_result_row_count(res); r++) {
    json_t *row = api_row_json(res, r, NULL);
    const char *name = json_string_value(json_object_get(row, "pipeline"));
    size_t i;
    json_t *p;
    json_array_foreach(pipes, i, p) {
      if (name && !strcmp(json_string_value(json_object_get(p, "name")), name)) {
        json_object_del(row, "pipeline"); /* frees name: one pipeline has that name */
        json_array_append(json_object_get(p, "partitions"), row);
        break;
      }
    }
    json_decref(row);
  }
  json_t *out = d->out;
  d->out = NULL;
  op_reply_json(op, 200, out);
}

/* Processors refresh their row at least every 30 s: one not refreshed for this long is taken to be gone. */
#define PROCESSOR_STALE_MS 90000
static const char *const counters[] = {"consumed", "written", "dead_lettered", "filtered", "inflight", "lag"};
enum { N_COUNTERS = sizeof counters / sizeof counters[0] };

static int64_t cell_timestamp(const sl_cql_result_t *res, size_t row, const char *col) {
  for (size_t c = 0; c < sl_cql_result_column_count(res); c++) {
    if (strcmp(sl_cql_result_column_name(res, c), col) != 0) continue;
    sl_slice_t v = sl_cql_result_cell(res, row, c);
    return v.ptr && v.len == 8 ? (int64_t)sl_load_be64(v.ptr) : INT64_MIN;
  }
  return INT64_MIN;
}

/* One pipeline's view over its processors' rows: while any processor runs, the counters are the sum over the
 * running ones (each counts what it consumed since it started) and the state is "running"; otherwise they are
 * those of the processor seen last. A "running" row not refreshed within PROCESSOR_STALE_MS reads "unresponsive". */
static void summarize_pipeline(json_t *p, const int64_t *updated, size_t n) {
  json_t *procs = json_object_get(p, "processors");
  size_t latest = 0, running = 0;
  json_int_t sum[N_COUNTERS] = {0};
  bool known[N_COUNTERS] = {false};
  for (size_t i = 0; i < n; i++) {
    json_t *row = json_array_get(procs, i);
    if (updated[i] > updated[latest]) latest = i;
    const char *state = json_string_value(json_object_get(row, "state"));
    if (!state || strcmp(state, "running") != 0) continue;
    running++;
    for (size_t c = 0; c < N_COUNTERS; c++) {
      json_t *v = json_object_get(row, counters[c]);
      if (json_is_integer(v)) sum[c] += json_integer_value(v), known[c] = true;
    }
  }
  json_t *last = json_array_get(procs, latest);
  json_object_set(p, "updated", json_object_get(last, "updated"));
  json_object_set_new(p, "processors_running", json_integer((json_int_t)running));
  if (running) {
    json_object_set_new(p, "state", json_string("running"));
    for (size_t c = 0; c < N_COUNTERS; c++)
      json_object_set_new(p, counters[c], known[c] ? json_integer(sum[c]) : json_null());
  } else {
    json_object_set(p, "state", json_object_get(last, "state"));
    for (size_t c = 0; c < N_COUNTERS; c++) json_object_set(p, counters[c], json_object_get(last, counters[c]));
  }
}

static void on_status(op_t *op, const sl_cql_result_t *res, const sl_cql_error_t *err) {
  tab_op_t *d = (tab_op_t *)op;
  if (err && missing_table(err))
    return op_reply_json(op, 200, json_pack("{s:[],s:s,s:s}", "pipelines", "source", "none", "note",
                                            "no pipeline has published its status (sluice_meta.pipeline_processors)"));
  if (err) return op_cql_error(op, err);
  json_t *pipes = json_array();
  size_t nrows = sl_cql_result_row_count(res);
  int64_t *updated = calloc(nrows ? nrows : 1, sizeof *updated);
  if (!updated) abort();
  int64_t now = sl_wall_ms();
  /* rows come partition by partition, so a pipeline's processors are consecutive */
  json_t *cur = NULL;
  size_t first = 0;
  for (size_t r = 0; r <= nrows; r++) {
    json_t *row = r < nrows ? api_row_json(res, r, NULL) : NULL;
    const char *name = row ? json_string_value(json_object_get(row, "pipeline")) : NULL;
    if (cur && (!row || !name || strcmp(json_string_value(json_object_get(cur, "name")), name) != 0)) {
      summarize_pipeline(cur, updated + first, r - first);
      cur = NULL;
    }
    if (!row) break;
    if (!name) {
      json_decref(row);
      continue;
    }
    if (!cur) {
      cur = json_pack("{s:O,s:O,s:O,s:O,s:O,s:[],s:[]}", "name", json_object_get(row, "pipeline"), "topics",
                      json_object_get(row, "topics"), "keyspace_name", json_object_get(row, "keyspace_name"),
                      "table_name", json_object_get(row, "table_name"), "dead_letter_topic",
                      json_object_get(row, "dead_letter_topic"), "processors", "partitions");
      json_array_append_new(pipes, cur);
      first = r;
    }
    updated[r] = cell_timestamp(res, r, "updated");
    const char *state = json_string_value(json_object_get(row, "state"));
    if (state && !strcmp(state, "running") && (updated[r] == INT64_MIN || now - updated[r] > PROCESSOR_STALE_MS))
      json_object_set_new(row, "state", json_string("unresponsive"));
    static const char *const per_pipeline[] = {"pipeline", "topics", "keyspace_name", "table_name",
                                               "dead_letter_topic"};
    for (size_t k = 0; k < sizeof per_pipeline / sizeof per_pipeline[0]; k++) json_object_del(row, per_pipeline[k]);
    json_array_append_new(json_object_get(cur, "processors"), row);
  }
  free(updated);
  d->out = json_pack("{s:o,s:s}", "pipelines", pipes, "source", "sluice_meta.pipeline_processors");
  api_query(op, "SELECT * FROM sluice_meta.pipeline_lag", NULL, 0, 10000, NULL, 0, on_lag);
}

void api_pipelines(sl_api_t *api, h2o_req_t *req) {
  tab_op_t *d = (tab_op_t *)op_new(api, req, R_PIPELINES, sizeof(tab_op_t), tab_free);
  if (!d) return api_reply_error(api, req, R_PIPELINES, 503, "overloaded", "out of memory");
  api_query(&d->base, "SELECT * FROM sluice_meta.pipeline_processors", NULL, 0, 10000, NULL, 0, on_status);
}

static void on_dlq(op_t *op, const sl_cql_result_t *res, const sl_cql_error_t *err) {
  tab_op_t *d = (tab_op_t *)op;
  if (err && missing_table(err))
    return op_reply_json(op, 200, json_pack("{s:s,s:I,s:[],s:s}", "pipeline", d->pipeline, "count", (json_int_t)0,
                                            "dead_letters", "note", "no dead letters recorded (sluice_meta.dead_letters)"));
  if (err) return op_cql_error(op, err);
  json_t *rows = json_array();
  for (size_t r = 0; r < sl_cql_result_row_count(res); r++) {
    json_t *row = api_row_json(res, r, NULL);
    json_object_del(row, "pipeline");
    json_array_append_new(rows, row);
  }
  op_reply_json(op, 200, json_pack("{s:s,s:I,s:o}", "pipeline", d->pipeline, "count",
                                   (json_int_t)json_array_size(rows), "dead_letters", rows));
}

void api_dead_letters(sl_api_t *api, h2o_req_t *req, const char *pipeline) {
  tab_op_t *d = (tab_op_t *)op_new(api, req, R_DEAD_LETTERS, sizeof(tab_op_t), tab_free);
  if (!d) return api_reply_error(api, req, R_DEAD_LETTERS, 503, "overloaded", "out of memory");
  snprintf(d->pipeline, sizeof d->pipeline, "%s", pipeline);
  char buf[64];
  bool tl;
  d->limit = 100;
  if (api_param(req, "limit", buf, sizeof buf, &tl)) {
    char *e;
    errno = 0;
    long long v = strtoll(buf, &e, 10);
    if (tl || !buf[0] || *e || errno || v < 1 || v > api->cfg.max_limit)
      return op_error(&d->base, 400, "bad_parameter", "limit: must be an integer from 1 to %lld",
                      (long long)api->cfg.max_limit);
    d->limit = v;
  }
  api_bind_t b;
  bind_text(&b, pipeline);
  api_query(&d->base, "SELECT * FROM sluice_meta.dead_letters WHERE pipeline = ?", &b, 1, (int32_t)d->limit, NULL, 0,
            on_dlq);
}
