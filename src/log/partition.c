/* The partition log: appends, reads, segment roll, retention, recovery at open and durability (sync).
 *
 * Segment lifecycle (one partition directory):
 *
 *   sl_partition_open()
 *     |  .clean_shutdown present?  yes: sl_segment_load_active() (trust files, validate indexes, walk the tail)
 *     |                            no:  sl_segment_rebuild() of every segment from the recovery point on (CRC scan,
 *     |                                 ftruncate torn/corrupt tail, rebuild indexes, drop later segments after a
 *     |                                 gap), then fdatasync of those segments
 *
 * The recovery point (.recovery_point, RECOVERY_POINT) is the base offset of the active segment when a sync last
 * completed: every segment before it was synced whole. sl_partition_sync() rewrites it when it has moved, which is
 * once per roll; without the file (or with a bad one) recovery scans every segment, as it must.
 *     v
 *   [ACTIVE segment] --sl_partition_append()--> [ACTIVE]   one pwrite per batch, index entries written through
 *     |
 *     | roll(): from append (size would exceed segment_bytes, segment older than segment_ms, relative offset or
 *     |         position would overflow the u32 index), or from sl_partition_enforce_retention()
 *     v
 *   [OLD segment]  read-only; its index is mapped lazily (sl_segment_load_index); a dup of its fd and its index
 *     |            fds wait on `to_sync` until the next sl_partition_sync() fdatasyncs and closes them; the new
 *     |            file's directory entry is made durable by the same sync (dir_dirty)
 *     | sl_partition_enforce_retention(): newest timestamp older than retention_ms, or total size over
 *     v                                   retention_bytes (oldest first, never the active segment)
 *   [UNLINKED]     log start offset = base offset of the first remaining segment
 *
 * Threads: everything runs on the loop thread except sl_partition_sync(), which only touches `active_fd`,
 * `to_sync` and `dir_dirty` under `mu`, and the immutable `dirfd`. */
#include "log/partition.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "log/segment.h"

/* If nobody syncs (acks=1 only), rolled segments' fds would pile up on to_sync; past this many the roll syncs them
 * itself (blocking, but only in that unusual configuration). */
#define MAX_PENDING_SYNC_FDS 192
#define RECOVERY_POINT ".recovery_point"
#define RECOVERY_POINT_TMP ".recovery_point.tmp"

struct sl_partition {
  atomic_int refs;
  atomic_bool deleted;
  char *dir;
  int dirfd;
  sl_log_config_t cfg;
  sl_segment_t **segs; /* oldest first; the last one is active; never empty */
  size_t nseg, segs_cap;
  int64_t leo;
  int64_t background_sync_leo; /* leo when the periodic sync last claimed this partition */
  uint64_t total_size;
  bool clean_marker; /* .clean_shutdown is on disk */
  bool index_error;  /* an index write failed: the next open must rebuild, so never claim a clean shutdown */
  /* Where the last read stopped, so a consumer's next fetch skips the index lookup. */
  int64_t cursor_offset, cursor_seg_base;
  uint64_t cursor_pos;

  pthread_mutex_t mu; /* guards the fields below, shared with the flusher thread */
  int active_fd;
  int64_t active_base;       /* base offset of the active segment */
  int64_t recovery_point;    /* the base last written to RECOVERY_POINT (INT64_MIN: none) */
  int *to_sync;
  size_t n_sync, sync_cap;
  bool dir_dirty;
};

void sl_log_config_defaults(sl_log_config_t *cfg) {
  cfg->segment_bytes = 1ull << 30;
  cfg->segment_ms = 7LL * 24 * 3600 * 1000;
  cfg->retention_ms = 7LL * 24 * 3600 * 1000;
  cfg->retention_bytes = -1;
  cfg->index_interval_bytes = 4096;
}

