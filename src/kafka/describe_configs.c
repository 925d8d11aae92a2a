/* DescribeConfigs v0–2 (api key 32): the configuration of a topic or of this broker, as Kafka names it: a topic's
 * own settings (CreateTopics configs, AlterConfigs; topic_configs.c) over the broker's. Admin clients call it
 * (kafka-python's describe_configs, kafkajs's admin.describeConfigs, confluent-kafka's describe_configs). A topic's
 * retention and segment settings are alterable; everything else is read-only.
 *   request:  resources[resource_type i8, resource_name, configuration_keys (nullable array)],
 *             include_synonyms (v1+)
 *   response: throttle_time_ms, results[error_code, error_message, resource_type, resource_name,
 *             configs[name, value, read_only, is_default (v0) | config_source i8 (v1+), is_sensitive,
 *             synonyms[name, value, source] (v1+)]]
 * config_source: 1 DYNAMIC_TOPIC_CONFIG for a topic's own value, 4 STATIC_BROKER_CONFIG when the broker setting was
 * changed from its default, else 5 DEFAULT_CONFIG.
 * Unknown names in configuration_keys are left out, as Kafka does. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/errors.h"

enum { RESOURCE_TOPIC = 2, RESOURCE_BROKER = 4 };
enum { SOURCE_DYNAMIC_TOPIC_CONFIG = 1, SOURCE_STATIC_BROKER_CONFIG = 4, SOURCE_DEFAULT_CONFIG = 5 };

typedef struct {
  const char *name;    /* Kafka's name */
  const char *setting; /* the broker setting it reads; NULL: fixed */
  const char *fixed;   /* the value when fixed */
} config_t;

static const config_t topic_configs[] = {
    {"cleanup.policy", NULL, "delete"},
    {"compression.type", NULL, "producer"},
    {"index.interval.bytes", "broker.index_interval_bytes", NULL},
    {"max.message.bytes", "broker.message_max_bytes", NULL},
    {"message.timestamp.type", NULL, "CreateTime"},
    {"min.insync.replicas", NULL, "1"},
    {"retention.bytes", "broker.retention_bytes", NULL},
    {"retention.ms", "broker.retention_ms", NULL},
    {"segment.bytes", "broker.segment_bytes", NULL},
    {"segment.ms", "broker.segment_ms", NULL},
};

static const config_t broker_configs[] = {
    {"auto.create.topics.enable", "broker.auto_create_topics", NULL},
    {"default.replication.factor", NULL, "1"},
    {"group.initial.rebalance.delay.ms", "broker.group_initial_rebalance_delay_ms", NULL},
    {"group.max.session.timeout.ms", "broker.group_max_session_timeout_ms", NULL},
    {"group.min.session.timeout.ms", "broker.group_min_session_timeout_ms", NULL},
    {"log.flush.interval.ms", "broker.flush_interval_ms", NULL},
    {"log.index.interval.bytes", "broker.index_interval_bytes", NULL},
    {"log.retention.bytes", "broker.retention_bytes", NULL},
    {"log.retention.ms", "broker.retention_ms", NULL},
    {"log.roll.ms", "broker.segment_ms", NULL},
    {"log.segment.bytes", "broker.segment_bytes", NULL},
    {"message.max.bytes", "broker.message_max_bytes", NULL},
    {"num.partitions", "broker.num_partitions", NULL},
    {"offsets.topic.replication.factor", NULL, "1"},
    {"socket.request.max.bytes", "broker.max_request_bytes", NULL},
};

/* The setting's current value as text and whether it is the setting's default. */
static void setting_value(const sl_broker_config_t *cfg, const char *key, char *out, size_t cap, bool *is_default) {
  *is_default = true;
  snprintf(out, cap, "%s", "");
  for (size_t i = 0; i < sl_broker_config_field_count; i++) {
    const sl_config_field_t *f = &sl_broker_config_fields[i];
    if (strcmp(f->key, key) != 0) continue;
    const char *base = (const char *)cfg + f->offset;
    switch (f->type) {
      case SL_CONFIG_INT: {
        int64_t v = *(const int64_t *)base;
        snprintf(out, cap, "%" PRId64, v);
        *is_default = f->default_value && strtoll(f->default_value, NULL, 10) == v;
        break;
      }
      case SL_CONFIG_BOOL: {
        bool v = *(const bool *)base;
        snprintf(out, cap, "%s", v ? "true" : "false");
        *is_default = f->default_value && !strcmp(f->default_value, out);
        break;
      }
      case SL_CONFIG_STRING:
      case SL_CONFIG_DOCUMENT: {
        const char *v = *(const char *const *)base;
        snprintf(out, cap, "%s", v ? v : "");
        *is_default = !strcmp(f->default_value ? f->default_value : "", out);
        break;
      }
    }
    return;
  }
}

/* Whether name is among the requested keys (keys NULL: all). */
static bool wanted(const sl_slice_t *keys, int32_t nkeys, const char *name) {
  if (nkeys < 0) return true;
  for (int32_t i = 0; i < nkeys; i++)
    if (keys[i].len == strlen(name) && memcmp(keys[i].ptr, name, keys[i].len) == 0) return true;
  return false;
}

