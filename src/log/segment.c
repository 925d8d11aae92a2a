/* Segments: the .log file of record batches and its sparse offset and time indexes; recovery scans and lookups.
 *
 * Every length read from a file is checked against the segment's size before it is used, so a corrupt
 * batchLength can stop a scan but never causes a large allocation or a read outside the segment. */
#include "log/segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/crc32c.h"
#include "core/log.h"
#include "log/partition.h"

#define WINDOW_BYTES (1u << 20) /* sequential scans read the file in chunks of this size */
#define MIN_BATCH_LENGTH (SL_BATCH_HEADER_SIZE - SL_BATCH_LOG_OVERHEAD) /* batchLength of a batch without records */

/* ---- filesystem helpers ---- */

int sl_log_pread_full(int fd, void *buf, size_t len, uint64_t pos) {
  uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = pread(fd, p, len, (off_t)pos);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EIO; /* the file is shorter than the segment size we track */
    p += n;
    len -= (size_t)n;
    pos += (uint64_t)n;
  }
  return 0;
}

int sl_log_pwrite_full(int fd, const void *buf, size_t len, uint64_t pos) {
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = pwrite(fd, p, len, (off_t)pos);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
    pos += (uint64_t)n;
  }
  return 0;
}

int sl_log_fsync_dir(int dirfd) {
  return fsync(dirfd) < 0 ? -errno : 0;
}

int sl_log_rmtree(int parent_fd, const char *name) {
  int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return errno == ENOENT ? 0 : -errno;
  DIR *d = fdopendir(fd);
  if (!d) {
    int err = -errno;
    close(fd);
    return err;
  }
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (unlinkat(fd, e->d_name, 0) < 0 && errno != ENOENT) rc = -errno;
  }
  closedir(d); /* closes fd */
  if (unlinkat(parent_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) rc = -errno;
  return rc;
}

/* ---- naming, open, close ---- */

void sl_segment_name(char *buf, size_t cap, int64_t base, const char *ext) {
  snprintf(buf, cap, "%020" PRId64 "%s", base, ext);
}

static int open_file(int dirfd, int64_t base, const char *ext, int flags) {
  char name[64];
  sl_segment_name(name, sizeof name, base, ext);
  int fd = openat(dirfd, name, flags | O_CLOEXEC, 0644);
  return fd < 0 ? -errno : fd;
}

static sl_segment_t *segment_new(int64_t base) {
  sl_segment_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->base = base;
  s->end_offset = base;
  s->last_batch_base = -1;
  s->max_ts = -1;
  s->tidx_last_ts = -1;
  s->log_fd = s->index_fd = s->timeindex_fd = -1;
  return s;
}

int sl_segment_create(int dirfd, int64_t base, sl_segment_t **out) {
  sl_segment_t *s = segment_new(base);
  if (!s) return -ENOMEM;
  int rc = open_file(dirfd, base, ".log", O_RDWR | O_CREAT | O_TRUNC);
  if (rc < 0) goto fail;
  s->log_fd = rc;
  rc = open_file(dirfd, base, ".index", O_RDWR | O_CREAT | O_TRUNC);
  if (rc < 0) goto fail;
  s->index_fd = rc;
  rc = open_file(dirfd, base, ".timeindex", O_RDWR | O_CREAT | O_TRUNC);
  if (rc < 0) goto fail;
  s->timeindex_fd = rc;
  s->index_loaded = true;
  s->created_ms = -1; /* set by the first append */
  *out = s;
  return 0;
fail:
  sl_segment_free(s);
  sl_segment_unlink_files(dirfd, base);
  return rc;
}

int sl_segment_open(int dirfd, int64_t base, sl_segment_t **out) {
  sl_segment_t *s = segment_new(base);
  if (!s) return -ENOMEM;
  int rc = open_file(dirfd, base, ".log", O_RDWR);
  if (rc < 0) goto fail;
  s->log_fd = rc;
  struct stat st;
  if (fstat(s->log_fd, &st) < 0) {
    rc = -errno;
    goto fail;
  }
  s->size = (uint64_t)st.st_size;
  s->created_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
  *out = s;
  return 0;
fail:
  sl_segment_free(s);
  return rc;
}

static void index_free(sl_index_t *ix) {
  if (ix->map_len)
    munmap(ix->data, ix->map_len);
  else
    free(ix->data);
  memset(ix, 0, sizeof *ix);
}

void sl_segment_drop_index(sl_segment_t *s) {
  index_free(&s->idx);
  index_free(&s->tidx);
  s->index_loaded = false;
}

