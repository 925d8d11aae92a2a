/* Internals of the CQL client shared by its files (client.c, client_result.c, routing.c) and its unit tests:
 * the decoded RESULT, the host list built from system.local/system.peers, the token ring and the query plan.
 * Nothing here is part of the public API (client.h). */
#ifndef SL_CQL_CLIENT_INTERNAL_H
#define SL_CQL_CLIENT_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "cql/client.h"
#include "cql/types.h"

/* A decoded RESULT. Cells and the paging state point into the frame body the result was decoded from; names and
 * types are owned. */
struct sl_cql_result {
  int kind; /* CQL_RESULT_* */
  size_t ncols;
  char **names;
  sl_cql_type_t **types;
  char *ks, *table; /* the first column's table spec (rows and prepared metadata) */
  size_t nrows;
  sl_slice_t *cells; /* nrows * ncols; ptr NULL = null */
  bool has_more;
  sl_slice_t paging_state;
  char *keyspace;                                 /* Set_keyspace; Schema_change keyspace */
  char change_type[16], target[16], object[256]; /* Schema_change */
};

/* Reads a type [option] (depth-limited). Returns NULL and sets r->err on malformed input. */
sl_cql_type_t *sl_cql_read_option(sl_reader_t *r, int depth);
/* Reads the column metadata of a Rows result or of a Prepared result's result metadata ([int] flags already read
 * by the caller is not assumed: reads flags itself). pk receives the partition-key indexes when with_pk (v4
 * prepared). Returns 0 or -EPROTO. */
int sl_cql_read_metadata(sl_reader_t *r, sl_cql_result_t *out, bool with_pk, uint16_t **pk, size_t *npk);
/* Decodes a whole RESULT body (kind included). Returns 0 or -EPROTO with a reason in err. */
int sl_cql_result_decode(const uint8_t *body, size_t len, int version, sl_cql_result_t *out, char *err,
                         size_t errlen);
void sl_cql_result_clear(sl_cql_result_t *r);
/* Column index by name, or -1. */
int sl_cql_result_column_index(const sl_cql_result_t *r, const char *name);

/* Routing key: one component is its value; several are [uint16 len][bytes][0x00] each (cql-drivers.md §8). */
void sl_cql_routing_key(const sl_slice_t *parts, size_t n, sl_buf_t *out);

/* One node as discovered from system.local / system.peers. */
typedef struct {
  char addr[80]; /* "ip:port" to connect to */
  char ip[64];
  int port;
  char dc[64], rack[64];
  char schema_version[40];
  int64_t *tokens; /* owned, sorted */
  size_t ntokens;
} sl_cql_host_info_t;

/* Builds the host list from the control connection's system.local and system.peers rows. The local row's address
 * is the one the control connection reached (connected_ip:port); peers use rpc_address (peer when rpc_address is
 * 0.0.0.0 or ::) and the same port; rows without a usable address, data centre or host are skipped as the Python
 * driver does. Returns the number of hosts; *out is owned (free with sl_cql_hosts_free). */
size_t sl_cql_discover(const sl_cql_result_t *local, const sl_cql_result_t *peers, const char *connected_ip,
                       int port, sl_cql_host_info_t **out);
void sl_cql_hosts_free(sl_cql_host_info_t *h, size_t n);

/* Replication of a keyspace, from system_schema.keyspaces.replication. */
#define SL_CQL_MAX_DCS 16
typedef struct {
  bool nts; /* NetworkTopologyStrategy */
  int rf;   /* SimpleStrategy */
  size_t ndc;
  char dc[SL_CQL_MAX_DCS][64];
  int dc_rf[SL_CQL_MAX_DCS];
} sl_cql_replication_t;
/* Parses a serialized map<text, text> (the replication column). Returns 0 or -EINVAL. */
int sl_cql_replication_parse(sl_slice_t map, sl_cql_replication_t *out);

/* The token ring: every (token, host) pair sorted by token. */
typedef struct {
  int64_t token;
  uint32_t host;
} sl_cql_ring_entry_t;
typedef struct {
  sl_cql_ring_entry_t *e;
  size_t n;
} sl_cql_ring_t;
void sl_cql_ring_build(sl_cql_ring_t *ring, const sl_cql_host_info_t *hosts, size_t nhosts);
void sl_cql_ring_free(sl_cql_ring_t *ring);
/* Replicas of token (host indexes, primary first): the owner is the host with the smallest ring token >= token
 * (wrapping); SimpleStrategy walks on for rf distinct hosts, NetworkTopologyStrategy walks per data centre
 * (preferring distinct racks as Cassandra does). Returns the count written (at most max). */
size_t sl_cql_ring_replicas(const sl_cql_ring_t *ring, const sl_cql_host_info_t *hosts, size_t nhosts,
                            const sl_cql_replication_t *repl, int64_t token, uint32_t *out, size_t max);
/* The query plan of the DC-aware, token-aware policy: up replicas in local_dc first, then the other up hosts of
 * local_dc starting at rotation (round robin), then, only when allow_remote, up hosts of the other DCs.
 * local_dc NULL treats every host as local. Returns the count written. */
size_t sl_cql_plan(const sl_cql_host_info_t *hosts, const bool *up, size_t nhosts, const char *local_dc,
                   const uint32_t *replicas, size_t nrep, size_t rotation, bool allow_remote, uint32_t *out,
                   size_t max);

/* The token a statement routes by: Murmur3 of the routing key built from the prepared statement's partition-key
 * indexes over the bound values. False when the statement has no routing key (text, pk not fully bound). */
bool sl_cql_statement_routing_token(const sl_cql_statement_t *st, int64_t *token);

/* Counters for tests and benchmarks. */
typedef struct {
  uint64_t requests, retries, reprepares, timeouts, reconnects, schema_waits;
  uint64_t routed_to_replica; /* requests sent to a replica of their routing key */
} sl_cql_client_stats_t;
void sl_cql_client_get_stats(const sl_cql_client_t *c, sl_cql_client_stats_t *out);
/* The protocol version in use (4, or lower after a downgrade). */
int sl_cql_client_protocol_version(const sl_cql_client_t *c);

#endif
