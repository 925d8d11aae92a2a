/* The store's executor: catalogue, RocksDB, prepared statements, and the CQL request handlers
 * (QUERY, PREPARE, EXECUTE, BATCH) that turn a request body into a response body.
 *
 * Threading: an engine is used by exactly one thread at a time — the store's executor thread (worker.h) — so
 * nothing in it is locked, and every RocksDB call it makes stays off the event loop. Sessions (per-connection
 * state such as the current keyspace) are only touched by that thread too. */
#ifndef SL_STORE_ENGINE_H
#define SL_STORE_ENGINE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct sl_engine sl_engine_t;

typedef struct {
  const char *data_dir;
  bool sync_writes;        /* fsync the WAL on every acknowledged write */
  const char *cluster_name;
  const char *data_center;
  const char *rack;
  const char *address;     /* rpc/broadcast address in system.local */
  int port;
  int64_t max_prepared;    /* prepared statement cache bound */
} sl_engine_config_t;

typedef struct {
  char keyspace[256]; /* "" = none */
} sl_session_t;

typedef struct {
  uint8_t opcode;  /* CQL_OP_RESULT or CQL_OP_ERROR */
  sl_buf_t body;
  sl_buf_t event;  /* a SCHEMA_CHANGE event body to push to registered connections, or empty */
} sl_exec_result_t;

/* Opens RocksDB, loads the catalogue and builds the system tables. Returns 0 or a negative error (logged). */
int sl_engine_open(const sl_engine_config_t *cfg, sl_engine_t **out);
void sl_engine_close(sl_engine_t *e);
/* Runs one request (opcode QUERY, PREPARE, EXECUTE or BATCH) and fills res (body and event start empty). */
void sl_engine_execute(sl_engine_t *e, sl_session_t *s, uint8_t opcode, const uint8_t *body, size_t len,
                       sl_exec_result_t *res);

/* Group commit around several sl_engine_execute calls (see sl_kv_group_begin): the writes of the group become
 * durable at sl_engine_group_end, which returns 0, or -EIO when none of the group's results may be sent. */
void sl_engine_group_begin(sl_engine_t *e);
int sl_engine_group_end(sl_engine_t *e);

#endif
