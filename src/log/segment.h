/* Internal to src/log: one segment of a partition log (a .log file and its two sparse indexes), and the small
 * filesystem helpers the log and the topic registry share. Nothing outside src/log includes this.
 *
 * Index representation: entries are kept in their on-disk, big-endian format. The active segment holds its indexes
 * in heap buffers (appended in memory and written through to the files); older segments map their index files
 * read-only on first use (sl_segment_load_index), so an idle partition costs no index memory. */
#ifndef SL_LOG_SEGMENT_H
#define SL_LOG_SEGMENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_INDEX_ENTRY 8                   /* u32 relative offset, u32 position */
#define SL_TIMEINDEX_ENTRY 12              /* i64 timestamp, u32 relative offset */
#define SL_SEGMENT_MAX_BYTES 0xFFFFFFFFull /* positions in the offset index are u32 */
#define SL_CLEAN_MARKER ".clean_shutdown"

typedef struct {
  uint8_t *data;  /* entries, big-endian as on disk */
  size_t n;       /* number of entries */
  size_t cap;     /* bytes allocated when heap-owned */
  size_t map_len; /* non-zero when `data` is an mmap of the index file */
} sl_index_t;

typedef struct sl_segment {
  int64_t base;            /* offset of the first batch; also the file name */
  int64_t end_offset;      /* offset after the last batch (== next segment's base) */
  int64_t last_batch_base; /* base offset of the last batch, -1 when empty */
  uint64_t size;           /* bytes of whole batches in the .log file */
  int64_t max_ts;          /* largest batch maxTimestamp seen, -1 if unknown */
  int64_t created_ms;      /* wall clock of the first append, or the file mtime after a restart */
  int log_fd;
  int index_fd, timeindex_fd; /* open only while the segment is active */
  bool index_loaded;          /* idx/tidx describe the whole segment */
  sl_index_t idx, tidx;
  uint64_t bytes_since_index; /* batch bytes appended since the last offset-index entry */
  int64_t tidx_last_ts;       /* timestamp of the last time-index entry, -1 if none */
} sl_segment_t;

/* File name of a segment's file: 20-digit base offset + ext (".log", ".index", ".timeindex"). */
void sl_segment_name(char *buf, size_t cap, int64_t base, const char *ext);

/* Creates a new, empty segment (truncating any stale files of the same name) with its indexes open for appends. */
int sl_segment_create(int dirfd, int64_t base, sl_segment_t **out);
/* Opens an existing segment's .log (size from fstat, mtime as created_ms); indexes are not touched. */
int sl_segment_open(int dirfd, int64_t base, sl_segment_t **out);
void sl_segment_free(sl_segment_t *s);
/* Removes the three files of a segment. */
void sl_segment_unlink_files(int dirfd, int64_t base);

/* Scans the .log from the start: with `check_crc` every batch's CRC-32C is verified; with `repair` the file is
 * truncated at the first torn or corrupt batch (logged at WARN naming `dir`; *truncated_bytes tells how much) and
 * size/end_offset are set from the scan; without it only the indexes are rebuilt (an old segment whose index files
 * were invalid). Rebuilds both indexes in memory and rewrites the index files. */
int sl_segment_rebuild(int dirfd, sl_segment_t *s, uint32_t interval, bool check_crc, bool repair, const char *dir,
                       uint64_t *truncated_bytes);
/* For the segment that will be active after a clean shutdown: loads both index files into memory, validates them
 * and walks the batch headers after the last index entry to find the end. Returns -EUCLEAN if anything is
 * inconsistent (the caller then rebuilds). */
int sl_segment_load_active(int dirfd, sl_segment_t *s, uint32_t interval);
/* For a non-active segment at open: end offset is the next segment's base; max_ts from the time index's last entry
 * (the roll always writes a final one), else unknown. */
void sl_segment_load_meta(int dirfd, sl_segment_t *s, int64_t next_base);
/* Makes idx/tidx available for lookups: maps the files of an old segment, rebuilding them if they are invalid. */
int sl_segment_load_index(int dirfd, sl_segment_t *s, uint32_t interval);
/* Opens the index files for appending (the segment becomes the active one). */
int sl_segment_open_index_fds(int dirfd, sl_segment_t *s);
/* Drops the in-memory index of a segment that stopped being active (it is mapped again on demand). */
void sl_segment_drop_index(sl_segment_t *s);

/* Index bookkeeping for one batch appended at `pos`; sets *add_idx / *add_tidx when entries were added (the last
 * entry of idx / tidx), so the caller can write them through to the files. */
void sl_segment_note_batch(sl_segment_t *s, int64_t base, int64_t max_ts, uint64_t pos, uint32_t len, uint32_t interval,
                           bool *add_idx, bool *add_tidx);
/* Appends a final time-index entry for the segment's max timestamp if the index lags behind it; writes it to the
 * timeindex fd when open. Returns 0 or -errno. */
int sl_segment_finish_timeindex(sl_segment_t *s);
/* Writes the last entries of idx / tidx to the open index files. */
int sl_segment_write_last_index(sl_segment_t *s, bool idx, bool tidx);

/* Finds the batch containing `offset` (index lookup then a header scan). Returns 0 with *pos, 1 if the segment has
 * no such batch, or -errno (-EIO for a malformed header). */
int sl_segment_find(sl_segment_t *s, int64_t offset, uint64_t *pos);
/* Position from which to scan for the first batch with maxTimestamp >= ts (time index, then offset index). */
uint64_t sl_segment_time_start(sl_segment_t *s, int64_t ts);
/* Reads the batch header at pos and checks it fits within the segment. Returns 0, or -EIO / -errno. */
int sl_segment_read_header(const sl_segment_t *s, uint64_t pos, uint8_t hdr[]);

/* Calls cb for each batch header (SL_BATCH_HEADER_SIZE bytes) from position 0 to the segment's size, reading in
 * large chunks. A non-zero cb return stops the walk and is returned. */
typedef int (*sl_segment_walk_cb)(void *arg, uint64_t pos, const uint8_t *hdr);
int sl_segment_walk(const sl_segment_t *s, sl_segment_walk_cb cb, void *arg);

/* Filesystem helpers. */
int sl_log_pread_full(int fd, void *buf, size_t len, uint64_t pos); /* -EIO on a short file */
int sl_log_pwrite_full(int fd, const void *buf, size_t len, uint64_t pos);
int sl_log_fsync_dir(int dirfd);
/* Removes a directory and the files in it (one level: partition directories hold only files). */
int sl_log_rmtree(int parent_fd, const char *name);

/* Partition internals used by the topic registry: after renaming a partition's directory (delete), the partition
 * must know its new path to remove it at the last release. */
struct sl_partition;
int sl_partition_set_dir(struct sl_partition *p, const char *dir);

#endif
