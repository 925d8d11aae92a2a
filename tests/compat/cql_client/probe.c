/* cql_client_probe: drives Sluice's C CQL client from a script on stdin, one command per line (fields separated
 * by tabs), and prints one JSON line per command. The pytest suite in this directory uses it against a real
 * `sluice store`. Commands:
 *
 *   connect HOSTPORT [key=value...]   keys: lz4, timeout, connect_timeout, conns, maxreq, max_pending, keyspace,
 *                                     user, pass, dc; TLS: tls (0|1), ca, check_hostname (0|1), cert, key,
 *                                     server_name (strings as a settings file would give them)
 *   query CQL                         all pages; prints rows as JSON objects and the page count
 *   pagesize N | timeout N | idempotent 0|1 | consistency N
 *   prepare CQL                       becomes the current prepared statement
 *   exec BIND...                      executes the current prepared statement; BIND = kind:value with kind in
 *                                     null unset bool i32 i64 float double text blob(hex) uuid ts raw(hex)
 *   token BIND...                     Murmur3 token of the current statement's routing key for these binds
 *   batchtype logged|unlogged|counter | batchadd BIND... | batchadd_text CQL | batchrun
 *   many N CQL                        N concurrent executions of a prepared CQL with ? = i (int), ? = "v<i>"
 *   wait_ok SECONDS CQL               repeats CQL until it succeeds (reconnection); prints the attempts
 *   hosts | stats | close
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "cql/client.h"
#include "cql/client_internal.h"

static uv_loop_t *loop;
static sl_cql_client_t *client;
static sl_cql_prepared_t *current;
static sl_cql_batch_t *batch;
static int page_size = 5000, timeout_ms = 0, consistency = -1;
static bool idempotent;

static void run_until(const bool *done) {
  while (!*done) uv_run(loop, UV_RUN_ONCE);
}

static void print_error(const sl_cql_error_t *err) {
  sl_buf_t b;
  sl_buf_init(&b);
  sl_slice_t m = {(const uint8_t *)err->message, strlen(err->message)};
  sl_cql_type_t t = {.id = CQL_TYPE_VARCHAR};
  sl_cql_format_cell_json(&t, m, &b);
  printf("{\"ok\":false,\"code\":%d,\"message\":%.*s}\n", err->code, (int)b.len, (const char *)b.data);
  sl_buf_free(&b);
}

/* ---- connect */
static bool connected_done;
static void on_connected(sl_cql_client_t *c, const sl_cql_error_t *err, void *arg) {
  (void)c, (void)arg;
  if (err) print_error(err);
  else printf("{\"ok\":true,\"hosts\":%zu}\n", sl_cql_client_host_count(c));
  connected_done = true;
}

static void cmd_connect(char **f, int n) {
  sl_cql_client_config_t cfg;
  sl_cql_client_config_defaults(&cfg);
  cfg.contact_points = f[1];
  for (int i = 2; i < n; i++) {
    char *eq = strchr(f[i], '=');
    if (!eq) continue;
    *eq = 0;
    const char *k = f[i], *v = eq + 1;
    if (!strcmp(k, "lz4")) cfg.lz4 = atoi(v) != 0;
    else if (!strcmp(k, "timeout")) cfg.request_timeout_ms = atoi(v);
    else if (!strcmp(k, "connect_timeout")) cfg.connect_timeout_ms = atoi(v);
    else if (!strcmp(k, "tls")) cfg.tls = atoi(v) != 0;
    else if (!strcmp(k, "ca")) cfg.tls_ca_file = v;
    else if (!strcmp(k, "check_hostname")) cfg.tls_check_hostname = atoi(v) != 0;
    else if (!strcmp(k, "cert")) cfg.tls_cert_file = v;
    else if (!strcmp(k, "key")) cfg.tls_key_file = v;
    else if (!strcmp(k, "server_name")) cfg.tls_server_name = v;
    else if (!strcmp(k, "conns")) cfg.connections_per_host = atoi(v);
    else if (!strcmp(k, "maxreq")) cfg.max_requests_per_connection = atoi(v);
    else if (!strcmp(k, "max_pending")) cfg.max_pending = atoi(v);
    else if (!strcmp(k, "keyspace")) cfg.keyspace = v;
    else if (!strcmp(k, "user")) cfg.username = v;
    else if (!strcmp(k, "pass")) cfg.password = v;
    else if (!strcmp(k, "dc")) cfg.local_dc = v;
  }
  sl_cql_error_t err;
  int rc = sl_cql_client_create_with_error(loop, &cfg, &client, err.message, sizeof err.message);
  if (rc != 0) {
    err.code = rc; /* a negative errno: the client was not created */
    print_error(&err);
    return;
  }
  connected_done = false;
  sl_cql_client_connect(client, on_connected, NULL);
  run_until(&connected_done);
}

