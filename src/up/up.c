/* `sluice up` (see up.h): broker + store + stream processor + demo simulator + REST API on one loop.
 *
 *   sl_up_start: broker start, store start, API start (all three listen before returning; the API reads the
 *                embedded store over CQL) -> ready file -> processor start (example pipelines, pointed at the
 *                broker and the store) -> banner -> simulator start
 *   sl_up_stop:  simulator and processor stop (they still need the broker and the store to drain and commit)
 *                -> on_part_stopped x2 -> API stop -> on_api_stopped -> broker stop, store stop -> the loop ends
 *                when every handle is closed
 *
 * Data lives in one directory (<data_dir>/broker, <data_dir>/store); committed offsets live in the broker, so
 * the next start resumes where this one stopped. */
#include "up/up.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "core/addr.h"
#include "core/clock.h"
#include "core/log.h"
#include "sources/simulate.h"
#include "up/examples.h"

#define F(key, type, field, def, min, max, help) {key, type, offsetof(sl_up_config_t, field), def, min, max, help}
const sl_config_field_t sl_up_config_fields[] = {
    F("up.data_dir", SL_CONFIG_STRING, data_dir, "sluice-data", 0, 0, "where all data lives"),
    F("up.http_listen", SL_CONFIG_STRING, http_listen, "127.0.0.1:8080", 0, 0,
      "REST API and dashboard listener (port 0: any)"),
    F("up.ready_file", SL_CONFIG_STRING, ready_file, "", 0, 0, "written with \"service host:port\" lines"),
    F("up.pipelines", SL_CONFIG_STRING, pipelines, "vehicles,wearables,users,jobs", 0, 0,
      "compiled-in example pipelines to run"),
    F("up.demo_profiles", SL_CONFIG_STRING, demo_profiles, "vehicles,wearables", 0, 0,
      "demo fleet profiles (empty: no demo fleet)"),
    F("up.demo_rate", SL_CONFIG_STRING, demo_rate, "200/s", 0, 0, "demo fleet readings per second"),
    F("up.demo_devices", SL_CONFIG_INT, demo_devices, "25", 1, 1000000, "demo devices per profile"),
    F("up.status_ms", SL_CONFIG_INT, status_ms, "1000", 0, INT64_MAX, "live status line interval (0: none)"),
    F("up.api_tokens", SL_CONFIG_STRING, api_tokens, "", 0, 0, "bearer tokens the REST API requires (api.tokens)"),
    F("up.api_tokens_file", SL_CONFIG_STRING, api_tokens_file, "", 0, 0, "file of such tokens (api.tokens_file)"),
    F("up.api_tls_cert_file", SL_CONFIG_STRING, api_tls_cert_file, "", 0, 0,
      "PEM certificate: the REST API and dashboard over HTTPS (api.tls_cert_file)"),
    F("up.api_tls_key_file", SL_CONFIG_STRING, api_tls_key_file, "", 0, 0, "its private key (api.tls_key_file)"),
};
const size_t sl_up_config_field_count = sizeof sl_up_config_fields / sizeof sl_up_config_fields[0];

/* The API's settings: defaults plus listen and cql; heap-held because the API keeps pointers to them until it has
 * freed itself (on_api_stopped / free_api_box). */
typedef struct {
  sl_api_config_t cfg;
  sl_config_section_t section;
} api_box_t;

struct sl_up {
  uv_loop_t *loop;
  const sl_up_config_t *cfg;
  sl_broker_t *broker;
  sl_store_t *store;
  sl_stream_t *stream;
  sl_api_t *api;
  api_box_t *api_box;
  sl_simulate_t *sim;
  sl_simulate_config_t sim_cfg;
  sl_config_section_t sim_section;
  uv_timer_t status;
  int running_parts; /* simulator + processor still stopping */
  bool tty;
  int64_t last_ms;
  uint64_t last_produced, last_consumed, last_written;
};

static void replace(char **slot, const char *value) {
  free(*slot);
  *slot = strdup(value);
  if (!*slot) abort();
}

