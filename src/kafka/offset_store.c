/* Committed consumer-group offsets: an in-memory map (group -> sorted (topic, partition) entries) backed by one
 * append-only file, <data_dir>/groups/offsets.log, so commits survive restarts.
 *
 * File format: a sequence of frames, each
 *   u32 payload_len | u32 crc32c(payload) | payload
 * payload (big-endian):
 *   u8 version (1) | u16 group_len | group | u32 count |
 *   count x { u16 topic_len | topic | i32 partition | i64 offset | i32 leader_epoch |
 *             i32 metadata_len (-1 = null) | metadata | i64 commit_ms }
 * One frame holds one OffsetCommit request, so a request is applied whole or not at all, and replay applies frames
 * in order (the last value wins). A compacted file is the same format with one frame per group. A group's deletion
 * (DeleteGroups, or its offsets expiring) is the frame u8 version (2) | u16 group_len | group; compaction drops it
 * with the group.
 *
 * Durability: a commit is answered only after its frame is fdatasync'ed. The write and the sync happen on the libuv
 * thread pool, one job at a time; commits arriving meanwhile queue up and share the next job's single fsync
 * (group commit). The map is updated only when the job succeeds, so OffsetFetch never sees an unacknowledged value.
 *
 * Recovery: replay stops at the first frame that is short, fails its CRC or does not parse; everything from there
 * is a torn tail of an unacknowledged write and is truncated (logged at WARN).
 *
 * Growth: when the file exceeds compact_bytes and four times its live contents, the next job writes a snapshot of
 * the map plus the queued frames to offsets.log.tmp, fsyncs it, renames it over offsets.log and fsyncs the
 * directory, so a crash leaves either the old or the new file. Open compacts the same way (synchronously: nothing
 * is served yet).
 *
 *   commit() ──> queue ──start_job()──> [pool: write+fdatasync | snapshot+rename] ──job_done()──> apply, callbacks
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/crc32c.h"
#include "core/log.h"
#include "kafka/group_internal.h"

#define OFFSETS_FILE "offsets.log"
#define OFFSETS_TMP "offsets.log.tmp"
#define FRAME_HEADER 8
#define FRAME_VERSION 1
#define FRAME_VERSION_DELETE 2
/* The smallest encoded entry: empty topic, null metadata. Bounds the entry count read from a frame. */
#define ENTRY_MIN_BYTES (2 + 4 + 8 + 4 + 4 + 8)
#define DEFAULT_COMPACT_BYTES (16u << 20)

typedef struct offset_group {
  struct offset_group *next;
  char *id;
  size_t id_len;
  sl_offset_entry_t *entries; /* sorted by (topic, partition) */
  size_t n, cap;
} offset_group_t;

typedef struct commit_op {
  struct commit_op *next;
  sl_buf_t frame; /* header + payload, as written */
  sl_offset_commit_cb cb;
  void *arg;
} commit_op_t;

struct sl_offset_store {
  uv_loop_t *loop;
  char *dir;
  char *path;
  char *tmp_path;
  int fd;
  uint64_t file_bytes; /* valid bytes in the file; written by the pool job only while it runs */
  uint64_t live_bytes; /* size of the last snapshot (or of the replayed state) */
  uint64_t compact_bytes;
  offset_group_t **buckets;
  size_t n_buckets, n_groups;
  commit_op_t *queue_head, *queue_tail; /* waiting for the next job */
  commit_op_t *job_ops;                 /* in the running job */
  bool job_running;
  bool closing;
  uv_work_t work;
  sl_buf_t job_frames;   /* concatenated frames of job_ops */
  sl_buf_t job_snapshot; /* non-empty: this job rewrites the file */
  int job_status;
};

/* ---- the map ---- */