/* ---- results */
typedef struct {
  bool done;
  int pages;
  sl_buf_t rows;
  size_t nrows;
  sl_cql_error_t err;
  bool failed;
  uint8_t *state;
  size_t state_len;
  bool more;
} collect_t;

static void rows_json(const sl_cql_result_t *res, sl_buf_t *out, size_t *count) {
  for (size_t r = 0; r < sl_cql_result_row_count(res); r++) {
    if (*count) sl_buf_put(out, ",", 1);
    sl_buf_put(out, "{", 1);
    for (size_t c = 0; c < sl_cql_result_column_count(res); c++) {
      if (c) sl_buf_put(out, ",", 1);
      const char *name = sl_cql_result_column_name(res, c);
      sl_buf_put(out, "\"", 1);
      sl_buf_put(out, name, strlen(name));
      sl_buf_put(out, "\":", 2);
      sl_cql_format_cell_json(sl_cql_result_column_type(res, c), sl_cql_result_cell(res, r, c), out);
    }
    sl_buf_put(out, "}", 1);
    (*count)++;
  }
}

static void on_page(const sl_cql_result_t *res, const sl_cql_error_t *err, void *arg) {
  collect_t *col = arg;
  col->done = true;
  if (err) {
    col->failed = true;
    col->err = *err;
    return;
  }
  col->pages++;
  rows_json(res, &col->rows, &col->nrows);
  free(col->state);
  col->state = NULL;
  col->more = sl_cql_result_has_more_pages(res);
  if (col->more) {
    sl_slice_t s = sl_cql_result_paging_state(res);
    col->state = malloc(s.len ? s.len : 1);
    memcpy(col->state, s.ptr, s.len);
    col->state_len = s.len;
  }
}

static void apply_opts(sl_cql_statement_t *st) {
  sl_cql_statement_set_page_size(st, page_size);
  if (timeout_ms > 0) sl_cql_statement_set_timeout(st, timeout_ms);
  if (consistency >= 0) sl_cql_statement_set_consistency(st, (sl_cql_consistency_t)consistency);
  sl_cql_statement_set_idempotent(st, idempotent);
}

/* Runs st (and its following pages, rebuilt by make) and prints the rows. */
static void run_collect(sl_cql_statement_t *(*make)(void *), void *mk) {
  collect_t col = {0};
  sl_buf_init(&col.rows);
  int64_t t0 = (int64_t)uv_hrtime();
  for (;;) {
    sl_cql_statement_t *st = make(mk);
    apply_opts(st);
    if (col.state) sl_cql_statement_set_paging_state(st, col.state, col.state_len);
    col.done = false;
    sl_cql_execute(client, st, on_page, &col);
    run_until(&col.done);
    if (col.failed || !col.more) break;
  }
  double ms = (double)((int64_t)uv_hrtime() - t0) / 1e6;
  if (col.failed) print_error(&col.err);
  else
    printf("{\"ok\":true,\"pages\":%d,\"count\":%zu,\"ms\":%.1f,\"rows\":[%.*s]}\n", col.pages, col.nrows, ms,
           (int)col.rows.len, col.rows.len ? (const char *)col.rows.data : "");
  free(col.state);
  sl_buf_free(&col.rows);
}

static sl_cql_statement_t *make_text(void *q) { return sl_cql_statement_new((const char *)q, 0); }

/* ---- prepare */
static bool prep_done;
static void on_prepared(sl_cql_prepared_t *p, const sl_cql_error_t *err, void *arg) {
  bool quiet = arg != NULL;
  prep_done = true;
  if (err) {
    print_error(err);
    return;
  }
  if (current) sl_cql_prepared_release(current);
  current = p;
  sl_cql_prepared_keep(p);
  if (quiet) return;
  printf("{\"ok\":true,\"params\":[");
  for (size_t i = 0; i < sl_cql_prepared_param_count(p); i++) {
    sl_buf_t tn;
    sl_buf_init(&tn);
    sl_cql_type_name(sl_cql_prepared_param_type(p, i), &tn);
    printf("%s{\"name\":\"%s\",\"type\":\"%.*s\"}", i ? "," : "", sl_cql_prepared_param_name(p, i), (int)tn.len,
           (const char *)tn.data);
    sl_buf_free(&tn);
  }
  printf("]}\n");
}

