/* Tables on RocksDB: the key layout, cells with timestamps and TTLs, last-write-wins, and row scans.
 * It knows the table's columns and their types (to encode keys) but nothing of the CQL language or the wire.
 *
 * Key layout (all big-endian, every component order-preserving, see keycodec.h):
 *
 *   'D' | table id u32 | token (sign-flipped i64) | pk components | kind | [ck components] | column id u16
 *
 *   kind 0x00: partition-level record (column 0xFFFF = partition tombstone)
 *   kind 0x01: the static row
 *   kind 0x02: a clustering row; column 0 = row marker (INSERT liveness), 0xFFFF = row tombstone
 *
 * Regular and static cells of a row (and the row marker) are written as one record per write under column id
 * 0xFFFD (SL_ROWS_PACKED_COL): a "packed row" of cells sorted by column id,
 *
 *   repeated { column id u16 | cell length u32 | cell }
 *
 * each cell keeping its own timestamp and TTL. Versions of a packed row are merged cell by cell with the same
 * last-write-wins rule (the RocksDB merge operator, on read and compaction), so an INSERT of five columns costs
 * one RocksDB entry instead of six. Keys with other column ids (one cell each) are still read, for data written
 * before packing.
 *
 * Non-frozen collections ("multi-cell" columns) keep one cell per element in the packed row: an entry whose
 * column id has bit 15 set carries a path, { column id | 0x8000 u16 | path length u16 | path | cell length u32 |
 * cell }, and entries sort by (column id, no path first, path bytes). The path of a set element or a map key is
 * its order-preserving key encoding (keycodec.h), so elements come out sorted by the type's comparator; the path
 * of a list element is a 16-byte time-based key (sl_rows_list_path: appends sort after, prepends before). The
 * column's entry without a path is the collection tombstone (an overwrite writes it at timestamp - 1, as
 * Cassandra does); elements at or before it are dead. Each element is merged with the cell rule above, so elements
 * carry their own timestamps and TTLs. A read returns the live elements serialized as the collection (null when
 * none).
 *
 * Cell value: flags u8 (0x01 tombstone, 0x02 expiring, 0x04 counter) | write time i64 µs | [ttl i32 | expiry i64 s] |
 * bytes. A tombstone's expiry slot holds its local deletion time (for the equal-timestamp tie-break).
 *
 * Counters: an increment is a counter cell holding its delta (8 bytes); versions of a counter cell add up instead
 * of one winning (the merge keeps the newest write time), and the deltas at or before a tombstone of the cell are
 * void. Incrementing a counter after deleting it is undefined, as in Cassandra. */
#ifndef SL_STORE_ROWS_H
#define SL_STORE_ROWS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/arena.h"
#include "store/kv.h"
#include "store/schema.h"

#define SL_ROWS_DATA_PREFIX 'D'
#define SL_ROWS_MARKER_COL 0
#define SL_ROWS_TOMBSTONE_COL 0xFFFF
#define SL_ROWS_PACKED_COL 0xFFFD
enum { SL_ROWS_KIND_PARTITION = 0, SL_ROWS_KIND_STATIC = 1, SL_ROWS_KIND_ROW = 2 };

/* The RocksDB policies of the row layer: per-cell last-write-wins merges and the gc_grace purge. Open the
 * database with it (sl_kv_open_policy). */
extern const sl_kv_policy_t sl_rows_policy;
/* Tells the purge a table's gc_grace_seconds (thread-safe; compaction threads read it). */
void sl_rows_set_gc_grace(uint32_t table_id, int64_t seconds);

/* The token of a partition key (Murmur3 over the routing key: one component as is, several composed). */
int64_t sl_rows_token(const sl_table_t *t, const sl_slice_t *pk);
/* 'D' | table id */
void sl_rows_table_prefix(sl_buf_t *out, uint32_t table_id);
/* 'D' | table id | token | pk components */
void sl_rows_partition_prefix(sl_buf_t *out, const sl_table_t *t, const sl_slice_t *pk);
/* Appends clustering components (the first n) after a partition prefix + kind. */
void sl_rows_put_clustering(sl_buf_t *out, const sl_table_t *t, const sl_slice_t *ck, size_t n);