static int entry_cmp(const char *topic, size_t topic_len, int32_t partition, const sl_offset_entry_t *e) {
  size_t n = topic_len < e->topic_len ? topic_len : e->topic_len;
  int c = memcmp(topic, e->topic, n);
  if (c) return c;
  if (topic_len != e->topic_len) return topic_len < e->topic_len ? -1 : 1;
  if (partition != e->partition) return partition < e->partition ? -1 : 1;
  return 0;
}

/* Index of the entry, or of where it would go (*found false). */
static size_t entry_search(const offset_group_t *og, const char *topic, size_t topic_len, int32_t partition,
                           bool *found) {
  size_t lo = 0, hi = og->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = entry_cmp(topic, topic_len, partition, &og->entries[mid]);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  *found = false;
  return lo;
}

static offset_group_t *group_lookup(const sl_offset_store_t *s, const void *id, size_t len) {
  if (!s->n_buckets) return NULL;
  offset_group_t *og = s->buckets[sl_group_hash(id, len) & (s->n_buckets - 1)];
  for (; og; og = og->next)
    if (og->id_len == len && memcmp(og->id, id, len) == 0) return og;
  return NULL;
}

static void rehash(sl_offset_store_t *s) {
  size_t nb = s->n_buckets ? s->n_buckets * 2 : 64;
  offset_group_t **b = calloc(nb, sizeof(*b));
  if (!b) abort();
  for (size_t i = 0; i < s->n_buckets; i++) {
    offset_group_t *og = s->buckets[i];
    while (og) {
      offset_group_t *next = og->next;
      size_t h = sl_group_hash(og->id, og->id_len) & (nb - 1);
      og->next = b[h];
      b[h] = og;
      og = next;
    }
  }
  free(s->buckets);
  s->buckets = b;
  s->n_buckets = nb;
}

static char *dup_bytes(const void *p, size_t len) {
  char *d = malloc(len + 1);
  if (!d) abort();
  if (len) memcpy(d, p, len);
  d[len] = '\0';
  return d;
}

static offset_group_t *group_get_or_add(sl_offset_store_t *s, const void *id, size_t len) {
  offset_group_t *og = group_lookup(s, id, len);
  if (og) return og;
  if (s->n_groups >= s->n_buckets) rehash(s);
  og = calloc(1, sizeof(*og));
  if (!og) abort();
  og->id = dup_bytes(id, len);
  og->id_len = len;
  size_t h = sl_group_hash(id, len) & (s->n_buckets - 1);
  og->next = s->buckets[h];
  s->buckets[h] = og;
  s->n_groups++;
  return og;
}

static void entry_put(offset_group_t *og, const uint8_t *topic, size_t topic_len, int32_t partition, int64_t offset,
                      int32_t leader_epoch, const uint8_t *metadata, int32_t metadata_len, int64_t commit_ms) {
  bool found;
  size_t i = entry_search(og, (const char *)topic, topic_len, partition, &found);
  sl_offset_entry_t *e;
  if (found) {
    e = &og->entries[i];
    free(e->metadata);
  } else {
    if (og->n == og->cap) {
      size_t cap = og->cap ? og->cap * 2 : 8;
      sl_offset_entry_t *ne = realloc(og->entries, cap * sizeof(*ne));
      if (!ne) abort();
      og->entries = ne;
      og->cap = cap;
    }
    memmove(&og->entries[i + 1], &og->entries[i], (og->n - i) * sizeof(*og->entries));
    og->n++;
    e = &og->entries[i];
    e->topic = dup_bytes(topic, topic_len);
    e->topic_len = topic_len;
    e->partition = partition;
  }
  e->offset = offset;
  e->leader_epoch = leader_epoch;
  e->metadata = metadata_len < 0 ? NULL : dup_bytes(metadata, (size_t)metadata_len);
  e->metadata_len = metadata_len < 0 ? 0 : (size_t)metadata_len;
  e->commit_ms = commit_ms;
}

static void group_free(offset_group_t *og) {
  for (size_t j = 0; j < og->n; j++) {
    free(og->entries[j].topic);
    free(og->entries[j].metadata);
  }
  free(og->entries);
  free(og->id);
  free(og);
}

