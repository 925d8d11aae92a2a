/* AlterConfigs v0–1 (api key 33): sets a topic's own settings (topic_configs.c) — kafka-python's alter_configs,
 * kafkajs's admin.alterConfigs, confluent-kafka's alter_configs. As in Kafka this is not incremental: the configs
 * given become the topic's whole set, and the ones left out go back to the broker-wide values. Broker configs are
 * the process's static settings here (INVALID_REQUEST).
 *   request:  resources[resource_type i8, resource_name, configs[name, value (nullable)]], validate_only
 *   response: throttle_time_ms, responses[error_code, error_message, resource_type, resource_name] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/errors.h"

enum { RESOURCE_TOPIC = 2 };

static void write_response(sl_buf_t *b, int16_t error, const char *msg, int8_t type, sl_slice_t name) {
  kafka_write_int16(b, error);
  kafka_write_cstring(b, error ? msg : NULL);
  kafka_write_int8(b, type);
  kafka_write_string(b, (const char *)name.ptr, name.len);
}

int sl_kafka_handle_alter_configs(sl_kafka_request_t *req) {
  sl_broker_t *br = req->broker;
  sl_reader_t *r = &req->body;
  bool validate_only;
  int32_t n = sl_kafka_config_resources_begin(r, 2, true, &validate_only);
  if (n < 0) return -EBADMSG;

  sl_buf_t *b = &req->resp;
  kafka_write_int32(b, 0); /* throttle_time_ms */
  kafka_write_array_len(b, n);
  for (int32_t i = 0; i < n; i++) {
    int8_t type = kafka_read_int8(r);
    sl_slice_t name = kafka_read_string(r);
    int32_t nc = kafka_read_array_len(r, 4);
    sl_topic_overrides_t o;
    sl_topic_overrides_clear(&o);
    char msg[300] = "";
    int16_t error = KAFKA_NONE;
    for (int32_t c = 0; c < nc; c++) {
      sl_slice_t key = kafka_read_string(r), value = kafka_read_string(r);
      if (error == KAFKA_NONE) error = sl_kafka_topic_config_set(&o, key, value, msg, sizeof msg);
    }
    sl_topic_t *topic = NULL;
    if (type != RESOURCE_TOPIC) {
      error = KAFKA_INVALID_REQUEST;
      snprintf(msg, sizeof msg, "Only topic configs can be altered (resource type 2); broker settings are static");
    } else if (!name.ptr || !(topic = sl_topics_find(br->topics, (const char *)name.ptr, name.len))) {
      error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
      snprintf(msg, sizeof msg, "Topic '%.*s' does not exist", (int)(name.ptr ? name.len : 0),
               name.ptr ? (const char *)name.ptr : "");
    }
    if (error == KAFKA_NONE && !validate_only) {
      int rc = sl_topics_set_overrides(br->topics, topic, &o);
      if (rc < 0) {
        error = KAFKA_KAFKA_STORAGE_ERROR;
        snprintf(msg, sizeof msg, "Saving the topic's configs failed: %s", strerror(-rc));
      } else {
        SL_INFO("broker", "topic %s: configs altered", topic->name);
      }
    }
    write_response(b, error, msg, type, name);
  }
  sl_kafka_request_finish(req);
  return 0;
}
