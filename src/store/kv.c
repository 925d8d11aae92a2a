/* RocksDB key-value layer (see kv.h). */
#include "store/kv.h"

#include <errno.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

struct sl_kv {
  rocksdb_t *db;
  rocksdb_options_t *opts;
  rocksdb_writeoptions_t *wopts;        /* fsyncs the WAL when the store is configured to */
  rocksdb_writeoptions_t *wopts_nosync; /* inside a group commit */
  bool sync, in_group, group_dirty;
  rocksdb_readoptions_t *ropts;
  rocksdb_mergeoperator_t *merge;
  rocksdb_compactionfilter_t *filter;
  rocksdb_block_based_table_options_t *bbto;
  rocksdb_filterpolicy_t *filter_policy; /* owned by bbto once set */
  rocksdb_cache_t *cache;
};

struct sl_kv_batch {
  rocksdb_writebatch_t *wb;
};

struct sl_kv_iter {
  rocksdb_iterator_t *it;
  rocksdb_readoptions_t *ropts;
  char *lower, *upper;
};

/* ---- merge operator and compaction filter over the policy ---- */

static char *pick(const sl_kv_policy_t *p, const char *existing, size_t elen, const char *const *ops,
                  const size_t *oplens, int n, unsigned char *success, size_t *outlen) {
  const char *best = existing;
  size_t blen = elen;
  for (int i = 0; i < n; i++) /* operands are in write order: each later one must beat the best so far */
    if (!best || p->wins((const uint8_t *)ops[i], oplens[i], (const uint8_t *)best, blen)) {
      best = ops[i];
      blen = oplens[i];
    }
  char *out = malloc(blen ? blen : 1);
  if (!out) {
    *success = 0;
    return NULL;
  }
  if (blen) memcpy(out, best, blen);
  *outlen = blen;
  *success = 1;
  return out;
}

/* The policy's key-aware merge, if it takes the key: the result's buffer is handed to RocksDB (freed by
 * merge_free). Returns NULL with *taken false when the key is left to pick(). */
static char *custom_merge(const sl_kv_policy_t *p, const char *key, size_t klen, const char *existing, size_t elen,
                          const char *const *ops, const size_t *oplens, int n, unsigned char *success,
                          size_t *outlen, bool *taken) {
  *taken = false;
  if (!p->merge) return NULL;
  sl_buf_t out;
  sl_buf_init(&out);
  if (!p->merge((const uint8_t *)key, klen, (const uint8_t *)existing, elen, ops, oplens, n, &out)) {
    sl_buf_free(&out);
    return NULL;
  }
  *taken = true;
  if (!out.data) sl_buf_reserve(&out, 1);
  *outlen = out.len;
  *success = 1;
  return (char *)out.data;
}

static char *full_merge(void *st, const char *key, size_t klen, const char *existing, size_t elen,
                        const char *const *ops, const size_t *oplens, int n, unsigned char *success, size_t *outlen) {
  bool taken;
  char *r = custom_merge(st, key, klen, existing, elen, ops, oplens, n, success, outlen, &taken);
  if (taken) return r;
  return pick(st, existing, elen, ops, oplens, n, success, outlen);
}

static char *partial_merge(void *st, const char *key, size_t klen, const char *const *ops, const size_t *oplens,
                           int n, unsigned char *success, size_t *outlen) {
  bool taken;
  char *r = custom_merge(st, key, klen, NULL, 0, ops, oplens, n, success, outlen, &taken);
  if (taken) return r;
  return pick(st, NULL, 0, ops, oplens, n, success, outlen);
}

static void merge_free(void *st, const char *v, size_t len) {
  (void)st, (void)len;
  free((void *)v);
}

static void no_destroy(void *st) { (void)st; }
static const char *merge_name(void *st) {
  (void)st;
  return "sluice.lww";
}
static const char *filter_name(void *st) {
  (void)st;
  return "sluice.purge";
}

static unsigned char filter(void *st, int level, const char *key, size_t klen, const char *val, size_t vlen,
                            char **new_val, size_t *new_len, unsigned char *changed) {
  (void)level, (void)new_val, (void)new_len;
  *changed = 0;
  const sl_kv_policy_t *p = st;
  return p->purge((const uint8_t *)key, klen, (const uint8_t *)val, vlen, (int64_t)time(NULL));
}

int sl_kv_open(const char *dir, bool sync, sl_kv_t **out, char *err, size_t errlen) {
  return sl_kv_open_policy(dir, sync, NULL, out, err, errlen);
}