static void group_remove(sl_offset_store_t *s, const void *id, size_t len) {
  if (!s->n_buckets) return;
  offset_group_t **pp = &s->buckets[sl_group_hash(id, len) & (s->n_buckets - 1)];
  for (; *pp; pp = &(*pp)->next) {
    offset_group_t *og = *pp;
    if (og->id_len != len || memcmp(og->id, id, len) != 0) continue;
    *pp = og->next;
    group_free(og);
    s->n_groups--;
    return;
  }
}

/* Parses one frame payload; applies it only if all of it parses (so a bad frame changes nothing). */
static int apply_payload(sl_offset_store_t *s, const uint8_t *payload, size_t len) {
  sl_reader_t r;
  sl_reader_init(&r, payload, len);
  uint8_t version = sl_read_u8(&r);
  if (version != FRAME_VERSION && version != FRAME_VERSION_DELETE) return -EBADMSG;
  uint16_t glen = sl_read_be16(&r);
  const uint8_t *gid = sl_read_bytes(&r, glen);
  if (version == FRAME_VERSION_DELETE) {
    if (r.err || sl_reader_remaining(&r) != 0) return -EBADMSG;
    group_remove(s, gid, glen);
    return 0;
  }
  uint32_t count = sl_read_be32(&r);
  if (r.err || (uint64_t)count * ENTRY_MIN_BYTES > sl_reader_remaining(&r)) return -EBADMSG;
  size_t start = r.pos;
  /* First pass validates, second applies. */
  for (int pass = 0; pass < 2; pass++) {
    offset_group_t *og = pass ? group_get_or_add(s, gid, glen) : NULL;
    r.pos = start;
    for (uint32_t i = 0; i < count; i++) {
      uint16_t tlen = sl_read_be16(&r);
      const uint8_t *topic = sl_read_bytes(&r, tlen);
      int32_t partition = (int32_t)sl_read_be32(&r);
      int64_t offset = (int64_t)sl_read_be64(&r);
      int32_t epoch = (int32_t)sl_read_be32(&r);
      int32_t mlen = (int32_t)sl_read_be32(&r);
      const uint8_t *meta = NULL;
      if (mlen > 0)
        meta = sl_read_bytes(&r, (size_t)mlen);
      else if (mlen < -1)
        r.err = true;
      int64_t commit_ms = (int64_t)sl_read_be64(&r);
      if (r.err) return -EBADMSG;
      if (pass) entry_put(og, topic, tlen, partition, offset, epoch, meta, mlen, commit_ms);
    }
    if (!pass && sl_reader_remaining(&r) != 0) return -EBADMSG;
  }
  return 0;
}

/* ---- encoding ---- */

static void put_str16(sl_buf_t *b, const void *p, size_t len) {
  sl_buf_put_be16(b, (uint16_t)len);
  sl_buf_put(b, p, len);
}

static size_t frame_begin(sl_buf_t *b, const void *group, size_t glen, uint32_t count) {
  size_t start = b->len;
  sl_buf_extend(b, FRAME_HEADER);
  sl_buf_put_u8(b, FRAME_VERSION);
  put_str16(b, group, glen);
  sl_buf_put_be32(b, count);
  return start;
}

static void frame_end(sl_buf_t *b, size_t start) {
  size_t plen = b->len - start - FRAME_HEADER;
  sl_buf_patch_be32(b, start, (uint32_t)plen);
  sl_buf_patch_be32(b, start + 4, sl_crc32c(0, b->data + start + FRAME_HEADER, plen));
}

