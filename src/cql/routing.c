/* Routing for the CQL client (cql-drivers.md §8): routing keys, system.local/system.peers rows to hosts, the token
 * ring, replica placement (SimpleStrategy, NetworkTopologyStrategy) and the DC-aware, token-aware query plan.
 * Pure functions over plain data so the unit tests can drive them with recorded cluster metadata. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cql/client_internal.h"
#include "cql/proto.h"

void sl_cql_routing_key(const sl_slice_t *parts, size_t n, sl_buf_t *out) {
  if (n == 1) {
    if (parts[0].len) sl_buf_put(out, parts[0].ptr, parts[0].len);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    sl_buf_put_be16(out, (uint16_t)parts[i].len);
    if (parts[i].len) sl_buf_put(out, parts[i].ptr, parts[i].len);
    sl_buf_put_u8(out, 0);
  }
}

/* ---------------------------------------------------------------- discovery */

static sl_slice_t cell(const sl_cql_result_t *r, size_t row, const char *col) {
  sl_slice_t none = {NULL, 0};
  int i = r ? sl_cql_result_column_index(r, col) : -1;
  if (i < 0 || row >= r->nrows) return none;
  return r->cells[row * r->ncols + (size_t)i];
}

static void text_into(sl_slice_t s, char *dst, size_t cap) {
  size_t n = s.ptr ? (s.len < cap - 1 ? s.len : cap - 1) : 0;
  if (n) memcpy(dst, s.ptr, n);
  dst[n] = 0;
}