void sl_segment_free(sl_segment_t *s) {
  if (!s) return;
  if (s->log_fd >= 0) close(s->log_fd);
  if (s->index_fd >= 0) close(s->index_fd);
  if (s->timeindex_fd >= 0) close(s->timeindex_fd);
  sl_segment_drop_index(s);
  free(s);
}

void sl_segment_unlink_files(int dirfd, int64_t base) {
  static const char *const exts[] = {".log", ".index", ".timeindex"};
  for (size_t i = 0; i < 3; i++) {
    char name[64];
    sl_segment_name(name, sizeof name, base, exts[i]);
    if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT) SL_WARN("log", "unlink %s: %s", name, strerror(errno));
  }
}

int sl_segment_open_index_fds(int dirfd, sl_segment_t *s) {
  if (s->index_fd < 0) {
    int fd = open_file(dirfd, s->base, ".index", O_RDWR | O_CREAT);
    if (fd < 0) return fd;
    s->index_fd = fd;
  }
  if (s->timeindex_fd < 0) {
    int fd = open_file(dirfd, s->base, ".timeindex", O_RDWR | O_CREAT);
    if (fd < 0) return fd;
    s->timeindex_fd = fd;
  }
  return 0;
}

/* ---- index entries ---- */

static uint32_t idx_rel(const sl_index_t *ix, size_t i) {
  return sl_load_be32(ix->data + i * SL_INDEX_ENTRY);
}
static uint32_t idx_pos(const sl_index_t *ix, size_t i) {
  return sl_load_be32(ix->data + i * SL_INDEX_ENTRY + 4);
}
static int64_t tidx_ts(const sl_index_t *ix, size_t i) {
  return (int64_t)sl_load_be64(ix->data + i * SL_TIMEINDEX_ENTRY);
}
static uint32_t tidx_rel(const sl_index_t *ix, size_t i) {
  return sl_load_be32(ix->data + i * SL_TIMEINDEX_ENTRY + 8);
}

/* Room for one more entry in a heap index; amortized doubling (aborts on OOM like sl_buf). */
static uint8_t *index_push(sl_index_t *ix, size_t entry) {
  size_t need = (ix->n + 1) * entry;
  if (need > ix->cap) {
    size_t cap = ix->cap ? ix->cap * 2 : 64 * entry;
    while (cap < need) cap *= 2;
    uint8_t *d = realloc(ix->data, cap);
    if (!d) abort();
    ix->data = d;
    ix->cap = cap;
  }
  return ix->data + ix->n++ * entry;
}

void sl_segment_note_batch(sl_segment_t *s, int64_t base, int64_t max_ts, uint64_t pos, uint32_t len, uint32_t interval,
                           bool *add_idx, bool *add_tidx) {
  *add_idx = *add_tidx = false;
  if (max_ts > s->max_ts) s->max_ts = max_ts;
  /* Like Kafka: index the first batch, then one every `interval` bytes; the time index gets an entry at the same
   * points when the max timestamp has grown, so a time lookup can always be turned into a file position. */
  if (s->idx.n == 0 || s->bytes_since_index >= interval) {
    uint8_t *e = index_push(&s->idx, SL_INDEX_ENTRY);
    sl_store_be32(e, (uint32_t)(base - s->base));
    sl_store_be32(e + 4, (uint32_t)pos);
    s->bytes_since_index = 0;
    *add_idx = true;
    if (s->max_ts > s->tidx_last_ts) {
      e = index_push(&s->tidx, SL_TIMEINDEX_ENTRY);
      sl_store_be64(e, (uint64_t)s->max_ts);
      sl_store_be32(e + 8, (uint32_t)(base - s->base));
      s->tidx_last_ts = s->max_ts;
      *add_tidx = true;
    }
  }
  s->bytes_since_index += len;
}

int sl_segment_write_last_index(sl_segment_t *s, bool idx, bool tidx) {
  int rc = 0;
  if (idx && s->index_fd >= 0) {
    size_t off = (s->idx.n - 1) * SL_INDEX_ENTRY;
    rc = sl_log_pwrite_full(s->index_fd, s->idx.data + off, SL_INDEX_ENTRY, off);
  }
  if (rc == 0 && tidx && s->timeindex_fd >= 0) {
    size_t off = (s->tidx.n - 1) * SL_TIMEINDEX_ENTRY;
    rc = sl_log_pwrite_full(s->timeindex_fd, s->tidx.data + off, SL_TIMEINDEX_ENTRY, off);
  }
  return rc;
}