int sl_kv_open_policy(const char *dir, bool sync, const sl_kv_policy_t *policy, sl_kv_t **out, char *err,
                      size_t errlen) {
  sl_kv_t *kv = calloc(1, sizeof *kv);
  if (!kv) return -ENOMEM;
  kv->opts = rocksdb_options_create();
  if (policy && policy->insert_hint_prefix) { /* only settable through the options string in the C API */
    char spec[96], *e = NULL;
    snprintf(spec, sizeof spec, "memtable_insert_with_hint_prefix_extractor=rocksdb.CappedPrefix.%zu",
             policy->insert_hint_prefix);
    rocksdb_options_t *hinted = rocksdb_options_create();
    rocksdb_get_options_from_string(kv->opts, spec, hinted, &e);
    if (e) {
      SL_WARN("store", "memtable insert hints not available: %s", e);
      rocksdb_free(e);
      rocksdb_options_destroy(hinted);
    } else {
      rocksdb_options_destroy(kv->opts);
      kv->opts = hinted;
    }
  }
  if (policy && policy->wins) {
    kv->merge = rocksdb_mergeoperator_create((void *)policy, no_destroy, full_merge, partial_merge, merge_free,
                                             merge_name);
    rocksdb_options_set_merge_operator(kv->opts, kv->merge);
  }
  if (policy && policy->purge) {
    kv->filter = rocksdb_compactionfilter_create((void *)policy, no_destroy, filter, filter_name);
    rocksdb_options_set_compaction_filter(kv->opts, kv->filter);
  }
  rocksdb_options_set_create_if_missing(kv->opts, 1);
  rocksdb_options_set_compression(kv->opts, rocksdb_lz4_compression);
  rocksdb_options_set_max_background_jobs(kv->opts, 2);
  rocksdb_options_set_keep_log_file_num(kv->opts, 3);
  /* Ingest-heavy time series: bigger memtables (fewer flushes and L0 files), bloom filters so point reads and
   * row-existence checks skip files, and a block cache shared by data, index and filter blocks. */
  rocksdb_options_set_write_buffer_size(kv->opts, 64u << 20);
  rocksdb_options_set_max_write_buffer_number(kv->opts, 4);
  rocksdb_options_set_level0_file_num_compaction_trigger(kv->opts, 8);
  rocksdb_options_set_target_file_size_base(kv->opts, 64u << 20);
  rocksdb_options_set_max_bytes_for_level_base(kv->opts, 512u << 20);
  kv->bbto = rocksdb_block_based_options_create();
  kv->filter_policy = rocksdb_filterpolicy_create_bloom_full(10);
  rocksdb_block_based_options_set_filter_policy(kv->bbto, kv->filter_policy);
  kv->cache = rocksdb_cache_create_lru(64u << 20);
  rocksdb_block_based_options_set_block_cache(kv->bbto, kv->cache);
  rocksdb_block_based_options_set_block_size(kv->bbto, 16u << 10);
  rocksdb_block_based_options_set_cache_index_and_filter_blocks(kv->bbto, 1);
  rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(kv->bbto, 1);
  rocksdb_options_set_block_based_table_factory(kv->opts, kv->bbto);
  char *e = NULL;
  kv->db = rocksdb_open(kv->opts, dir, &e);
  if (e) {
    snprintf(err, errlen, "%s", e);
    rocksdb_free(e);
    rocksdb_options_destroy(kv->opts);
    rocksdb_block_based_options_destroy(kv->bbto);
    rocksdb_cache_destroy(kv->cache);
    if (kv->filter) rocksdb_compactionfilter_destroy(kv->filter);
    free(kv);
    return -EIO;
  }
  kv->wopts = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(kv->wopts, sync);
  kv->wopts_nosync = rocksdb_writeoptions_create();
  kv->sync = sync;
  kv->ropts = rocksdb_readoptions_create();
  *out = kv;
  return 0;
}

void sl_kv_close(sl_kv_t *kv) {
  if (!kv) return;
  rocksdb_close(kv->db);
  rocksdb_writeoptions_destroy(kv->wopts);
  rocksdb_writeoptions_destroy(kv->wopts_nosync);
  rocksdb_readoptions_destroy(kv->ropts);
  rocksdb_options_destroy(kv->opts);
  rocksdb_block_based_options_destroy(kv->bbto);
  rocksdb_cache_destroy(kv->cache);
  /* the options own the merge operator (a shared_ptr inside); the compaction filter is only borrowed */
  if (kv->filter) rocksdb_compactionfilter_destroy(kv->filter);
  free(kv);
}

/* Two forced passes: keys written as merges become plain values in the first, and only plain values go through
 * the compaction filter (RocksDB filters merge operands separately, which the C API leaves at "keep"). */
void sl_kv_compact(sl_kv_t *kv) {
  rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
  rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* kForce */);
  for (int pass = 0; pass < 2; pass++) rocksdb_compact_range_opt(kv->db, co, NULL, 0, NULL, 0);
  rocksdb_compactoptions_destroy(co);
}

void sl_kv_batch_merge(sl_kv_batch_t *b, const void *k, size_t klen, const void *v, size_t vlen) {
  rocksdb_writebatch_merge(b->wb, k, klen, v, vlen);
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
  if (kv->in_group) kv->group_dirty = true;
  rocksdb_write(kv->db, kv->in_group ? kv->wopts_nosync : kv->wopts, b->wb, &e);
  if (e) {
    SL_ERROR("store", "rocksdb write failed: %s", e);
    rocksdb_free(e);
    return -EIO;
  }
  return 0;
}

void sl_kv_group_begin(sl_kv_t *kv) {
  kv->in_group = kv->sync;
  kv->group_dirty = false;
}

int sl_kv_group_end(sl_kv_t *kv) {
  bool dirty = kv->group_dirty;
  kv->in_group = kv->group_dirty = false;
  if (!dirty) return 0;
  char *e = NULL;
  rocksdb_flush_wal(kv->db, 1 /* sync */, &e); /* without manual WAL flush, this is an fsync of the live WAL */
  if (e) {
    SL_ERROR("store", "rocksdb WAL sync failed: %s", e);
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

/* RocksDB counts every step of an iteration in its thread-local perf context unless told not to (the default level
 * is kEnableCount); nothing here reads those counters. The level is per thread: set once on each. */
static void perf_counters_off(void) {
  static _Thread_local bool off;
  if (off) return;
  rocksdb_set_perf_level(1); /* rocksdb::PerfLevel::kDisable */
  off = true;
}

sl_kv_iter_t *sl_kv_iter_new(sl_kv_t *kv, const void *lower, size_t llen, const void *upper, size_t ulen) {
  perf_counters_off();
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