static bool inet_text(sl_slice_t s, char *dst, size_t cap) {
  if (!s.ptr || (s.len != 4 && s.len != 16)) return false;
  return uv_inet_ntop(s.len == 4 ? AF_INET : AF_INET6, s.ptr, dst, cap) == 0;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* tokens: set<text> of decimal tokens. */
static void read_tokens(sl_slice_t s, sl_cql_host_info_t *h) {
  h->tokens = NULL;
  h->ntokens = 0;
  if (!s.ptr || s.len < 4) return;
  sl_reader_t r;
  sl_reader_init(&r, s.ptr, s.len);
  int32_t n = cql_read_int(&r);
  if (r.err || n <= 0 || (size_t)n > sl_reader_remaining(&r) / 4) return;
  h->tokens = calloc((size_t)n, sizeof *h->tokens);
  if (!h->tokens) abort();
  for (int32_t i = 0; i < n; i++) {
    bool null;
    sl_slice_t t = cql_read_bytes(&r, &null);
    if (r.err || null || t.len == 0 || t.len > 24) continue;
    char buf[32];
    memcpy(buf, t.ptr, t.len);
    buf[t.len] = 0;
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (*end) continue;
    h->tokens[h->ntokens++] = v;
  }
  qsort(h->tokens, h->ntokens, sizeof *h->tokens, cmp_i64);
}

static void set_addr(sl_cql_host_info_t *h, const char *ip, int port) {
  snprintf(h->ip, sizeof h->ip, "%s", ip);
  h->port = port;
  if (strchr(ip, ':')) snprintf(h->addr, sizeof h->addr, "[%s]:%d", ip, port);
  else snprintf(h->addr, sizeof h->addr, "%s:%d", ip, port);
}

static void uuid_into(sl_slice_t s, char *dst) {
  if (s.ptr && s.len == 16) sl_cql_format_uuid(s.ptr, dst);
  else dst[0] = 0;
}

size_t sl_cql_discover(const sl_cql_result_t *local, const sl_cql_result_t *peers, const char *connected_ip,
                       int port, sl_cql_host_info_t **out) {
  size_t cap = 1 + (peers ? peers->nrows : 0), n = 0;
  sl_cql_host_info_t *h = calloc(cap, sizeof *h);
  if (!h) abort();
  if (local && local->nrows) {
    set_addr(&h[0], connected_ip, port);
    text_into(cell(local, 0, "data_center"), h[0].dc, sizeof h[0].dc);
    text_into(cell(local, 0, "rack"), h[0].rack, sizeof h[0].rack);
    uuid_into(cell(local, 0, "schema_version"), h[0].schema_version);
    read_tokens(cell(local, 0, "tokens"), &h[0]);
    n = 1;
  }
  for (size_t r = 0; peers && r < peers->nrows; r++) {
    char ip[64];
    sl_slice_t rpc = cell(peers, r, "rpc_address");
    bool ok = inet_text(rpc, ip, sizeof ip);
    if (ok && (!strcmp(ip, "0.0.0.0") || !strcmp(ip, "::"))) ok = inet_text(cell(peers, r, "peer"), ip, sizeof ip);
    if (!ok) continue;
    sl_slice_t dc = cell(peers, r, "data_center"), hid = cell(peers, r, "host_id");
    /* the Python driver skips peers rows missing these (an incomplete row means a node in flux) */
    if (!dc.ptr || (sl_cql_result_column_index(peers, "host_id") >= 0 && !hid.ptr)) continue;
    sl_cql_host_info_t *x = &h[n];
    set_addr(x, ip, port);
    bool dup = false;
    for (size_t k = 0; k < n; k++)
      if (!strcmp(h[k].addr, x->addr)) dup = true;
    if (dup) {
      memset(x, 0, sizeof *x);
      continue;
    }
    text_into(dc, x->dc, sizeof x->dc);
    text_into(cell(peers, r, "rack"), x->rack, sizeof x->rack);
    uuid_into(cell(peers, r, "schema_version"), x->schema_version);
    read_tokens(cell(peers, r, "tokens"), x);
    n++;
  }
  *out = h;
  return n;
}

void sl_cql_hosts_free(sl_cql_host_info_t *h, size_t n) {
  if (!h) return;
  for (size_t i = 0; i < n; i++) free(h[i].tokens);
  free(h);
}

/* ---------------------------------------------------------------- replication */

int sl_cql_replication_parse(sl_slice_t map, sl_cql_replication_t *out) {
  memset(out, 0, sizeof *out);
  out->rf = 1;
  sl_reader_t r;
  sl_reader_init(&r, map.ptr, map.len);
  int32_t n = cql_read_int(&r);
  if (r.err || n < 0 || (size_t)n > sl_reader_remaining(&r) / 8) return -EINVAL;
  for (int32_t i = 0; i < n; i++) {
    bool kn, vn;
    sl_slice_t k = cql_read_bytes(&r, &kn), v = cql_read_bytes(&r, &vn);
    if (r.err) return -EINVAL;
    if (kn || vn) continue;
    char key[64], val[200];
    text_into(k, key, sizeof key);
    text_into(v, val, sizeof val);
    if (!strcmp(key, "class")) {
      out->nts = strstr(val, "NetworkTopologyStrategy") != NULL;
    } else if (!strcmp(key, "replication_factor")) {
      out->rf = atoi(val);
    } else if (out->ndc < SL_CQL_MAX_DCS) {
      snprintf(out->dc[out->ndc], sizeof out->dc[0], "%s", key);
      out->dc_rf[out->ndc++] = atoi(val);
    }
  }
  if (out->rf < 1) out->rf = 1;
  return 0;
}

/* ---------------------------------------------------------------- ring */

static int cmp_entry(const void *a, const void *b) {
  const sl_cql_ring_entry_t *x = a, *y = b;
  if (x->token != y->token) return x->token < y->token ? -1 : 1;
  return x->host < y->host ? -1 : x->host > y->host;
}

void sl_cql_ring_build(sl_cql_ring_t *ring, const sl_cql_host_info_t *hosts, size_t nhosts) {
  size_t total = 0;
  for (size_t i = 0; i < nhosts; i++) total += hosts[i].ntokens;
  ring->e = total ? calloc(total, sizeof *ring->e) : NULL;
  if (total && !ring->e) abort();
  ring->n = 0;
  for (size_t i = 0; i < nhosts; i++)
    for (size_t k = 0; k < hosts[i].ntokens; k++) {
      ring->e[ring->n].token = hosts[i].tokens[k];
      ring->e[ring->n].host = (uint32_t)i;
      ring->n++;
    }
  qsort(ring->e, ring->n, sizeof *ring->e, cmp_entry);
}

void sl_cql_ring_free(sl_cql_ring_t *ring) {
  free(ring->e);
  ring->e = NULL;
  ring->n = 0;
}

static size_t ring_owner_pos(const sl_cql_ring_t *ring, int64_t token) {
  size_t lo = 0, hi = ring->n; /* first entry with token >= t */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ring->e[mid].token < token) lo = mid + 1;
    else hi = mid;
  }
  return lo == ring->n ? 0 : lo;
}