static void put_entry(sl_buf_t *b, const void *topic, size_t tlen, int32_t partition, int64_t offset, int32_t epoch,
                      const void *meta, size_t mlen, bool meta_null, int64_t commit_ms) {
  put_str16(b, topic, tlen);
  sl_buf_put_be32(b, (uint32_t)partition);
  sl_buf_put_be64(b, (uint64_t)offset);
  sl_buf_put_be32(b, (uint32_t)epoch);
  if (meta_null) {
    sl_buf_put_be32(b, UINT32_MAX);
  } else {
    sl_buf_put_be32(b, (uint32_t)mlen);
    sl_buf_put(b, meta, mlen);
  }
  sl_buf_put_be64(b, (uint64_t)commit_ms);
}

static void snapshot(const sl_offset_store_t *s, sl_buf_t *out) {
  for (size_t i = 0; i < s->n_buckets; i++) {
    for (const offset_group_t *og = s->buckets[i]; og; og = og->next) {
      if (!og->n) continue;
      size_t start = frame_begin(out, og->id, og->id_len, (uint32_t)og->n);
      for (size_t j = 0; j < og->n; j++) {
        const sl_offset_entry_t *e = &og->entries[j];
        put_entry(out, e->topic, e->topic_len, e->partition, e->offset, e->leader_epoch, e->metadata, e->metadata_len,
                  e->metadata == NULL, e->commit_ms);
      }
      frame_end(out, start);
    }
  }
}

/* ---- file helpers (blocking; open path or pool thread) ---- */

