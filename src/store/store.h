/* The store role: a single-node CQL-wire-compatible (native protocol v4) store on RocksDB.
 * `sluice store` runs it alone; `sluice up` composes it with the other roles. */
#ifndef SL_STORE_STORE_H
#define SL_STORE_STORE_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/config.h"

typedef struct {
  char *listen;     /* host:port; port 0 picks a free port */
  char *data_dir;
  char *ready_file; /* written with "host:port\n" once listening (tests wait for it) */
  char *cluster_name;
  char *data_center;
  char *rack;
  bool sync_writes; /* fsync RocksDB's WAL before acknowledging a write */
  int64_t max_frame_bytes;
  int64_t max_prepared;
  int64_t max_inflight; /* requests queued per connection before reading pauses */
  int64_t max_queued;   /* requests queued on the executor (all connections) before new ones get Overloaded */
  char *authenticator;  /* "" / AllowAllAuthenticator, or PasswordAuthenticator */
  char *users;          /* PasswordAuthenticator's "user:password[,user:password...]" */
  char *tls_cert_file;  /* with tls_key_file: the CQL port speaks TLS */
  char *tls_key_file;
} sl_store_config_t;

extern const sl_config_field_t sl_store_config_fields[];
extern const size_t sl_store_config_field_count;

typedef struct sl_store sl_store_t;

/* Opens the data directory (RocksDB, catalogue) and starts listening. Returns 0 or a negative error; logs why.
 * Opening RocksDB happens here, on the loop thread, before anything is served. */
int sl_store_start(uv_loop_t *loop, const sl_store_config_t *cfg, sl_store_t **out);
/* Stops listening, closes connections, finishes queued requests, closes RocksDB. Run the loop afterwards until
 * it has no handles left. */
void sl_store_stop(sl_store_t *s);
int sl_store_port(const sl_store_t *s);

#endif