static int write_ready(const char *path, int kport, int cport, const char *http) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return -errno;
  fprintf(f, "kafka 127.0.0.1:%d\ncql 127.0.0.1:%d\nhttp %s\n", kport, cport, http);
  if (fclose(f) != 0 || rename(tmp, path) != 0) return -errno;
  return 0;
}

static void free_api_box(api_box_t *b) {
  if (!b) return;
  sl_config_free(&b->section, 1);
  free(b);
}

static void free_api_box_cb(void *arg) { free_api_box(arg); }

static void on_status(uv_timer_t *t) {
  sl_up_t *u = t->data;
  sl_simulate_stats_t sim = {0, 0, 0};
  sl_stream_stats_t st;
  if (u->sim) sl_simulate_get_stats(u->sim, &sim);
  if (!u->stream) return;
  sl_stream_get_stats(u->stream, &st);
  int64_t now = sl_monotonic_ms();
  double secs = (double)(now - u->last_ms) / 1000.0;
  if (secs <= 0) secs = 1;
  char line[300];
  snprintf(line, sizeof line,
           "produced %6.0f/s  consumed %6.0f/s  written %6.0f/s  lag %lld  dead letters %llu  (total written %llu)",
           (double)(sim.delivered - u->last_produced) / secs, (double)(st.consumed - u->last_consumed) / secs,
           (double)(st.written - u->last_written) / secs, (long long)st.lag, (unsigned long long)st.dead_lettered,
           (unsigned long long)st.written);
  if (u->tty)
    fprintf(stdout, "\r%-120s", line);
  else
    fprintf(stdout, "%s\n", line);
  fflush(stdout);
  u->last_ms = now;
  u->last_produced = sim.delivered;
  u->last_consumed = st.consumed;
  u->last_written = st.written;
}