void sl_partition_set_config(sl_partition_t *p, const sl_log_config_t *cfg) {
  pthread_mutex_lock(&p->mu);
  p->cfg.segment_bytes = cfg->segment_bytes == 0 || cfg->segment_bytes > SL_SEGMENT_MAX_BYTES ? SL_SEGMENT_MAX_BYTES
                                                                                             : cfg->segment_bytes;
  p->cfg.segment_ms = cfg->segment_ms;
  p->cfg.retention_ms = cfg->retention_ms;
  p->cfg.retention_bytes = cfg->retention_bytes;
  pthread_mutex_unlock(&p->mu);
}

static sl_segment_t *active(const sl_partition_t *p) {
  return p->segs[p->nseg - 1];
}

static int segs_reserve(sl_partition_t *p) {
  if (p->nseg < p->segs_cap) return 0;
  size_t cap = p->segs_cap ? p->segs_cap * 2 : 4;
  sl_segment_t **v = realloc(p->segs, cap * sizeof *v);
  if (!v) return -ENOMEM;
  p->segs = v;
  p->segs_cap = cap;
  return 0;
}

/* Index of the segment holding `offset`: the last one whose base is <= offset. */
static size_t seg_for(const sl_partition_t *p, int64_t offset) {
  size_t lo = 0, hi = p->nseg;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (p->segs[mid]->base <= offset)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo ? lo - 1 : 0;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Base offsets of the segment files in the directory, sorted. */
static int list_segments(int dirfd, int64_t **out, size_t *n_out) {
  int fd = dup(dirfd);
  if (fd < 0) return -errno;
  DIR *d = fdopendir(fd);
  if (!d) {
    int err = -errno;
    close(fd);
    return err;
  }
  rewinddir(d);
  int64_t *v = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *name = e->d_name;
    if (strlen(name) != 24 || strcmp(name + 20, ".log") != 0 || strspn(name, "0123456789") != 20) continue;
    unsigned long long base = strtoull(name, NULL, 10);
    if (base > INT64_MAX) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 8;
      int64_t *nv = realloc(v, cap * sizeof *nv);
      if (!nv) {
        rc = -ENOMEM;
        break;
      }
      v = nv;
    }
    v[n++] = (int64_t)base;
  }
  closedir(d);
  if (rc < 0) {
    free(v);
    return rc;
  }
  if (n) qsort(v, n, sizeof *v, cmp_i64);
  *out = v;
  *n_out = n;
  return 0;
}

/* Drops segments [from, nseg) at open, when recovery found that they follow lost data. */
static void drop_segments_from(sl_partition_t *p, size_t from) {
  while (p->nseg > from) {
    sl_segment_t *s = p->segs[--p->nseg];
    SL_WARN("log", "recovered partition %s: removing segment %020" PRId64 " (%" PRIu64 " bytes) that follows torn data",
            p->dir, s->base, s->size);
    sl_segment_unlink_files(p->dirfd, s->base);
    sl_segment_free(s);
  }
}