static int write_all(int fd, const uint8_t *p, size_t len) {
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int fsync_dir(const char *dir) {
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -errno;
  int rc = fsync(dfd) < 0 ? -errno : 0;
  close(dfd);
  return rc;
}

/* Writes a + b into the temporary file, syncs it, renames it into place and syncs the directory. Once the rename
 * has happened *new_fd is the append fd of the new file (the old fd then refers to an unlinked file), even if the
 * directory sync failed; the return value is 0 or a negative errno. */
static int rewrite_file(const sl_offset_store_t *s, const sl_buf_t *a, const sl_buf_t *b, int *new_fd) {
  int rc;
  *new_fd = -1;
  int fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  if ((rc = write_all(fd, a->data, a->len)) < 0) goto fail;
  if (b && (rc = write_all(fd, b->data, b->len)) < 0) goto fail;
  if (fsync(fd) < 0) {
    rc = -errno;
    goto fail;
  }
  if (rename(s->tmp_path, s->path) < 0) {
    rc = -errno;
    goto fail;
  }
  /* The tmp fd now names the live file; reuse it for appends (O_APPEND is settable after open). */
  if (fcntl(fd, F_SETFL, O_APPEND) < 0) {
    rc = -errno;
    close(fd);
    fd = open(s->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return rc; /* cannot happen short of EMFILE; the caller keeps failing commits */
  }
  *new_fd = fd;
  return fsync_dir(s->dir);
fail:
  close(fd);
  unlink(s->tmp_path);
  return rc;
}

static int mkdir_p(const char *path) {
  char buf[4096];
  size_t len = strlen(path);
  if (len >= sizeof(buf)) return -ENAMETOOLONG;
  memcpy(buf, path, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    char c = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -errno;
    buf[i] = c;
  }
  return 0;
}

static char *path_join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p) abort();
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

/* ---- the commit pipeline ---- */

static void start_job(sl_offset_store_t *s);

static void job_work(uv_work_t *w) {
  sl_offset_store_t *s = w->data;
  if (s->job_snapshot.len) {
    int fd;
    s->job_status = rewrite_file(s, &s->job_snapshot, &s->job_frames, &fd);
    if (fd >= 0) {
      close(s->fd);
      s->fd = fd;
      s->file_bytes = s->job_snapshot.len + s->job_frames.len;
    }
    return;
  }
  int rc = write_all(s->fd, s->job_frames.data, s->job_frames.len);
  if (rc < 0) {
    /* Cut the partial frame now, so later frames are not hidden behind it at replay. */
    if (ftruncate(s->fd, (off_t)s->file_bytes) < 0) rc = -errno;
    s->job_status = rc;
    return;
  }
  s->file_bytes += s->job_frames.len;
  s->job_status = fdatasync(s->fd) < 0 ? -errno : 0;
}

static void store_free(sl_offset_store_t *s) {
  for (size_t i = 0; i < s->n_buckets; i++) {
    offset_group_t *og = s->buckets[i];
    while (og) {
      offset_group_t *next = og->next;
      group_free(og);
      og = next;
    }
  }
  free(s->buckets);
  if (s->fd >= 0) close(s->fd);
  sl_buf_free(&s->job_frames);
  sl_buf_free(&s->job_snapshot);
  free(s->dir);
  free(s->path);
  free(s->tmp_path);
  free(s);
}

static void job_done(uv_work_t *w, int uv_status) {
  sl_offset_store_t *s = w->data;
  int status = uv_status < 0 ? uv_status : s->job_status;
  if (status < 0) SL_ERROR("group", "offsets: writing %s failed: %s", s->path, strerror(-status));
  if (status == 0 && s->job_snapshot.len) {
    s->live_bytes = s->job_snapshot.len;
    SL_INFO("group", "offsets: compacted %s to %llu bytes", s->path, (unsigned long long)s->file_bytes);
  }
  commit_op_t *op = s->job_ops;
  s->job_ops = NULL;
  s->job_running = false;
  sl_buf_free(&s->job_frames);
  sl_buf_free(&s->job_snapshot);
  /* Apply everything first, then call back: a callback may commit again (start_job below picks that up). */
  for (commit_op_t *o = op; o; o = o->next)
    if (status == 0) (void)apply_payload(s, o->frame.data + FRAME_HEADER, o->frame.len - FRAME_HEADER);
  while (op) {
    commit_op_t *next = op->next;
    op->cb(op->arg, status);
    sl_buf_free(&op->frame);
    free(op);
    op = next;
  }
  if (s->closing) {
    sl_offset_store_close(s); /* cancels what the callbacks queued, then frees */
    return;
  }
  start_job(s);
}

static void start_job(sl_offset_store_t *s) {
  if (s->job_running || !s->queue_head) return;
  s->job_ops = s->queue_head;
  s->queue_head = s->queue_tail = NULL;
  sl_buf_init(&s->job_frames);
  sl_buf_init(&s->job_snapshot);
  for (commit_op_t *o = s->job_ops; o; o = o->next) sl_buf_put(&s->job_frames, o->frame.data, o->frame.len);
  /* The snapshot holds every acknowledged commit (the map); this job's frames follow it in the new file. */
  if (s->file_bytes > s->compact_bytes && s->file_bytes > 4 * s->live_bytes) snapshot(s, &s->job_snapshot);
  s->job_running = true;
  s->work.data = s;
  int rc = uv_queue_work(s->loop, &s->work, job_work, job_done);
  if (rc < 0) {
    /* Only fails on invalid arguments; report through the normal path. */
    s->job_status = rc;
    SL_ERROR("group", "offsets: uv_queue_work: %s", uv_strerror(rc));
    abort();
  }
}

static commit_op_t *op_new(sl_offset_commit_cb cb, void *arg) {
  commit_op_t *op = calloc(1, sizeof(*op));
  if (!op) abort();
  op->cb = cb;
  op->arg = arg;
  sl_buf_init(&op->frame);
  return op;
}

static void enqueue(sl_offset_store_t *s, commit_op_t *op) {
  if (s->queue_tail)
    s->queue_tail->next = op;
  else
    s->queue_head = op;
  s->queue_tail = op;
  start_job(s);
}

void sl_offset_store_delete_group(sl_offset_store_t *s, sl_slice_t group, sl_offset_commit_cb cb, void *arg) {
  commit_op_t *op = op_new(cb, arg);
  size_t start = op->frame.len;
  sl_buf_extend(&op->frame, FRAME_HEADER);
  sl_buf_put_u8(&op->frame, FRAME_VERSION_DELETE);
  put_str16(&op->frame, group.ptr, group.len);
  frame_end(&op->frame, start);
  enqueue(s, op);
}

void sl_offset_store_commit(sl_offset_store_t *s, sl_slice_t group, const sl_offset_commit_t *commits, size_t n,
                            sl_offset_commit_cb cb, void *arg) {
  commit_op_t *op = op_new(cb, arg);
  int64_t now = sl_wall_ms();
  size_t start = frame_begin(&op->frame, group.ptr, group.len, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    const sl_offset_commit_t *c = &commits[i];
    put_entry(&op->frame, c->topic.ptr, c->topic.len, c->partition, c->offset, c->leader_epoch, c->metadata.ptr,
              c->metadata.len, c->metadata.ptr == NULL, now);
  }
  frame_end(&op->frame, start);
  enqueue(s, op);
}

/* ---- lookups ---- */

const sl_offset_entry_t *sl_offset_store_get(const sl_offset_store_t *s, sl_slice_t group, sl_slice_t topic,
                                             int32_t partition) {
  const offset_group_t *og = group_lookup(s, group.ptr, group.len);
  if (!og) return NULL;
  bool found;
  size_t i = entry_search(og, (const char *)topic.ptr, topic.len, partition, &found);
  return found ? &og->entries[i] : NULL;
}

/* Is a frame of this group's queued or being written (payload: version u8 | group_len u16 | group ...)? */
static bool ops_touch(const commit_op_t *o, sl_slice_t group) {
  for (; o; o = o->next) {
    const uint8_t *p = o->frame.data + FRAME_HEADER;
    if (o->frame.len >= FRAME_HEADER + 3 + group.len && sl_load_be16(p + 1) == group.len &&
        memcmp(p + 3, group.ptr, group.len) == 0)
      return true;
  }
  return false;
}

bool sl_offset_store_pending(const sl_offset_store_t *s, sl_slice_t group) {
  return ops_touch(s->job_ops, group) || ops_touch(s->queue_head, group);
}

int64_t sl_offset_store_newest_commit_ms(const sl_offset_store_t *s, sl_slice_t group) {
  const offset_group_t *og = group_lookup(s, group.ptr, group.len);
  int64_t newest = INT64_MIN;
  for (size_t i = 0; og && i < og->n; i++)
    if (og->entries[i].commit_ms > newest) newest = og->entries[i].commit_ms;
  return newest;
}

void sl_offset_store_each_group(const sl_offset_store_t *s, void (*fn)(void *arg, sl_slice_t group), void *arg) {
  for (size_t i = 0; i < s->n_buckets; i++)
    for (const offset_group_t *og = s->buckets[i]; og; og = og->next)
      fn(arg, (sl_slice_t){(const uint8_t *)og->id, og->id_len});
}

size_t sl_offset_store_list(const sl_offset_store_t *s, sl_slice_t group, const sl_offset_entry_t **out) {
  const offset_group_t *og = group_lookup(s, group.ptr, group.len);
  *out = og ? og->entries : NULL;
  return og ? og->n : 0;
}

void sl_offset_store_set_compact_bytes(sl_offset_store_t *s, uint64_t bytes) {
  s->compact_bytes = bytes;
}
uint64_t sl_offset_store_file_bytes(const sl_offset_store_t *s) {
  return s->file_bytes;
}

/* ---- open / close ---- */

static int replay(sl_offset_store_t *s) {
  int rc = 0;
  uint8_t *data = NULL;
  struct stat st;
  if (fstat(s->fd, &st) < 0) return -errno;
  size_t size = (size_t)st.st_size;
  if (size) {
    data = malloc(size);
    if (!data) return -ENOMEM;
    size_t got = 0;
    while (got < size) {
      ssize_t n = pread(s->fd, data + got, size - got, (off_t)got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        rc = -errno;
        goto cleanup;
      }
      if (n == 0) break; /* shrank under us: treat the rest as missing */
      got += (size_t)n;
    }
    size = got;
  }
  size_t pos = 0;
  size_t frames = 0;
  while (size - pos >= FRAME_HEADER) {
    uint32_t plen = sl_load_be32(data + pos);
    uint32_t crc = sl_load_be32(data + pos + 4);
    if (plen > size - pos - FRAME_HEADER) break;
    const uint8_t *payload = data + pos + FRAME_HEADER;
    if (sl_crc32c(0, payload, plen) != crc) break;
    if (apply_payload(s, payload, plen) < 0) break;
    pos += FRAME_HEADER + plen;
    frames++;
  }
  if (pos < size) {
    SL_WARN("group", "offsets: %s: truncating %zu bytes of torn or corrupt tail at byte %zu", s->path, size - pos, pos);
    if (ftruncate(s->fd, (off_t)pos) < 0 || fdatasync(s->fd) < 0) {
      rc = -errno;
      goto cleanup;
    }
  }
  s->file_bytes = pos;
  SL_INFO("group", "offsets: loaded %zu records (%zu bytes) from %s", frames, pos, s->path);
cleanup:
  free(data);
  return rc;
}

int sl_offset_store_open(uv_loop_t *loop, const char *dir, sl_offset_store_t **out) {
  int rc;
  sl_offset_store_t *s = calloc(1, sizeof(*s));
  if (!s) return -ENOMEM;
  s->loop = loop;
  s->fd = -1;
  s->compact_bytes = DEFAULT_COMPACT_BYTES;
  sl_buf_init(&s->job_frames);
  sl_buf_init(&s->job_snapshot);
  s->dir = dup_bytes(dir, strlen(dir));
  s->path = path_join(dir, OFFSETS_FILE);
  s->tmp_path = path_join(dir, OFFSETS_TMP);
  rehash(s);
  if ((rc = mkdir_p(dir)) < 0) {
    SL_ERROR("group", "offsets: cannot create %s: %s", dir, strerror(-rc));
    goto fail;
  }
  unlink(s->tmp_path); /* a rewrite that crashed before its rename */
  s->fd = open(s->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (s->fd < 0) {
    rc = -errno;
    SL_ERROR("group", "offsets: cannot open %s: %s", s->path, strerror(-rc));
    goto fail;
  }
  if ((rc = replay(s)) < 0) {
    SL_ERROR("group", "offsets: cannot read %s: %s", s->path, strerror(-rc));
    goto fail;
  }
  sl_buf_t snap;
  sl_buf_init(&snap);
  snapshot(s, &snap);
  s->live_bytes = snap.len;
  /* Replaying a mostly overwritten file costs startup time for nothing: rewrite it while nothing is served. */
  if (s->file_bytes > 2 * snap.len + (64u << 10)) {
    int fd;
    int crc = rewrite_file(s, &snap, NULL, &fd);
    if (fd >= 0) {
      SL_INFO("group", "offsets: compacted %s from %llu to %zu bytes", s->path, (unsigned long long)s->file_bytes,
              snap.len);
      close(s->fd);
      s->fd = fd;
      s->file_bytes = snap.len;
    }
    if (crc < 0) SL_WARN("group", "offsets: compacting %s failed: %s", s->path, strerror(-crc));
  }
  sl_buf_free(&snap);
  *out = s;
  return 0;
fail:
  store_free(s);
  return rc;
}

void sl_offset_store_close(sl_offset_store_t *s) {
  if (!s) return;
  s->closing = true;
  commit_op_t *op = s->queue_head;
  s->queue_head = s->queue_tail = NULL;
  while (op) {
    commit_op_t *next = op->next;
    op->cb(op->arg, -ECANCELED);
    sl_buf_free(&op->frame);
    free(op);
    op = next;
  }
  if (!s->job_running) store_free(s);
  /* else job_done frees it */
}