static void cmd_prepare(const char *q, bool quiet) {
  prep_done = false;
  sl_cql_prepare(client, q, on_prepared, quiet ? (void *)1 : NULL);
  run_until(&prep_done);
}

static int unhex(const char *s, uint8_t *out, size_t cap) {
  size_t n = strlen(s);
  if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2, n -= 2;
  if (n % 2 || n / 2 > cap) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (uint8_t)v;
  }
  return (int)(n / 2);
}

/* Binds "kind:value" specs; returns 0 or -1 (printed). */
static int bind_all(sl_cql_statement_t *st, char **f, int n) {
  static uint8_t buf[1 << 16];
  for (int i = 0; i < n; i++) {
    char *colon = strchr(f[i], ':');
    if (!colon) {
      printf("{\"ok\":false,\"code\":-100,\"message\":\"bad bind spec\"}\n");
      return -1;
    }
    *colon = 0;
    const char *k = f[i], *v = colon + 1;
    size_t idx = (size_t)i;
    if (!strcmp(k, "null")) sl_cql_statement_bind_null(st, idx);
    else if (!strcmp(k, "unset")) sl_cql_statement_bind_unset(st, idx);
    else if (!strcmp(k, "bool")) sl_cql_statement_bind_bool(st, idx, !strcmp(v, "true"));
    else if (!strcmp(k, "i32")) sl_cql_statement_bind_int32(st, idx, (int32_t)strtol(v, NULL, 10));
    else if (!strcmp(k, "i64")) sl_cql_statement_bind_int64(st, idx, strtoll(v, NULL, 10));
    else if (!strcmp(k, "float")) sl_cql_statement_bind_float(st, idx, strtof(v, NULL));
    else if (!strcmp(k, "double")) sl_cql_statement_bind_double(st, idx, strtod(v, NULL));
    else if (!strcmp(k, "text")) sl_cql_statement_bind_text(st, idx, v, strlen(v));
    else if (!strcmp(k, "ts")) sl_cql_statement_bind_timestamp(st, idx, strtoll(v, NULL, 10));
    else if (!strcmp(k, "uuid")) {
      uint8_t u[16];
      if (sl_cql_parse_uuid(v, strlen(v), u) != 0) {
        printf("{\"ok\":false,\"code\":-100,\"message\":\"bad uuid\"}\n");
        return -1;
      }
      sl_cql_statement_bind_uuid(st, idx, u);
    } else if (!strcmp(k, "blob") || !strcmp(k, "raw")) {
      int len = unhex(v, buf, sizeof buf);
      if (len < 0) {
        printf("{\"ok\":false,\"code\":-100,\"message\":\"bad hex\"}\n");
        return -1;
      }
      if (!strcmp(k, "blob")) sl_cql_statement_bind_blob(st, idx, buf, (size_t)len);
      else sl_cql_statement_bind_raw(st, idx, buf, (size_t)len);
    } else {
      printf("{\"ok\":false,\"code\":-100,\"message\":\"unknown bind kind %s\"}\n", k);
      return -1;
    }
  }
  return 0;
}

typedef struct {
  char **f;
  int n;
  bool bad;
} bind_args_t;

static sl_cql_statement_t *make_bound(void *a) {
  bind_args_t *ba = a;
  sl_cql_statement_t *st = sl_cql_statement_new_prepared(current);
  char *copy[64];
  for (int i = 0; i < ba->n && i < 64; i++) copy[i] = strdup(ba->f[i]);
  if (bind_all(st, copy, ba->n) != 0) ba->bad = true;
  for (int i = 0; i < ba->n && i < 64; i++) free(copy[i]);
  return st;
}

static void cmd_token(char **f, int n) {
  sl_cql_statement_t *st = sl_cql_statement_new_prepared(current);
  if (bind_all(st, f, n) == 0) {
    int64_t token;
    if (sl_cql_statement_routing_token(st, &token)) printf("{\"ok\":true,\"token\":%" PRId64 "}\n", token);
    else printf("{\"ok\":false,\"message\":\"no routing key\"}\n");
  }
  sl_cql_statement_free(st);
}

