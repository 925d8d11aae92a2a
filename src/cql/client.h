/* Sluice's CQL client: asynchronous, pipelined, token-aware, on the project's libuv loop. It talks to `sluice store`
 * and to real Cassandra/ScyllaDB clusters alike, behaving like the DataStax drivers users know (reference:
 * ../shared/reference/cql-drivers.md §8).
 *
 * Threading: every function must be called on the loop thread the client was created on, and every callback runs
 * there. Ownership: statements and batches passed to an execute call are owned by the client from then on; results
 * and errors passed to a callback are valid only during the callback; prepared statements are reference-counted.
 *
 * Typical use (the stream processor):
 *   sl_cql_client_create(loop, &cfg, &client);
 *   sl_cql_client_connect(client, on_connected, arg);              // control connection, discovery, pools
 *   sl_cql_prepare(client, "INSERT INTO ks.t (a, b) VALUES (?, ?)", on_prepared, arg);
 *   st = sl_cql_statement_new_prepared(prepared);                  // bind by index with the typed binders
 *   sl_cql_statement_bind_int64(st, 0, 42); sl_cql_statement_bind_text(st, 1, "x", 1);
 *   sl_cql_execute(client, st, on_result, arg);                    // or build a batch with sl_cql_batch_add
 */
#ifndef SL_CQL_CLIENT_H
#define SL_CQL_CLIENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "cql/types.h"

typedef struct sl_cql_client sl_cql_client_t;
typedef struct sl_cql_prepared sl_cql_prepared_t;
typedef struct sl_cql_statement sl_cql_statement_t;
typedef struct sl_cql_batch sl_cql_batch_t;
typedef struct sl_cql_result sl_cql_result_t;

/* Consistency levels (spec §3). */
typedef enum {
  SL_CQL_ANY = 0x0000,
  SL_CQL_ONE = 0x0001,
  SL_CQL_TWO = 0x0002,
  SL_CQL_THREE = 0x0003,
  SL_CQL_QUORUM = 0x0004,
  SL_CQL_ALL = 0x0005,
  SL_CQL_LOCAL_QUORUM = 0x0006,
  SL_CQL_EACH_QUORUM = 0x0007,
  SL_CQL_SERIAL = 0x0008,
  SL_CQL_LOCAL_SERIAL = 0x0009,
  SL_CQL_LOCAL_ONE = 0x000A,
} sl_cql_consistency_t;

/* Client-side failure codes; server failures carry the server's error code (>= 0, spec §9) instead. */
enum {
  SL_CQL_CLIENT_TIMEOUT = -1,          /* no response within the request timeout */
  SL_CQL_CLIENT_NO_HOST = -2,          /* no connected host could take the request */
  SL_CQL_CLIENT_CONNECTION_CLOSED = -3, /* the connection carrying the request went away */
  SL_CQL_CLIENT_PROTOCOL = -4,         /* the server's answer could not be decoded */
  SL_CQL_CLIENT_BAD_VALUE = -5,        /* a bound value does not fit the statement's metadata */
  SL_CQL_CLIENT_CLOSING = -6,          /* the client is shutting down */
  SL_CQL_CLIENT_OVERLOADED = -7,       /* too many requests in flight (max_pending): back off */
};

typedef struct {
  int code;           /* server error code (e.g. 0x2200 Invalid) or a negative SL_CQL_CLIENT_* value */
  char message[512];  /* the server's message, or the client-side reason */
} sl_cql_error_t;

typedef struct {
  const char *contact_points;      /* "host[:port],host[:port]" (default port 9042) */
  const char *username, *password; /* PasswordAuthenticator; NULL for none */
  const char *local_dc;            /* NULL: the data centre of the first contact point */
  const char *keyspace;            /* optional: USE on every connection */
  int connections_per_host;        /* default 1 */
  int max_requests_per_connection; /* in-flight stream ids per connection, default 1024 (max 32768) */
  int max_pending;                 /* requests queued client-wide before SL_CQL_CLIENT_OVERLOADED, default 65536 */
  int request_timeout_ms;          /* default 12000 */
  int connect_timeout_ms;          /* default 5000 */
  bool lz4;                        /* ask for lz4 frame compression */
  sl_cql_consistency_t consistency; /* default LOCAL_ONE */
  /* TLS to every node (Cassandra's client_encryption_options, `sluice store` with store.tls_cert_file; cqlsh
   * --ssl). A string that is NULL or "" is not set, so string settings map directly. The server's certificate chain
   * is always verified; there is no switch to turn that off. TLS 1.2 or later. */
  bool tls;                    /* default false. Setting any tls_* string below without it is an error (-EINVAL) */
  const char *tls_ca_file;     /* PEM CA certificates the nodes' chains must lead to (a self-signed node certificate
                                * may be given as its own CA); not set: the system's default trust store */
  bool tls_check_hostname;     /* default true: a node's certificate must name it, as the DataStax drivers'
                                * check_hostname: tls_server_name when set; else the contact point's host name as
                                * written when it is a DNS name and the node is the address it resolved to; else
                                * the IP address connected to (IP SAN). false: any name, chain still verified */
  const char *tls_cert_file;   /* client certificate (PEM, may hold the chain) for mutual TLS; with tls_key_file */
  const char *tls_key_file;    /* its private key (PEM, unencrypted) */
  const char *tls_server_name; /* SNI sent to, and the name checked on, every node; not set: SNI is the contact
                                * point's host name when it is a DNS name, and no SNI for IP addresses */
} sl_cql_client_config_t;

