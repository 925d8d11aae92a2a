/* Idempotent-producer state (see producers.h). */
#include "kafka/producers.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "kafka/errors.h"

enum { BATCHES_KEPT = 5, ID_BLOCK = 1000 };

typedef struct {
  int32_t first_seq, last_seq;
  int64_t base_offset;
} batch_info_t;

typedef struct producer_entry {
  sl_partition_t *partition;
  int64_t producer_id;
  int16_t epoch;
  int32_t last_seq;
  batch_info_t batches[BATCHES_KEPT]; /* ring, newest at (next - 1) */
  int next, count;
  struct producer_entry *chain;
} producer_entry_t;

struct sl_producer_registry {
  sl_broker_t *broker;
  producer_entry_t **buckets;
  size_t bucket_count, entries;
  int64_t next_id, id_block_end;
  char id_path[4096];
};

static size_t hash_key(const sl_partition_t *p, int64_t pid, size_t buckets) {
  uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull ^ (uint64_t)pid * 0xC2B2AE3D27D4EB4Full;
  return (size_t)(h ^ (h >> 29)) & (buckets - 1);
}

static producer_entry_t *find(sl_producer_registry_t *r, const sl_partition_t *p, int64_t pid) {
  for (producer_entry_t *e = r->buckets[hash_key(p, pid, r->bucket_count)]; e; e = e->chain) {
    if (e->partition == p && e->producer_id == pid) return e;
  }
  return NULL;
}

static void grow(sl_producer_registry_t *r) {
  size_t n = r->bucket_count * 2;
  producer_entry_t **nb = calloc(n, sizeof *nb);
  if (!nb) return; /* stay at the current size: lookups still work, just slower */
  for (size_t i = 0; i < r->bucket_count; i++) {
    producer_entry_t *e = r->buckets[i];
    while (e) {
      producer_entry_t *next = e->chain;
      size_t h = hash_key(e->partition, e->producer_id, n);
      e->chain = nb[h];
      nb[h] = e;
      e = next;
    }
  }
  free(r->buckets);
  r->buckets = nb;
  r->bucket_count = n;
}

static producer_entry_t *find_or_add(sl_producer_registry_t *r, sl_partition_t *p, int64_t pid) {
  producer_entry_t *e = find(r, p, pid);
  if (e) return e;
  if (r->entries >= r->bucket_count) grow(r);
  e = calloc(1, sizeof *e);
  if (!e) abort();
  e->partition = p;
  e->producer_id = pid;
  size_t h = hash_key(p, pid, r->bucket_count);
  e->chain = r->buckets[h];
  r->buckets[h] = e;
  r->entries++;
  return e;
}

static int32_t seq_add(int32_t seq, int32_t delta) {
  return (int32_t)(((int64_t)seq + delta) % ((int64_t)INT32_MAX + 1));
}

void sl_producers_record(sl_producer_registry_t *r, sl_partition_t *p, const uint8_t *batch) {
  int64_t pid = (int64_t)sl_load_be64(batch + SL_BATCH_PRODUCER_ID);
  if (pid < 0) return;
  producer_entry_t *e = find_or_add(r, p, pid);
  int16_t epoch = (int16_t)sl_load_be16(batch + SL_BATCH_PRODUCER_EPOCH);
  int32_t first = (int32_t)sl_load_be32(batch + SL_BATCH_BASE_SEQUENCE);
  int32_t delta = (int32_t)sl_load_be32(batch + SL_BATCH_LAST_OFFSET_DELTA);
  if (epoch != e->epoch) {
    e->count = 0;
    e->next = 0;
  }
  e->epoch = epoch;
  e->last_seq = seq_add(first, delta);
  e->batches[e->next] = (batch_info_t){first, e->last_seq, (int64_t)sl_load_be64(batch + SL_BATCH_BASE_OFFSET)};
  e->next = (e->next + 1) % BATCHES_KEPT;
  if (e->count < BATCHES_KEPT) e->count++;
}

