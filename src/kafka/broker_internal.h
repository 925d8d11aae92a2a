/* The broker's shared state, visible to the request handlers (not to other roles). */
#ifndef SL_KAFKA_BROKER_INTERNAL_H
#define SL_KAFKA_BROKER_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "kafka/broker.h"
#include "kafka/request.h"
#include "kafka/sasl.h"
#include "log/flusher.h"
#include "log/topics.h"
#include "net/tcp.h"

typedef struct sl_group_coordinator sl_group_coordinator_t;
typedef struct sl_producer_registry sl_producer_registry_t;
typedef struct sl_fetch_waiter sl_fetch_waiter_t;

struct sl_broker {
  uv_loop_t *loop;
  const sl_broker_config_t *cfg; /* owned by the caller; outlives the broker */
  sl_log_config_t log_cfg;
  sl_topics_t *topics;
  sl_flusher_t *flusher;
  sl_group_coordinator_t *groups;
  sl_producer_registry_t *producers;
  sl_tcp_server_t *server;
  sl_sasl_users_t *sasl_users; /* NULL when SASL is off: connections start authenticated */
  sl_tls_ctx_t *tls;           /* NULL when the listener is plaintext */
  char listen_host[256];
  char advertised_host[256];
  int advertised_port;
  int32_t node_id;
  char cluster_id[24];
  sl_fetch_waiter_t *fetch_waiters; /* parked long-poll fetches, woken by appends */
  uv_timer_t retention_timer;
  uv_timer_t flush_timer;
  bool stopping;
};

/* Produce calls this after appending to a partition: parked fetches that wait on it may now answer. */
void sl_fetch_wake(sl_broker_t *b);
/* Answers every parked fetch now (shutdown). */
void sl_fetch_drain(sl_broker_t *b);

/* One topic config from a request applied to o (value.ptr NULL: back to the broker-wide value). Returns KAFKA_NONE
 * or KAFKA_INVALID_CONFIG with a message (topic_configs.c). */
int16_t sl_kafka_topic_config_set(sl_topic_overrides_t *o, sl_slice_t name, sl_slice_t value, char *msg, size_t cap);
/* DescribeConfigs' and AlterConfigs' resources array (each config 1 or 2 strings) is followed by a flag
 * (include_synonyms, validate_only): validates the whole array, reads the flag when the version has it, and leaves r
 * at the first resource. Returns the resource count, or -1 on malformed input. */
int32_t sl_kafka_config_resources_begin(sl_reader_t *r, int strings_per_config, bool trailing_flag, bool *flag);
/* Whether a topic config name is one of a topic's own settings (AlterConfigs may change it). */
bool sl_kafka_topic_config_alterable(const char *name);
/* The topic's own value of an alterable config, if it has one. */
bool sl_kafka_topic_config_get(const sl_topic_overrides_t *o, const char *name, int64_t *value);

/* Looks up a topic, creating it when auto-creation applies. Returns NULL with *error set to a Kafka error code. */
sl_topic_t *sl_broker_topic(sl_broker_t *b, sl_slice_t name, bool allow_create, int16_t *error);

#endif