/* The recovery point on disk, or INT64_MIN when there is none or it cannot be read (then everything is scanned). */
static int64_t read_recovery_point(int dirfd) {
  int fd = openat(dirfd, RECOVERY_POINT, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return INT64_MIN;
  char buf[32];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return INT64_MIN;
  buf[n] = 0;
  char *end;
  errno = 0;
  long long v = strtoll(buf, &end, 10);
  return errno || end == buf || (*end && *end != '\n') || v < 0 ? INT64_MIN : (int64_t)v;
}

/* Off the loop (the flusher thread) after a successful sync; rare: the point moves once per roll. A lost or stale
 * file only makes the next recovery scan more. */
static int write_recovery_point(int dirfd, int64_t base) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%" PRId64 "\n", base);
  int fd = openat(dirfd, RECOVERY_POINT_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  int rc = write(fd, buf, (size_t)n) == n && fdatasync(fd) == 0 ? 0 : -errno;
  close(fd);
  if (rc == 0 && renameat(dirfd, RECOVERY_POINT_TMP, dirfd, RECOVERY_POINT) < 0) rc = -errno;
  return rc;
}

static int recover(sl_partition_t *p, bool clean) {
  sl_segment_t *last = active(p);
  uint32_t interval = p->cfg.index_interval_bytes;
  uint64_t truncated = 0;
  int rc;
  for (size_t k = 0; k + 1 < p->nseg; k++) sl_segment_load_meta(p->dirfd, p->segs[k], p->segs[k + 1]->base);
  if (clean) {
    rc = sl_segment_load_active(p->dirfd, last, interval);
    if (rc != -EUCLEAN) return rc;
    SL_WARN("log", "partition %s: index of segment %020" PRId64 " inconsistent after a clean shutdown, rebuilding",
            p->dir, last->base);
    return sl_segment_rebuild(p->dirfd, last, interval, true, true, p->dir, &truncated);
  }
  /* Only segments from the recovery point on can hold torn data; older ones keep their (lazily validated) indexes.
   * The point is a segment base: if retention removed that segment, every remaining one came later. */
  int64_t rp = read_recovery_point(p->dirfd);
  size_t first = 0;
  while (rp != INT64_MIN && first + 1 < p->nseg && p->segs[first]->base < rp) first++;
  if (rp != INT64_MIN && p->segs[first]->base != rp) first = 0;
  SL_INFO("log", "partition %s: unclean shutdown, checking %zu segment(s) from offset %" PRId64, p->dir,
          p->nseg - first, p->segs[first]->base);
  for (size_t k = first; k < p->nseg; k++) {
    sl_segment_t *s = p->segs[k];
    rc = sl_segment_rebuild(p->dirfd, s, interval, true, true, p->dir, &truncated);
    if (rc < 0) return rc;
    if (k + 1 < p->nseg) {
      if (truncated || s->end_offset != p->segs[k + 1]->base) {
        drop_segments_from(p, k + 1);
        break;
      }
      sl_segment_drop_index(s); /* an old segment: mapped again on demand */
    }
  }
  /* What the crash left in the page cache but not on disk must be durable before a later recovery point says so. */
  for (size_t k = first; k < p->nseg; k++)
    if (p->segs[k]->log_fd >= 0 && fdatasync(p->segs[k]->log_fd) < 0) return -errno;
  return 0;
}

int sl_partition_open(const char *dir, const sl_log_config_t *cfg, sl_partition_t **out) {
  sl_partition_t *p = calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  int rc = 0;
  int64_t *bases = NULL;
  size_t nbases = 0;
  atomic_init(&p->refs, 1);
  atomic_init(&p->deleted, false);
  p->dirfd = -1;
  p->active_fd = -1;
  p->cursor_offset = -1;
  pthread_mutex_init(&p->mu, NULL);
  if (cfg)
    p->cfg = *cfg;
  else
    sl_log_config_defaults(&p->cfg);
  if (p->cfg.segment_bytes == 0 || p->cfg.segment_bytes > SL_SEGMENT_MAX_BYTES)
    p->cfg.segment_bytes = SL_SEGMENT_MAX_BYTES;
  if (p->cfg.index_interval_bytes == 0) p->cfg.index_interval_bytes = 1;
  p->dir = strdup(dir);
  if (!p->dir) {
    rc = -ENOMEM;
    goto fail;
  }
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
    rc = -errno;
    goto fail;
  }
  p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (p->dirfd < 0) {
    rc = -errno;
    goto fail;
  }
  bool clean = faccessat(p->dirfd, SL_CLEAN_MARKER, F_OK, 0) == 0;
  rc = list_segments(p->dirfd, &bases, &nbases);
  if (rc < 0) goto fail;
  for (size_t i = 0; i < nbases; i++) {
    if ((rc = segs_reserve(p)) < 0) goto fail;
    if ((rc = sl_segment_open(p->dirfd, bases[i], &p->segs[p->nseg])) < 0) goto fail;
    p->nseg++;
  }
  if (p->nseg == 0) {
    if ((rc = segs_reserve(p)) < 0) goto fail;
    if ((rc = sl_segment_create(p->dirfd, 0, &p->segs[0])) < 0) goto fail;
    p->nseg = 1;
    p->dir_dirty = true;
  } else {
    if ((rc = recover(p, clean)) < 0) goto fail;
    if ((rc = sl_segment_open_index_fds(p->dirfd, active(p))) < 0) goto fail;
  }
  if (clean) {
    /* Removed (durably) now, so that a crash from here on is detected at the next open. */
    if (unlinkat(p->dirfd, SL_CLEAN_MARKER, 0) < 0 || sl_log_fsync_dir(p->dirfd) < 0) {
      rc = -errno;
      goto fail;
    }
  }
  for (size_t i = 0; i < p->nseg; i++) p->total_size += p->segs[i]->size;
  p->leo = active(p)->end_offset;
  p->background_sync_leo = p->leo; /* recovered data is on disk already */
  p->active_fd = active(p)->log_fd;
  p->active_base = active(p)->base;
  p->recovery_point = read_recovery_point(p->dirfd);
  free(bases);
  SL_DEBUG("log", "opened partition %s: %zu segment(s), log start %" PRId64 ", end %" PRId64, dir, p->nseg,
           p->segs[0]->base, p->leo);
  *out = p;
  return 0;
fail:
  SL_ERROR("log", "cannot open partition %s: %s", dir, strerror(-rc));
  free(bases);
  for (size_t i = 0; i < p->nseg; i++) sl_segment_free(p->segs[i]);
  free(p->segs);
  if (p->dirfd >= 0) close(p->dirfd);
  pthread_mutex_destroy(&p->mu);
  free(p->dir);
  free(p);
  return rc;
}

