/* Idempotent-producer state: producer id allocation (InitProducerId) and per-partition sequence checks, so a batch
 * re-sent after a lost response is acknowledged without being written twice, and a gap is refused.
 *
 * State per (partition, producer id): epoch, last sequence, and the last 5 batches' (first seq, last seq, base
 * offset) — the most a producer may have in flight. It is rebuilt after a restart from the batch headers at the
 * tail of each partition, and ids are never reused (a high-water mark is persisted in <data_dir>/producer_ids). */
#ifndef SL_KAFKA_PRODUCERS_H
#define SL_KAFKA_PRODUCERS_H
#include <stdint.h>

#include "kafka/broker_internal.h"

int sl_producers_open(sl_broker_t *b, sl_producer_registry_t **out);
void sl_producers_close(sl_producer_registry_t *r);

/* Allocates a fresh producer id (epoch 0). Returns 0 or -errno (persisting the high-water mark failed). */
int sl_producers_allocate(sl_producer_registry_t *r, int64_t *producer_id);

typedef enum {
  SL_SEQ_APPEND,    /* in order: append, then call sl_producers_record */
  SL_SEQ_DUPLICATE, /* already written: answer with *dup_base_offset, append nothing */
  SL_SEQ_ERROR,     /* refuse with *error */
} sl_seq_verdict_t;

/* Checks the batch header (producer id >= 0) against the partition's producer state. */
sl_seq_verdict_t sl_producers_check(sl_producer_registry_t *r, sl_partition_t *p, const uint8_t *batch,
                                    int64_t *dup_base_offset, int16_t *error);
/* Records an appended batch (header already carries its base offset). */
void sl_producers_record(sl_producer_registry_t *r, sl_partition_t *p, const uint8_t *batch);
/* Forgets a partition's producers (topic deleted). */
void sl_producers_forget_partition(sl_producer_registry_t *r, sl_partition_t *p);

#endif