/* ---- many */
typedef struct {
  bool done;
  int outstanding, ok, failed;
  sl_cql_error_t first;
} many_t;

static void on_many(const sl_cql_result_t *res, const sl_cql_error_t *err, void *arg) {
  (void)res;
  many_t *m = arg;
  if (err) {
    if (!m->failed) m->first = *err;
    m->failed++;
  } else {
    m->ok++;
  }
  if (--m->outstanding == 0) m->done = true;
}

static void cmd_many(int count, const char *q) {
  if (current) sl_cql_prepared_release(current);
  current = NULL;
  cmd_prepare(q, true);
  if (!current) return;
  many_t m = {0};
  m.outstanding = count;
  int64_t t0 = (int64_t)uv_hrtime();
  for (int i = 0; i < count; i++) {
    sl_cql_statement_t *st = sl_cql_statement_new_prepared(current);
    char v[32];
    snprintf(v, sizeof v, "v%d", i);
    sl_cql_statement_bind_int32(st, 0, i);
    sl_cql_statement_bind_text(st, 1, v, strlen(v));
    apply_opts(st);
    sl_cql_execute(client, st, on_many, &m);
  }
  run_until(&m.done);
  double ms = (double)((int64_t)uv_hrtime() - t0) / 1e6;
  sl_cql_client_stats_t s;
  sl_cql_client_get_stats(client, &s);
  printf("{\"ok\":%s,\"succeeded\":%d,\"failed\":%d,\"ms\":%.1f,\"first_error\":\"%s\"}\n", m.failed ? "false" : "true",
         m.ok, m.failed, ms, m.failed ? m.first.message : "");
}

/* ---- batch */
static void cmd_batchrun(void) {
  sl_cql_batch_t *src = batch;
  batch = NULL;
  collect_t col = {0};
  sl_buf_init(&col.rows);
  sl_cql_execute_batch(client, src, on_page, &col);
  run_until(&col.done);
  if (col.failed) print_error(&col.err);
  else printf("{\"ok\":true}\n");
  free(col.state);
  sl_buf_free(&col.rows);
}

static sl_cql_batch_type_t batch_type = SL_CQL_BATCH_LOGGED;

static void batch_ensure(void) {
  if (!batch) batch = sl_cql_batch_new(batch_type);
}

/* ---- wait_ok */
static bool slept;
static void on_pause(uv_timer_t *t) {
  (void)t;
  slept = true;
}

static void cmd_wait_ok(double secs, const char *q) {
  int64_t deadline = (int64_t)uv_hrtime() + (int64_t)(secs * 1e9);
  int attempts = 0;
  sl_cql_error_t last = {0, ""};
  for (;;) {
    attempts++;
    collect_t col = {0};
    sl_buf_init(&col.rows);
    sl_cql_statement_t *st = sl_cql_statement_new(q, 0);
    apply_opts(st);
    sl_cql_execute(client, st, on_page, &col);
    run_until(&col.done);
    sl_buf_free(&col.rows);
    free(col.state);
    if (!col.failed) {
      printf("{\"ok\":true,\"attempts\":%d}\n", attempts);
      return;
    }
    last = col.err;
    if ((int64_t)uv_hrtime() > deadline) break;
    /* let the reconnect timers run for a while before trying again */
    static uv_timer_t pause;
    static bool pause_init;
    if (!pause_init) uv_timer_init(loop, &pause), pause_init = true;
    slept = false;
    uv_timer_start(&pause, on_pause, 50, 0);
    run_until(&slept);
  }
  print_error(&last);
}

