/* The topic registry: which topics exist, and their partitions, derived from the partition directories on disk.
 * Runs on the loop thread. Topic names follow Kafka's rules (sl_topic_name_valid). */
#ifndef SL_LOG_TOPICS_H
#define SL_LOG_TOPICS_H
#include <stdbool.h>
#include <stdint.h>

#include "log/partition.h"

/* A topic's own log settings (Kafka's topic configs retention.ms, retention.bytes, segment.bytes, segment.ms),
 * each SL_TOPIC_UNSET when the broker-wide value applies. Kept in `<data_dir>/topics/<topic>.config`. */
#define SL_TOPIC_UNSET INT64_MIN
typedef struct {
  int64_t retention_ms, retention_bytes, segment_bytes, segment_ms;
} sl_topic_overrides_t;

void sl_topic_overrides_clear(sl_topic_overrides_t *o);

typedef struct {
  char *name;                  /* owned */
  int32_t partition_count;
  sl_partition_t **partitions; /* owned array; each element holds one reference */
  sl_topic_overrides_t overrides;
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
/* The same with the topic's own settings (NULL: none), persisted before the topic is visible. */
int sl_topics_create_with(sl_topics_t *t, const char *name, size_t len, int32_t partitions,
                          const sl_topic_overrides_t *overrides, sl_topic_t **out);
/* Replaces a topic's own settings (all of them: unset fields go back to the broker-wide values), persists them and
 * applies them to its partitions. Returns 0 or -errno (nothing changed). */
int sl_topics_set_overrides(sl_topics_t *t, sl_topic_t *tp, const sl_topic_overrides_t *overrides);
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
