/* libFuzzer target for the Kafka request decoder: each input is one request frame (without the size prefix),
 * parsed and handled by the real handlers of a broker running on a temporary data directory. Requests are built
 * without a connection, so responses are produced and then dropped.
 *
 *   make fuzz && build-fuzz/fuzz_kafka_request -max_total_time=60 tests/fuzz/corpus/kafka */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/config.h"
#include "core/log.h"
#include "kafka/broker.h"
#include "kafka/connection.h"

static uv_loop_t loop;
static sl_broker_t *broker;
static sl_broker_config_t cfg;

static void start_broker(void) {
  sl_config_section_t sections[] = {{sl_broker_config_fields, sl_broker_config_field_count, &cfg}};
  sl_config_defaults(sections, 1);
  char dir[] = "/tmp/sluice-fuzz-XXXXXX";
  if (!mkdtemp(dir)) abort();
  char err[256];
  char set[300];
  snprintf(set, sizeof set, "broker.data_dir=%s", dir);
  sl_config_set(sections, 1, set, err, sizeof err);
  sl_config_set(sections, 1, "broker.listen=127.0.0.1:0", err, sizeof err);
  sl_config_set(sections, 1, "broker.flush_on_ack=false", err, sizeof err);
  sl_config_set(sections, 1, "broker.group_initial_rebalance_delay_ms=0", err, sizeof err);
  sl_log_set_level(SL_LOG_ERROR);
  uv_loop_init(&loop);
  if (sl_broker_start(&loop, &cfg, &broker) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!broker) start_broker();
  const sl_kafka_api_t *api;
  sl_kafka_request_t *req = sl_kafka_request_parse(broker, "fuzz", data, size, &api);
  if (!req) return 0;
  if (api->handler(req) != 0) sl_kafka_request_free(req); /* malformed: the connection would close */
  uv_run(&loop, UV_RUN_NOWAIT);
  return 0;
}