int sl_up_start(uv_loop_t *loop, const sl_up_config_t *cfg, sl_broker_config_t *broker, sl_store_config_t *store,
                sl_stream_config_t *stream, sl_up_t **out) {
  int64_t t0 = sl_monotonic_ms();
  char path[4200];
  /* one data directory; the roles' own settings win when set explicitly */
  if (mkdir(cfg->data_dir, 0755) != 0 && errno != EEXIST) {
    SL_ERROR("up", "cannot create %s: %s", cfg->data_dir, strerror(errno));
    return -errno;
  }
  if (!strcmp(broker->data_dir, "sluice-data/broker")) {
    snprintf(path, sizeof path, "%s/broker", cfg->data_dir);
    replace(&broker->data_dir, path);
  }
  if (!strcmp(store->data_dir, "sluice-data/store")) {
    snprintf(path, sizeof path, "%s/store", cfg->data_dir);
    replace(&store->data_dir, path);
  }
  /* one process, no other group members to wait for */
  if (broker->group_initial_rebalance_delay_ms == 3000) broker->group_initial_rebalance_delay_ms = 0;
  sl_up_t *u = calloc(1, sizeof *u);
  if (!u) return -ENOMEM;
  u->loop = loop;
  u->cfg = cfg;
  u->tty = isatty(STDOUT_FILENO);
  int rc = sl_broker_start(loop, broker, &u->broker);
  if (rc) goto fail;
  rc = sl_store_start(loop, store, &u->store);
  if (rc) {
    sl_broker_stop(u->broker);
    goto fail;
  }
  int kport = sl_broker_port(u->broker), cport = sl_store_port(u->store);

  /* the REST API and the dashboard, reading the embedded store */
  char http[300], host[256];
  int hport = 0;
  if (sl_addr_split(cfg->http_listen, host, sizeof host, &hport) != 0) {
    SL_ERROR("up", "bad --http-listen '%s' (HOST:PORT)", cfg->http_listen);
    rc = -EINVAL;
    goto fail_store;
  }
  u->api_box = calloc(1, sizeof *u->api_box);
  if (!u->api_box) abort();
  u->api_box->section = (sl_config_section_t){sl_api_config_fields, sl_api_config_field_count, &u->api_box->cfg};
  sl_config_defaults(&u->api_box->section, 1);
  char set[600], err[256];
  snprintf(set, sizeof set, "api.listen=%s", cfg->http_listen);
  sl_config_set(&u->api_box->section, 1, set, err, sizeof err);
  snprintf(set, sizeof set, "api.cql=127.0.0.1:%d", cport);
  sl_config_set(&u->api_box->section, 1, set, err, sizeof err);
  const struct {
    const char *key, *value;
  } passed[] = {{"api.tokens", cfg->api_tokens},
                {"api.tokens_file", cfg->api_tokens_file},
                {"api.tls_cert_file", cfg->api_tls_cert_file},
                {"api.tls_key_file", cfg->api_tls_key_file}};
  for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++) {
    if (!passed[i].value || !passed[i].value[0]) continue;
    snprintf(set, sizeof set, "%s=%s", passed[i].key, passed[i].value);
    sl_config_set(&u->api_box->section, 1, set, err, sizeof err);
  }
  rc = sl_api_start(loop, &u->api_box->cfg, &u->api);
  if (rc) {
    free_api_box(u->api_box);
    u->api_box = NULL;
    goto fail_store;
  }
  hport = sl_api_port(u->api);
  /* a wildcard listener is reached on the loopback address */
  snprintf(http, sizeof http, "%s:%d",
           !host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") ? "127.0.0.1" : host, hport);

  if (cfg->ready_file[0] && write_ready(cfg->ready_file, kport, cport, http) != 0)
    SL_WARN("up", "cannot write ready file %s", cfg->ready_file);

  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", kport);
  replace(&stream->brokers, addr);
  snprintf(addr, sizeof addr, "127.0.0.1:%d", cport);
  replace(&stream->cql, addr);
  if (stream->status_interval_ms == 10000) stream->status_interval_ms = 0; /* up prints its own status line */

  const char *texts[16];
  size_t n = 0;
  char names[512];
  snprintf(names, sizeof names, "%s", cfg->pipelines);
  for (char *save = NULL, *name = strtok_r(names, ", ", &save); name && n < 16; name = strtok_r(NULL, ", ", &save)) {
    const char *t = sl_example_text(name);
    if (!t) {
      SL_ERROR("up", "no compiled-in pipeline '%s'", name);
      rc = -EINVAL;
      goto fail_roles;
    }
    texts[n++] = t;
  }
  rc = sl_stream_start_texts(loop, stream, texts, n, &u->stream);
  if (rc) goto fail_roles;

  fprintf(stdout, "sluice up: data in %s (started in %lld ms)\n", cfg->data_dir,
          (long long)(sl_monotonic_ms() - t0));
  fprintf(stdout, "  kafka  127.0.0.1:%d   e.g. kcat -b 127.0.0.1:%d -C -t vehicles\n", kport, kport);
  fprintf(stdout, "  cql    127.0.0.1:%d   e.g. cqlsh 127.0.0.1 %d -e 'SELECT * FROM iot.vehicle_readings LIMIT 5'\n",
          cport, cport);
  const char *scheme = cfg->api_tls_cert_file && cfg->api_tls_cert_file[0] ? "https" : "http";
  bool tokens = (cfg->api_tokens && cfg->api_tokens[0]) || (cfg->api_tokens_file && cfg->api_tokens_file[0]);
  fprintf(stdout, "  http   %s   e.g. curl%s%s %s://%s/api/v1/devices\n", http,
          tokens ? " -H 'Authorization: Bearer $TOKEN'" : "", strcmp(scheme, "https") ? "" : " --cacert CERT", scheme,
          http);
  char index[4200];
  struct stat sb;
  snprintf(index, sizeof index, "%s/index.html", u->api_box->cfg.web_dir);
  if (u->api_box->cfg.web_dir[0] && stat(index, &sb) == 0)
    fprintf(stdout, "  dashboard  %s://%s/\n", scheme, http);
  else
    fprintf(stdout, "  dashboard  not built (npm ci && npm run build in web/); the API is at %s://%s/api/v1\n",
            scheme, http);
  fprintf(stdout, "  pipelines: %s (topics vehicles, wearables, users_created, job_offers -> keyspaces iot, "
          "spark_streams, jobs)\n", cfg->pipelines);

  if (cfg->demo_profiles[0]) {
    u->sim_section = (sl_config_section_t){sl_simulate_config_fields, sl_simulate_config_field_count, &u->sim_cfg};
    sl_config_defaults(&u->sim_section, 1);
    snprintf(set, sizeof set, "simulate.brokers=%s", stream->brokers);
    sl_config_set(&u->sim_section, 1, set, err, sizeof err);
    snprintf(set, sizeof set, "simulate.profile=%s", cfg->demo_profiles);
    sl_config_set(&u->sim_section, 1, set, err, sizeof err);
    snprintf(set, sizeof set, "simulate.rate=%s", cfg->demo_rate);
    sl_config_set(&u->sim_section, 1, set, err, sizeof err);
    snprintf(set, sizeof set, "simulate.devices=%lld", (long long)cfg->demo_devices);
    sl_config_set(&u->sim_section, 1, set, err, sizeof err);
    sl_config_set(&u->sim_section, 1, "simulate.progress_ms=0", err, sizeof err);
    /* every start is a new run of the same fleet: a fresh seed, so readings never repeat keys */
    snprintf(set, sizeof set, "simulate.seed=%lld", (long long)sl_wall_ms());
    sl_config_set(&u->sim_section, 1, set, err, sizeof err);
    if (sl_simulate_start(loop, &u->sim_cfg, NULL, NULL, &u->sim) != 0) {
      SL_WARN("up", "demo fleet not started");
      u->sim = NULL;
    } else {
      fprintf(stdout, "  demo fleet: %s, %lld devices each, %s\n", cfg->demo_profiles, (long long)cfg->demo_devices,
              cfg->demo_rate);
    }
  }
  fprintf(stdout, "Ctrl-C stops; the next start resumes where this one stopped.\n");
  fflush(stdout);
  uv_timer_init(loop, &u->status);
  u->status.data = u;
  u->last_ms = sl_monotonic_ms();
  if (cfg->status_ms > 0) uv_timer_start(&u->status, on_status, (uint64_t)cfg->status_ms, (uint64_t)cfg->status_ms);
  *out = u;
  return 0;

fail_roles:
  /* the API frees itself once closed; its settings go with it */
  sl_api_on_stopped(u->api, free_api_box_cb, u->api_box);
  sl_api_stop(u->api);
fail_store:
  sl_store_stop(u->store);
  sl_broker_stop(u->broker);
fail:
  free(u);
  return rc ? rc : -EINVAL;
}

