/* Operations: /metrics (Prometheus text format) and the OpenAPI document (openapi.json, describing every
 * endpoint, its parameters, limits and errors). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/buf.h"

static const char *const route_names[R_COUNT] = {
    "devices", "device_latest", "device_readings", "device_aggregate", "tables", "table_rows", "pipelines",
    "dead_letters", "live", "metrics", "health", "ready", "openapi", "other"};
static const char *const le_names[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                       "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5"};

static void putf(sl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(sl_buf_t *b, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n > 0) sl_buf_put(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void api_metrics(sl_api_t *api, h2o_req_t *req) {
  api_count(api, R_METRICS, 200, 0);
  sl_buf_t b;
  sl_buf_init(&b);
  putf(&b, "# HELP sluice_api_requests_total HTTP requests answered, by endpoint and status class.\n"
           "# TYPE sluice_api_requests_total counter\n");
  for (int r = 0; r < R_COUNT; r++)
    for (int c = 1; c <= 5; c++)
      if (api->requests[r][c])
        putf(&b, "sluice_api_requests_total{endpoint=\"%s\",code=\"%dxx\"} %llu\n", route_names[r], c,
             (unsigned long long)api->requests[r][c]);
  putf(&b, "# HELP sluice_api_request_duration_seconds Time to answer a request that reads the store.\n"
           "# TYPE sluice_api_request_duration_seconds histogram\n");
  for (int r = 0; r < R_COUNT; r++) {
    uint64_t total = 0;
    for (int i = 0; i <= HIST_BUCKETS; i++) total += api->hist[r][i];
    if (!total) continue;
    uint64_t cum = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
      cum += api->hist[r][i];
      putf(&b, "sluice_api_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%s\"} %llu\n", route_names[r],
           le_names[i], (unsigned long long)cum);
    }
    putf(&b, "sluice_api_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n", route_names[r],
         (unsigned long long)total);
    putf(&b, "sluice_api_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n", route_names[r], api->hist_sum[r]);
    putf(&b, "sluice_api_request_duration_seconds_count{endpoint=\"%s\"} %llu\n", route_names[r],
         (unsigned long long)total);
  }
  putf(&b, "# HELP sluice_api_cql_queries_total CQL queries sent to the store.\n"
           "# TYPE sluice_api_cql_queries_total counter\nsluice_api_cql_queries_total %llu\n",
       (unsigned long long)api->cql_queries);
  putf(&b, "# HELP sluice_api_cql_errors_total CQL queries that failed.\n"
           "# TYPE sluice_api_cql_errors_total counter\nsluice_api_cql_errors_total %llu\n",
       (unsigned long long)api->cql_errors);
  putf(&b, "# HELP sluice_api_store_up 1 when connected to the store.\n"
           "# TYPE sluice_api_store_up gauge\nsluice_api_store_up %d\n", api->cql_ready ? 1 : 0);
  putf(&b, "# HELP sluice_api_connections Open HTTP connections.\n"
           "# TYPE sluice_api_connections gauge\nsluice_api_connections %d\n", api->conns);
  putf(&b, "# HELP sluice_api_live_clients Open live streams.\n"
           "# TYPE sluice_api_live_clients gauge\nsluice_api_live_clients %d\n", api->live_clients);
  putf(&b, "# HELP sluice_api_live_events_total Events written to live streams.\n"
           "# TYPE sluice_api_live_events_total counter\nsluice_api_live_events_total %llu\n",
       (unsigned long long)api->live_events);
  putf(&b, "# HELP sluice_api_live_dropped_total Events coalesced away for slow live clients.\n"
           "# TYPE sluice_api_live_dropped_total counter\nsluice_api_live_dropped_total %llu\n",
       (unsigned long long)api->live_dropped);
  if (api->ntokens) {
    /* requests_total counts them as 4xx of their endpoint; this says why, to tell probing from a stale token */
    static const char *const reasons[API_AUTH_REJECT_COUNT] = {"missing", "invalid_token", "invalid_request"};
    putf(&b, "# HELP sluice_api_auth_rejected_total Requests refused for want of a valid bearer token, by reason.\n"
             "# TYPE sluice_api_auth_rejected_total counter\n");
    for (int i = 0; i < API_AUTH_REJECT_COUNT; i++)
      putf(&b, "sluice_api_auth_rejected_total{reason=\"%s\"} %llu\n", reasons[i],
           (unsigned long long)api->auth_rejected[i]);
  }
  req->res.status = 200;
  req->res.reason = "OK";
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                 H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
  h2o_send_inline(req, (const char *)b.data, b.len);
  sl_buf_free(&b);
}

void api_openapi(sl_api_t *api, h2o_req_t *req) {
  extern const char sl_api_openapi_json[];
  api_count(api, R_OPENAPI, 200, 0);
  req->res.status = 200;
  req->res.reason = "OK";
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
  h2o_send_inline(req, sl_api_openapi_json, strlen(sl_api_openapi_json));
}