/* Fills cfg with the defaults above (contact_points "127.0.0.1:9042", TLS off, tls_check_hostname true). */
void sl_cql_client_config_defaults(sl_cql_client_config_t *cfg);

/* Returns 0, or a negative errno: -EINVAL for a malformed contact point or TLS settings, -ENOENT/-EACCES for a TLS
 * file that cannot be read (the reason is logged at ERROR level; _with_error hands it back instead). TLS files are
 * loaded here, once: a later change on disk needs a new client. */
int sl_cql_client_create(uv_loop_t *loop, const sl_cql_client_config_t *cfg, sl_cql_client_t **out);
int sl_cql_client_create_with_error(uv_loop_t *loop, const sl_cql_client_config_t *cfg, sl_cql_client_t **out,
                                    char *err, size_t errlen);
/* Connects the control connection, discovers the nodes (system.local, system.peers), opens the pools and
 * registers for events. err is NULL on success. With TLS, each connection completes its TLS handshake before its
 * CQL handshake (OPTIONS, STARTUP); a failed TLS handshake fails that connection like an unreachable host ("TLS
 * handshake with 127.0.0.1:9042 failed: certificate verify failed: ..."), so the next contact point is tried and the
 * last reason ends up in err. */
typedef void (*sl_cql_connect_cb)(sl_cql_client_t *c, const sl_cql_error_t *err, void *arg);
void sl_cql_client_connect(sl_cql_client_t *c, sl_cql_connect_cb cb, void *arg);
/* Fails every pending request with SL_CQL_CLIENT_CLOSING, closes connections, and calls closed(arg) once all
 * handles are closed; the client is freed then. */
void sl_cql_client_close(sl_cql_client_t *c, void (*closed)(void *arg), void *arg);

/* Statements. Bind by 0-based index; a statement made from text has untyped values (the server decides), one
 * made from a prepared statement is checked against the bind metadata when executed. */
sl_cql_statement_t *sl_cql_statement_new(const char *query, size_t value_count);
sl_cql_statement_t *sl_cql_statement_new_prepared(sl_cql_prepared_t *p);
void sl_cql_statement_free(sl_cql_statement_t *st); /* only for statements never executed */
void sl_cql_statement_bind_null(sl_cql_statement_t *st, size_t i);
void sl_cql_statement_bind_unset(sl_cql_statement_t *st, size_t i);
void sl_cql_statement_bind_bool(sl_cql_statement_t *st, size_t i, bool v);
void sl_cql_statement_bind_int32(sl_cql_statement_t *st, size_t i, int32_t v);   /* int */
void sl_cql_statement_bind_int64(sl_cql_statement_t *st, size_t i, int64_t v);   /* bigint, counter */
void sl_cql_statement_bind_float(sl_cql_statement_t *st, size_t i, float v);
void sl_cql_statement_bind_double(sl_cql_statement_t *st, size_t i, double v);
void sl_cql_statement_bind_text(sl_cql_statement_t *st, size_t i, const char *s, size_t len); /* text, ascii */
void sl_cql_statement_bind_blob(sl_cql_statement_t *st, size_t i, const void *p, size_t len);
void sl_cql_statement_bind_uuid(sl_cql_statement_t *st, size_t i, const uint8_t uuid[16]); /* uuid, timeuuid */
void sl_cql_statement_bind_timestamp(sl_cql_statement_t *st, size_t i, int64_t ms_since_epoch);
/* Any type, already in the protocol's serialized form (collections, tuples, decimals, ...). */
void sl_cql_statement_bind_raw(sl_cql_statement_t *st, size_t i, const void *p, size_t len);
void sl_cql_statement_set_consistency(sl_cql_statement_t *st, sl_cql_consistency_t cl);
void sl_cql_statement_set_page_size(sl_cql_statement_t *st, int32_t rows);
void sl_cql_statement_set_paging_state(sl_cql_statement_t *st, const void *state, size_t len);
void sl_cql_statement_set_idempotent(sl_cql_statement_t *st, bool idempotent); /* retries only when true */
void sl_cql_statement_set_timestamp(sl_cql_statement_t *st, int64_t micros);   /* default: client clock, µs */
void sl_cql_statement_set_timeout(sl_cql_statement_t *st, int timeout_ms);

