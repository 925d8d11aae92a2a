/* InitProducerId v0–1 for idempotent producers (transactional ids are not supported). */
#include <string.h>

#include "core/log.h"
#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/errors.h"
#include "kafka/producers.h"

int sl_kafka_handle_init_producer_id(sl_kafka_request_t *req) {
  sl_reader_t *r = &req->body;
  sl_slice_t transactional_id = kafka_read_string(r);
  (void)kafka_read_int32(r); /* transaction_timeout_ms */
  if (r->err) return -1;
  int16_t error = KAFKA_NONE;
  int64_t producer_id = -1;
  if (transactional_id.ptr) {
    error = KAFKA_INVALID_REQUEST; /* transactions are out of scope for this broker */
  } else {
    int rc = sl_producers_allocate(req->broker->producers, &producer_id);
    if (rc != 0) {
      SL_ERROR("broker", "cannot persist producer ids: %s", strerror(-rc));
      error = KAFKA_KAFKA_STORAGE_ERROR;
    }
  }
  sl_buf_t *out = &req->resp;
  kafka_write_int32(out, 0); /* throttle_time_ms */
  kafka_write_int16(out, error);
  kafka_write_int64(out, error ? -1 : producer_id);
  kafka_write_int16(out, error ? -1 : 0);
  sl_kafka_request_finish(req);
  return 0;
}
