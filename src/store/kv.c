/* RocksDB key-value layer (see kv.h). */
#include "store/kv.h"

#include <errno.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

struct sl_kv {
  rocksdb_t *db;
  rocksdb_options_t *opts;
  rocksdb_writeoptions_t *wopts;
  rocksdb_readoptions_t *ropts;
};

struct sl_kv_batch {
  rocksdb_writebatch_t *wb;
};

struct sl_kv_iter {
  rocksdb_iterator_t *it;
  rocksdb_readoptions_t *ropts;
  char *lower, *upper;
};

int sl_kv_open(const char *dir, bool sync, sl_kv_t **out, char *err, size_t errlen) {
  sl_kv_t *kv = calloc(1, sizeof *kv);
  if (!kv) return -ENOMEM;
  kv->opts = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(kv->opts, 1);
  rocksdb_options_set_compression(kv->opts, rocksdb_lz4_compression);
  rocksdb_options_set_max_background_jobs(kv->opts, 2);
  rocksdb_options_set_keep_log_file_num(kv->opts, 3);
  char *e = NULL;
  kv->db = rocksdb_open(kv->opts, dir, &e);
  if (e) {
    snprintf(err, errlen, "%s", e);
    rocksdb_free(e);
    rocksdb_options_destroy(kv->opts);
    free(kv);
    return -EIO;
  }
  kv->wopts = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(kv->wopts, sync);
  kv->ropts = rocksdb_readoptions_create();
  *out = kv;
  return 0;
}

void sl_kv_close(sl_kv_t *kv) {
  if (!kv) return;
  rocksdb_close(kv->db);
  rocksdb_writeoptions_destroy(kv->wopts);
  rocksdb_readoptions_destroy(kv->ropts);
  rocksdb_options_destroy(kv->opts);
  free(kv);
}

int sl_kv_get(sl_kv_t *kv, const void *key, size_t klen, sl_buf_t *val) {
  char *e = NULL;
  size_t vlen = 0;
  rocksdb_pinnableslice_t *ps = rocksdb_get_pinned(kv->db, kv->ropts, key, klen, &e);
  if (e) {
    SL_ERROR("store", "rocksdb get failed: %s", e);
    rocksdb_free(e);
    return -EIO;
  }
  if (!ps) return 0;
  const char *v = rocksdb_pinnableslice_value(ps, &vlen);
  sl_buf_put(val, v, vlen);
  rocksdb_pinnableslice_destroy(ps);
  return 1;
}

sl_kv_batch_t *sl_kv_batch_new(void) {
  sl_kv_batch_t *b = malloc(sizeof *b);
  if (!b) abort();
  b->wb = rocksdb_writebatch_create();
  return b;
}

void sl_kv_batch_put(sl_kv_batch_t *b, const void *k, size_t klen, const void *v, size_t vlen) {
  rocksdb_writebatch_put(b->wb, k, klen, v, vlen);
}

void sl_kv_batch_delete(sl_kv_batch_t *b, const void *k, size_t klen) { rocksdb_writebatch_delete(b->wb, k, klen); }

void sl_kv_batch_delete_range(sl_kv_batch_t *b, const void *from, size_t flen, const void *to, size_t tlen) {
  rocksdb_writebatch_delete_range(b->wb, from, flen, to, tlen);
}

size_t sl_kv_batch_count(const sl_kv_batch_t *b) { return (size_t)rocksdb_writebatch_count(b->wb); }

int sl_kv_batch_commit(sl_kv_t *kv, sl_kv_batch_t *b) {
  char *e = NULL;
  rocksdb_write(kv->db, kv->wopts, b->wb, &e);
  if (e) {
    SL_ERROR("store", "rocksdb write failed: %s", e);
    rocksdb_free(e);
    return -EIO;
  }
  return 0;
}

void sl_kv_batch_free(sl_kv_batch_t *b) {
  if (!b) return;
  rocksdb_writebatch_destroy(b->wb);
  free(b);
}

sl_kv_iter_t *sl_kv_iter_new(sl_kv_t *kv, const void *lower, size_t llen, const void *upper, size_t ulen) {
  sl_kv_iter_t *it = calloc(1, sizeof *it);
  if (!it) abort();
  it->ropts = rocksdb_readoptions_create();
  if (lower) {
    it->lower = malloc(llen ? llen : 1);
    if (!it->lower) abort();
    memcpy(it->lower, lower, llen);
    rocksdb_readoptions_set_iterate_lower_bound(it->ropts, it->lower, llen);
  }
  if (upper) {
    it->upper = malloc(ulen ? ulen : 1);
    if (!it->upper) abort();
    memcpy(it->upper, upper, ulen);
    rocksdb_readoptions_set_iterate_upper_bound(it->ropts, it->upper, ulen);
  }
  it->it = rocksdb_create_iterator(kv->db, it->ropts);
  if (lower) rocksdb_iter_seek(it->it, lower, llen);
  else rocksdb_iter_seek_to_first(it->it);
  return it;
}

void sl_kv_iter_seek(sl_kv_iter_t *it, const void *key, size_t klen) { rocksdb_iter_seek(it->it, key, klen); }
bool sl_kv_iter_valid(const sl_kv_iter_t *it) { return rocksdb_iter_valid(it->it) != 0; }
void sl_kv_iter_next(sl_kv_iter_t *it) { rocksdb_iter_next(it->it); }

const uint8_t *sl_kv_iter_key(const sl_kv_iter_t *it, size_t *len) {
  return (const uint8_t *)rocksdb_iter_key(it->it, len);
}

const uint8_t *sl_kv_iter_value(const sl_kv_iter_t *it, size_t *len) {
  return (const uint8_t *)rocksdb_iter_value(it->it, len);
}

int sl_kv_iter_status(const sl_kv_iter_t *it) {
  char *e = NULL;
  rocksdb_iter_get_error(it->it, &e);
  if (e) {
    SL_ERROR("store", "rocksdb iteration failed: %s", e);
    rocksdb_free(e);
    return -EIO;
  }
  return 0;
}

void sl_kv_iter_free(sl_kv_iter_t *it) {
  if (!it) return;
  rocksdb_iter_destroy(it->it);
  rocksdb_readoptions_destroy(it->ropts);
  free(it->lower);
  free(it->upper);
  free(it);
}

bool sl_kv_prefix_successor(sl_buf_t *key) {
  while (key->len > 0) {
    if (key->data[key->len - 1] != 0xFF) {
      key->data[key->len - 1]++;
      return true;
    }
    key->len--;
  }
  return false;
}
