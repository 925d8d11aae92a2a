/* Helpers shared by the log unit tests: valid record batches and throwaway directories. */
#ifndef SL_TEST_LOG_UTIL_H
#define SL_TEST_LOG_UTIL_H
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/crc32c.h"
#include "log/partition.h"

/* Builds a valid v2 batch of `records` records with `value_len`-byte values (base offset 0, as a client sends),
 * timestamps base_ts.. with maxTimestamp max_ts. */
static inline void tl_make_batch(sl_buf_t *b, int records, int64_t base_ts, int64_t max_ts, size_t value_len) {
  b->len = 0;
  sl_buf_put_be64(b, 0);           /* baseOffset */
  sl_buf_put_be32(b, 0);           /* batchLength, patched */
  sl_buf_put_be32(b, 0xFFFFFFFFu); /* partitionLeaderEpoch: the log must overwrite it */
  sl_buf_put_u8(b, 2);             /* magic */
  sl_buf_put_be32(b, 0);           /* crc, patched */
  sl_buf_put_be16(b, 0);           /* attributes */
  sl_buf_put_be32(b, (uint32_t)(records - 1));
  sl_buf_put_be64(b, (uint64_t)base_ts);
  sl_buf_put_be64(b, (uint64_t)max_ts);
  sl_buf_put_be64(b, (uint64_t)-1); /* producerId */
  sl_buf_put_be16(b, 0xFFFF);
  sl_buf_put_be32(b, 0xFFFFFFFFu);
  sl_buf_put_be32(b, (uint32_t)records);
  sl_buf_t r;
  sl_buf_init(&r);
  for (int i = 0; i < records; i++) {
    r.len = 0;
    sl_buf_put_u8(&r, 0);
    sl_buf_put_varint(&r, 0);
    sl_buf_put_varint(&r, i);
    sl_buf_put_varint(&r, -1);
    sl_buf_put_varint(&r, (int64_t)value_len);
    uint8_t *v = sl_buf_extend(&r, value_len);
    for (size_t k = 0; k < value_len; k++) v[k] = (uint8_t)('a' + (i + k) % 26);
    sl_buf_put_varint(&r, 0);
    sl_buf_put_varint(b, (int64_t)r.len);
    sl_buf_put(b, r.data, r.len);
  }
  sl_buf_free(&r);
  sl_store_be32(b->data + SL_BATCH_LENGTH, (uint32_t)(b->len - SL_BATCH_LOG_OVERHEAD));
  sl_store_be32(b->data + SL_BATCH_CRC, sl_crc32c(0, b->data + SL_BATCH_ATTRIBUTES, b->len - SL_BATCH_ATTRIBUTES));
}

static inline char *tl_mkdtemp(void) {
  char *d = strdup("/tmp/sluice_test_XXXXXX");
  if (!d || !mkdtemp(d)) abort();
  return d;
}

static inline int tl_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static inline void tl_rmtree(char *dir) {
  nftw(dir, tl_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

static inline char *tl_path(const char *dir, const char *leaf) {
  char *p = malloc(strlen(dir) + strlen(leaf) + 2);
  if (!p) abort();
  sprintf(p, "%s/%s", dir, leaf);
  return p;
}

static inline bool tl_exists(const char *dir, const char *leaf) {
  char *p = tl_path(dir, leaf);
  struct stat st;
  bool ok = stat(p, &st) == 0;
  free(p);
  return ok;
}

static inline off_t tl_file_size(const char *dir, const char *leaf) {
  char *p = tl_path(dir, leaf);
  struct stat st;
  off_t sz = stat(p, &st) == 0 ? st.st_size : -1;
  free(p);
  return sz;
}

#endif