static bool closed_done;
static void on_closed(void *arg) {
  (void)arg;
  closed_done = true;
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

int main(void) {
  loop = uv_default_loop();
  setvbuf(stdout, NULL, _IOLBF, 0);
  char line[1 << 17];
  while (fgets(line, sizeof line, stdin)) {
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    if (!len) continue;
    char *f[128];
    int n = 0;
    for (char *p = line; n < 128;) {
      f[n++] = p;
      char *tab = strchr(p, '\t');
      if (!tab) break;
      *tab = 0;
      p = tab + 1;
    }
    const char *cmd = f[0];
    if (!strcmp(cmd, "connect") && n >= 2) cmd_connect(f, n);
    else if (!client) printf("{\"ok\":false,\"message\":\"not connected\"}\n");
    else if (!strcmp(cmd, "query") && n >= 2) run_collect(make_text, f[1]);
    else if (!strcmp(cmd, "pagesize") && n >= 2) page_size = atoi(f[1]), printf("{\"ok\":true}\n");
    else if (!strcmp(cmd, "timeout") && n >= 2) timeout_ms = atoi(f[1]), printf("{\"ok\":true}\n");
    else if (!strcmp(cmd, "idempotent") && n >= 2) idempotent = atoi(f[1]) != 0, printf("{\"ok\":true}\n");
    else if (!strcmp(cmd, "consistency") && n >= 2) consistency = atoi(f[1]), printf("{\"ok\":true}\n");
    else if (!strcmp(cmd, "prepare") && n >= 2) cmd_prepare(f[1], false);
    else if (!strcmp(cmd, "exec") && current) {
      bind_args_t ba = {f + 1, n - 1, false};
      run_collect(make_bound, &ba);
    } else if (!strcmp(cmd, "token") && current) cmd_token(f + 1, n - 1);
    else if (!strcmp(cmd, "batchtype") && n >= 2) {
      batch_type = !strcmp(f[1], "unlogged") ? SL_CQL_BATCH_UNLOGGED
                   : !strcmp(f[1], "counter") ? SL_CQL_BATCH_COUNTER
                                               : SL_CQL_BATCH_LOGGED;
      printf("{\"ok\":true}\n");
    } else if (!strcmp(cmd, "batchadd") && current) {
      batch_ensure();
      sl_cql_statement_t *st = sl_cql_statement_new_prepared(current);
      if (bind_all(st, f + 1, n - 1) == 0) {
        sl_cql_batch_add(batch, st);
        printf("{\"ok\":true,\"count\":%zu}\n", sl_cql_batch_count(batch));
      } else {
        sl_cql_statement_free(st);
      }
    } else if (!strcmp(cmd, "batchadd_text") && n >= 2) {
      batch_ensure();
      sl_cql_batch_add(batch, sl_cql_statement_new(f[1], 0));
      printf("{\"ok\":true,\"count\":%zu}\n", sl_cql_batch_count(batch));
    } else if (!strcmp(cmd, "batchrun")) cmd_batchrun();
    else if (!strcmp(cmd, "many") && n >= 3) cmd_many(atoi(f[1]), f[2]);
    else if (!strcmp(cmd, "wait_ok") && n >= 3) cmd_wait_ok(atof(f[1]), f[2]);
    else if (!strcmp(cmd, "hosts")) {
      printf("{\"ok\":true,\"hosts\":[");
      for (size_t i = 0; i < sl_cql_client_host_count(client); i++)
        printf("%s{\"address\":\"%s\",\"dc\":\"%s\",\"up\":%s}", i ? "," : "", sl_cql_client_host_address(client, i),
               sl_cql_client_host_dc(client, i), sl_cql_client_host_up(client, i) ? "true" : "false");
      printf("]}\n");
    } else if (!strcmp(cmd, "stats")) {
      sl_cql_client_stats_t s;
      sl_cql_client_get_stats(client, &s);
      printf("{\"ok\":true,\"requests\":%" PRIu64 ",\"retries\":%" PRIu64 ",\"reprepares\":%" PRIu64
             ",\"timeouts\":%" PRIu64 ",\"reconnects\":%" PRIu64 ",\"schema_waits\":%" PRIu64
             ",\"routed_to_replica\":%" PRIu64 ",\"version\":%d}\n",
             s.requests, s.retries, s.reprepares, s.timeouts, s.reconnects, s.schema_waits, s.routed_to_replica,
             sl_cql_client_protocol_version(client));
    } else if (!strcmp(cmd, "close")) {
      break;
    } else {
      printf("{\"ok\":false,\"message\":\"unknown command %s\"}\n", cmd);
    }
  }
  if (batch) sl_cql_batch_free(batch);
  if (current) sl_cql_prepared_release(current);
  if (client) {
    closed_done = false;
    sl_cql_client_close(client, on_closed, NULL);
    run_until(&closed_done);
  }
  uv_walk(loop, close_walk, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(loop);
  printf("{\"closed\":true,\"loop_close\":%d}\n", rc);
  return 0;
}
