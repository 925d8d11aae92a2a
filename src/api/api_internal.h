/* Internals shared by the API's files:
 *
 *   server.c   the role: config, h2o setup on libuv, routing, responses, request life (op_t), shutdown
 *   query.c    CQL on behalf of a request: prepared-statement cache, binding, typed JSON cells, schema cache
 *   devices.c  device endpoints over the bucketed time-series tables ((device_id, day), ts)
 *   tables.c   generic table endpoints, pipeline status and dead letters
 *   live.c     Server-Sent Events; ops.c /metrics, /health, /ready, /openapi.json
 *   auth.c     bearer tokens (api.tokens, api.tokens_file); https.c the TLS context (api.tls_*_file)
 *
 * A request's life: on_req (server.c) routes to a handler, which either answers at once or creates an op_t and
 * issues CQL queries (api_query). Every CQL callback checks op->req: when the client went away, h2o frees the
 * request's pool, whose guard sets op->req to NULL; the op then just frees itself when its last query returns.
 *
 * Tables the stream processor is expected to write (the interface this API reads; absent tables mean "unknown"):
 *   sluice_meta.pipeline_processors (pipeline text, processor text, topics text, keyspace_name text,
 *       table_name text, dead_letter_topic text, state text, consumed bigint, written bigint, dead_lettered bigint,
 *       filtered bigint, inflight bigint, lag bigint, updated timestamp, PRIMARY KEY ((pipeline), processor))
 *   sluice_meta.pipeline_lag (pipeline text, topic text, partition int, committed bigint, high_watermark bigint,
 *       lag bigint, updated timestamp, PRIMARY KEY ((pipeline), topic, partition))
 *   sluice_meta.dead_letters (pipeline text, ts timestamp, topic text, partition int, offset bigint, field text,
 *       value text, reason text, payload text, PRIMARY KEY ((pipeline), ts, topic, partition, offset))
 *       WITH CLUSTERING ORDER BY (ts DESC, topic ASC, partition ASC, offset ASC) */
#ifndef SL_API_INTERNAL_H
#define SL_API_INTERNAL_H
#include <h2o.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "core/buf.h"
#include "cql/client.h"

#define API_MAX_TABLES 128
#define API_MAX_COLS 64
#define API_MAX_KEY 256 /* bytes of one bound key value */

typedef struct {
  char name[128];
  char type[128];
  sl_cql_type_t *ctype;
  int kind; /* 0 partition key, 1 clustering, 2 regular/static */
  int position;
  bool desc;
} api_col_t;

typedef struct {
  char ks[64], name[128];
  api_col_t cols[API_MAX_COLS];
  int ncols;
  int pk[8], npk;         /* column indexes in key order */
  int ck[8], nck;
  bool device_table;      /* ((device_id text, day date), ts timestamp) */
} api_table_t;

/* Endpoints group (metrics label). */
typedef enum {
  R_DEVICES, R_DEVICE_LATEST, R_DEVICE_READINGS, R_DEVICE_AGG, R_TABLES, R_TABLE_ROWS, R_PIPELINES,
  R_DEAD_LETTERS, R_LIVE, R_METRICS, R_HEALTH, R_READY, R_OPENAPI, R_OTHER, R_COUNT
} api_route_t;

typedef struct http_conn http_conn_t;
typedef struct op op_t;
typedef void (*op_free_fn)(op_t *op);
struct op {
  sl_api_t *api;
  h2o_req_t *req; /* NULL once the client went away */
  struct op_guard *guard;
  api_route_t route;
  int64_t started_us;
  int queries; /* CQL queries in flight for this op */
  bool done;   /* answered (or abandoned); free when queries reaches 0 */
  int in_cb;   /* depth of query callbacks running: the outermost frees afterwards */
  bool internal; /* no HTTP request (schema refresh, live polls) */
  op_free_fn free_fn;
};

/* Bound values of a query, by value so they can wait for a PREPARE. */
enum { B_TEXT, B_BIGINT, B_INT, B_TS, B_DATE, B_STR };
typedef struct {
  int kind;
  int64_t i;
  size_t len;
  char s[API_MAX_KEY];
} api_bind_t;

typedef void (*api_query_cb)(op_t *op, const sl_cql_result_t *res, const sl_cql_error_t *err);

