/* Insert throughput of Sluice's C CQL client: prepared INSERTs, grouped into UNLOGGED batches per partition,
 * pipelined with a bounded number of batches in flight. Prints one JSON line.
 *
 *   cql_client_bench HOST:PORT ROWS [PARTITIONS] [BATCH] [INFLIGHT] [TABLE]
 *
 * Rows: (sensor text, ts bigint, value double), PRIMARY KEY (sensor, ts); sensor = "sensor-<i % PARTITIONS>".
 * bench/cql_client.sh runs it next to the Python driver's execute_concurrent on the same rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cql/client.h"

static uv_loop_t *loop;
static sl_cql_client_t *client;
static sl_cql_prepared_t *insert;
static long rows, partitions, batch_rows, max_inflight;
static long next_row, inflight, done_rows, failed;
static bool finished, step_done;
static sl_cql_error_t first_err;

static void run_until(const bool *flag) {
  while (!*flag) uv_run(loop, UV_RUN_ONCE);
}

static void on_step(const sl_cql_result_t *r, const sl_cql_error_t *err, void *arg) {
  (void)r, (void)arg;
  if (err) {
    fprintf(stderr, "cql_client_bench: %s (code %d)\n", err->message, err->code);
    exit(1);
  }
  step_done = true;
}

static void exec_text(const char *q) {
  step_done = false;
  sl_cql_execute(client, sl_cql_statement_new(q, 0), on_step, NULL);
  run_until(&step_done);
}

static void on_prepared(sl_cql_prepared_t *p, const sl_cql_error_t *err, void *arg) {
  (void)arg;
  if (err) {
    fprintf(stderr, "cql_client_bench: prepare: %s\n", err->message);
    exit(1);
  }
  insert = p;
  sl_cql_prepared_keep(p);
  step_done = true;
}

static void send_more(void);

static void on_batch(const sl_cql_result_t *r, const sl_cql_error_t *err, void *arg) {
  (void)r;
  long n = (long)(intptr_t)arg;
  inflight--;
  if (err) {
    if (!failed) first_err = *err;
    failed += n;
  } else {
    done_rows += n;
  }
  if (done_rows + failed >= rows) finished = true;
  else send_more();
}

/* Rows are generated partition by partition so each batch holds one partition's rows. */
static void send_more(void) {
  while (inflight < max_inflight && next_row < rows) {
    long part = (next_row / batch_rows) % partitions;
    long n = rows - next_row < batch_rows ? rows - next_row : batch_rows;
    char sensor[32];
    int slen = snprintf(sensor, sizeof sensor, "sensor-%ld", part);
    sl_cql_batch_t *b = sl_cql_batch_new(SL_CQL_BATCH_UNLOGGED);
    for (long i = 0; i < n; i++) {
      sl_cql_statement_t *st = sl_cql_statement_new_prepared(insert);
      sl_cql_statement_bind_text(st, 0, sensor, (size_t)slen);
      sl_cql_statement_bind_int64(st, 1, next_row + i);
      sl_cql_statement_bind_double(st, 2, (double)(next_row + i) * 0.5);
      sl_cql_batch_add(b, st);
    }
    next_row += n;
    inflight++;
    sl_cql_execute_batch(client, b, on_batch, (void *)(intptr_t)n);
  }
}

static void on_connected(sl_cql_client_t *c, const sl_cql_error_t *err, void *arg) {
  (void)c, (void)arg;
  if (err) {
    fprintf(stderr, "cql_client_bench: connect: %s\n", err->message);
    exit(1);
  }
  step_done = true;
}

static void on_closed(void *arg) { *(bool *)arg = true; }

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: cql_client_bench HOST:PORT ROWS [PARTITIONS] [BATCH] [INFLIGHT] [TABLE]\n");
    return 2;
  }
  rows = atol(argv[2]);
  partitions = argc > 3 ? atol(argv[3]) : 100;
  batch_rows = argc > 4 ? atol(argv[4]) : 50;
  max_inflight = argc > 5 ? atol(argv[5]) : 64;
  const char *table = argc > 6 ? argv[6] : "bench.readings_c";
  loop = uv_default_loop();
  sl_cql_client_config_t cfg;
  sl_cql_client_config_defaults(&cfg);
  cfg.contact_points = argv[1];
  cfg.connections_per_host = 2;
  cfg.request_timeout_ms = 60000;
  if (sl_cql_client_create(loop, &cfg, &client) != 0) return 2;
  step_done = false;
  sl_cql_client_connect(client, on_connected, NULL);
  run_until(&step_done);
  exec_text("CREATE KEYSPACE IF NOT EXISTS bench WITH replication = {'class': 'SimpleStrategy', "
            "'replication_factor': 1}");
  char q[512];
  snprintf(q, sizeof q,
           "CREATE TABLE IF NOT EXISTS %s (sensor text, ts bigint, value double, PRIMARY KEY (sensor, ts))", table);
  exec_text(q);
  snprintf(q, sizeof q, "INSERT INTO %s (sensor, ts, value) VALUES (?, ?, ?)", table);
  step_done = false;
  sl_cql_prepare(client, q, on_prepared, NULL);
  run_until(&step_done);
  uint64_t t0 = uv_hrtime();
  send_more();
  run_until(&finished);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  printf("{\"client\":\"sluice-c\",\"rows\":%ld,\"failed\":%ld,\"seconds\":%.3f,\"rows_per_sec\":%.0f,"
         "\"batch\":%ld,\"inflight\":%ld}\n",
         done_rows, failed, secs, (double)done_rows / secs, batch_rows, max_inflight);
  if (failed) fprintf(stderr, "cql_client_bench: first error: %s\n", first_err.message);
  sl_cql_prepared_release(insert);
  bool closed = false;
  sl_cql_client_close(client, on_closed, &closed);
  run_until(&closed);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return failed ? 1 : 0;
}
