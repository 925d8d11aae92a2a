/* The stream processor role: `sluice stream` consumes the topics of its pipelines (pipeline.h) with a Kafka
 * consumer group (librdkafka), maps each record to a typed row (mapping.h), writes rows to CQL tables as idempotent
 * prepared upserts (Sluice's CQL client), sends records that do not fit to the pipeline's dead-letter topic, and
 * commits offsets only once every record they cover is written or dead-lettered. `sluice up` runs it on the
 * example pipelines. See processor.c for the state machine. */
#ifndef SL_STREAM_STREAM_H
#define SL_STREAM_STREAM_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/config.h"
#include "cql/client_settings.h"
#include "stream/kafka_settings.h"

typedef struct {
  char *brokers;             /* Kafka bootstrap servers */
  sl_kafka_settings_t kafka; /* TLS / SASL towards them */
  char *cql;                 /* CQL contact points */
  char *cql_username, *cql_password;
  sl_cql_tls_settings_t cql_tls; /* TLS towards the CQL nodes */
  char *pipelines;           /* pipeline YAML files, comma-separated */
  char *pipelines_doc;       /* a YAML file with a top-level `pipelines:` list: the --config file itself */
  char *ready_file;          /* written with "ready\n" once every pipeline has its table and its partitions */
  int64_t batch_rows;        /* rows per CQL batch */
  int64_t batch_max_bytes;   /* a batch is sent once its values reach this size (Cassandra refuses batches > 50 KiB) */
  bool batch_by_table_partition; /* split each batch by the table's partition key (Cassandra's recommendation) */
  int64_t max_inflight_rows; /* consumption pauses above this many unacknowledged records */
  int64_t commit_interval_ms;
  int64_t status_interval_ms; /* status log line (0: none) */
  int64_t session_timeout_ms;
  int64_t fetch_max_kbytes;   /* librdkafka's prefetch bound per consumer (queued.max.messages.kbytes) */
} sl_stream_config_t;

extern const sl_config_field_t sl_stream_config_fields[];
extern const size_t sl_stream_config_field_count;

typedef struct sl_stream sl_stream_t;

typedef struct {
  uint64_t consumed, written, dead_lettered, filtered; /* consumed = written + dead_lettered + filtered + inflight */
  uint64_t inflight;                                   /* consumed, not yet written or dead-lettered */
  uint64_t committed;                                  /* offsets committed (records covered) */
  int64_t lag;                                         /* records behind the high watermarks (-1: unknown) */
  uint64_t write_errors;                               /* failed CQL writes (retried) */
  double latency_p50_ms, latency_p99_ms; /* record produce time (Kafka CreateTime) -> row acknowledged */
} sl_stream_stats_t;

/* Loads the pipelines of cfg->pipelines_doc (the --config file's `pipelines:`) and cfg->pipelines (files).
 * Returns 0 or a negative error; logs why. */
int sl_stream_start(uv_loop_t *loop, const sl_stream_config_t *cfg, sl_stream_t **out);
/* Same, with more pipelines given as YAML texts (`sluice up` passes the compiled-in examples). */
int sl_stream_start_texts(uv_loop_t *loop, const sl_stream_config_t *cfg, const char *const *yaml_texts,
                          size_t count, sl_stream_t **out);
/* Stops consuming, waits (bounded) for in-flight rows, commits what they cover, leaves the group, closes the
 * clients; the loop must run until every handle is closed. */
void sl_stream_stop(sl_stream_t *s);
/* stopped(arg) runs once a stopped processor has closed everything (for composing roles: `sluice up` stops the
 * broker and the store only after the processor is done with them). */
void sl_stream_on_stopped(sl_stream_t *s, void (*stopped)(void *arg), void *arg);
void sl_stream_get_stats(const sl_stream_t *s, sl_stream_stats_t *out);
/* True once every pipeline's table exists and its consumer is subscribed. */
bool sl_stream_ready(const sl_stream_t *s);

#endif