/* overrides: the topic's own settings (NULL for the broker). */
static void write_configs(sl_buf_t *b, int16_t v, const sl_broker_config_t *cfg, const config_t *table, size_t n,
                          const sl_topic_overrides_t *overrides, const sl_slice_t *keys, int32_t nkeys,
                          bool synonyms) {
  size_t count_at = b->len;
  int32_t count = 0;
  kafka_write_array_len(b, 0); /* patched below */
  for (size_t i = 0; i < n; i++) {
    if (!wanted(keys, nkeys, table[i].name)) continue;
    char value[512];
    bool is_default = true;
    if (table[i].setting) setting_value(cfg, table[i].setting, value, sizeof value, &is_default);
    else snprintf(value, sizeof value, "%s", table[i].fixed);
    int8_t source = is_default ? SOURCE_DEFAULT_CONFIG : SOURCE_STATIC_BROKER_CONFIG;
    int64_t own;
    bool alterable = overrides && sl_kafka_topic_config_alterable(table[i].name);
    if (overrides && sl_kafka_topic_config_get(overrides, table[i].name, &own)) {
      snprintf(value, sizeof value, "%lld", (long long)own);
      is_default = false;
      source = SOURCE_DYNAMIC_TOPIC_CONFIG;
    }
    kafka_write_cstring(b, table[i].name);
    kafka_write_cstring(b, value);
    kafka_write_bool(b, !alterable); /* read_only */
    if (v == 0) kafka_write_bool(b, is_default);
    else kafka_write_int8(b, source);
    kafka_write_bool(b, false); /* is_sensitive: no secret is described */
    if (v >= 1) {
      kafka_write_array_len(b, synonyms ? 1 : 0);
      if (synonyms) {
        kafka_write_cstring(b, table[i].name);
        kafka_write_cstring(b, value);
        kafka_write_int8(b, source);
      }
    }
    count++;
  }
  sl_buf_patch_be32(b, count_at, (uint32_t)count);
}

static void write_result_header(sl_buf_t *b, int16_t error, const char *message, int8_t type, sl_slice_t name) {
  kafka_write_int16(b, error);
  kafka_write_cstring(b, message);
  kafka_write_int8(b, type);
  kafka_write_string(b, (const char *)name.ptr, name.len);
}

static void write_error(sl_buf_t *b, int16_t error, const char *message, int8_t type, sl_slice_t name) {
  write_result_header(b, error, message, type, name);
  kafka_write_array_len(b, 0); /* no configs */
}

int sl_kafka_handle_describe_configs(sl_kafka_request_t *req) {
  sl_reader_t *r = &req->body;
  sl_broker_t *br = req->broker;
  int16_t v = req->api_version;
  bool synonyms;
  int32_t n = sl_kafka_config_resources_begin(r, 1, v >= 1, &synonyms);
  if (n < 0) return -EBADMSG;

  sl_buf_t *b = &req->resp;
  kafka_write_int32(b, 0); /* throttle_time_ms */
  kafka_write_array_len(b, n);
  for (int32_t i = 0; i < n; i++) {
    int8_t type = kafka_read_int8(r);
    sl_slice_t name = kafka_read_string(r);
    int32_t nkeys = kafka_read_array_len(r, 2);
    sl_slice_t *keys = nkeys > 0 ? calloc((size_t)nkeys, sizeof *keys) : NULL;
    if (nkeys > 0 && !keys) return -ENOMEM;
    for (int32_t k = 0; k < nkeys; k++) keys[k] = kafka_read_string(r);
    char msg[300];
    if (type == RESOURCE_TOPIC) {
      sl_topic_t *topic = name.ptr ? sl_topics_find(br->topics, (const char *)name.ptr, name.len) : NULL;
      if (!topic) {
        snprintf(msg, sizeof msg, "Topic '%.*s' does not exist", (int)(name.ptr ? name.len : 0),
                 name.ptr ? (const char *)name.ptr : "");
        write_error(b, KAFKA_UNKNOWN_TOPIC_OR_PARTITION, msg, type, name);
      } else {
        write_result_header(b, KAFKA_NONE, NULL, type, name);
        write_configs(b, v, br->cfg, topic_configs, sizeof topic_configs / sizeof topic_configs[0], &topic->overrides,
                      keys, nkeys, synonyms);
      }
    } else if (type == RESOURCE_BROKER) {
      char id[16];
      snprintf(id, sizeof id, "%d", (int)br->node_id);
      bool ours = name.ptr && (name.len == 0 || (name.len == strlen(id) && !memcmp(name.ptr, id, name.len)));
      if (!ours) {
        snprintf(msg, sizeof msg, "Broker '%.*s' is not this broker (id %s)", (int)(name.ptr ? name.len : 0),
                 name.ptr ? (const char *)name.ptr : "", id);
        write_error(b, KAFKA_INVALID_REQUEST, msg, type, name);
      } else {
        write_result_header(b, KAFKA_NONE, NULL, type, name);
        write_configs(b, v, br->cfg, broker_configs, sizeof broker_configs / sizeof broker_configs[0], NULL, keys,
                      nkeys, synonyms);
      }
    } else {
      snprintf(msg, sizeof msg, "Resource type %d is not supported (topics 2 and brokers 4 are)", type);
      write_error(b, KAFKA_INVALID_REQUEST, msg, type, name);
    }
    free(keys);
  }
  sl_kafka_request_finish(req);
  return 0;
}
