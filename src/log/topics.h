/* The topic registry: which topics exist, and their partitions, derived from the partition directories on disk.
 * Runs on the loop thread. Topic names follow Kafka's rules (sl_topic_name_valid). */
#ifndef SL_LOG_TOPICS_H
#define SL_LOG_TOPICS_H
#include <stdbool.h>
#include <stdint.h>

#include "log/partition.h"

typedef struct {
  char *name;                  /* owned */
  int32_t partition_count;
  sl_partition_t **partitions; /* owned array; each element holds one reference */
} sl_topic_t;

typedef struct sl_topics sl_topics_t;

/* Opens `<data_dir>/topics`, recovering every partition found there. */
int sl_topics_open(const char *data_dir, const sl_log_config_t *cfg, sl_topics_t **out);
/* Syncs, writes clean-shutdown markers and frees everything. */
void sl_topics_close(sl_topics_t *t);

bool sl_topic_name_valid(const char *name, size_t len);
sl_topic_t *sl_topics_find(sl_topics_t *t, const char *name, size_t len);
/* Returns 0, -EEXIST, -EINVAL (bad name or count), or -errno. *out may be NULL. */
int sl_topics_create(sl_topics_t *t, const char *name, size_t len, int32_t partitions, sl_topic_t **out);
/* Grows a topic to `total` partitions (Kafka's CreatePartitions: never fewer). Returns 0, -ENOENT, -EINVAL (not more
 * than now, or too many) or -errno, in which case the partitions created before the error remain. */
int sl_topics_add_partitions(sl_topics_t *t, const char *name, size_t len, int32_t total);
/* Returns 0 or -ENOENT. The partitions' directories go when their last reference is released. */
int sl_topics_delete(sl_topics_t *t, const char *name, size_t len);

size_t sl_topics_count(const sl_topics_t *t);
/* Iteration in name order: i from 0 to count-1. Invalidated by create/delete. */
sl_topic_t *sl_topics_at(sl_topics_t *t, size_t i);

/* Applies retention to every partition (called from a periodic timer). */
void sl_topics_enforce_retention(sl_topics_t *t, int64_t now_ms);

#endif
