/* Unit tests for the partition log: offsets, reads (containing batch, KIP-74, max_bytes, across segments),
 * retention, time lookups, recovery of torn or corrupt tails, clean reopen, header scans. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

// clang-format off: cmocka.h needs the headers above first
#include <cmocka.h>
// clang-format on

#include "core/clock.h"
#include "core/log.h"
#include "log/partition.h"
#include "test_log_util.h"

typedef struct {
  char *dir;
  char *pdir;
  sl_log_config_t cfg;
  sl_partition_t *p;
  sl_buf_t batch, out;
} fx_t;

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  f->dir = tl_mkdtemp();
  f->pdir = tl_path(f->dir, "t-0");
  sl_log_config_defaults(&f->cfg);
  sl_buf_init(&f->batch);
  sl_buf_init(&f->out);
  sl_log_set_level(SL_LOG_ERROR); /* recovery WARNs are expected in some tests */
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  sl_partition_release(f->p);
  sl_buf_free(&f->batch);
  sl_buf_free(&f->out);
  free(f->pdir);
  tl_rmtree(f->dir);
  free(f);
  return 0;
}

static void reopen(fx_t *f) {
  sl_partition_release(f->p);
  f->p = NULL;
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
}

/* Appends a batch of `records` records; returns its base offset. Keeps a copy of the stored bytes in `stored`. */
static int64_t append(fx_t *f, int records, int64_t ts, size_t value_len, sl_buf_t *stored) {
  tl_make_batch(&f->batch, records, ts, ts, value_len);
  int64_t base = -1;
  assert_int_equal(sl_partition_append(f->p, f->batch.data, f->batch.len, &base), 0);
  if (stored) sl_buf_put(stored, f->batch.data, f->batch.len);
  return base;
}

/* Offsets of the batches in a read result, checking each batch's CRC and framing. */
static size_t batch_bases(const uint8_t *d, size_t len, int64_t *bases, size_t cap) {
  size_t n = 0, q = 0;
  while (q < len) {
    assert_true(q + SL_BATCH_HEADER_SIZE <= len);
    size_t blen = SL_BATCH_LOG_OVERHEAD + sl_load_be32(d + q + SL_BATCH_LENGTH);
    assert_true(q + blen <= len);
    assert_int_equal(sl_load_be32(d + q + SL_BATCH_CRC),
                     sl_crc32c(0, d + q + SL_BATCH_ATTRIBUTES, blen - SL_BATCH_ATTRIBUTES));
    assert_int_equal(sl_load_be32(d + q + SL_BATCH_LEADER_EPOCH), 0);
    if (n < cap) bases[n] = (int64_t)sl_load_be64(d + q);
    n++;
    q += blen;
  }
  return n;
}

