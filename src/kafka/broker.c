/* The broker role: configuration, start-up (recovery, listener, ready file), timers, and shutdown. */
#include "kafka/broker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/log.h"
#include "kafka/broker_internal.h"
#include "kafka/connection.h"
#include "kafka/errors.h"
#include "kafka/group.h"
#include "kafka/producers.h"

#define F(key, type, field, def, min, max, help) \
  {key, type, offsetof(sl_broker_config_t, field), def, min, max, help}
const sl_config_field_t sl_broker_config_fields[] = {
    F("broker.listen", SL_CONFIG_STRING, listen, "127.0.0.1:9092", 0, 0, "host:port to listen on (port 0: any free)"),
    F("broker.advertised", SL_CONFIG_STRING, advertised, "", 0, 0,
      "host:port clients are told to connect to (empty: the listen address)"),
    F("broker.data_dir", SL_CONFIG_STRING, data_dir, "sluice-data/broker", 0, 0, "directory for topics and groups"),
    F("broker.ready_file", SL_CONFIG_STRING, ready_file, NULL, 0, 0, "file written with host:port once listening"),
    F("broker.auto_create_topics", SL_CONFIG_BOOL, auto_create_topics, "true", 0, 0,
      "create unknown topics on Metadata/Produce"),
    F("broker.num_partitions", SL_CONFIG_INT, num_partitions, "1", 1, 10000, "partitions of auto-created topics"),
    F("broker.max_request_bytes", SL_CONFIG_INT, max_request_bytes, "104857600", 1024, INT32_MAX,
      "largest request accepted (socket.request.max.bytes)"),
    F("broker.message_max_bytes", SL_CONFIG_INT, message_max_bytes, "1048588", 1024, INT32_MAX,
      "largest record batch accepted (message.max.bytes)"),
    F("broker.flush_on_ack", SL_CONFIG_BOOL, flush_on_ack, "true", 0, 0,
      "acks=all waits for fsync (group commit); false answers after the write"),
    F("broker.flush_interval_ms", SL_CONFIG_INT, flush_interval_ms, "1000", 10, INT32_MAX,
      "background fsync period for data written with acks=0/1"),
    F("broker.segment_bytes", SL_CONFIG_INT, segment_bytes, "1073741824", 4096, INT64_MAX, "segment roll size"),
    F("broker.segment_ms", SL_CONFIG_INT, segment_ms, "604800000", 1000, INT64_MAX, "segment roll age"),
    F("broker.retention_ms", SL_CONFIG_INT, retention_ms, "604800000", -1, INT64_MAX,
      "delete segments older than this (-1: never)"),
    F("broker.retention_bytes", SL_CONFIG_INT, retention_bytes, "-1", -1, INT64_MAX,
      "keep at most this many bytes per partition (-1: no limit)"),
    F("broker.retention_check_interval_ms", SL_CONFIG_INT, retention_check_interval_ms, "300000", 100, INT32_MAX,
      "how often retention runs"),
    F("broker.index_interval_bytes", SL_CONFIG_INT, index_interval_bytes, "4096", 64, INT32_MAX,
      "bytes between offset index entries"),
    F("broker.group_initial_rebalance_delay_ms", SL_CONFIG_INT, group_initial_rebalance_delay_ms, "3000", 0,
      INT32_MAX, "wait for more members before the first rebalance of a new group"),
    F("broker.group_min_session_timeout_ms", SL_CONFIG_INT, group_min_session_timeout_ms, "6000", 1, INT32_MAX,
      "smallest session timeout a consumer may ask for"),
    F("broker.group_max_session_timeout_ms", SL_CONFIG_INT, group_max_session_timeout_ms, "1800000", 1, INT32_MAX,
      "largest session timeout a consumer may ask for"),
    F("broker.offsets_retention_ms", SL_CONFIG_INT, offsets_retention_ms, "604800000", 0, INT64_MAX,
      "committed offsets of a group without members are deleted this long after its last commit (0: kept)"),
    F("broker.offsets_retention_check_interval_ms", SL_CONFIG_INT, offsets_retention_check_interval_ms, "600000", 10,
      INT32_MAX, "how often expired offsets are looked for"),
    F("broker.sasl_mechanisms", SL_CONFIG_STRING, sasl_mechanisms, "", 0, 0,
      "SASL mechanisms clients must authenticate with: PLAIN, SCRAM-SHA-256 (empty: none)"),
    F("broker.sasl_users", SL_CONFIG_STRING, sasl_users, "", 0, 0, "SASL users as user:password,user:password"),
    F("broker.tls_cert_file", SL_CONFIG_STRING, tls_cert_file, "", 0, 0,
      "PEM certificate chain: with tls_key_file, clients connect with TLS (SSL / SASL_SSL)"),
    F("broker.tls_key_file", SL_CONFIG_STRING, tls_key_file, "", 0, 0, "PEM private key of tls_cert_file"),
};
#undef F
const size_t sl_broker_config_field_count = sizeof sl_broker_config_fields / sizeof sl_broker_config_fields[0];

