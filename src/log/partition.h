/* The partition log: a directory of segment files holding Kafka record batches exactly as received.
 *
 * Layout of one partition directory (`<data>/topics/<topic>-<n>/`):
 *   00000000000000000000.log        record batches, back to back, base offsets assigned by the broker
 *   00000000000000000000.index      sparse offset index: (u32 relative offset, u32 file position), big-endian
 *   00000000000000000000.timeindex  sparse time index: (i64 max timestamp so far, u32 relative offset), big-endian
 * Each segment is named after its base offset (20 digits). The active segment is the last one.
 *
 * Threading: every function here runs on the owning event-loop thread, except sl_partition_sync(), which the
 * flusher thread calls concurrently with appends (it takes the partition's mutex only to pick the fds to sync).
 * Ownership: a partition is reference-counted (sl_partition_keep/release); the topic registry holds one reference,
 * the flusher one per queued sync. The last release closes files (and removes the directory if it was deleted). */
#ifndef SL_LOG_PARTITION_H
#define SL_LOG_PARTITION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Record batch v2 header layout (offsets into the batch; see reference §3). */
enum {
  SL_BATCH_BASE_OFFSET = 0,
  SL_BATCH_LENGTH = 8,
  SL_BATCH_LEADER_EPOCH = 12,
  SL_BATCH_MAGIC = 16,
  SL_BATCH_CRC = 17,
  SL_BATCH_ATTRIBUTES = 21,
  SL_BATCH_LAST_OFFSET_DELTA = 23,
  SL_BATCH_BASE_TIMESTAMP = 27,
  SL_BATCH_MAX_TIMESTAMP = 35,
  SL_BATCH_PRODUCER_ID = 43,
  SL_BATCH_PRODUCER_EPOCH = 51,
  SL_BATCH_BASE_SEQUENCE = 53,
  SL_BATCH_RECORDS_COUNT = 57,
  SL_BATCH_HEADER_SIZE = 61, /* the records start here */
  SL_BATCH_LOG_OVERHEAD = 12 /* baseOffset + batchLength: batchLength counts the bytes after these */
};

typedef struct {
  uint64_t segment_bytes;        /* roll the active segment when it would exceed this (default 1 GiB) */
  int64_t segment_ms;            /* roll when the active segment's first batch is older than this (default 7 d) */
  int64_t retention_ms;          /* delete segments whose newest record is older; -1 = keep forever (default 7 d) */
  int64_t retention_bytes;       /* delete oldest segments while the partition is larger; -1 = no limit */
  uint32_t index_interval_bytes; /* bytes of batches between two index entries (default 4096) */
} sl_log_config_t;

void sl_log_config_defaults(sl_log_config_t *cfg);

typedef struct sl_partition sl_partition_t;

/* Opens (creating if absent) the partition in `dir`, running recovery: every segment after the last clean shutdown
 * is scanned, CRC-32C checked, and a torn or corrupt tail truncated (logged at WARN with the byte count). Indexes
 * that are missing or inconsistent are rebuilt. Returns 0 or a negative errno. */
int sl_partition_open(const char *dir, const sl_log_config_t *cfg, sl_partition_t **out);
void sl_partition_keep(sl_partition_t *p);
void sl_partition_release(sl_partition_t *p);
/* Marks the partition deleted: the directory is removed when the last reference goes. */
void sl_partition_mark_deleted(sl_partition_t *p);

/* Replaces the roll and retention settings (a topic's configs changed); the index interval stays. Loop thread. */
void sl_partition_set_config(sl_partition_t *p, const sl_log_config_t *cfg);

int64_t sl_partition_log_start_offset(const sl_partition_t *p);
int64_t sl_partition_log_end_offset(const sl_partition_t *p); /* next offset to assign = high watermark */
uint64_t sl_partition_size_bytes(const sl_partition_t *p);

/* Appends one record batch that the caller has already validated (magic 2, CRC, lengths). The log writes the base
 * offset (LEO) and partition leader epoch 0 into `batch` before writing it, so `batch` is modified. Rolls the
 * segment first if needed. On success *base_offset is the first offset of the batch. Returns 0 or -errno. */
int sl_partition_append(sl_partition_t *p, uint8_t *batch, size_t len, int64_t *base_offset);

/* Appends to `out` whole batches starting with the batch that contains `offset`, stopping before the batch that
 * would make the total exceed `max_bytes`; if `first_whole` the first batch is appended even when larger than
 * max_bytes (KIP-74). Sets *n_bytes to the bytes appended (0 when offset == LEO). Returns 0, or
 * SL_LOG_OUT_OF_RANGE if offset < log start or > LEO, or -errno. */
#define SL_LOG_OUT_OF_RANGE 1
int sl_partition_read(sl_partition_t *p, int64_t offset, size_t max_bytes, bool first_whole, sl_buf_t *out,
                      size_t *n_bytes);

/* First offset whose batch max timestamp >= ts; *offset = -1 if none. *timestamp is that batch's max timestamp
 * (close enough for ListOffsets: clients seek to the offset and filter). */
int sl_partition_offset_for_time(sl_partition_t *p, int64_t ts, int64_t *offset, int64_t *timestamp);

/* Calls `cb` with the header (SL_BATCH_HEADER_SIZE bytes) of every batch in the newest segments, oldest first, up to
 * at least `min_batches` batches back (used to rebuild idempotent-producer state after a restart). */
typedef void (*sl_batch_header_cb)(void *arg, const uint8_t *header);
int sl_partition_scan_recent(sl_partition_t *p, size_t min_batches, sl_batch_header_cb cb, void *arg);

/* Deletes whole non-active segments by retention_ms / retention_bytes (rolling the active one first if it is
 * entirely expired), and rolls the active segment by segment_ms. Advances the log start offset. Returns the
 * number of segments deleted or -errno. */
int sl_partition_enforce_retention(sl_partition_t *p, int64_t now_ms);

/* For the periodic background sync (loop thread): true if batches were appended since the previous call that
 * returned true, which the caller then answers with a sync request. */
bool sl_partition_claim_background_sync(sl_partition_t *p);

/* Makes every byte appended so far durable (fdatasync of the files that hold it). Thread-safe; blocking. */
int sl_partition_sync(sl_partition_t *p);
/* Writes the clean-shutdown marker after a final sync; call before the last release at shutdown. */
int sl_partition_close_clean(sl_partition_t *p);

#endif
