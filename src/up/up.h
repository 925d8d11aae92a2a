/* `sluice up`: the whole system in one process, with no configuration: the broker, the store, the stream
 * processor running the example pipelines, a demo fleet (vehicles and wearables) from the simulator, and the REST
 * API with the dashboard, reading the embedded store. It
 * composes the roles' own start/stop functions on one loop; nothing here is a second implementation. */
#ifndef SL_UP_UP_H
#define SL_UP_UP_H
#include <stdint.h>
#include <uv.h>

#include "core/config.h"
#include "kafka/broker.h"
#include "store/store.h"
#include "stream/stream.h"

typedef struct {
  char *data_dir;      /* broker data in <dir>/broker, store data in <dir>/store */
  char *http_listen;   /* the REST API and dashboard (port 0: any) */
  char *ready_file;    /* "kafka host:port\ncql host:port\nhttp host:port\n" once everything listens */
  char *pipelines;     /* compiled-in examples to run, comma-separated */
  char *demo_profiles; /* simulator profiles ("" = no demo fleet) */
  char *demo_rate;
  int64_t demo_devices;
  int64_t status_ms;   /* live status line interval (0: none) */
  char *api_tokens, *api_tokens_file, *api_tls_cert_file, *api_tls_key_file; /* handed to the API (api.*) */
} sl_up_config_t;

extern const sl_config_field_t sl_up_config_fields[];
extern const size_t sl_up_config_field_count;

typedef struct sl_up sl_up_t;

/* broker/store/stream configs come from their own sections (defaults: broker 127.0.0.1:9092, store
 * 127.0.0.1:9042); their data directories and addresses are derived from up's settings when left at default. */
int sl_up_start(uv_loop_t *loop, const sl_up_config_t *up, sl_broker_config_t *broker, sl_store_config_t *store,
                sl_stream_config_t *stream, sl_up_t **out);
void sl_up_stop(sl_up_t *u);

#endif