static bool contains(const uint32_t *a, size_t n, uint32_t v) {
  for (size_t i = 0; i < n; i++)
    if (a[i] == v) return true;
  return false;
}

size_t sl_cql_ring_replicas(const sl_cql_ring_t *ring, const sl_cql_host_info_t *hosts, size_t nhosts,
                            const sl_cql_replication_t *repl, int64_t token, uint32_t *out, size_t max) {
  if (!ring->n || !max) return 0;
  size_t start = ring_owner_pos(ring, token), n = 0;
  if (!repl->nts) {
    size_t rf = (size_t)repl->rf;
    for (size_t k = 0; k < ring->n && n < rf && n < max; k++) {
      uint32_t h = ring->e[(start + k) % ring->n].host;
      if (!contains(out, n, h)) out[n++] = h;
    }
    return n;
  }
  /* NetworkTopologyStrategy: per DC, walk the ring taking hosts in racks not yet used first; hosts skipped for
   * a repeated rack fill in afterwards (Cassandra's calculateNaturalReplicas). */
  for (size_t d = 0; d < repl->ndc; d++) {
    size_t want = (size_t)repl->dc_rf[d], got = 0;
    uint32_t skipped[64];
    size_t nskipped = 0;
    char racks[64][64];
    size_t nracks = 0, dc_racks = 0;
    /* racks in this DC */
    {
      char seen[64][64];
      for (size_t i = 0; i < nhosts; i++) {
        if (strcmp(hosts[i].dc, repl->dc[d]) != 0) continue;
        bool s = false;
        for (size_t k = 0; k < dc_racks; k++)
          if (!strcmp(seen[k], hosts[i].rack)) s = true;
        if (!s && dc_racks < 64) snprintf(seen[dc_racks++], sizeof seen[0], "%s", hosts[i].rack);
      }
    }
    for (size_t k = 0; k < ring->n && got < want && n < max; k++) {
      uint32_t h = ring->e[(start + k) % ring->n].host;
      if (h >= nhosts || strcmp(hosts[h].dc, repl->dc[d]) != 0 || contains(out, n, h) ||
          contains(skipped, nskipped, h))
        continue;
      bool rack_used = false;
      for (size_t q = 0; q < nracks; q++)
        if (!strcmp(racks[q], hosts[h].rack)) rack_used = true;
      if (rack_used && nracks < dc_racks) {
        if (nskipped < 64) skipped[nskipped++] = h;
        continue;
      }
      out[n++] = h;
      got++;
      if (!rack_used && nracks < 64) snprintf(racks[nracks++], sizeof racks[0], "%s", hosts[h].rack);
      if (nracks == dc_racks) /* every rack has one: the skipped hosts come next, in ring order */
        for (size_t q = 0; q < nskipped && got < want && n < max; q++) {
          out[n++] = skipped[q];
          got++;
        }
      if (nracks == dc_racks) nskipped = 0;
    }
  }
  return n;
}

size_t sl_cql_plan(const sl_cql_host_info_t *hosts, const bool *up, size_t nhosts, const char *local_dc,
                   const uint32_t *replicas, size_t nrep, size_t rotation, bool allow_remote, uint32_t *out,
                   size_t max) {
  size_t n = 0;
#define IS_LOCAL(i) (!local_dc || !strcmp(hosts[i].dc, local_dc))
  for (size_t k = 0; k < nrep && n < max; k++) {
    uint32_t h = replicas[k];
    if (h < nhosts && up[h] && IS_LOCAL(h) && !contains(out, n, h)) out[n++] = h;
  }
  for (size_t k = 0; k < nhosts && n < max; k++) {
    uint32_t h = (uint32_t)((rotation + k) % nhosts);
    if (up[h] && IS_LOCAL(h) && !contains(out, n, h)) out[n++] = h;
  }
  if (allow_remote)
    for (size_t k = 0; k < nhosts && n < max; k++) {
      uint32_t h = (uint32_t)((rotation + k) % nhosts);
      if (up[h] && !IS_LOCAL(h) && !contains(out, n, h)) out[n++] = h;
    }
#undef IS_LOCAL
  return n;
}