typedef enum { SL_CQL_BATCH_LOGGED = 0, SL_CQL_BATCH_UNLOGGED = 1, SL_CQL_BATCH_COUNTER = 2 } sl_cql_batch_type_t;
sl_cql_batch_t *sl_cql_batch_new(sl_cql_batch_type_t type);
void sl_cql_batch_add(sl_cql_batch_t *b, sl_cql_statement_t *st); /* takes ownership of st */
size_t sl_cql_batch_count(const sl_cql_batch_t *b);
void sl_cql_batch_set_consistency(sl_cql_batch_t *b, sl_cql_consistency_t cl);
void sl_cql_batch_set_idempotent(sl_cql_batch_t *b, bool idempotent);
void sl_cql_batch_free(sl_cql_batch_t *b); /* only for batches never executed */

/* Prepares on one node (and lazily on the others); re-prepares transparently on UNPREPARED. The prepared statement
 * passed to cb is borrowed from the client's cache and stays valid until sl_cql_client_close; keep/release it only
 * to hold it longer (statements made from it keep their own reference). */
typedef void (*sl_cql_prepare_cb)(sl_cql_prepared_t *p, const sl_cql_error_t *err, void *arg);
void sl_cql_prepare(sl_cql_client_t *c, const char *query, sl_cql_prepare_cb cb, void *arg);
void sl_cql_prepared_keep(sl_cql_prepared_t *p);
void sl_cql_prepared_release(sl_cql_prepared_t *p);
size_t sl_cql_prepared_param_count(const sl_cql_prepared_t *p);
const char *sl_cql_prepared_param_name(const sl_cql_prepared_t *p, size_t i);
const sl_cql_type_t *sl_cql_prepared_param_type(const sl_cql_prepared_t *p, size_t i);

/* Executes; cb gets the result (rows, or an empty result for writes/DDL) or an error. For DDL the client waits for
 * schema agreement before calling back. */
typedef void (*sl_cql_result_cb)(const sl_cql_result_t *res, const sl_cql_error_t *err, void *arg);
void sl_cql_execute(sl_cql_client_t *c, sl_cql_statement_t *st, sl_cql_result_cb cb, void *arg);
void sl_cql_execute_batch(sl_cql_client_t *c, sl_cql_batch_t *b, sl_cql_result_cb cb, void *arg);

/* Results. Cells are the protocol's serialized bytes (NULL ptr = null); the typed getters decode them. */
size_t sl_cql_result_row_count(const sl_cql_result_t *r);
size_t sl_cql_result_column_count(const sl_cql_result_t *r);
const char *sl_cql_result_column_name(const sl_cql_result_t *r, size_t col);
const sl_cql_type_t *sl_cql_result_column_type(const sl_cql_result_t *r, size_t col);
sl_slice_t sl_cql_result_cell(const sl_cql_result_t *r, size_t row, size_t col);
bool sl_cql_result_has_more_pages(const sl_cql_result_t *r);
sl_slice_t sl_cql_result_paging_state(const sl_cql_result_t *r);
/* Appends a cell as cqlsh would print it (text form) / as JSON. */
void sl_cql_format_cell(const sl_cql_type_t *t, sl_slice_t cell, sl_buf_t *out);
void sl_cql_format_cell_json(const sl_cql_type_t *t, sl_slice_t cell, sl_buf_t *out);

/* Cluster metadata from the control connection (for `sluice cql` DESCRIBE and routing). */
size_t sl_cql_client_host_count(const sl_cql_client_t *c);
const char *sl_cql_client_host_address(const sl_cql_client_t *c, size_t i); /* "ip:port" */
const char *sl_cql_client_host_dc(const sl_cql_client_t *c, size_t i);
bool sl_cql_client_host_up(const sl_cql_client_t *c, size_t i);

#endif
