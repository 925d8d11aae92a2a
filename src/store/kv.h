/* A thin ordered key-value layer over RocksDB (C API). It knows bytes only: no CQL, no wire.
 *
 * Threading: every function here blocks on disk and must run on the store's executor thread, never on the event
 * loop (see worker.h). Writes go through the WAL; `sync` makes each commit fsync it (the durability setting). */
#ifndef SL_STORE_KV_H
#define SL_STORE_KV_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct sl_kv sl_kv_t;
typedef struct sl_kv_batch sl_kv_batch_t;
typedef struct sl_kv_iter sl_kv_iter_t;

/* Policies the layer above gives RocksDB, both called on RocksDB's own threads (so they must be thread-safe):
 *  - wins(a, b): of two versions of one key written with sl_kv_batch_merge, does a (the newer write) win over b?
 *    Merges replace read-before-write: the winner is picked when RocksDB reads or compacts the key.
 *  - purge(key, value, now): during compaction, may this record be dropped (RocksDB turns the drop into a
 *    deletion, so older versions of the key below stay hidden)? */
typedef struct {
  bool (*wins)(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
  bool (*purge)(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, int64_t now_s);
  /* Optional, key-aware merge for values that are not picked whole (e.g. a row of cells merged cell by cell):
   * combines existing (NULL: none) and the operands (in write order) into out and returns true, or returns false
   * to leave the key to wins(). */
  bool (*merge)(const uint8_t *key, size_t klen, const uint8_t *existing, size_t elen, const char *const *ops,
                const size_t *oplens, int n, sl_buf_t *out);
  /* Optional: keys sharing this many leading bytes tend to be written one after another (a partition's rows);
   * the memtable keeps an insert position per such prefix, so the next insert starts there, not at the top. */
  size_t insert_hint_prefix;
} sl_kv_policy_t;

/* Opens (creating) the database in dir. On failure returns -EIO and writes RocksDB's message into err. */
int sl_kv_open(const char *dir, bool sync, sl_kv_t **out, char *err, size_t errlen);
/* The same with merge and compaction policies (policy must outlive the database). */
int sl_kv_open_policy(const char *dir, bool sync, const sl_kv_policy_t *policy, sl_kv_t **out, char *err,
                      size_t errlen);
/* Compacts the whole key space now (tests; an operator command). */
void sl_kv_compact(sl_kv_t *kv);
void sl_kv_close(sl_kv_t *kv);
/* Returns 1 and appends the value to val if found, 0 if absent, -EIO on error. */
int sl_kv_get(sl_kv_t *kv, const void *key, size_t klen, sl_buf_t *val);

sl_kv_batch_t *sl_kv_batch_new(void);
void sl_kv_batch_put(sl_kv_batch_t *b, const void *k, size_t klen, const void *v, size_t vlen);
void sl_kv_batch_delete(sl_kv_batch_t *b, const void *k, size_t klen);
/* A version of k resolved against the others by the policy's wins() (needs sl_kv_open_policy). */
void sl_kv_batch_merge(sl_kv_batch_t *b, const void *k, size_t klen, const void *v, size_t vlen);
void sl_kv_batch_delete_range(sl_kv_batch_t *b, const void *from, size_t flen, const void *to, size_t tlen);
size_t sl_kv_batch_count(const sl_kv_batch_t *b);
/* Applies atomically; returns 0 or -EIO (message logged). */
int sl_kv_batch_commit(sl_kv_t *kv, sl_kv_batch_t *b);

/* Group commit. Between begin and end, commits are applied (and visible to reads) without waiting for the WAL
 * fsync; end makes all of them durable with one fsync. Returns 0, or -EIO when the fsync failed and none of the
 * group's writes may be acknowledged. Without `sync` both are no-ops. */
void sl_kv_group_begin(sl_kv_t *kv);
int sl_kv_group_end(sl_kv_t *kv);
void sl_kv_batch_free(sl_kv_batch_t *b);

/* An iterator over [lower, upper) (upper NULL = unbounded); the bounds are copied. */
sl_kv_iter_t *sl_kv_iter_new(sl_kv_t *kv, const void *lower, size_t llen, const void *upper, size_t ulen);
void sl_kv_iter_seek(sl_kv_iter_t *it, const void *key, size_t klen);
bool sl_kv_iter_valid(const sl_kv_iter_t *it);
void sl_kv_iter_next(sl_kv_iter_t *it);
const uint8_t *sl_kv_iter_key(const sl_kv_iter_t *it, size_t *len);
const uint8_t *sl_kv_iter_value(const sl_kv_iter_t *it, size_t *len);
/* 0, or -EIO if iteration stopped on an error. */
int sl_kv_iter_status(const sl_kv_iter_t *it);
void sl_kv_iter_free(sl_kv_iter_t *it);

/* Smallest key greater than every key with this prefix (the prefix with its last non-0xFF byte incremented);
 * returns false when there is none (all 0xFF). */
bool sl_kv_prefix_successor(sl_buf_t *key);

#endif