enum { HIST_BUCKETS = 12 };
enum { API_TOKEN_DIGEST = 32 }; /* SHA-256 */
/* Why a request was refused by auth.c (metrics label). */
typedef enum { API_AUTH_MISSING, API_AUTH_INVALID_TOKEN, API_AUTH_INVALID_REQUEST, API_AUTH_REJECT_COUNT } api_auth_reject_t;
struct sl_api {
  uv_loop_t *loop;
  sl_api_config_t cfg;
  h2o_globalconf_t conf;
  h2o_context_t ctx;
  h2o_accept_ctx_t accept_ctx;
  bool ctx_inited;
  uv_tcp_t listener;
  bool listening;
  int port;
  SSL_CTX *ssl_ctx; /* NULL: plain HTTP (https.c) */
  uint8_t (*token_digests)[API_TOKEN_DIGEST]; /* accepted bearer tokens, hashed; none: no authentication (auth.c) */
  size_t ntokens;
  int conns; /* open HTTP connections */
  http_conn_t *conn_list; /* server.c */
  bool stopping;
  bool cql_closed;
  uv_timer_t timer; /* CQL connect retry, live polls, shutdown check */
  bool timer_closed;
  int64_t stop_deadline_ms;
  void (*stopped)(void *arg); /* sl_api_on_stopped */
  void *stopped_arg;

  sl_cql_client_t *cql;
  bool cql_ready;
  bool connecting;
  int64_t next_connect_ms;

  struct prep **preps; /* prepared statement cache (query.c) */
  size_t npreps, cap_preps;

  api_table_t *tables; /* schema cache (query.c) */
  int ntables;
  int64_t tables_at_ms;
  bool tables_loading;
  struct schema_wait *schema_waiters;

  struct dev_index *devidx; /* device -> table, newest day (devices.c) */
  struct live *live;        /* live.c */
  int live_clients;

  /* metrics */
  uint64_t requests[R_COUNT][6]; /* by status class: 1xx..5xx, index 0 unused */
  uint64_t hist[R_COUNT][HIST_BUCKETS + 1];
  double hist_sum[R_COUNT];
  uint64_t cql_queries, cql_errors, live_events, live_dropped;
  uint64_t auth_rejected[API_AUTH_REJECT_COUNT];
};

/* server.c: the request's life */
op_t *op_new(sl_api_t *api, h2o_req_t *req, api_route_t route, size_t size, op_free_fn free_fn);
void op_reply_json(op_t *op, int status, json_t *body); /* takes body */
void op_reply_buf(op_t *op, int status, sl_buf_t *body); /* JSON text; frees it; NULL: could not encode */
/* JSON text in n pieces, its final newline included, sent without copying; the buffers owned[0..nowned) (at most
 * OP_REPLY_MAX_IOV) are taken over and freed once sent. iov NULL: could not encode (a 500 answer). */