typedef struct {
  uint16_t col_id;
  const uint8_t *v; /* NULL with tombstone */
  size_t len;
  bool tombstone;
  const uint8_t *path; /* a collection element's path (NULL: the column's own cell, or its collection tombstone) */
  size_t pathlen;
  bool ts_minus_one;   /* written at ts - 1 (the collection tombstone of an overwrite) */
  bool counter;        /* a counter increment: v is the 8-byte big-endian delta */
} sl_cell_write_t;

/* A non-frozen list, set or map: stored one cell per element. */
bool sl_rows_is_multicell(const sl_cql_type_t *t);
/* The 16-byte path of a list element at a logical time (negative for prepends). */
void sl_rows_list_path(uint8_t out[16], int64_t time, const uint8_t node[8]);

/* A live element of a multi-cell column, in path order. */
typedef struct {
  const uint8_t *path;
  size_t pathlen;
  const uint8_t *v; /* list element / map value; empty for sets */
  size_t len;
  int64_t ts;
} sl_rows_elem_t;

/* Writes cells of one row (ck NULL: the static row), each only if it wins over the stored cell (LWW with
 * Cassandra's tie-breaks). row_marker adds the INSERT liveness marker. ttl 0 = none. */
int sl_rows_write(sl_kv_t *kv, sl_kv_batch_t *b, const sl_table_t *t, const sl_slice_t *pk, const sl_slice_t *ck,
                  bool row_marker, const sl_cell_write_t *cells, size_t n, int64_t ts, int32_t ttl, int64_t now_s);
/* A row or partition tombstone at ts (ck NULL: the whole partition). */
void sl_rows_delete(sl_kv_batch_t *b, const sl_table_t *t, const sl_slice_t *pk, const sl_slice_t *ck, int64_t ts,
                    int64_t now_s);

/* A clustering range tombstone: rows whose clustering encoding (as in the key) lies between lo and hi (both
 * encoded clustering prefixes in key byte order; length 0 = unbounded) lose every cell written at or before ts.
 * Stored as a partition-level record (kind 0x00, column SL_ROWS_RANGE_COL). */
#define SL_ROWS_RANGE_COL 0xFFFE
typedef struct {
  const uint8_t *lo, *hi;
  size_t lolen, hilen;
  bool lo_incl, hi_incl;
  int64_t ts;
} sl_rows_range_t;

void sl_rows_delete_range(sl_kv_batch_t *b, const sl_table_t *t, const sl_slice_t *pk, const sl_rows_range_t *r,
                          int64_t ts, int64_t now_s);
int sl_rows_range_decode(const uint8_t *p, size_t len, sl_rows_range_t *r);

typedef struct {
  sl_slice_t *vals; /* per table column; ptr NULL = null */
  int64_t *ts;      /* write time per column, INT64_MIN when none */
  int32_t *ttl;     /* remaining seconds per column, 0 when none */
  const uint8_t *key; /* storage prefix of the row (paging resumes after it) */
  size_t keylen;
  sl_rows_elem_t **elems; /* per column: live elements of multi-cell columns; NULL when the table has none */
  size_t *nelems;
} sl_row_t;

/* Returns 0 to continue, 1 to stop, negative to abort with that error. */
typedef int (*sl_row_cb)(void *arg, const sl_row_t *row);

/* Visits live rows with keys in [lower, upper), in key order. Everything handed to cb lives in the arena. */
int sl_rows_scan(sl_kv_t *kv, const sl_table_t *t, const uint8_t *lower, size_t llen, const uint8_t *upper,
                 size_t ulen, int64_t now_s, sl_arena_t *a, sl_row_cb cb, void *arg);

#endif