static void test_append_offsets_and_read(void **state) {
  fx_t *f = *state;
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  assert_int_equal(sl_partition_log_start_offset(f->p), 0);
  assert_int_equal(sl_partition_log_end_offset(f->p), 0);
  sl_buf_t stored;
  sl_buf_init(&stored);
  assert_int_equal(append(f, 3, 1000, 10, &stored), 0);
  assert_int_equal(append(f, 1, 1001, 10, &stored), 3);
  assert_int_equal(append(f, 5, 1002, 10, &stored), 4);
  assert_int_equal(sl_partition_log_end_offset(f->p), 9);
  assert_int_equal(sl_partition_size_bytes(f->p), stored.len);

  size_t n;
  assert_int_equal(sl_partition_read(f->p, 0, 1 << 20, false, &f->out, &n), 0);
  assert_int_equal(n, stored.len);
  assert_memory_equal(f->out.data, stored.data, stored.len);
  int64_t bases[8];
  assert_int_equal(batch_bases(f->out.data, n, bases, 8), 3);
  assert_int_equal(bases[2], 4);

  /* Mid-batch offset: the batch containing it. */
  f->out.len = 0;
  assert_int_equal(sl_partition_read(f->p, 6, 1 << 20, false, &f->out, &n), 0);
  assert_int_equal(batch_bases(f->out.data, n, bases, 8), 1);
  assert_int_equal(bases[0], 4);
  f->out.len = 0;
  assert_int_equal(sl_partition_read(f->p, 2, 1 << 20, false, &f->out, &n), 0);
  assert_int_equal(batch_bases(f->out.data, n, bases, 8), 3);
  assert_int_equal(bases[0], 0);

  /* At LEO: nothing, not an error. Past it or below zero: out of range. */
  f->out.len = 0;
  assert_int_equal(sl_partition_read(f->p, 9, 1 << 20, false, &f->out, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(f->out.len, 0);
  assert_int_equal(sl_partition_read(f->p, 10, 1 << 20, false, &f->out, &n), SL_LOG_OUT_OF_RANGE);
  assert_int_equal(sl_partition_read(f->p, -1, 1 << 20, false, &f->out, &n), SL_LOG_OUT_OF_RANGE);

  /* Invalid batches are refused. */
  uint8_t junk[80] = {0};
  int64_t base;
  assert_int_equal(sl_partition_append(f->p, junk, sizeof junk, &base), -EINVAL);
  assert_int_equal(sl_partition_log_end_offset(f->p), 9);
  sl_buf_free(&stored);
}

static void test_max_bytes_and_kip74(void **state) {
  fx_t *f = *state;
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  sl_buf_t stored;
  sl_buf_init(&stored);
  append(f, 2, 1, 100, &stored);
  size_t first = stored.len;
  append(f, 2, 2, 100, &stored);
  size_t second = stored.len - first;
  append(f, 2, 3, 100, &stored);
  size_t n;
  int64_t bases[4];

  /* One byte short of two batches: only the first. */
  assert_int_equal(sl_partition_read(f->p, 0, first + second - 1, false, &f->out, &n), 0);
  assert_int_equal(n, first);
  assert_int_equal(f->out.len, first);
  /* Exactly two. Appends to what `out` already holds. */
  assert_int_equal(sl_partition_read(f->p, 0, first + second, false, &f->out, &n), 0);
  assert_int_equal(n, first + second);
  assert_int_equal(f->out.len, 2 * first + second);
  /* Smaller than the first batch: nothing, unless first_whole (KIP-74). */
  f->out.len = 0;
  assert_int_equal(sl_partition_read(f->p, 2, 10, false, &f->out, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(f->out.len, 0);
  assert_int_equal(sl_partition_read(f->p, 2, 10, true, &f->out, &n), 0);
  assert_int_equal(n, second);
  assert_int_equal(batch_bases(f->out.data, n, bases, 4), 1);
  assert_int_equal(bases[0], 2);
  assert_memory_equal(f->out.data, stored.data + first, second);
  f->out.len = 0;
  assert_int_equal(sl_partition_read(f->p, 0, 0, true, &f->out, &n), 0);
  assert_int_equal(n, first);
  sl_buf_free(&stored);
}

static void test_roll_and_cross_segment_read(void **state) {
  fx_t *f = *state;
  f->cfg.segment_bytes = 1000;
  f->cfg.index_interval_bytes = 1; /* an index entry per batch */
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  sl_buf_t stored;
  sl_buf_init(&stored);
  for (int i = 0; i < 30; i++) {
    int64_t expect = sl_partition_log_end_offset(f->p);
    assert_int_equal(append(f, 1 + i % 3, 1000 + i, 60, &stored), expect);
  }
  int64_t leo = sl_partition_log_end_offset(f->p);
  assert_int_equal(leo, 60); /* 10 x (1+2+3) */
  assert_true(tl_exists(f->pdir, "00000000000000000000.log"));
  assert_true(tl_file_size(f->pdir, "00000000000000000000.log") <= 1000);
  assert_true(tl_file_size(f->pdir, "00000000000000000000.index") > 0);
  /* A second segment exists, named after its base offset. */
  int segs = 0;
  for (int64_t o = 0; o < leo; o++) {
    char name[64];
    snprintf(name, sizeof name, "%020lld.log", (long long)o);
    if (tl_exists(f->pdir, name)) segs++;
  }
  assert_true(segs >= 4);

  size_t n;
  assert_int_equal(sl_partition_read(f->p, 0, 1 << 20, false, &f->out, &n), 0);
  assert_int_equal(n, stored.len);
  assert_memory_equal(f->out.data, stored.data, n);

  /* Every offset finds its containing batch, including through the index of older segments. */
  for (int64_t o = 0; o < leo; o++) {
    f->out.len = 0;
    assert_int_equal(sl_partition_read(f->p, o, 1 << 20, false, &f->out, &n), 0);
    int64_t bases[64];
    size_t nb = batch_bases(f->out.data, n, bases, 64);
    assert_true(nb >= 1);
    assert_true(bases[0] <= o);
    assert_true(o - bases[0] < 3);
    int64_t lod = (int32_t)sl_load_be32(f->out.data + SL_BATCH_LAST_OFFSET_DELTA);
    assert_true(bases[0] + lod >= o);
    /* Reading to the end covers everything up to LEO. */
    const uint8_t *last = f->out.data;
    for (size_t i = 1; i < nb; i++) last += SL_BATCH_LOG_OVERHEAD + sl_load_be32(last + SL_BATCH_LENGTH);
    assert_int_equal((int64_t)sl_load_be64(last) + (int32_t)sl_load_be32(last + SL_BATCH_LAST_OFFSET_DELTA) + 1, leo);
  }
  /* Sequential consumer with small max_bytes: the read cursor path must give the same batches. */
  int64_t next = 0;
  size_t got = 0;
  while (next < leo) {
    f->out.len = 0;
    assert_int_equal(sl_partition_read(f->p, next, 300, true, &f->out, &n), 0);
    assert_true(n > 0);
    assert_memory_equal(f->out.data, stored.data + got, n);
    got += n;
    int64_t bases[16];
    size_t nb = batch_bases(f->out.data, n, bases, 16);
    const uint8_t *last = f->out.data;
    for (size_t i = 1; i < nb; i++) last += SL_BATCH_LOG_OVERHEAD + sl_load_be32(last + SL_BATCH_LENGTH);
    next = (int64_t)sl_load_be64(last) + (int32_t)sl_load_be32(last + SL_BATCH_LAST_OFFSET_DELTA) + 1;
  }
  assert_int_equal(got, stored.len);
  assert_int_equal(sl_partition_sync(f->p), 0);

  /* Clean reopen keeps everything, and old segments' indexes are mapped lazily. */
  assert_int_equal(sl_partition_close_clean(f->p), 0);
  assert_true(tl_exists(f->pdir, ".clean_shutdown"));
  reopen(f);
  assert_false(tl_exists(f->pdir, ".clean_shutdown"));
  assert_int_equal(sl_partition_log_end_offset(f->p), leo);
  assert_int_equal(sl_partition_size_bytes(f->p), stored.len);
  for (int64_t o = 0; o < leo; o += 7) {
    f->out.len = 0;
    assert_int_equal(sl_partition_read(f->p, o, 1 << 20, false, &f->out, &n), 0);
    int64_t bases[64];
    batch_bases(f->out.data, n, bases, 64);
    assert_true(bases[0] <= o && o - bases[0] < 3);
  }
  assert_int_equal(append(f, 1, 5000, 10, NULL), leo);
  sl_buf_free(&stored);
}

static void test_retention_by_size(void **state) {
  fx_t *f = *state;
  f->cfg.segment_bytes = 500;
  f->cfg.retention_ms = -1;
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  for (int i = 0; i < 20; i++) append(f, 1, 1000 + i, 100, NULL);
  uint64_t before = sl_partition_size_bytes(f->p);
  f->cfg.retention_bytes = 600;
  reopen(f); /* unclean reopen with the new config: recovery must keep all data */
  assert_int_equal(sl_partition_size_bytes(f->p), before);
  assert_int_equal(sl_partition_log_end_offset(f->p), 20);
  int deleted = sl_partition_enforce_retention(f->p, sl_wall_ms());
  assert_true(deleted > 0);
  int64_t start = sl_partition_log_start_offset(f->p);
  assert_true(start > 0);
  assert_true(sl_partition_size_bytes(f->p) <= 600 + 500);
  assert_true(sl_partition_size_bytes(f->p) >= 600);
  char name[64];
  snprintf(name, sizeof name, "%020lld.log", 0LL);
  assert_false(tl_exists(f->pdir, name));
  size_t n;
  assert_int_equal(sl_partition_read(f->p, 0, 1 << 20, false, &f->out, &n), SL_LOG_OUT_OF_RANGE);
  assert_int_equal(sl_partition_read(f->p, start - 1, 1 << 20, false, &f->out, &n), SL_LOG_OUT_OF_RANGE);
  assert_int_equal(sl_partition_read(f->p, start, 1 << 20, false, &f->out, &n), 0);
  assert_true(n > 0);
  assert_int_equal((int64_t)sl_load_be64(f->out.data), start);
  /* Idempotent: a second pass deletes nothing. */
  assert_int_equal(sl_partition_enforce_retention(f->p, sl_wall_ms()), 0);
  /* The log start survives a restart (derived from the first segment). */
  reopen(f);
  assert_int_equal(sl_partition_log_start_offset(f->p), start);
}

static void test_retention_by_time(void **state) {
  fx_t *f = *state;
  f->cfg.segment_bytes = 400;
  f->cfg.retention_ms = 60000;
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  int64_t now = sl_wall_ms();
  for (int i = 0; i < 10; i++) append(f, 1, now - 3600000, 100, NULL); /* an hour old */
  int64_t old_end = sl_partition_log_end_offset(f->p);
  for (int i = 0; i < 3; i++) append(f, 1, now, 100, NULL); /* forces a roll first: the old ones fill segments */
  /* Only segments whose newest record is older than the retention go. */
  int deleted = sl_partition_enforce_retention(f->p, now);
  assert_true(deleted > 0);
  int64_t start = sl_partition_log_start_offset(f->p);
  assert_true(start > 0 && start <= old_end);
  size_t n;
  assert_int_equal(sl_partition_read(f->p, 0, 1 << 20, false, &f->out, &n), SL_LOG_OUT_OF_RANGE);
  /* Everything expired, including the active segment: it is rolled and removed; the log is empty at LEO. */
  int64_t leo = sl_partition_log_end_offset(f->p);
  assert_true(sl_partition_enforce_retention(f->p, now + 3600000) > 0);
  assert_int_equal(sl_partition_log_start_offset(f->p), leo);
  assert_int_equal(sl_partition_log_end_offset(f->p), leo);
  assert_int_equal(sl_partition_size_bytes(f->p), 0);
  assert_int_equal(sl_partition_read(f->p, leo - 1, 1 << 20, false, &f->out, &n), SL_LOG_OUT_OF_RANGE);
  assert_int_equal(sl_partition_read(f->p, leo, 1 << 20, false, &f->out, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(append(f, 1, now, 10, NULL), leo);
  assert_int_equal(sl_partition_sync(f->p), 0);
  reopen(f);
  assert_int_equal(sl_partition_log_start_offset(f->p), leo);
  assert_int_equal(sl_partition_log_end_offset(f->p), leo + 1);
}

static void test_roll_by_age(void **state) {
  fx_t *f = *state;
  f->cfg.segment_ms = 1000;
  f->cfg.retention_ms = -1;
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  append(f, 1, 1, 10, NULL);
  assert_int_equal(sl_partition_enforce_retention(f->p, sl_wall_ms() + 2000), 0);
  assert_true(tl_exists(f->pdir, "00000000000000000001.log"));
  append(f, 1, 1, 10, NULL);
  size_t n;
  assert_int_equal(sl_partition_read(f->p, 0, 1 << 20, false, &f->out, &n), 0);
  int64_t bases[4];
  assert_int_equal(batch_bases(f->out.data, n, bases, 4), 2);
  assert_int_equal(bases[1], 1);
}

static void test_offset_for_time(void **state) {
  fx_t *f = *state;
  f->cfg.segment_bytes = 600;
  f->cfg.index_interval_bytes = 200;
  f->cfg.retention_ms = -1;
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  for (int i = 0; i < 20; i++) append(f, 2, 100 * (i + 1), 50, NULL); /* batch i: offsets 2i, 2i+1; ts 100(i+1) */
  int64_t off, ts;
  assert_int_equal(sl_partition_offset_for_time(f->p, 250, &off, &ts), 0);
  assert_int_equal(off, 4);
  assert_int_equal(ts, 300);
  assert_int_equal(sl_partition_offset_for_time(f->p, 300, &off, &ts), 0);
  assert_int_equal(off, 4);
  assert_int_equal(sl_partition_offset_for_time(f->p, 0, &off, &ts), 0);
  assert_int_equal(off, 0);
  assert_int_equal(ts, 100);
  assert_int_equal(sl_partition_offset_for_time(f->p, 1901, &off, &ts), 0);
  assert_int_equal(off, 38);
  assert_int_equal(ts, 2000);
  assert_int_equal(sl_partition_offset_for_time(f->p, 2001, &off, &ts), 0);
  assert_int_equal(off, -1);
  assert_int_equal(ts, -1);
  for (int i = 0; i < 20; i++) {
    assert_int_equal(sl_partition_offset_for_time(f->p, 100 * (i + 1) - 50, &off, &ts), 0);
    assert_int_equal(off, 2 * i);
  }
  /* Same answers after a clean restart (time indexes of old segments from disk). */
  assert_int_equal(sl_partition_close_clean(f->p), 0);
  reopen(f);
  for (int i = 0; i < 20; i++) {
    assert_int_equal(sl_partition_offset_for_time(f->p, 100 * (i + 1), &off, &ts), 0);
    assert_int_equal(off, 2 * i);
    assert_int_equal(ts, 100 * (i + 1));
  }
}

static void chop(fx_t *f, const char *leaf, off_t by) {
  char *path = tl_path(f->pdir, leaf);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(truncate(path, st.st_size - by), 0);
  free(path);
}

static void test_recovery_torn_tail(void **state) {
  fx_t *f = *state;
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  sl_buf_t stored;
  sl_buf_init(&stored);
  for (int i = 0; i < 4; i++) append(f, 2, 1000 + i, 30, &stored);
  append(f, 3, 2000, 30, NULL);
  assert_int_equal(sl_partition_log_end_offset(f->p), 11);
  /* Crash: no clean marker; the last batch is torn. */
  sl_partition_release(f->p);
  f->p = NULL;
  chop(f, "00000000000000000000.log", 10);
  sl_log_set_level(SL_LOG_WARN); /* shows the recovery line in the test output */
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  sl_log_set_level(SL_LOG_ERROR);
  assert_int_equal(sl_partition_log_end_offset(f->p), 8);
  assert_int_equal(sl_partition_size_bytes(f->p), stored.len);
  assert_int_equal(tl_file_size(f->pdir, "00000000000000000000.log"), (off_t)stored.len);
  /* Appends continue at the recovered end. */
  assert_int_equal(append(f, 1, 3000, 30, &stored), 8);
  size_t n;
  assert_int_equal(sl_partition_read(f->p, 0, 1 << 20, false, &f->out, &n), 0);
  assert_int_equal(n, stored.len);
  assert_memory_equal(f->out.data, stored.data, n);
  sl_buf_free(&stored);
}

static void test_recovery_corrupt_byte(void **state) {
  fx_t *f = *state;
  f->cfg.segment_bytes = 300;
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  for (int i = 0; i < 6; i++) append(f, 1, 1000 + i, 100, NULL);
  int64_t leo = sl_partition_log_end_offset(f->p);
  assert_int_equal(leo, 6);
  /* Find the active segment's file: the last batch is alone at its start? Corrupt its last byte. */
  char name[64];
  snprintf(name, sizeof name, "%020lld.log", (long long)(leo - 1));
  if (!tl_exists(f->pdir, name)) snprintf(name, sizeof name, "%020lld.log", (long long)(leo - 2));
  assert_true(tl_exists(f->pdir, name));
  sl_partition_release(f->p);
  f->p = NULL;
  char *path = tl_path(f->pdir, name);
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  struct stat st;
  assert_int_equal(fstat(fd, &st), 0);
  uint8_t c;
  assert_int_equal(pread(fd, &c, 1, st.st_size - 1), 1);
  c ^= 0x55;
  assert_int_equal(pwrite(fd, &c, 1, st.st_size - 1), 1);
  close(fd);
  free(path);
  /* Also drop the active segment's index files: they must be rebuilt. */
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  assert_int_equal(sl_partition_log_end_offset(f->p), leo - 1);
  assert_int_equal(append(f, 1, 3000, 10, NULL), leo - 1);
  size_t n;
  assert_int_equal(sl_partition_read(f->p, 0, 1 << 20, false, &f->out, &n), 0);
  int64_t bases[16];
  assert_int_equal(batch_bases(f->out.data, n, bases, 16), (size_t)leo);
  for (int i = 0; i < leo; i++) assert_int_equal(bases[i], i);
}

/* Segments written since the last sync are checked after a crash, however many: the recovery point (the active
 * segment's base at the last completed sync) says where checking starts. A corrupt batch three segments back,
 * written after the sync, is found and the log cut there. */
static void test_recovery_from_the_recovery_point(void **state) {
  fx_t *f = *state;
  f->cfg.segment_bytes = 300; /* about one batch per segment */
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  for (int i = 0; i < 3; i++) append(f, 1, 1000 + i, 100, NULL);
  assert_int_equal(sl_partition_sync(f->p), 0); /* offsets 0..2 on disk; the point is the active segment's base */
  assert_true(tl_exists(f->pdir, ".recovery_point"));
  for (int i = 3; i < 9; i++) append(f, 1, 1000 + i, 100, NULL); /* six more, never synced */
  int64_t leo = sl_partition_log_end_offset(f->p);
  assert_int_equal(leo, 9);
  sl_partition_release(f->p); /* no clean shutdown marker: a crash */
  f->p = NULL;
  /* the batch at offset 5 (its segment is four back from the end) gets a flipped byte */
  char name[64];
  snprintf(name, sizeof name, "%020lld.log", 5LL);
  assert_true(tl_exists(f->pdir, name));
  char *path = tl_path(f->pdir, name);
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  uint8_t c;
  assert_int_equal(pread(fd, &c, 1, 70), 1);
  c ^= 0x55;
  assert_int_equal(pwrite(fd, &c, 1, 70), 1);
  close(fd);
  free(path);
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  assert_int_equal(sl_partition_log_end_offset(f->p), 5); /* cut at the corrupt batch; later segments dropped */
  size_t n;
  assert_int_equal(sl_partition_read(f->p, 0, 1 << 20, false, &f->out, &n), 0);
  int64_t bases[16];
  assert_int_equal(batch_bases(f->out.data, n, bases, 16), 5);
}

static void test_recovery_missing_indexes(void **state) {
  fx_t *f = *state;
  f->cfg.segment_bytes = 300;
  f->cfg.index_interval_bytes = 1;
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  sl_buf_t stored;
  sl_buf_init(&stored);
  for (int i = 0; i < 12; i++) append(f, 1, 1000 + i, 100, &stored);
  assert_int_equal(sl_partition_close_clean(f->p), 0);
  sl_partition_release(f->p);
  f->p = NULL;
  /* Old segment: index gone; active segment: short (torn) index. Both must be rebuilt even after a clean stop. */
  char *p0 = tl_path(f->pdir, "00000000000000000000.index");
  assert_int_equal(unlink(p0), 0);
  free(p0);
  char name[64];
  snprintf(name, sizeof name, "%020lld.index", 10LL);
  if (!tl_exists(f->pdir, name)) snprintf(name, sizeof name, "%020lld.index", 11LL);
  chop(f, name, 3);
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  assert_int_equal(sl_partition_log_end_offset(f->p), 12);
  for (int64_t o = 0; o < 12; o++) {
    size_t n;
    f->out.len = 0;
    assert_int_equal(sl_partition_read(f->p, o, 1 << 20, false, &f->out, &n), 0);
    assert_int_equal((int64_t)sl_load_be64(f->out.data), o);
  }
  assert_true(tl_file_size(f->pdir, "00000000000000000000.index") > 0);
  sl_buf_free(&stored);
}

typedef struct {
  int64_t bases[256];
  size_t n;
} scan_t;

static void scan_cb(void *arg, const uint8_t *hdr) {
  scan_t *s = arg;
  if (s->n < 256) s->bases[s->n] = (int64_t)sl_load_be64(hdr);
  s->n++;
}

static void test_scan_recent(void **state) {
  fx_t *f = *state;
  f->cfg.segment_bytes = 500;
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  for (int i = 0; i < 20; i++) append(f, 1, 1000, 100, NULL);
  scan_t s = {.n = 0};
  assert_int_equal(sl_partition_scan_recent(f->p, 3, scan_cb, &s), 0);
  assert_true(s.n >= 3 && s.n < 20);
  for (size_t i = 0; i < s.n; i++) assert_int_equal(s.bases[i], 20 - (int64_t)s.n + (int64_t)i);
  s.n = 0;
  assert_int_equal(sl_partition_scan_recent(f->p, 1000, scan_cb, &s), 0);
  assert_int_equal(s.n, 20);
  assert_int_equal(s.bases[0], 0);
  s.n = 0;
  assert_int_equal(sl_partition_scan_recent(f->p, 0, scan_cb, &s), 0);
  assert_int_equal(s.n, 0);
}

static void test_mark_deleted_removes_dir(void **state) {
  fx_t *f = *state;
  assert_int_equal(sl_partition_open(f->pdir, &f->cfg, &f->p), 0);
  append(f, 1, 1, 10, NULL);
  sl_partition_keep(f->p);
  sl_partition_mark_deleted(f->p);
  sl_partition_release(f->p);
  assert_true(tl_exists(f->dir, "t-0")); /* one reference left */
  sl_partition_release(f->p);
  f->p = NULL;
  assert_false(tl_exists(f->dir, "t-0"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_append_offsets_and_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_bytes_and_kip74, setup, teardown),
      cmocka_unit_test_setup_teardown(test_roll_and_cross_segment_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retention_by_size, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retention_by_time, setup, teardown),
      cmocka_unit_test_setup_teardown(test_roll_by_age, setup, teardown),
      cmocka_unit_test_setup_teardown(test_offset_for_time, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recovery_torn_tail, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recovery_corrupt_byte, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recovery_missing_indexes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recovery_from_the_recovery_point, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scan_recent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mark_deleted_removes_dir, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