static void on_status_closed(uv_handle_t *h) {
  sl_up_t *u = h->data;
  if (u->sim_section.target) sl_config_free(&u->sim_section, 1);
  free(u);
}

static void on_api_stopped(void *arg) {
  sl_up_t *u = arg;
  u->api = NULL;
  free_api_box(u->api_box);
  u->api_box = NULL;
  sl_store_stop(u->store);
  sl_broker_stop(u->broker);
  uv_close((uv_handle_t *)&u->status, on_status_closed);
}

static void on_part_stopped(void *arg) {
  sl_up_t *u = arg;
  if (--u->running_parts > 0) return;
  u->sim = NULL;
  u->stream = NULL;
  /* the API next (it reads the store), then the broker and the store */
  sl_api_on_stopped(u->api, on_api_stopped, u);
  sl_api_stop(u->api);
}

void sl_up_stop(sl_up_t *u) {
  if (!u) return;
  uv_timer_stop(&u->status);
  if (u->tty) fprintf(stdout, "\n");
  fflush(stdout);
  u->running_parts = 1; /* held while the parts are asked to stop */
  if (u->sim) {
    u->running_parts++;
    sl_simulate_on_stopped(u->sim, on_part_stopped, u);
    sl_simulate_stop(u->sim);
  }
  if (u->stream) {
    u->running_parts++;
    sl_stream_on_stopped(u->stream, on_part_stopped, u);
    sl_stream_stop(u->stream);
  }
  on_part_stopped(u);
}