int sl_segment_finish_timeindex(sl_segment_t *s) {
  /* Only a heap (active or just rebuilt) index can grow; a mapped one was finished when its segment rolled. */
  if (!s->index_loaded || s->tidx.map_len || s->last_batch_base < 0 || s->max_ts <= s->tidx_last_ts) return 0;
  uint8_t *e = index_push(&s->tidx, SL_TIMEINDEX_ENTRY);
  sl_store_be64(e, (uint64_t)s->max_ts);
  sl_store_be32(e + 8, (uint32_t)(s->last_batch_base - s->base));
  s->tidx_last_ts = s->max_ts;
  return sl_segment_write_last_index(s, false, true);
}

/* ---- batch headers and sequential reading ---- */

typedef struct {
  int64_t base;
  uint32_t length; /* batchLength: bytes after the first 12 */
  int32_t last_offset_delta;
  int64_t max_ts;
} hdr_t;

/* Checks the header of a batch at `pos` against the bytes available up to `limit`. Returns NULL or why not. */
static const char *parse_header(const uint8_t *h, uint64_t pos, uint64_t limit, hdr_t *out) {
  int32_t length = (int32_t)sl_load_be32(h + SL_BATCH_LENGTH);
  if (length < MIN_BATCH_LENGTH) return "batchLength too small";
  if (pos + SL_BATCH_LOG_OVERHEAD + (uint64_t)length > limit) return "batch extends past the end of the file";
  if (h[SL_BATCH_MAGIC] != 2) return "magic is not 2";
  int32_t lod = (int32_t)sl_load_be32(h + SL_BATCH_LAST_OFFSET_DELTA);
  if (lod < 0) return "negative lastOffsetDelta";
  out->base = (int64_t)sl_load_be64(h + SL_BATCH_BASE_OFFSET);
  out->length = (uint32_t)length;
  out->last_offset_delta = lod;
  out->max_ts = (int64_t)sl_load_be64(h + SL_BATCH_MAX_TIMESTAMP);
  return NULL;
}

/* A read-ahead window for scans: one pread per WINDOW_BYTES instead of one per batch header. */
typedef struct {
  int fd;
  uint8_t *buf;
  size_t cap;
  uint64_t start;
  size_t len;
  uint64_t limit; /* never read at or past this position */
} window_t;

static int window_init(window_t *w, int fd, uint64_t limit) {
  w->fd = fd;
  w->cap = limit < WINDOW_BYTES ? (size_t)(limit ? limit : 1) : WINDOW_BYTES;
  w->buf = malloc(w->cap);
  w->start = 0;
  w->len = 0;
  w->limit = limit;
  return w->buf ? 0 : -ENOMEM;
}

/* Points *out at file bytes [pos, pos+n) (n <= cap), or NULL when that range passes the limit. */
static int window_get(window_t *w, uint64_t pos, size_t n, const uint8_t **out) {
  *out = NULL;
  if (n > w->cap || pos + n > w->limit) return 0;
  if (pos >= w->start && pos + n <= w->start + w->len) {
    *out = w->buf + (pos - w->start);
    return 0;
  }
  uint64_t left = w->limit - pos;
  size_t want = left < w->cap ? (size_t)left : w->cap;
  int rc = sl_log_pread_full(w->fd, w->buf, want, pos);
  if (rc < 0) {
    w->len = 0;
    return rc;
  }
  w->start = pos;
  w->len = want;
  *out = w->buf;
  return 0;
}

int sl_segment_read_header(const sl_segment_t *s, uint64_t pos, uint8_t hdr[]) {
  if (pos + SL_BATCH_HEADER_SIZE > s->size) return -EIO;
  int rc = sl_log_pread_full(s->log_fd, hdr, SL_BATCH_HEADER_SIZE, pos);
  if (rc < 0) return rc;
  hdr_t h;
  const char *why = parse_header(hdr, pos, s->size, &h);
  if (why) {
    SL_ERROR("log", "segment %020" PRId64 ": malformed batch at position %" PRIu64 ": %s", s->base, pos, why);
    return -EIO;
  }
  return 0;
}

