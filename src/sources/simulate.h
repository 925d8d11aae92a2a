/* The simulator role: `sluice simulate` produces device readings (sim.h) to Kafka brokers through librdkafka,
 * paced at a rate, for a count or a duration (or until stopped). `sluice up` runs it as the demo fleet. */
#ifndef SL_SOURCES_SIMULATE_H
#define SL_SOURCES_SIMULATE_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/config.h"
#include "stream/kafka_settings.h"

typedef struct {
  char *brokers;       /* bootstrap servers */
  sl_kafka_settings_t kafka; /* TLS / SASL towards them */
  char *profile;       /* comma-separated: vehicles, wearables, users */
  char *topic;         /* empty: each profile's default topic (vehicles, wearables, users_created) */
  char *rate;          /* readings per second over all profiles: "1000", "1000/s", "20k/s"; "max" or 0 = unpaced */
  int64_t devices;     /* devices per profile */
  int64_t count;       /* stop after this many readings (0 = no limit) */
  int64_t duration_ms; /* stop after this long (0 = no limit) */
  int64_t seed;
  char *start_time;    /* timestamp of the first reading: ISO-8601 or epoch ms; empty = now */
  int64_t progress_ms; /* progress line interval (0 = none) */
  char *acks;          /* all, 1 or 0 */
  int64_t linger_ms;
} sl_simulate_config_t;

extern const sl_config_field_t sl_simulate_config_fields[];
extern const size_t sl_simulate_config_field_count;

typedef struct sl_simulate sl_simulate_t;

typedef struct {
  uint64_t produced;  /* handed to librdkafka */
  uint64_t delivered; /* acknowledged by the brokers */
  uint64_t failed;    /* delivery failed for good */
} sl_simulate_stats_t;

/* finished(arg, status) runs once the count or duration is reached and every reading is delivered or failed
 * (status 0 when none failed); it is not called after sl_simulate_stop. Returns 0 or a negative error. */
int sl_simulate_start(uv_loop_t *loop, const sl_simulate_config_t *cfg, void (*finished)(void *arg, int status),
                      void *arg, sl_simulate_t **out);
/* Stops producing, waits (bounded) for outstanding deliveries, prints the final counts and frees everything while
 * the loop runs. */
void sl_simulate_stop(sl_simulate_t *s);
/* stopped(arg) runs once the simulator has freed itself, however it ended. */
void sl_simulate_on_stopped(sl_simulate_t *s, void (*stopped)(void *arg), void *arg);
void sl_simulate_get_stats(const sl_simulate_t *s, sl_simulate_stats_t *out);

/* "1000", "1000/s", "20k/s", "1.5k"; "max" or "0" give 0 (unpaced). Returns 0 or -EINVAL. */
int sl_simulate_parse_rate(const char *s, double *out);
/* ISO-8601 ("2024-05-01T12:00:00Z", fraction and offset optional) or epoch ms digits; returns 0 or -EINVAL. */
int sl_simulate_parse_time(const char *s, int64_t *ms);

#endif
