/* The broker role: a single-node Kafka-wire-compatible broker on one event loop.
 * `sluice broker` runs it alone; `sluice up` composes it with the other roles. */
#ifndef SL_KAFKA_BROKER_H
#define SL_KAFKA_BROKER_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/config.h"

typedef struct {
  char *listen;     /* host:port; port 0 picks a free port */
  char *advertised; /* host:port given to clients in Metadata/FindCoordinator; empty = the bound listen address */
  char *data_dir;
  char *ready_file; /* written with "host:port\n" once listening (tests wait for it) */
  bool auto_create_topics;
  int64_t num_partitions;
  int64_t max_request_bytes;
  int64_t message_max_bytes;
  bool flush_on_ack;        /* acks=all is answered only after fsync (the safe default) */
  int64_t flush_interval_ms; /* background sync of everything written, for acks=0/1 data */
  int64_t segment_bytes;
  int64_t segment_ms;
  int64_t retention_ms;
  int64_t retention_bytes;
  int64_t retention_check_interval_ms;
  int64_t index_interval_bytes;
  int64_t group_initial_rebalance_delay_ms;
  int64_t group_min_session_timeout_ms;
  int64_t group_max_session_timeout_ms;
  int64_t offsets_retention_ms;                /* committed offsets of a group without members expire after this */
  int64_t offsets_retention_check_interval_ms;
  char *sasl_mechanisms; /* "PLAIN,SCRAM-SHA-256"; empty: no authentication */
  char *sasl_users;      /* "user:password,..." */
  char *tls_cert_file;   /* PEM certificate (chain) and key: the listener speaks TLS when both are set */
  char *tls_key_file;
} sl_broker_config_t;

extern const sl_config_field_t sl_broker_config_fields[];
extern const size_t sl_broker_config_field_count;

typedef struct sl_broker sl_broker_t;

/* Recovers the data directory and starts listening. Returns 0 or a negative error; logs why. */
int sl_broker_start(uv_loop_t *loop, const sl_broker_config_t *cfg, sl_broker_t **out);
/* Stops listening, completes or cancels parked requests, syncs and closes the log. The loop must run afterwards
 * until it has no handles left (uv_run) to finish closing. */
void sl_broker_stop(sl_broker_t *b);
int sl_broker_port(const sl_broker_t *b);

#endif