/* The cluster id is made once and kept in the data directory, so clients see a stable cluster. */
static void load_cluster_id(sl_broker_t *b) {
  char path[4096];
  snprintf(path, sizeof path, "%s/cluster_id", b->cfg->data_dir);
  FILE *f = fopen(path, "r");
  if (f) {
    if (fgets(b->cluster_id, sizeof b->cluster_id, f)) b->cluster_id[strcspn(b->cluster_id, "\n")] = 0;
    fclose(f);
    if (b->cluster_id[0]) return;
  }
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  uint8_t rnd[22];
  int fd = open("/dev/urandom", O_RDONLY);
  if (fd < 0 || read(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd) {
    for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (uint8_t)(sl_wall_ms() >> (i % 8));
  }
  if (fd >= 0) close(fd);
  for (size_t i = 0; i < sizeof rnd; i++) b->cluster_id[i] = alphabet[rnd[i] & 63];
  b->cluster_id[sizeof rnd] = 0;
  f = fopen(path, "w");
  if (f) {
    fprintf(f, "%s\n", b->cluster_id);
    fclose(f);
  }
}

sl_topic_t *sl_broker_topic(sl_broker_t *b, sl_slice_t name, bool allow_create, int16_t *error) {
  *error = KAFKA_NONE;
  if (!name.ptr || !sl_topic_name_valid((const char *)name.ptr, name.len)) {
    *error = KAFKA_INVALID_TOPIC_EXCEPTION;
    return NULL;
  }
  sl_topic_t *t = sl_topics_find(b->topics, (const char *)name.ptr, name.len);
  if (t) return t;
  if (!allow_create || !b->cfg->auto_create_topics) {
    *error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    return NULL;
  }
  int rc = sl_topics_create(b->topics, (const char *)name.ptr, name.len, (int32_t)b->cfg->num_partitions, &t);
  if (rc != 0) {
    SL_ERROR("broker", "auto-creating topic '%.*s' failed: %s", (int)name.len, (const char *)name.ptr,
             strerror(-rc));
    *error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    return NULL;
  }
  SL_INFO("broker", "auto-created topic '%.*s' with %d partition(s)", (int)name.len, (const char *)name.ptr,
          (int)b->cfg->num_partitions);
  return t;
}

static void on_retention_timer(uv_timer_t *t) {
  sl_broker_t *b = t->data;
  sl_topics_enforce_retention(b->topics, sl_wall_ms());
}

static void ignore_flush_result(void *arg, int status) {
  (void)arg;
  if (status != 0 && status != -ECANCELED) SL_ERROR("broker", "background fsync failed: %s", strerror(-status));
}

/* Data written with acks=0/1 is synced on a timer, through the same flusher (never on the loop thread). */
static void on_flush_timer(uv_timer_t *t) {
  sl_broker_t *b = t->data;
  size_t n = sl_topics_count(b->topics);
  for (size_t i = 0; i < n; i++) {
    sl_topic_t *topic = sl_topics_at(b->topics, i);
    for (int32_t p = 0; p < topic->partition_count; p++) {
      if (sl_partition_claim_background_sync(topic->partitions[p]))
        sl_flusher_request(b->flusher, topic->partitions[p], ignore_flush_result, NULL);
    }
  }
}

int sl_broker_start(uv_loop_t *loop, const sl_broker_config_t *cfg, sl_broker_t **out) {
  int rc;
  sl_broker_t *b = calloc(1, sizeof *b);
  if (!b) return -ENOMEM;
  b->loop = loop;
  b->cfg = cfg;
  b->node_id = 0;
  int listen_port;
  if (sl_addr_split(cfg->listen, b->listen_host, sizeof b->listen_host, &listen_port) != 0) {
    SL_ERROR("broker", "broker.listen '%s' is not host:port", cfg->listen);
    rc = -EINVAL;
    goto fail;
  }
  if ((rc = sl_fs_mkdir_p(cfg->data_dir)) != 0) {
    SL_ERROR("broker", "cannot create data directory %s: %s", cfg->data_dir, strerror(-rc));
    goto fail;
  }
  load_cluster_id(b);
  sl_log_config_defaults(&b->log_cfg);
  b->log_cfg.segment_bytes = (uint64_t)cfg->segment_bytes;
  b->log_cfg.segment_ms = cfg->segment_ms;
  b->log_cfg.retention_ms = cfg->retention_ms;
  b->log_cfg.retention_bytes = cfg->retention_bytes;
  b->log_cfg.index_interval_bytes = (uint32_t)cfg->index_interval_bytes;

  if (cfg->sasl_mechanisms && cfg->sasl_mechanisms[0]) {
    const char *why = NULL;
    if (!cfg->sasl_users || !cfg->sasl_users[0]) {
      SL_ERROR("broker", "broker.sasl_mechanisms is set but broker.sasl_users is empty");
      rc = -EINVAL;
      goto fail;
    }
    if ((rc = sl_sasl_users_create(cfg->sasl_users, &b->sasl_users, &why)) != 0) {
      SL_ERROR("broker", "broker.sasl_users: %s", why ? why : strerror(-rc));
      goto fail;
    }
    SL_INFO("broker", "clients must authenticate with SASL (%s)", cfg->sasl_mechanisms);
  }
  bool has_cert = cfg->tls_cert_file && cfg->tls_cert_file[0], has_key = cfg->tls_key_file && cfg->tls_key_file[0];
  if (has_cert != has_key) {
    SL_ERROR("broker", "TLS needs both broker.tls_cert_file and broker.tls_key_file");
    rc = -EINVAL;
    goto fail;
  }
  if (has_cert) {
    char why[512];
    if ((rc = sl_tls_ctx_create(cfg->tls_cert_file, cfg->tls_key_file, &b->tls, why, sizeof why)) != 0) {
      SL_ERROR("broker", "%s", why);
      goto fail;
    }
  }
  int64_t t0 = sl_monotonic_ms();
  if ((rc = sl_topics_open(cfg->data_dir, &b->log_cfg, &b->topics)) != 0) {
    SL_ERROR("broker", "cannot open the log in %s: %s", cfg->data_dir, strerror(-rc));
    goto fail;
  }
  if ((rc = sl_flusher_create(loop, &b->flusher)) != 0) goto fail;
  if ((rc = sl_producers_open(b, &b->producers)) != 0) goto fail;
  if ((rc = sl_groups_open(b, &b->groups)) != 0) {
    SL_ERROR("broker", "cannot load consumer groups: %s", strerror(-rc));
    goto fail;
  }
  SL_INFO("broker", "recovered %zu topic(s) from %s in %lld ms", sl_topics_count(b->topics), cfg->data_dir,
          (long long)(sl_monotonic_ms() - t0));

  rc = sl_tcp_listen(loop, b->listen_host, listen_port, &sl_kafka_protocol, b, &b->server);
  if (rc != 0) {
    SL_ERROR("broker", "cannot listen on %s: %s", cfg->listen, uv_strerror(rc));
    goto fail;
  }
  if (b->tls) sl_tcp_server_set_tls(b->server, b->tls);
  if (cfg->advertised && cfg->advertised[0]) {
    if (sl_addr_split(cfg->advertised, b->advertised_host, sizeof b->advertised_host, &b->advertised_port) != 0) {
      SL_ERROR("broker", "broker.advertised '%s' is not host:port", cfg->advertised);
      rc = -EINVAL;
      goto fail;
    }
  } else {
    /* 0.0.0.0 is not an address a client can dial; tell clients 127.0.0.1 rather than "localhost" (IPv6 first). */
    const char *h = strcmp(b->listen_host, "0.0.0.0") == 0 || strcmp(b->listen_host, "::") == 0 ? "127.0.0.1"
                                                                                                  : b->listen_host;
    snprintf(b->advertised_host, sizeof b->advertised_host, "%s", h);
    b->advertised_port = sl_tcp_server_port(b->server);
  }
  uv_timer_init(loop, &b->retention_timer);
  b->retention_timer.data = b;
  uv_timer_start(&b->retention_timer, on_retention_timer, (uint64_t)cfg->retention_check_interval_ms,
                 (uint64_t)cfg->retention_check_interval_ms);
  uv_timer_init(loop, &b->flush_timer);
  b->flush_timer.data = b;
  uv_timer_start(&b->flush_timer, on_flush_timer, (uint64_t)cfg->flush_interval_ms, (uint64_t)cfg->flush_interval_ms);

  SL_INFO("broker", "listening on %s:%d%s (advertised %s:%d), data in %s", b->listen_host,
          sl_tcp_server_port(b->server), b->tls ? " with TLS" : "", b->advertised_host, b->advertised_port,
          cfg->data_dir);
  if (cfg->ready_file && cfg->ready_file[0]) {
    rc = sl_fs_write_ready_file(cfg->ready_file, b->advertised_host, sl_tcp_server_port(b->server));
    if (rc != 0) SL_WARN("broker", "cannot write ready file %s: %s", cfg->ready_file, strerror(-rc));
  }
  *out = b;
  return 0;

fail:
  if (b->server) sl_tcp_server_close(b->server);
  if (b->groups) sl_groups_close(b->groups);
  if (b->producers) sl_producers_close(b->producers);
  if (b->flusher) sl_flusher_destroy(b->flusher);
  if (b->topics) sl_topics_close(b->topics);
  sl_sasl_users_free(b->sasl_users);
  sl_tls_ctx_free(b->tls);
  free(b);
  return rc;
}

int sl_broker_port(const sl_broker_t *b) { return sl_tcp_server_port(b->server); }

static void free_broker_on_close(uv_handle_t *h) {
  sl_broker_t *b = h->data;
  sl_sasl_users_free(b->sasl_users);
  sl_tls_ctx_free(b->tls); /* connections still closing hold their own reference to the context */
  free(b);
}

void sl_broker_stop(sl_broker_t *b) {
  SL_INFO("broker", "shutting down");
  b->stopping = true;
  sl_tcp_server_close(b->server); /* orphans parked requests; their owners below finish (free) them */
  sl_fetch_drain(b);
  sl_groups_close(b->groups);
  sl_flusher_destroy(b->flusher); /* runs waiting acks=all callbacks with -ECANCELED */
  sl_producers_close(b->producers);
  sl_topics_close(b->topics);     /* final sync and clean-shutdown markers */
  uv_timer_stop(&b->retention_timer);
  uv_timer_stop(&b->flush_timer);
  uv_close((uv_handle_t *)&b->retention_timer, NULL);
  uv_close((uv_handle_t *)&b->flush_timer, free_broker_on_close);
  SL_INFO("broker", "stopped cleanly");
}