enum { OP_REPLY_MAX_IOV = 4 };
void op_reply_iov(op_t *op, int status, h2o_iovec_t *iov, size_t n, sl_buf_t *owned, size_t nowned);
void op_error(op_t *op, int status, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void op_cql_error(op_t *op, const sl_cql_error_t *err);
void op_maybe_free(op_t *op);
void api_reply_json(sl_api_t *api, h2o_req_t *req, api_route_t route, int status, json_t *body);
void api_reply_error(sl_api_t *api, h2o_req_t *req, api_route_t route, int status, const char *code,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void api_count(sl_api_t *api, api_route_t route, int status, int64_t started_us);
int64_t api_now_us(void);

/* Query-string parameters (decoded into buf). Returns true when present. */
bool api_param(h2o_req_t *req, const char *name, char *buf, size_t cap, bool *too_long);
/* Times: ISO-8601 or epoch milliseconds. */
int api_parse_time(const char *s, int64_t *ms);
size_t api_format_time(int64_t ms, char out[32]); /* returns the length */
void api_format_day(int64_t day, char out[16]);
static inline int64_t api_day_of(int64_t ms) { return ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000); }

/* auth.c: loads api.tokens and api.tokens_file (0, or a negative error, logged); frees them. */
int api_auth_load(sl_api_t *api);
void api_auth_free(sl_api_t *api);
/* true when the request may proceed (no tokens configured, or a valid one presented); otherwise it has been answered
 * (401, or 400 for two tokens at once). query_ok: `?access_token=` is accepted too (live streams). */
bool api_auth_check(sl_api_t *api, h2o_req_t *req, api_route_t route, bool query_ok);
/* https.c: the TLS context for api.tls_cert_file / api.tls_key_file (*out NULL when neither is set); 0 or a negative
 * error, logged with the setting and file. */
int api_https_create(const sl_api_config_t *cfg, SSL_CTX **out);

/* query.c */
void api_query(op_t *op, const char *cql, const api_bind_t *binds, size_t nbinds, int32_t page_size,
               const void *paging, size_t paging_len, api_query_cb cb);
void api_preps_free(sl_api_t *api);
/* Calls cb once the schema cache is fresh (or failed: err set). */
typedef void (*api_schema_cb)(op_t *op, const sl_cql_error_t *err);
void api_with_schema(op_t *op, api_schema_cb cb);
void api_schema_free(sl_api_t *api);
const api_table_t *api_table_find(const sl_api_t *api, const char *ks, const char *name);
int api_col_index(const api_table_t *t, const char *name);
json_t *api_cell_json(const sl_cql_type_t *t, sl_slice_t cell);
bool api_cell_number(const sl_cql_type_t *t, sl_slice_t cell, double *out);
bool api_type_numeric(const sl_cql_type_t *t);
json_t *api_row_json(const sl_cql_result_t *res, size_t row, const bool *keep);
/* Direct JSON writing: the same bytes json_dumps(..., JSON_COMPACT) writes for the jansson equivalents.
 * api_json_str returns false when jansson would refuse the string (invalid UTF-8). */
/* Rows of one result written as json_dumps(api_row_json(res, row, keep), JSON_COMPACT) writes them: the members'
 * keys are escaped once per result, and a cell with the same bytes as the previous row's in its column (the device
 * id, the day, values that did not change) reuses that text. keep (NULL: all) must outlive the formatter. */
enum { API_MEMO_RAW = 32, API_MEMO_OUT = 96 };
typedef struct {
  uint8_t rawlen, outlen; /* outlen 0: nothing remembered */
  uint8_t misses;         /* changes in a row: at 4 the column is no longer remembered */
  uint8_t raw[API_MEMO_RAW];
  char out[API_MEMO_OUT];
} api_cellmemo_t;
typedef struct {
  const sl_cql_result_t *res;
  const bool *keep;
  size_t n;
  bool fallback; /* repeated names or too many columns: through jansson */
  sl_buf_t keys; /* ',"name":' of each member written */
  uint32_t koff[API_MAX_COLS + 1];
  bool use[API_MAX_COLS];
  const sl_cql_type_t *type[API_MAX_COLS];
  api_cellmemo_t memo[API_MAX_COLS];
} api_rowfmt_t;
void api_rowfmt_init(api_rowfmt_t *f, const sl_cql_result_t *res, const bool *keep);
void api_rowfmt_free(api_rowfmt_t *f);
/* mark_col >= 0: span[0..1] gets the byte range of that column's value in b (left alone when not written) */
void api_rowfmt_write(sl_buf_t *b, api_rowfmt_t *f, size_t row, int mark_col, size_t span[2]);
bool api_result_names_unique(const sl_cql_result_t *res);
bool api_json_str(sl_buf_t *b, const char *s, size_t n);
void api_json_i64(sl_buf_t *b, int64_t v);
void api_json_real(sl_buf_t *b, double v);
size_t api_fmt_real(double v, char out[40]);
json_t *api_table_json(const api_table_t *t);
/* Column selection from a `fields` parameter; keep[] is sized by the result's columns at row time, so it is kept
 * as names. Returns 0 or writes an error message. */
int api_fields_parse(const api_table_t *t, const char *list, bool *keep, char *err, size_t errlen);
void api_keep_for_result(const sl_cql_result_t *res, const api_table_t *t, const bool *keep_tbl, bool *out);
int api_encode_from_string(const sl_cql_type_t *t, const char *s, size_t len, sl_buf_t *out, char *err,
                           size_t errlen);
bool api_bind_bigint(api_bind_t *b, int64_t v);
void bind_text(api_bind_t *b, const char *s);
void bind_i64(api_bind_t *b, int kind, int64_t v);

/* endpoints */
void api_devices(sl_api_t *api, h2o_req_t *req);
void api_device_latest(sl_api_t *api, h2o_req_t *req, const char *id);
void api_device_readings(sl_api_t *api, h2o_req_t *req, const char *id);
void api_device_aggregate(sl_api_t *api, h2o_req_t *req, const char *id);
void api_devidx_free(sl_api_t *api);
void api_tables(sl_api_t *api, h2o_req_t *req, const char *ks, const char *name);
void api_table_rows(sl_api_t *api, h2o_req_t *req, const char *ks, const char *name);
void api_pipelines(sl_api_t *api, h2o_req_t *req);
void api_dead_letters(sl_api_t *api, h2o_req_t *req, const char *pipeline);
void api_metrics(sl_api_t *api, h2o_req_t *req);
void api_openapi(sl_api_t *api, h2o_req_t *req);
void api_live_device(sl_api_t *api, h2o_req_t *req, const char *id);
void api_live_table(sl_api_t *api, h2o_req_t *req, const char *ks, const char *name);
void api_live_tick(sl_api_t *api);
void api_live_stop_all(sl_api_t *api);
void api_live_free(sl_api_t *api);

void api_poll_table(sl_api_t *api, const char *qname, void *arg, void (*row)(void *arg, const sl_cql_result_t *res),
                    void (*done)(void *arg, const sl_cql_error_t *err));
size_t api_dev_op_size(void);
void api_dev_op_prepare(op_t *op, bool need_latest);
/* devices.c: finds the table and newest day of a device (cached index + bounded day walk). */
typedef void (*api_locate_cb)(op_t *op, const api_table_t *t, const sl_cql_result_t *latest, int64_t day,
                              const sl_cql_error_t *err);
void api_device_locate(op_t *op, const char *id, const char *table_param, api_locate_cb cb);

#endif
