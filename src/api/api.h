/* The REST API role: `sluice api` serves the pipelines' data over HTTP (JSON), streams new readings with
 * Server-Sent Events, exposes Prometheus metrics and serves the dashboard. It is stateless: every answer comes
 * from the store through Sluice's CQL client, so N instances can run behind a load balancer (deploy/nginx.conf).
 * HTTP is h2o's (libh2o, on the project's libuv loop); JSON is jansson's.
 *
 * Pipeline counters and dead letters are read from tables the stream processor writes (see api_internal.h,
 * "sluice_meta"). `sluice up` runs this role on its loop with sl_api_start / sl_api_stop. */
#ifndef SL_API_API_H
#define SL_API_API_H
#include <stdint.h>
#include <uv.h>

#include "core/config.h"
#include "cql/client_settings.h"

typedef struct {
  char *listen;     /* host:port; port 0 picks a free port */
  char *ready_file; /* written with "host:port\n" once listening */
  char *cql;        /* CQL contact points */
  char *cql_username, *cql_password;
  sl_cql_tls_settings_t cql_tls; /* TLS towards the CQL nodes */
  char *web_dir;    /* the built dashboard (web/dist); "" serves none */
  char *tokens;      /* accepted bearer tokens, comma-separated; with tokens_file "" and "": no authentication */
  char *tokens_file; /* one accepted token per line */
  char *tls_cert_file, *tls_key_file; /* PEM; both set: the listener speaks HTTPS only */
  int64_t default_limit;     /* rows per page when the request names no limit */
  int64_t max_limit;         /* largest page a request may ask for */
  int64_t default_range_ms;  /* time range when the request names no `from` */
  int64_t max_range_ms;      /* largest from..to span of a readings or rows request */
  int64_t max_agg_range_ms;  /* largest from..to span of an aggregate request */
  int64_t max_buckets;       /* largest number of intervals in an aggregate answer */
  int64_t max_scan_rows;     /* rows an aggregate may read before it is refused */
  int64_t lookback_days;     /* day partitions searched back from today for a device's latest reading */
  int64_t device_cache_ms;   /* how long the device index (partitions per device) is reused */
  int64_t live_poll_ms;      /* how often live streams look for new rows */
  int64_t live_max_clients;  /* concurrent live streams */
  int64_t live_max_pending;  /* events held for one slow live client before older ones are dropped */
} sl_api_config_t;

extern const sl_config_field_t sl_api_config_fields[];
extern const size_t sl_api_config_field_count;

typedef struct sl_api sl_api_t;

/* Starts listening and connecting to the store (the API answers 503 until the store is reachable; /ready says so).
 * Returns 0 or a negative error; logs why. */
int sl_api_start(uv_loop_t *loop, const sl_api_config_t *cfg, sl_api_t **out);
/* Ends live streams, stops accepting, lets in-flight requests finish, closes the CQL client; the api frees itself
 * once every handle is closed (run the loop). */
void sl_api_stop(sl_api_t *api);
int sl_api_port(const sl_api_t *api);
/* stopped(arg) runs once a stopped api has closed everything and freed itself (`sluice up` stops the store after). */
void sl_api_on_stopped(sl_api_t *api, void (*stopped)(void *arg), void *arg);

#endif
