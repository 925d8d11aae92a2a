/* Kafka's topic configs as this broker honours them (shared by CreateTopics, DescribeConfigs and AlterConfigs):
 * retention.ms, retention.bytes, segment.bytes and segment.ms are a topic's own log settings
 * (sl_topic_overrides_t, persisted by the log); a few others are accepted only with the one value this broker
 * implements (cleanup.policy=delete...), and any other name is INVALID_CONFIG, as Kafka refuses unknown names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/errors.h"

static const struct {
  const char *name;
  size_t offset;
  int64_t min;
} alterable[] = {
    {"retention.ms", offsetof(sl_topic_overrides_t, retention_ms), -1},
    {"retention.bytes", offsetof(sl_topic_overrides_t, retention_bytes), -1},
    {"segment.bytes", offsetof(sl_topic_overrides_t, segment_bytes), 14},
    {"segment.ms", offsetof(sl_topic_overrides_t, segment_ms), 1},
};

static const struct {
  const char *name, *value;
} fixed[] = {
    {"cleanup.policy", "delete"},
    {"compression.type", "producer"},
    {"message.timestamp.type", "CreateTime"},
    {"min.insync.replicas", "1"},
};

static bool slice_is(sl_slice_t s, const char *c) { return s.ptr && s.len == strlen(c) && !memcmp(s.ptr, c, s.len); }

int16_t sl_kafka_topic_config_set(sl_topic_overrides_t *o, sl_slice_t name, sl_slice_t value, char *msg,
                                  size_t cap) {
  for (size_t i = 0; i < sizeof alterable / sizeof alterable[0]; i++) {
    if (!slice_is(name, alterable[i].name)) continue;
    int64_t *slot = (int64_t *)((char *)o + alterable[i].offset);
    if (!value.ptr) { /* null: back to the broker-wide value */
      *slot = SL_TOPIC_UNSET;
      return KAFKA_NONE;
    }
    char buf[32], *end;
    if (value.len == 0 || value.len >= sizeof buf) goto bad;
    memcpy(buf, value.ptr, value.len);
    buf[value.len] = 0;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || v < alterable[i].min) goto bad;
    *slot = v;
    return KAFKA_NONE;
  bad:
    snprintf(msg, cap, "Invalid value %.*s for configuration %s: an integer >= %lld", (int)value.len,
             value.ptr ? (const char *)value.ptr : "", alterable[i].name, (long long)alterable[i].min);
    return KAFKA_INVALID_CONFIG;
  }
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
    if (!slice_is(name, fixed[i].name)) continue;
    if (!value.ptr || slice_is(value, fixed[i].value)) return KAFKA_NONE;
    snprintf(msg, cap, "Invalid value %.*s for configuration %s: this broker supports only %s", (int)value.len,
             (const char *)value.ptr, fixed[i].name, fixed[i].value);
    return KAFKA_INVALID_CONFIG;
  }
  snprintf(msg, cap, "Unknown topic config name: %.*s", (int)name.len, name.ptr ? (const char *)name.ptr : "");
  return KAFKA_INVALID_CONFIG;
}

bool sl_kafka_topic_config_get(const sl_topic_overrides_t *o, const char *name, int64_t *value) {
  for (size_t i = 0; i < sizeof alterable / sizeof alterable[0]; i++) {
    if (strcmp(name, alterable[i].name) != 0) continue;
    int64_t v = *(const int64_t *)((const char *)o + alterable[i].offset);
    if (v == SL_TOPIC_UNSET) return false;
    *value = v;
    return true;
  }
  return false;
}

bool sl_kafka_topic_config_alterable(const char *name) {
  for (size_t i = 0; i < sizeof alterable / sizeof alterable[0]; i++)
    if (strcmp(name, alterable[i].name) == 0) return true;
  return false;
}

int32_t sl_kafka_config_resources_begin(sl_reader_t *r, int strings_per_config, bool trailing_flag, bool *flag) {
  size_t start = r->pos;
  int32_t n = kafka_read_array_len(r, 1 + 2 + 4);
  for (int32_t i = 0; i < n && !r->err; i++) {
    (void)kafka_read_int8(r);
    (void)kafka_read_string(r);
    int32_t nc = kafka_read_array_len(r, 2 * strings_per_config);
    for (int32_t c = 0; c < nc && !r->err; c++)
      for (int k = 0; k < strings_per_config; k++) (void)kafka_read_string(r);
  }
  *flag = trailing_flag && kafka_read_bool(r);
  if (r->err || n < 0) return -1;
  r->pos = start;
  return kafka_read_array_len(r, 1 + 2 + 4); /* the resources are read again from here */
}