void sl_partition_keep(sl_partition_t *p) {
  atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

static void partition_destroy(sl_partition_t *p) {
  for (size_t i = 0; i < p->nseg; i++) sl_segment_free(p->segs[i]);
  free(p->segs);
  for (size_t i = 0; i < p->n_sync; i++) close(p->to_sync[i]);
  free(p->to_sync);
  close(p->dirfd);
  if (atomic_load(&p->deleted)) {
    int rc = sl_log_rmtree(AT_FDCWD, p->dir);
    if (rc < 0) SL_WARN("log", "cannot remove deleted partition %s: %s", p->dir, strerror(-rc));
  }
  pthread_mutex_destroy(&p->mu);
  free(p->dir);
  free(p);
}

void sl_partition_release(sl_partition_t *p) {
  if (!p) return;
  if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) partition_destroy(p);
}

void sl_partition_mark_deleted(sl_partition_t *p) {
  atomic_store(&p->deleted, true);
}

int sl_partition_set_dir(struct sl_partition *p, const char *dir) {
  char *d = strdup(dir);
  if (!d) return -ENOMEM;
  pthread_mutex_lock(&p->mu); /* the sync thread may be logging the old name */
  char *old = p->dir;
  p->dir = d;
  pthread_mutex_unlock(&p->mu);
  free(old);
  return 0;
}

int64_t sl_partition_log_start_offset(const sl_partition_t *p) {
  return p->segs[0]->base;
}
int64_t sl_partition_log_end_offset(const sl_partition_t *p) {
  return p->leo;
}
uint64_t sl_partition_size_bytes(const sl_partition_t *p) {
  return p->total_size;
}