int sl_segment_walk(const sl_segment_t *s, sl_segment_walk_cb cb, void *arg) {
  if (s->size == 0) return 0;
  window_t w;
  int rc = window_init(&w, s->log_fd, s->size);
  if (rc < 0) return rc;
  uint64_t pos = 0;
  while (pos < s->size) {
    const uint8_t *h;
    rc = window_get(&w, pos, SL_BATCH_HEADER_SIZE, &h);
    if (rc < 0) break;
    hdr_t hd;
    if (!h || parse_header(h, pos, s->size, &hd)) {
      SL_ERROR("log", "segment %020" PRId64 ": malformed batch at position %" PRIu64, s->base, pos);
      rc = -EIO;
      break;
    }
    rc = cb(arg, pos, h);
    if (rc) break;
    pos += SL_BATCH_LOG_OVERHEAD + hd.length;
  }
  free(w.buf);
  return rc;
}

/* ---- index validation, loading, rebuilding ---- */

static bool idx_valid(const sl_segment_t *s, const sl_index_t *ix) {
  if ((ix->n == 0) != (s->size == 0)) return false; /* the first batch is always indexed */
  for (size_t i = 0; i < ix->n; i++) {
    uint32_t rel = idx_rel(ix, i), pos = idx_pos(ix, i);
    if (i == 0 ? (rel != 0 || pos != 0) : (rel <= idx_rel(ix, i - 1) || pos <= idx_pos(ix, i - 1))) return false;
    if (pos >= s->size || (int64_t)rel >= s->end_offset - s->base) return false;
  }
  return true;
}

static bool tidx_valid(const sl_segment_t *s, const sl_index_t *ix) {
  for (size_t i = 0; i < ix->n; i++) {
    if ((int64_t)tidx_rel(ix, i) >= s->end_offset - s->base) return false;
    if (i > 0 && (tidx_ts(ix, i) <= tidx_ts(ix, i - 1) || tidx_rel(ix, i) < tidx_rel(ix, i - 1))) return false;
  }
  return true;
}

/* Upper bound for an index file of a segment of s->size bytes: one entry per batch (plus the final time entry). */
static uint64_t index_bound(const sl_segment_t *s, size_t entry) {
  return (s->size / SL_BATCH_HEADER_SIZE + 2) * entry;
}

static int write_index_file(int dirfd, int64_t base, const char *ext, const sl_index_t *ix, size_t entry) {
  int fd = open_file(dirfd, base, ext, O_WRONLY | O_CREAT | O_TRUNC);
  if (fd < 0) return fd;
  int rc = ix->n ? sl_log_pwrite_full(fd, ix->data, ix->n * entry, 0) : 0;
  close(fd);
  return rc;
}

int sl_segment_rebuild(int dirfd, sl_segment_t *s, uint32_t interval, bool check_crc, bool repair, const char *dir,
                       uint64_t *truncated_bytes) {
  *truncated_bytes = 0;
  struct stat st;
  if (fstat(s->log_fd, &st) < 0) return -errno;
  uint64_t file_size = (uint64_t)st.st_size;
  uint64_t limit = repair ? file_size : s->size;
  if (limit > SL_SEGMENT_MAX_BYTES) limit = SL_SEGMENT_MAX_BYTES;

  sl_segment_drop_index(s);
  s->index_loaded = true; /* heap indexes from here on */
  s->bytes_since_index = 0;
  s->tidx_last_ts = -1;
  int64_t max_ts = -1, last_base = -1, expected = s->base;
  s->max_ts = -1;

  window_t w;
  int rc = window_init(&w, s->log_fd, limit);
  if (rc < 0) return rc;
  uint64_t pos = 0;
  const char *why = NULL;
  while (pos < limit) {
    const uint8_t *h;
    rc = window_get(&w, pos, SL_BATCH_HEADER_SIZE, &h);
    if (rc < 0) goto out;
    if (!h) {
      why = "torn batch header";
      break;
    }
    hdr_t hd;
    why = parse_header(h, pos, limit, &hd);
    if (why) break;
    if (hd.base != expected) {
      why = "base offset not contiguous";
      break;
    }
    if (hd.base + hd.last_offset_delta - s->base > INT32_MAX) {
      why = "relative offset overflows the index";
      break;
    }
    uint64_t total = SL_BATCH_LOG_OVERHEAD + (uint64_t)hd.length;
    if (check_crc) {
      uint32_t stored = sl_load_be32(h + SL_BATCH_CRC); /* h may move when the window refills */
      uint32_t crc = 0;
      uint64_t q = pos + SL_BATCH_ATTRIBUTES, end = pos + total;
      while (q < end) {
        size_t n = end - q < w.cap ? (size_t)(end - q) : w.cap;
        const uint8_t *d;
        rc = window_get(&w, q, n, &d);
        if (rc < 0) goto out;
        crc = sl_crc32c(crc, d, n);
        q += n;
      }
      if (crc != stored) {
        why = "CRC-32C mismatch";
        break;
      }
    }
    bool a, b;
    sl_segment_note_batch(s, hd.base, hd.max_ts, pos, (uint32_t)total, interval, &a, &b);
    if (hd.max_ts > max_ts) max_ts = hd.max_ts;
    last_base = hd.base;
    expected = hd.base + hd.last_offset_delta + 1;
    pos += total;
  }
  s->last_batch_base = last_base;
  if (repair) {
    s->size = pos;
    s->end_offset = expected;
    if (pos < file_size) {
      *truncated_bytes = file_size - pos;
      if (ftruncate(s->log_fd, (off_t)pos) < 0) {
        rc = -errno;
        goto out;
      }
      SL_WARN("log",
              "recovered partition %s: truncated %" PRIu64 " bytes of torn/corrupt data at offset %" PRId64
              " (segment %020" PRId64 ", position %" PRIu64 ": %s)",
              dir, file_size - pos, expected, s->base, pos, why ? why : "beyond the maximum segment size");
    }
  } else if (pos < limit) {
    SL_ERROR("log", "partition %s segment %020" PRId64 ": malformed batch at position %" PRIu64 ": %s", dir, s->base,
             pos, why ? why : "?");
  }
  rc = sl_segment_finish_timeindex(s);
  if (rc == 0) rc = write_index_file(dirfd, s->base, ".index", &s->idx, SL_INDEX_ENTRY);
  if (rc == 0) rc = write_index_file(dirfd, s->base, ".timeindex", &s->tidx, SL_TIMEINDEX_ENTRY);
out:
  free(w.buf);
  return rc;
}