sl_seq_verdict_t sl_producers_check(sl_producer_registry_t *r, sl_partition_t *p, const uint8_t *batch,
                                    int64_t *dup_base_offset, int16_t *error) {
  int64_t pid = (int64_t)sl_load_be64(batch + SL_BATCH_PRODUCER_ID);
  int16_t epoch = (int16_t)sl_load_be16(batch + SL_BATCH_PRODUCER_EPOCH);
  int32_t first = (int32_t)sl_load_be32(batch + SL_BATCH_BASE_SEQUENCE);
  int32_t last = seq_add(first, (int32_t)sl_load_be32(batch + SL_BATCH_LAST_OFFSET_DELTA));
  producer_entry_t *e = find(r, p, pid);
  if (!e) {
    if (first == 0) return SL_SEQ_APPEND;
    *error = KAFKA_UNKNOWN_PRODUCER_ID;
    return SL_SEQ_ERROR;
  }
  if (epoch < e->epoch) {
    *error = KAFKA_INVALID_PRODUCER_EPOCH;
    return SL_SEQ_ERROR;
  }
  if (epoch > e->epoch) {
    if (first == 0) return SL_SEQ_APPEND;
    *error = KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER;
    return SL_SEQ_ERROR;
  }
  for (int i = 0; i < e->count; i++) {
    const batch_info_t *bi = &e->batches[i];
    if (bi->first_seq == first && bi->last_seq == last) {
      *dup_base_offset = bi->base_offset;
      return SL_SEQ_DUPLICATE;
    }
  }
  if (first == seq_add(e->last_seq, 1)) return SL_SEQ_APPEND;
  *error = KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER;
  return SL_SEQ_ERROR;
}

void sl_producers_forget_partition(sl_producer_registry_t *r, sl_partition_t *p) {
  for (size_t i = 0; i < r->bucket_count; i++) {
    producer_entry_t **pp = &r->buckets[i];
    while (*pp) {
      if ((*pp)->partition == p) {
        producer_entry_t *dead = *pp;
        *pp = dead->chain;
        free(dead);
        r->entries--;
      } else {
        pp = &(*pp)->chain;
      }
    }
  }
}

/* Persists the end of the next block of ids before handing any of them out, so none is reused after a crash. */
static int reserve_id_block(sl_producer_registry_t *r) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", r->id_path);
  int64_t end = r->id_block_end + ID_BLOCK;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -errno;
  char line[32];
  int n = snprintf(line, sizeof line, "%" PRId64 "\n", end);
  int rc = 0;
  if (write(fd, line, (size_t)n) != n || fsync(fd) != 0) rc = -errno;
  close(fd);
  if (rc == 0 && rename(tmp, r->id_path) != 0) rc = -errno;
  if (rc == 0) r->id_block_end = end;
  return rc;
}

int sl_producers_allocate(sl_producer_registry_t *r, int64_t *producer_id) {
  if (r->next_id >= r->id_block_end) {
    int rc = reserve_id_block(r);
    if (rc != 0) return rc;
  }
  *producer_id = r->next_id++;
  return 0;
}

static void rebuild_cb(void *arg, const uint8_t *header) {
  void **ctx = arg;
  sl_producers_record(ctx[0], ctx[1], header);
}

int sl_producers_open(sl_broker_t *b, sl_producer_registry_t **out) {
  sl_producer_registry_t *r = calloc(1, sizeof *r);
  if (!r) return -ENOMEM;
  r->broker = b;
  r->bucket_count = 64;
  r->buckets = calloc(r->bucket_count, sizeof *r->buckets);
  if (!r->buckets) {
    free(r);
    return -ENOMEM;
  }
  snprintf(r->id_path, sizeof r->id_path, "%s/producer_ids", b->cfg->data_dir);
  FILE *f = fopen(r->id_path, "r");
  if (f) {
    if (fscanf(f, "%" SCNd64, &r->id_block_end) != 1 || r->id_block_end < 0) r->id_block_end = 0;
    fclose(f);
  }
  r->next_id = r->id_block_end; /* ids below the persisted mark may have been handed out already */
  size_t n = sl_topics_count(b->topics);
  for (size_t i = 0; i < n; i++) {
    sl_topic_t *t = sl_topics_at(b->topics, i);
    for (int32_t p = 0; p < t->partition_count; p++) {
      void *ctx[2] = {r, t->partitions[p]};
      sl_partition_scan_recent(t->partitions[p], 5 * 64, rebuild_cb, ctx);
    }
  }
  if (r->entries) SL_INFO("broker", "rebuilt state of %zu idempotent producer/partition pair(s)", r->entries);
  *out = r;
  return 0;
}

void sl_producers_close(sl_producer_registry_t *r) {
  for (size_t i = 0; i < r->bucket_count; i++) {
    producer_entry_t *e = r->buckets[i];
    while (e) {
      producer_entry_t *next = e->chain;
      free(e);
      e = next;
    }
  }
  free(r->buckets);
  free(r);
}