/* Queues fds for the next sync (taking ownership), or syncs them here when too many are already waiting. */
static void queue_sync_locked(sl_partition_t *p, const int *fds, size_t n) {
  if (p->n_sync + n > p->sync_cap && p->n_sync + n <= MAX_PENDING_SYNC_FDS) {
    size_t cap = p->sync_cap ? p->sync_cap * 2 : 8;
    while (cap < p->n_sync + n) cap *= 2;
    int *v = realloc(p->to_sync, cap * sizeof *v);
    if (v) {
      p->to_sync = v;
      p->sync_cap = cap;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (fds[i] < 0) continue;
    if (p->n_sync < p->sync_cap) {
      p->to_sync[p->n_sync++] = fds[i];
    } else {
      if (fdatasync(fds[i]) < 0) SL_ERROR("log", "partition %s: fdatasync: %s", p->dir, strerror(errno));
      close(fds[i]);
    }
  }
}

/* Makes a new, empty active segment starting at the LEO. The old one stays readable; its data and index files
 * are synced by the next sl_partition_sync(). */
static int roll(sl_partition_t *p) {
  sl_segment_t *old = active(p);
  if (old->size == 0) return 0;
  int rc = segs_reserve(p);
  if (rc < 0) return rc;
  if (sl_segment_finish_timeindex(old) < 0) p->index_error = true;
  sl_segment_t *s;
  rc = sl_segment_create(p->dirfd, p->leo, &s);
  if (rc < 0) {
    SL_ERROR("log", "partition %s: cannot roll to segment %020" PRId64 ": %s", p->dir, p->leo, strerror(-rc));
    return rc;
  }
  int fds[3] = {dup(old->log_fd), old->index_fd, old->timeindex_fd};
  if (fds[0] < 0 && fdatasync(old->log_fd) < 0) rc = -errno; /* no fd to spare: sync it now */
  old->index_fd = old->timeindex_fd = -1;
  sl_segment_drop_index(old);
  pthread_mutex_lock(&p->mu);
  queue_sync_locked(p, fds, 3);
  p->active_fd = s->log_fd;
  p->active_base = s->base;
  p->dir_dirty = true;
  pthread_mutex_unlock(&p->mu);
  p->segs[p->nseg++] = s;
  SL_DEBUG("log", "partition %s: rolled to segment %020" PRId64, p->dir, s->base);
  return rc;
}

int sl_partition_append(sl_partition_t *p, uint8_t *batch, size_t len, int64_t *base_offset) {
  if (len < SL_BATCH_HEADER_SIZE || len > SL_SEGMENT_MAX_BYTES ||
      (uint64_t)sl_load_be32(batch + SL_BATCH_LENGTH) + SL_BATCH_LOG_OVERHEAD != len || batch[SL_BATCH_MAGIC] != 2)
    return -EINVAL;
  int32_t lod = (int32_t)sl_load_be32(batch + SL_BATCH_LAST_OFFSET_DELTA);
  if (lod < 0) return -EINVAL;
  int64_t now = sl_wall_ms();
  sl_segment_t *s = active(p);
  if (s->size > 0 && (s->size + len > p->cfg.segment_bytes || s->size + len > SL_SEGMENT_MAX_BYTES ||
                      (p->cfg.segment_ms > 0 && s->created_ms >= 0 && now - s->created_ms >= p->cfg.segment_ms) ||
                      p->leo + lod - s->base > INT32_MAX)) {
    int rc = roll(p);
    if (rc < 0) return rc;
    s = active(p);
  }
  int64_t base = p->leo;
  sl_store_be64(batch + SL_BATCH_BASE_OFFSET, (uint64_t)base);
  sl_store_be32(batch + SL_BATCH_LEADER_EPOCH, 0);
  uint64_t pos = s->size;
  int rc = sl_log_pwrite_full(s->log_fd, batch, len, pos);
  if (rc < 0) {
    /* Leave no partial batch behind: the next append writes at the same position anyway, but a crash must not
     * find garbage that happens to look like a batch. */
    if (ftruncate(s->log_fd, (off_t)pos) < 0) SL_ERROR("log", "partition %s: ftruncate: %s", p->dir, strerror(errno));
    SL_ERROR("log", "partition %s: append failed: %s", p->dir, strerror(-rc));
    return rc;
  }
  bool add_idx, add_tidx;
  sl_segment_note_batch(s, base, (int64_t)sl_load_be64(batch + SL_BATCH_MAX_TIMESTAMP), pos, (uint32_t)len,
                        p->cfg.index_interval_bytes, &add_idx, &add_tidx);
  if (add_idx || add_tidx) {
    rc = sl_segment_write_last_index(s, add_idx, add_tidx);
    if (rc < 0 && !p->index_error) {
      /* The in-memory index is right; only the file lags, and the next open rebuilds it (no clean marker). */
      SL_WARN("log", "partition %s: index write failed (%s); indexes will be rebuilt at the next open", p->dir,
              strerror(-rc));
      p->index_error = true;
    }
  }
  if (s->size == 0) s->created_ms = now;
  s->size += len;
  s->last_batch_base = base;
  p->total_size += len;
  p->leo = base + lod + 1;
  s->end_offset = p->leo;
  if (p->clean_marker) { /* appended after close_clean: the marker would lie */
    unlinkat(p->dirfd, SL_CLEAN_MARKER, 0);
    p->clean_marker = false;
  }
  *base_offset = base;
  return 0;
}

int sl_partition_read(sl_partition_t *p, int64_t offset, size_t max_bytes, bool first_whole, sl_buf_t *out,
                      size_t *n_bytes) {
  *n_bytes = 0;
  if (offset < sl_partition_log_start_offset(p) || offset > p->leo) return SL_LOG_OUT_OF_RANGE;
  if (offset == p->leo) return 0;
  size_t k = seg_for(p, offset);
  uint64_t pos;
  int rc;
  if (offset == p->cursor_offset && p->segs[k]->base == p->cursor_seg_base && p->cursor_pos < p->segs[k]->size) {
    pos = p->cursor_pos; /* the consumer continues where its last fetch stopped */
  } else {
    rc = sl_segment_load_index(p->dirfd, p->segs[k], p->cfg.index_interval_bytes);
    if (rc < 0) return rc;
    rc = sl_segment_find(p->segs[k], offset, &pos);
    if (rc < 0) return rc;
    if (rc == 1) return -EIO; /* offset < LEO yet no batch holds it: the segment is inconsistent */
  }
  size_t total = 0;
  int64_t next_offset = -1;
  bool first = true, stop = false;
  while (!stop && k < p->nseg) {
    sl_segment_t *s = p->segs[k];
    if (pos >= s->size) { /* continue in the next segment */
      k++;
      pos = 0;
      continue;
    }
    /* One pread of as much as may fit, then keep the whole batches in it (one syscall, not one per header). */
    uint64_t avail = s->size - pos;
    size_t want = total < max_bytes ? max_bytes - total : 0;
    if (first && first_whole && want < SL_BATCH_HEADER_SIZE) want = SL_BATCH_HEADER_SIZE;
    if (want > avail) want = (size_t)avail;
    if (want < SL_BATCH_LOG_OVERHEAD) break;
    size_t start = out->len;
    uint8_t *dst = sl_buf_extend(out, want);
    rc = sl_log_pread_full(s->log_fd, dst, want, pos);
    if (rc < 0) {
      out->len = start;
      return rc;
    }
    size_t q = 0;
    while (q + SL_BATCH_LOG_OVERHEAD <= want) {
      int32_t blen = (int32_t)sl_load_be32(dst + q + SL_BATCH_LENGTH);
      if (blen < SL_BATCH_HEADER_SIZE - SL_BATCH_LOG_OVERHEAD || (uint64_t)blen + SL_BATCH_LOG_OVERHEAD > avail - q) {
        SL_ERROR("log", "partition %s: malformed batch at position %" PRIu64 " of segment %020" PRId64, p->dir, pos + q,
                 s->base);
        if (total + q == 0) {
          out->len = start;
          return -EIO;
        }
        stop = true;
        break;
      }
      size_t batch_len = SL_BATCH_LOG_OVERHEAD + (size_t)blen;
      if (q + batch_len > want) { /* want was cut by max_bytes (never by avail: checked above) */
        if (!(first && first_whole)) {
          stop = true;
          break;
        }
        /* KIP-74: the first batch goes out whole even when larger than max_bytes. */
        out->len = start;
        dst = sl_buf_extend(out, batch_len);
        rc = sl_log_pread_full(s->log_fd, dst, batch_len, pos);
        if (rc < 0) {
          out->len = start;
          return rc;
        }
        want = batch_len;
      }
      next_offset = (int64_t)sl_load_be64(dst + q + SL_BATCH_BASE_OFFSET) +
                    (int32_t)sl_load_be32(dst + q + SL_BATCH_LAST_OFFSET_DELTA) + 1;
      q += batch_len;
      first = false;
    }
    out->len = start + q;
    total += q;
    pos += q;
    if (q < want) stop = true; /* a partial batch header means max_bytes cut the window */
  }
  if (total > 0 && k < p->nseg && next_offset < p->leo) {
    p->cursor_offset = next_offset;
    p->cursor_seg_base = p->segs[k]->base;
    p->cursor_pos = pos;
  } else {
    p->cursor_offset = -1;
  }
  *n_bytes = total;
  return 0;
}

int sl_partition_offset_for_time(sl_partition_t *p, int64_t ts, int64_t *offset, int64_t *timestamp) {
  *offset = -1;
  *timestamp = -1;
  for (size_t k = 0; k < p->nseg; k++) {
    sl_segment_t *s = p->segs[k];
    if (s->size == 0 || (s->max_ts >= 0 && s->max_ts < ts)) continue; /* max_ts -1: unknown, look inside */
    int rc = sl_segment_load_index(p->dirfd, s, p->cfg.index_interval_bytes);
    if (rc < 0) return rc;
    for (uint64_t pos = sl_segment_time_start(s, ts); pos < s->size;) {
      uint8_t h[SL_BATCH_HEADER_SIZE];
      rc = sl_segment_read_header(s, pos, h);
      if (rc < 0) return rc;
      int64_t max_ts = (int64_t)sl_load_be64(h + SL_BATCH_MAX_TIMESTAMP);
      if (max_ts >= ts) {
        *offset = (int64_t)sl_load_be64(h + SL_BATCH_BASE_OFFSET);
        *timestamp = max_ts;
        return 0;
      }
      pos += SL_BATCH_LOG_OVERHEAD + sl_load_be32(h + SL_BATCH_LENGTH);
    }
  }
  return 0;
}

typedef struct {
  sl_batch_header_cb cb;
  void *arg;
  size_t count;
} scan_ctx_t;

static int count_cb(void *arg, uint64_t pos, const uint8_t *hdr) {
  ((scan_ctx_t *)arg)->count++;
  return 0;
}

static int visit_cb(void *arg, uint64_t pos, const uint8_t *hdr) {
  scan_ctx_t *c = arg;
  c->cb(c->arg, hdr);
  return 0;
}

int sl_partition_scan_recent(sl_partition_t *p, size_t min_batches, sl_batch_header_cb cb, void *arg) {
  scan_ctx_t c = {cb, arg, 0};
  size_t k = p->nseg;
  /* Go back whole segments until they hold enough batches, then visit them oldest first. */
  while (k > 0 && c.count < min_batches) {
    int rc = sl_segment_walk(p->segs[--k], count_cb, &c);
    if (rc < 0) return rc;
  }
  for (; k < p->nseg && min_batches > 0; k++) {
    int rc = sl_segment_walk(p->segs[k], visit_cb, &c);
    if (rc < 0) return rc;
  }
  return 0;
}

/* The newest timestamp of a segment for time retention: its largest batch maxTimestamp, or (no timestamps) the
 * time of its first append / its file mtime, as Kafka falls back to lastModified. */
static int64_t seg_newest_ms(const sl_segment_t *s) {
  return s->max_ts >= 0 ? s->max_ts : s->created_ms;
}

static void delete_oldest(sl_partition_t *p) {
  sl_segment_t *s = p->segs[0];
  memmove(p->segs, p->segs + 1, (p->nseg - 1) * sizeof *p->segs);
  p->nseg--;
  p->total_size -= s->size;
  SL_INFO("log", "partition %s: deleted segment %020" PRId64 " (%" PRIu64 " bytes) by retention; log start %" PRId64,
          p->dir, s->base, s->size, p->segs[0]->base);
  sl_segment_unlink_files(p->dirfd, s->base);
  sl_segment_free(s);
}

int sl_partition_enforce_retention(sl_partition_t *p, int64_t now_ms) {
  int deleted = 0, rc;
  if (p->cfg.retention_ms >= 0) {
    int64_t cutoff = now_ms - p->cfg.retention_ms;
    for (;;) {
      sl_segment_t *s = p->segs[0];
      if (s->size == 0 || seg_newest_ms(s) >= cutoff) break;
      if (p->nseg == 1 && (rc = roll(p)) < 0) return rc; /* entirely expired: roll so it can go */
      delete_oldest(p);
      deleted++;
    }
  }
  if (p->cfg.retention_bytes >= 0) {
    while (p->nseg > 1 && p->total_size - p->segs[0]->size >= (uint64_t)p->cfg.retention_bytes) {
      delete_oldest(p);
      deleted++;
    }
  }
  sl_segment_t *a = active(p);
  if (p->cfg.segment_ms > 0 && a->size > 0 && a->created_ms >= 0 && now_ms - a->created_ms >= p->cfg.segment_ms &&
      (rc = roll(p)) < 0)
    return rc;
  return deleted;
}

bool sl_partition_claim_background_sync(sl_partition_t *p) {
  if (p->leo == p->background_sync_leo) return false;
  p->background_sync_leo = p->leo;
  return true;
}

int sl_partition_sync(sl_partition_t *p) {
  pthread_mutex_lock(&p->mu);
  int64_t base = p->active_base, written_point = p->recovery_point;
  int active_fd = dup(p->active_fd);
  int rc = active_fd < 0 ? -errno : 0;
  int *fds = p->to_sync;
  size_t n = p->n_sync;
  bool dir = p->dir_dirty;
  p->to_sync = NULL;
  p->n_sync = p->sync_cap = 0;
  p->dir_dirty = false;
  pthread_mutex_unlock(&p->mu);

  /* Blocking part, outside the lock: appends carry on meanwhile (they are covered by the next sync). */
  for (size_t i = 0; i < n; i++) {
    if (fdatasync(fds[i]) < 0 && rc == 0) rc = -errno;
    close(fds[i]);
  }
  free(fds);
  if (active_fd >= 0) {
    if (fdatasync(active_fd) < 0 && rc == 0) rc = -errno;
    close(active_fd);
  }
  if (dir && sl_log_fsync_dir(p->dirfd) < 0) {
    if (rc == 0) rc = -errno;
    pthread_mutex_lock(&p->mu);
    p->dir_dirty = true;
    pthread_mutex_unlock(&p->mu);
  }
  if (rc < 0) {
    pthread_mutex_lock(&p->mu); /* p->dir can be replaced by sl_partition_set_dir on the loop thread */
    SL_ERROR("log", "partition %s: sync failed: %s", p->dir, strerror(-rc));
    pthread_mutex_unlock(&p->mu);
    return rc;
  }
  /* every segment before `base` is now on disk whole: recovery may start there */
  if (base != written_point && write_recovery_point(p->dirfd, base) == 0) {
    pthread_mutex_lock(&p->mu);
    if (p->recovery_point == written_point) p->recovery_point = base;
    pthread_mutex_unlock(&p->mu);
  }
  return rc;
}

int sl_partition_close_clean(sl_partition_t *p) {
  if (atomic_load(&p->deleted)) return 0;
  sl_segment_t *s = active(p);
  if (sl_segment_finish_timeindex(s) < 0) p->index_error = true;
  int rc = sl_partition_sync(p);
  if (rc < 0) return rc;
  if ((s->index_fd >= 0 && fdatasync(s->index_fd) < 0) || (s->timeindex_fd >= 0 && fdatasync(s->timeindex_fd) < 0))
    return -errno;
  if (p->index_error) return -EIO; /* the next open must rebuild the indexes */
  int fd = openat(p->dirfd, SL_CLEAN_MARKER, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  close(fd);
  if ((rc = sl_log_fsync_dir(p->dirfd)) < 0) return rc;
  p->clean_marker = true;
  return 0;
}