/* Reads a whole index file into a heap index (active segment after a clean shutdown). */
static int read_index_fd(int fd, const sl_segment_t *s, size_t entry, sl_index_t *ix) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  uint64_t size = (uint64_t)st.st_size;
  if (size % entry || size > index_bound(s, entry)) return -EUCLEAN;
  if (size == 0) return 0;
  ix->data = malloc((size_t)size);
  if (!ix->data) return -ENOMEM;
  ix->cap = (size_t)size;
  ix->n = (size_t)(size / entry);
  return sl_log_pread_full(fd, ix->data, (size_t)size, 0);
}

int sl_segment_load_active(int dirfd, sl_segment_t *s, uint32_t interval) {
  int rc = sl_segment_open_index_fds(dirfd, s);
  if (rc < 0) return rc;
  sl_segment_drop_index(s);
  s->end_offset = INT64_MAX; /* unknown yet: lets idx_valid accept any relative offset for now */
  rc = read_index_fd(s->index_fd, s, SL_INDEX_ENTRY, &s->idx);
  if (rc == 0) rc = read_index_fd(s->timeindex_fd, s, SL_TIMEINDEX_ENTRY, &s->tidx);
  if (rc == 0 && (!idx_valid(s, &s->idx) || !tidx_valid(s, &s->tidx))) rc = -EUCLEAN;
  if (rc < 0) goto fail;

  s->tidx_last_ts = s->tidx.n ? tidx_ts(&s->tidx, s->tidx.n - 1) : -1;
  s->max_ts = s->tidx_last_ts;
  s->end_offset = s->base;
  s->last_batch_base = -1;
  /* The batches after the last index entry are not in the index: walk their headers to find the end. */
  uint64_t pos = s->idx.n ? idx_pos(&s->idx, s->idx.n - 1) : 0;
  int64_t expected = s->idx.n ? s->base + idx_rel(&s->idx, s->idx.n - 1) : s->base;
  s->bytes_since_index = s->size - pos;
  while (pos < s->size) {
    uint8_t h[SL_BATCH_HEADER_SIZE];
    hdr_t hd;
    if (pos + SL_BATCH_HEADER_SIZE > s->size) {
      rc = -EUCLEAN;
      goto fail;
    }
    rc = sl_log_pread_full(s->log_fd, h, sizeof h, pos);
    if (rc < 0) goto fail;
    if (parse_header(h, pos, s->size, &hd) || hd.base != expected) {
      rc = -EUCLEAN;
      goto fail;
    }
    if (hd.max_ts > s->max_ts) s->max_ts = hd.max_ts;
    s->last_batch_base = hd.base;
    expected = hd.base + hd.last_offset_delta + 1;
    pos += SL_BATCH_LOG_OVERHEAD + hd.length;
  }
  s->end_offset = expected;
  if (!tidx_valid(s, &s->tidx)) { /* now that the end offset is known */
    rc = -EUCLEAN;
    goto fail;
  }
  s->index_loaded = true;
  (void)interval;
  return 0;
fail:
  sl_segment_drop_index(s);
  s->end_offset = s->base;
  return rc;
}

void sl_segment_load_meta(int dirfd, sl_segment_t *s, int64_t next_base) {
  s->end_offset = next_base;
  int fd = open_file(dirfd, s->base, ".timeindex", O_RDONLY);
  if (fd < 0) return;
  struct stat st;
  uint8_t e[SL_TIMEINDEX_ENTRY];
  if (fstat(fd, &st) == 0 && st.st_size >= SL_TIMEINDEX_ENTRY && st.st_size % SL_TIMEINDEX_ENTRY == 0 &&
      sl_log_pread_full(fd, e, sizeof e, (uint64_t)st.st_size - SL_TIMEINDEX_ENTRY) == 0) {
    s->max_ts = (int64_t)sl_load_be64(e);
  }
  close(fd);
}

/* Maps an old segment's index file read-only. Returns 0, or -EUCLEAN when the file is missing or malformed. */
static int map_index(int dirfd, const sl_segment_t *s, const char *ext, size_t entry, sl_index_t *ix) {
  int fd = open_file(dirfd, s->base, ext, O_RDONLY);
  if (fd < 0) return fd == -ENOENT ? -EUCLEAN : fd;
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) < 0) {
    rc = -errno;
  } else if ((uint64_t)st.st_size % entry || (uint64_t)st.st_size > index_bound(s, entry)) {
    rc = -EUCLEAN;
  } else if (st.st_size > 0) {
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      rc = -errno;
    } else {
      ix->data = m;
      ix->map_len = (size_t)st.st_size;
      ix->n = (size_t)st.st_size / entry;
    }
  }
  close(fd);
  return rc;
}

int sl_segment_load_index(int dirfd, sl_segment_t *s, uint32_t interval) {
  if (s->index_loaded) return 0;
  int rc = map_index(dirfd, s, ".index", SL_INDEX_ENTRY, &s->idx);
  if (rc == 0) rc = map_index(dirfd, s, ".timeindex", SL_TIMEINDEX_ENTRY, &s->tidx);
  if (rc == 0 && idx_valid(s, &s->idx) && tidx_valid(s, &s->tidx)) {
    s->index_loaded = true;
    return 0;
  }
  sl_segment_drop_index(s);
  if (rc < 0 && rc != -EUCLEAN) return rc;
  SL_WARN("log", "segment %020" PRId64 ": index files missing or invalid, rebuilding", s->base);
  uint64_t unused;
  return sl_segment_rebuild(dirfd, s, interval, false, false, "(lazy index rebuild)", &unused);
}

/* ---- lookups ---- */

/* Position of the last index entry whose relative offset is <= rel (0 if none). */
static uint64_t index_floor(const sl_index_t *ix, uint32_t rel) {
  size_t lo = 0, hi = ix->n; /* answer in [lo, hi): first entry with rel_i > rel, minus one */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (idx_rel(ix, mid) <= rel)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo ? idx_pos(ix, lo - 1) : 0;
}

int sl_segment_find(sl_segment_t *s, int64_t offset, uint64_t *pos) {
  if (offset < s->base || offset >= s->end_offset) return 1;
  uint64_t p = index_floor(&s->idx, (uint32_t)(offset - s->base));
  while (p < s->size) {
    uint8_t h[SL_BATCH_HEADER_SIZE];
    int rc = sl_segment_read_header(s, p, h);
    if (rc < 0) return rc;
    hdr_t hd;
    parse_header(h, p, s->size, &hd);
    if (hd.base + hd.last_offset_delta >= offset) {
      *pos = p;
      return 0;
    }
    p += SL_BATCH_LOG_OVERHEAD + hd.length;
  }
  return 1;
}

uint64_t sl_segment_time_start(sl_segment_t *s, int64_t ts) {
  /* Entry i says: every batch up to relative offset rel_i has maxTimestamp <= ts_i. The last entry with
   * ts_i < ts therefore marks a batch before the answer. */
  size_t lo = 0, hi = s->tidx.n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (tidx_ts(&s->tidx, mid) < ts)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0) return 0;
  return index_floor(&s->idx, tidx_rel(&s->tidx, lo - 1));
}
