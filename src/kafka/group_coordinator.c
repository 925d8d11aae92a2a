/* The consumer-group coordinator of this single broker: group membership and the rebalance protocol (JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup), modelled on apache/kafka's GroupCoordinator (3.7) as summarised in
 * shared/reference/kafka-clients.md §4. Committed offsets live in offset_store.c; the handler files only parse
 * requests and write responses.
 *
 * Group states and the function behind each transition:
 *
 *              join (new group, first member) / group_prepare_rebalance()
 *   +-------+ ------------------------------------------------------> +--------------------+
 *   | Empty |                                                          | PreparingRebalance | <-----------------+
 *   +-------+ <------------------------------------------------------  +--------------------+                   |
 *       ^     group_complete_join(): no member rejoined / all left       |  group_complete_join(): every        |
 *       |                                                                 |  member rejoined, or rebalance timer |
 *       |                                                                 v  (non-rejoiners removed)            |
 *       |    last member leaves or expires:           +---------------------+  join, leave, member expiry:     |
 *       |    group_prepare_rebalance() then            | CompletingRebalance | -- group_prepare_rebalance() ---->+
 *       |    group_complete_join()                     +---------------------+  (parked syncs: REBALANCE_IN_..)  |
 *       |                                                         |                                            |
 *       |                                 leader's SyncGroup:     |                                            |
 *       |                                 group_complete_sync()   v                                            |
 *       |                                                  +--------+  leader or changed-metadata join, leave, |
 *       +------------------------------------------------- | Stable | -- member expiry: ---------------------->+
 *                                                          +--------+     group_prepare_rebalance()
 *
 *   any state --sl_groups_close()--> Dead (parked requests answered COORDINATOR_NOT_AVAILABLE, timers closed)
 *   Empty --sl_group_delete() (DeleteGroups), or its offsets expiring (on_expiry_timer())--> forgotten
 *         (group_forget(): unlinked, its committed offsets deleted durably)
 *
 * Timers: each member has a session timer (reset by every valid heartbeat, join, sync and commit; stopped while one
 * of its requests is parked, since the member is then demonstrably alive); expiry removes it (member_expired()).
 * Each group has one rebalance timer: first the initial delay of a group leaving Empty, then the rebalance timeout
 * (rebalance_timer_fired()). Pending member ids (JoinGroup v4+ MEMBER_ID_REQUIRED) expire after the session timeout.
 * libuv closes handles asynchronously, so members, pending ids and groups are freed in their timers' close
 * callbacks, never directly.
 *
 * Requests are answered after the state change is complete: responses are written into each request first and
 * finished at the end (finish_all()), so nothing the connection layer does on finish can observe a half-updated
 * group. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/clock.h"
#include "core/log.h"
#include "kafka/errors.h"
#include "kafka/group_internal.h"

static char *dup_slice(sl_slice_t s) {
  char *d = malloc(s.len + 1);
  if (!d) abort();
  if (s.len) memcpy(d, s.ptr, s.len);
  d[s.len] = '\0';
  return d;
}

static bool slice_eq_str(sl_slice_t s, const char *str) {
  size_t n = strlen(str);
  return s.len == n && (n == 0 || memcmp(s.ptr, str, n) == 0);
}

const char *sl_group_state_name(sl_group_state_t s) {
  switch (s) {
    case SL_GROUP_EMPTY: return "Empty";
    case SL_GROUP_PREPARING_REBALANCE: return "PreparingRebalance";
    case SL_GROUP_COMPLETING_REBALANCE: return "CompletingRebalance";
    case SL_GROUP_STABLE: return "Stable";
    case SL_GROUP_DEAD: return "Dead";
  }
  return "?";
}

/* ---- a list of answered requests to finish once the state is settled ---- */

typedef struct {
  sl_kafka_request_t **reqs;
  size_t n, cap;
} finish_list_t;

static void finish_add(finish_list_t *f, sl_kafka_request_t *req) {
  if (f->n == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 8;
    sl_kafka_request_t **r = realloc(f->reqs, cap * sizeof(*r));
    if (!r) abort();
    f->reqs = r;
    f->cap = cap;
  }
  f->reqs[f->n++] = req;
}

static void finish_all(finish_list_t *f) {
  for (size_t i = 0; i < f->n; i++) sl_kafka_request_finish(f->reqs[i]);
  free(f->reqs);
  f->reqs = NULL;
  f->n = f->cap = 0;
}

static void join_error(finish_list_t *f, sl_kafka_request_t *req, int16_t error, const char *member_id) {
  sl_join_group_write_response(req, error, NULL, member_id, false);
  finish_add(f, req);
}

static void sync_error(finish_list_t *f, sl_kafka_request_t *req, int16_t error) {
  sl_sync_group_write_response(req, error, NULL, 0);
  finish_add(f, req);
}

/* ---- group table ---- */

static void groups_rehash(sl_group_coordinator_t *gc) {
  size_t nb = gc->n_buckets ? gc->n_buckets * 2 : 64;
  sl_group_t **b = calloc(nb, sizeof(*b));
  if (!b) abort();
  for (size_t i = 0; i < gc->n_buckets; i++) {
    sl_group_t *g = gc->buckets[i];
    while (g) {
      sl_group_t *next = g->hash_next;
      size_t h = sl_group_hash(g->group_id, g->group_id_len) & (nb - 1);
      g->hash_next = b[h];
      b[h] = g;
      g = next;
    }
  }
  free(gc->buckets);
  gc->buckets = b;
  gc->n_buckets = nb;
}

sl_group_t *sl_group_find(sl_group_coordinator_t *gc, sl_slice_t id) {
  if (!gc->n_buckets) return NULL;
  for (sl_group_t *g = gc->buckets[sl_group_hash(id.ptr, id.len) & (gc->n_buckets - 1)]; g; g = g->hash_next)
    if (g->group_id_len == id.len && memcmp(g->group_id, id.ptr, id.len) == 0) return g;
  return NULL;
}

static void rebalance_timer_fired(uv_timer_t *t);

static sl_group_t *group_create(sl_group_coordinator_t *gc, sl_slice_t id) {
  if (gc->n_groups >= gc->n_buckets) groups_rehash(gc);
  sl_group_t *g = calloc(1, sizeof(*g));
  if (!g) abort();
  g->gc = gc;
  g->group_id = dup_slice(id);
  g->group_id_len = id.len;
  g->state = SL_GROUP_EMPTY;
  uv_timer_init(gc->loop, &g->rebalance_timer);
  g->rebalance_timer.data = g;
  size_t h = sl_group_hash(id.ptr, id.len) & (gc->n_buckets - 1);
  g->hash_next = gc->buckets[h];
  gc->buckets[h] = g;
  gc->n_groups++;
  return g;
}

/* ---- members ---- */

static void protocols_free(sl_group_protocol_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(p[i].name);
    free(p[i].metadata);
  }
  free(p);
}

static void member_free_cb(uv_handle_t *h) {
  sl_group_member_t *m = h->data;
  free(m->member_id);
  free(m->client_id);
  free(m->client_host);
  free(m->group_instance_id);
  free(m->protocol_type);
  protocols_free(m->protocols, m->n_protocols);
  free(m->assignment);
  free(m);
}

static sl_group_member_t *member_find(const sl_group_t *g, sl_slice_t id) {
  for (size_t i = 0; i < g->n_members; i++)
    if (slice_eq_str(id, g->members[i]->member_id)) return g->members[i];
  return NULL;
}

static void member_set_protocols(sl_group_member_t *m, const sl_join_params_t *p) {
  protocols_free(m->protocols, m->n_protocols);
  m->protocols = calloc(p->n_protocols ? p->n_protocols : 1, sizeof(*m->protocols));
  if (!m->protocols) abort();
  for (size_t i = 0; i < p->n_protocols; i++) {
    m->protocols[i].name = dup_slice(p->protocols[i].name);
    m->protocols[i].metadata_len = p->protocols[i].metadata.len;
    m->protocols[i].metadata = malloc(p->protocols[i].metadata.len ? p->protocols[i].metadata.len : 1);
    if (!m->protocols[i].metadata) abort();
    if (p->protocols[i].metadata.len)
      memcpy(m->protocols[i].metadata, p->protocols[i].metadata.ptr, p->protocols[i].metadata.len);
  }
  m->n_protocols = p->n_protocols;
  m->session_timeout_ms = p->session_timeout_ms;
  m->rebalance_timeout_ms = p->rebalance_timeout_ms;
}

static bool member_same_protocols(const sl_group_member_t *m, const sl_join_params_t *p) {
  if (m->n_protocols != p->n_protocols) return false;
  for (size_t i = 0; i < p->n_protocols; i++) {
    const sl_group_protocol_t *a = &m->protocols[i];
    if (!slice_eq_str(p->protocols[i].name, a->name)) return false;
    if (a->metadata_len != p->protocols[i].metadata.len ||
        (a->metadata_len && memcmp(a->metadata, p->protocols[i].metadata.ptr, a->metadata_len) != 0))
      return false;
  }
  return true;
}

static bool member_supports(const sl_group_member_t *m, const char *name) {
  for (size_t i = 0; i < m->n_protocols; i++)
    if (strcmp(m->protocols[i].name, name) == 0) return true;
  return false;
}

static void member_expired(uv_timer_t *t);

/* Restarts the session timer, or stops it while a request of the member is parked (it is alive by definition). */
static void member_touch(sl_group_member_t *m) {
  if (m->join_req || m->sync_req)
    uv_timer_stop(&m->session_timer);
  else
    uv_timer_start(&m->session_timer, member_expired, (uint64_t)m->session_timeout_ms, 0);
}

/* Takes the member out of the group (answering its parked requests with UNKNOWN_MEMBER_ID) and closes its timer,
 * which frees it. The caller decides what the group does next. */
static void member_remove(sl_group_t *g, sl_group_member_t *m, finish_list_t *f) {
  for (size_t i = 0; i < g->n_members; i++) {
    if (g->members[i] != m) continue;
    memmove(&g->members[i], &g->members[i + 1], (g->n_members - i - 1) * sizeof(*g->members));
    g->n_members--;
    break;
  }
  if (g->leader == m) g->leader = NULL;
  if (m->join_req) join_error(f, m->join_req, KAFKA_UNKNOWN_MEMBER_ID, m->member_id);
  if (m->sync_req) sync_error(f, m->sync_req, KAFKA_UNKNOWN_MEMBER_ID);
  m->join_req = m->sync_req = NULL;
  m->group = NULL;
  uv_timer_stop(&m->session_timer);
  uv_close((uv_handle_t *)&m->session_timer, member_free_cb);
}

/* ---- pending member ids (KIP-394) ---- */

static void pending_free_cb(uv_handle_t *h) {
  sl_group_pending_t *p = h->data;
  free(p->member_id);
  free(p);
}

static sl_group_pending_t *pending_find(const sl_group_t *g, sl_slice_t id) {
  for (sl_group_pending_t *p = g->pending; p; p = p->next)
    if (slice_eq_str(id, p->member_id)) return p;
  return NULL;
}

static void pending_remove(sl_group_t *g, sl_group_pending_t *p) {
  for (sl_group_pending_t **pp = &g->pending; *pp; pp = &(*pp)->next) {
    if (*pp != p) continue;
    *pp = p->next;
    break;
  }
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, pending_free_cb);
}

static void try_complete_join(sl_group_t *g, finish_list_t *f);

static void pending_expired(uv_timer_t *t) {
  sl_group_pending_t *p = t->data;
  sl_group_t *g = p->group;
  finish_list_t f = {0};
  SL_INFO("group", "group %s: pending member %s never joined; forgotten", g->group_id, p->member_id);
  pending_remove(g, p);
  try_complete_join(g, &f); /* a rebalance may have been waiting for it */
  finish_all(&f);
}

static void pending_add(sl_group_t *g, const char *member_id, int32_t session_timeout_ms) {
  sl_group_pending_t *p = calloc(1, sizeof(*p));
  if (!p) abort();
  p->group = g;
  p->member_id = strdup(member_id);
  if (!p->member_id) abort();
  uv_timer_init(g->gc->loop, &p->timer);
  p->timer.data = p;
  uv_timer_start(&p->timer, pending_expired, (uint64_t)session_timeout_ms, 0);
  p->next = g->pending;
  g->pending = p;
}

static char *new_member_id(sl_slice_t client_id) {
  uint8_t u[16];
  if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u)) {
    /* getrandom on Linux does not fail for 16 bytes once the pool is initialised; be safe anyway. */
    static uint64_t counter;
    uint64_t c = ++counter, t = (uint64_t)uv_hrtime();
    memcpy(u, &c, 8);
    memcpy(u + 8, &t, 8);
  }
  u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4 */
  u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  size_t n = client_id.len + 1 + 36 + 1;
  char *id = malloc(n);
  if (!id) abort();
  int off = snprintf(id, n, "%.*s-", (int)client_id.len, client_id.ptr ? (const char *)client_id.ptr : "");
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) id[off++] = '-';
    off += snprintf(id + off, n - (size_t)off, "%02x", u[i]);
  }
  return id;
}

/* ---- protocol selection ---- */

const char *sl_group_select_protocol(sl_group_member_t *const *members, size_t n) {
  if (n == 0) return NULL;
  const sl_group_member_t *first = members[0];
  const char *best = NULL;
  size_t best_votes = 0;
  /* Candidates are the first member's protocols that everyone supports; its order breaks ties. */
  for (size_t c = 0; c < first->n_protocols; c++) {
    const char *cand = first->protocols[c].name;
    bool common = true;
    for (size_t i = 1; i < n && common; i++) common = member_supports(members[i], cand);
    if (!common) continue;
    size_t votes = 0;
    for (size_t i = 0; i < n; i++) {
      /* A member votes for its most preferred candidate. */
      for (size_t k = 0; k < members[i]->n_protocols; k++) {
        const char *name = members[i]->protocols[k].name;
        bool name_common = true;
        for (size_t j = 0; j < n && name_common; j++) name_common = member_supports(members[j], name);
        if (!name_common) continue;
        if (strcmp(name, cand) == 0) votes++;
        break;
      }
    }
    if (!best || votes > best_votes) {
      best = cand;
      best_votes = votes;
    }
  }
  return best;
}

/* Would the group accept a member with these protocols? `self` (the joining member, if known) is left out: its
 * old protocols are being replaced. */
static bool group_accepts(const sl_group_t *g, const sl_group_member_t *self, const sl_join_params_t *p) {
  size_t others = 0;
  for (size_t i = 0; i < g->n_members; i++) {
    const sl_group_member_t *m = g->members[i];
    if (m == self) continue;
    others++;
    if (!slice_eq_str(p->protocol_type, m->protocol_type)) return false;
  }
  if (!others) return true;
  for (size_t k = 0; k < p->n_protocols; k++) {
    bool everyone = true;
    for (size_t i = 0; i < g->n_members && everyone; i++) {
      const sl_group_member_t *m = g->members[i];
      if (m == self) continue;
      everyone = false;
      for (size_t j = 0; j < m->n_protocols && !everyone; j++)
        everyone = slice_eq_str(p->protocols[k].name, m->protocols[j].name);
    }
    if (everyone) return true;
  }
  return false;
}

/* ---- rebalance ---- */

static int32_t group_rebalance_timeout(const sl_group_t *g) {
  int32_t t = 0;
  for (size_t i = 0; i < g->n_members; i++)
    if (g->members[i]->rebalance_timeout_ms > t) t = g->members[i]->rebalance_timeout_ms;
  return t > 0 ? t : 1;
}

static void log_generation(const sl_group_t *g) {
  sl_buf_t b;
  sl_buf_init(&b);
  for (size_t i = 0; i < g->n_members; i++) {
    if (i) sl_buf_put(&b, ", ", 2);
    sl_buf_put(&b, g->members[i]->member_id, strlen(g->members[i]->member_id));
  }
  sl_buf_put_u8(&b, 0);
  SL_INFO("group", "group %s: rebalance generation %d with members [%s], protocol %s, leader %s", g->group_id,
          g->generation, (const char *)b.data, g->protocol_name ? g->protocol_name : "-",
          g->leader ? g->leader->member_id : "-");
  sl_buf_free(&b);
}

static void group_become_empty(sl_group_t *g) {
  g->state = SL_GROUP_EMPTY;
  if (g->protocol_type) {
    free(g->last_protocol_type);
    g->last_protocol_type = g->protocol_type;
  }
  free(g->protocol_name);
  g->protocol_type = g->protocol_name = NULL;
  g->leader = NULL;
}

/* PreparingRebalance -> CompletingRebalance (or Empty): every member that rejoined gets its answer. */
static void group_complete_join(sl_group_t *g, finish_list_t *f) {
  uv_timer_stop(&g->rebalance_timer);
  g->in_initial_delay = false;
  for (size_t i = g->n_members; i-- > 0;) {
    sl_group_member_t *m = g->members[i];
    if (m->join_req) continue;
    SL_INFO("group", "group %s: member %s removed: did not rejoin in time", g->group_id, m->member_id);
    member_remove(g, m, f);
  }
  const char *proto = sl_group_select_protocol(g->members, g->n_members);
  if (g->n_members && !proto) {
    /* Cannot happen when every join went through group_accepts; refuse everyone rather than pick arbitrarily. */
    while (g->n_members) {
      sl_group_member_t *m = g->members[g->n_members - 1];
      join_error(f, m->join_req, KAFKA_INCONSISTENT_GROUP_PROTOCOL, m->member_id);
      m->join_req = NULL;
      member_remove(g, m, f);
    }
  }
  g->generation++;
  if (!g->n_members) {
    group_become_empty(g);
    SL_INFO("group", "group %s: generation %d is empty", g->group_id, g->generation);
    return;
  }
  free(g->protocol_name);
  g->protocol_name = strdup(proto);
  if (!g->protocol_name) abort();
  if (!g->leader) g->leader = g->members[0];
  g->state = SL_GROUP_COMPLETING_REBALANCE;
  log_generation(g);
  for (size_t i = 0; i < g->n_members; i++) {
    sl_group_member_t *m = g->members[i];
    free(m->assignment);
    m->assignment = NULL;
    m->assignment_len = 0;
    sl_join_group_write_response(m->join_req, KAFKA_NONE, g, m->member_id, m == g->leader);
    finish_add(f, m->join_req);
    m->join_req = NULL;
    member_touch(m);
  }
}

static bool all_joined(const sl_group_t *g) {
  if (g->pending) return false; /* a member told to come back with its id is on its way */
  for (size_t i = 0; i < g->n_members; i++)
    if (!g->members[i]->join_req) return false;
  return true;
}

/* Completing as soon as everyone is back keeps rebalances short (no REBALANCE_IN_PROGRESS storms, pitfall 14). */
static void try_complete_join(sl_group_t *g, finish_list_t *f) {
  if (g->state == SL_GROUP_PREPARING_REBALANCE && !g->in_initial_delay && all_joined(g)) group_complete_join(g, f);
}

/* Stable / CompletingRebalance / Empty -> PreparingRebalance. */
static void group_prepare_rebalance(sl_group_t *g, const char *reason, finish_list_t *f) {
  sl_group_state_t old = g->state;
  if (old == SL_GROUP_COMPLETING_REBALANCE) {
    /* The assignment being computed is for a membership that no longer holds. */
    for (size_t i = 0; i < g->n_members; i++) {
      sl_group_member_t *m = g->members[i];
      if (!m->sync_req) continue;
      sync_error(f, m->sync_req, KAFKA_REBALANCE_IN_PROGRESS);
      m->sync_req = NULL;
      member_touch(m);
    }
  }
  g->state = SL_GROUP_PREPARING_REBALANCE;
  SL_INFO("group", "group %s: preparing rebalance from %s (generation %d): %s", g->group_id, sl_group_state_name(old),
          g->generation, reason);
  uint64_t timeout = (uint64_t)group_rebalance_timeout(g);
  int64_t delay = g->gc->initial_rebalance_delay_ms;
  if (old == SL_GROUP_EMPTY && delay > 0) {
    /* Let the other members of a starting application arrive before the first assignment. */
    g->in_initial_delay = true;
    g->initial_delay_end = uv_now(g->gc->loop) + timeout;
    uv_timer_start(&g->rebalance_timer, rebalance_timer_fired, (uint64_t)delay < timeout ? (uint64_t)delay : timeout,
                   0);
    return;
  }
  uv_timer_start(&g->rebalance_timer, rebalance_timer_fired, timeout, 0);
  try_complete_join(g, f);
}

static void rebalance_timer_fired(uv_timer_t *t) {
  sl_group_t *g = t->data;
  finish_list_t f = {0};
  if (g->state != SL_GROUP_PREPARING_REBALANCE) return;
  if (g->in_initial_delay) {
    g->in_initial_delay = false;
    SL_DEBUG("group", "group %s: initial rebalance delay over", g->group_id);
  } else {
    SL_INFO("group", "group %s: rebalance timeout (%d ms) expired", g->group_id, group_rebalance_timeout(g));
  }
  group_complete_join(g, &f);
  finish_all(&f);
}

/* After a member left or expired. */
static void group_member_gone(sl_group_t *g, const char *reason, finish_list_t *f) {
  switch (g->state) {
    case SL_GROUP_STABLE:
    case SL_GROUP_COMPLETING_REBALANCE: group_prepare_rebalance(g, reason, f); break;
    case SL_GROUP_PREPARING_REBALANCE: try_complete_join(g, f); break;
    case SL_GROUP_EMPTY:
    case SL_GROUP_DEAD: break;
  }
}

static void member_expired(uv_timer_t *t) {
  sl_group_member_t *m = t->data;
  sl_group_t *g = m->group;
  finish_list_t f = {0};
  if (!g) return;
  SL_INFO("group", "group %s: member %s expired (no heartbeat for %d ms)", g->group_id, m->member_id,
          m->session_timeout_ms);
  member_remove(g, m, &f);
  group_member_gone(g, "member session expired", &f);
  finish_all(&f);
}

/* ---- JoinGroup ---- */

static sl_group_member_t *member_add(sl_group_t *g, sl_kafka_request_t *req, const sl_join_params_t *p, char *id) {
  sl_group_member_t *m = calloc(1, sizeof(*m));
  if (!m) abort();
  m->group = g;
  m->member_id = id;
  m->client_id = dup_slice(req->client_id);
  /* Kafka shows the client's address as "/ip" */
  const char *peer = sl_kafka_request_peer(req);
  const char *colon = strrchr(peer, ':');
  size_t host_len = colon ? (size_t)(colon - peer) : strlen(peer);
  m->client_host = malloc(host_len + 2);
  if (!m->client_host) abort();
  m->client_host[0] = '/';
  memcpy(m->client_host + 1, peer, host_len);
  m->client_host[host_len + 1] = 0;
  m->protocol_type = dup_slice(p->protocol_type);
  member_set_protocols(m, p);
  uv_timer_init(g->gc->loop, &m->session_timer);
  m->session_timer.data = m;
  if (g->n_members == g->cap_members) {
    size_t cap = g->cap_members ? g->cap_members * 2 : 4;
    sl_group_member_t **a = realloc(g->members, cap * sizeof(*a));
    if (!a) abort();
    g->members = a;
    g->cap_members = cap;
  }
  g->members[g->n_members++] = m;
  if (!g->protocol_type) g->protocol_type = strdup(m->protocol_type);
  if (!g->protocol_type) abort();
  return m;
}

/* Parks the join of a new or changed member and moves the group towards a new generation. */
static void join_and_rebalance(sl_group_t *g, sl_group_member_t *m, sl_kafka_request_t *req, const char *reason,
                               finish_list_t *f) {
  if (m->join_req) join_error(f, m->join_req, KAFKA_REBALANCE_IN_PROGRESS, m->member_id); /* superseded */
  m->join_req = req;
  member_touch(m);
  if (g->state != SL_GROUP_PREPARING_REBALANCE) {
    group_prepare_rebalance(g, reason, f);
    return;
  }
  if (g->in_initial_delay) {
    /* Each arrival during the initial delay extends it, up to the rebalance timeout. */
    uint64_t now = uv_now(g->gc->loop);
    uint64_t left = g->initial_delay_end > now ? g->initial_delay_end - now : 0;
    uint64_t delay = (uint64_t)g->gc->initial_rebalance_delay_ms;
    uv_timer_start(&g->rebalance_timer, rebalance_timer_fired, delay < left ? delay : left, 0);
    return;
  }
  try_complete_join(g, f);
}

void sl_group_join(sl_group_coordinator_t *gc, sl_kafka_request_t *req, const sl_join_params_t *p) {
  finish_list_t f = {0};
  char *echo_id = dup_slice(p->member_id);
  if (!gc || gc->closing) {
    join_error(&f, req, KAFKA_COORDINATOR_NOT_AVAILABLE, echo_id);
    goto done;
  }
  if (p->group_id.len == 0) {
    join_error(&f, req, KAFKA_INVALID_GROUP_ID, echo_id);
    goto done;
  }
  if (p->session_timeout_ms < gc->min_session_timeout_ms || p->session_timeout_ms > gc->max_session_timeout_ms) {
    join_error(&f, req, KAFKA_INVALID_SESSION_TIMEOUT, echo_id);
    goto done;
  }
  if (p->protocol_type.len == 0 || p->n_protocols == 0) {
    join_error(&f, req, KAFKA_INCONSISTENT_GROUP_PROTOCOL, echo_id);
    goto done;
  }
  sl_group_t *g = sl_group_find(gc, p->group_id);
  if (p->member_id.len == 0) {
    if (!g) g = group_create(gc, p->group_id);
    if (!group_accepts(g, NULL, p)) {
      SL_INFO("group", "group %s: join refused: protocols do not match the group's (%s)", g->group_id,
              g->protocol_type ? g->protocol_type : "-");
      join_error(&f, req, KAFKA_INCONSISTENT_GROUP_PROTOCOL, echo_id);
      goto done;
    }
    char *id = new_member_id(req->client_id);
    if (req->api_version >= 4) {
      /* KIP-394: the client must come back with this id, so a lost response cannot leave a ghost member. */
      pending_add(g, id, p->session_timeout_ms);
      join_error(&f, req, KAFKA_MEMBER_ID_REQUIRED, id);
      free(id);
      goto done;
    }
    sl_group_member_t *m = member_add(g, req, p, id);
    SL_INFO("group", "group %s: new member %s joins (%s)", g->group_id, m->member_id, sl_group_state_name(g->state));
    join_and_rebalance(g, m, req, "new member joined", &f);
    goto done;
  }
  if (!g) {
    join_error(&f, req, KAFKA_UNKNOWN_MEMBER_ID, echo_id);
    goto done;
  }
  sl_group_pending_t *pend = pending_find(g, p->member_id);
  if (pend) {
    if (!group_accepts(g, NULL, p)) {
      pending_remove(g, pend);
      join_error(&f, req, KAFKA_INCONSISTENT_GROUP_PROTOCOL, echo_id);
      try_complete_join(g, &f);
      goto done;
    }
    char *id = strdup(pend->member_id);
    if (!id) abort();
    pending_remove(g, pend);
    sl_group_member_t *m = member_add(g, req, p, id);
    SL_INFO("group", "group %s: new member %s joins (%s)", g->group_id, m->member_id, sl_group_state_name(g->state));
    join_and_rebalance(g, m, req, "new member joined", &f);
    goto done;
  }
  sl_group_member_t *m = member_find(g, p->member_id);
  if (!m) {
    join_error(&f, req, KAFKA_UNKNOWN_MEMBER_ID, echo_id);
    goto done;
  }
  if (!group_accepts(g, m, p)) {
    join_error(&f, req, KAFKA_INCONSISTENT_GROUP_PROTOCOL, echo_id);
    goto done;
  }
  switch (g->state) {
    case SL_GROUP_PREPARING_REBALANCE:
      member_set_protocols(m, p);
      join_and_rebalance(g, m, req, "member rejoined", &f);
      break;
    case SL_GROUP_COMPLETING_REBALANCE:
    case SL_GROUP_STABLE:
      if (member_same_protocols(m, p) && (g->state == SL_GROUP_COMPLETING_REBALANCE || m != g->leader)) {
        /* Nothing changed (typically a lost JoinGroup response): repeat the current generation. */
        sl_join_group_write_response(req, KAFKA_NONE, g, m->member_id, m == g->leader);
        finish_add(&f, req);
        member_touch(m);
        break;
      }
      member_set_protocols(m, p);
      join_and_rebalance(g, m, req, m == g->leader ? "leader rejoined" : "member metadata changed", &f);
      break;
    case SL_GROUP_EMPTY:
    case SL_GROUP_DEAD: join_error(&f, req, KAFKA_UNKNOWN_MEMBER_ID, echo_id); break;
  }
done:
  free(echo_id);
  finish_all(&f);
}

/* ---- SyncGroup ---- */

/* CompletingRebalance -> Stable: the leader's assignment is in; answer every parked sync. */
static void group_complete_sync(sl_group_t *g, const sl_sync_assignment_t *a, size_t n, finish_list_t *f) {
  for (size_t i = 0; i < n; i++) {
    sl_group_member_t *m = member_find(g, a[i].member_id);
    if (!m) continue; /* the leader's view may include a member that has since gone */
    free(m->assignment);
    m->assignment = malloc(a[i].assignment.len ? a[i].assignment.len : 1);
    if (!m->assignment) abort();
    if (a[i].assignment.len) memcpy(m->assignment, a[i].assignment.ptr, a[i].assignment.len);
    m->assignment_len = a[i].assignment.len;
  }
  g->state = SL_GROUP_STABLE;
  SL_INFO("group", "group %s: generation %d stable (%zu members)", g->group_id, g->generation, g->n_members);
  for (size_t i = 0; i < g->n_members; i++) {
    sl_group_member_t *m = g->members[i];
    if (!m->sync_req) continue;
    sl_sync_group_write_response(m->sync_req, KAFKA_NONE, m->assignment, m->assignment_len);
    finish_add(f, m->sync_req);
    m->sync_req = NULL;
    member_touch(m);
  }
}

void sl_group_sync(sl_group_coordinator_t *gc, sl_kafka_request_t *req, sl_slice_t group_id, int32_t generation,
                   sl_slice_t member_id, const sl_sync_assignment_t *assignments, size_t n_assignments) {
  finish_list_t f = {0};
  sl_group_t *g = gc && !gc->closing ? sl_group_find(gc, group_id) : NULL;
  sl_group_member_t *m = g ? member_find(g, member_id) : NULL;
  if (!gc || gc->closing) {
    sync_error(&f, req, KAFKA_COORDINATOR_NOT_AVAILABLE);
  } else if (!g || !m || g->state == SL_GROUP_EMPTY) {
    sync_error(&f, req, KAFKA_UNKNOWN_MEMBER_ID);
  } else if (g->state == SL_GROUP_DEAD) {
    sync_error(&f, req, KAFKA_COORDINATOR_NOT_AVAILABLE);
  } else if (generation != g->generation) {
    sync_error(&f, req, KAFKA_ILLEGAL_GENERATION);
  } else if (g->state == SL_GROUP_PREPARING_REBALANCE) {
    sync_error(&f, req, KAFKA_REBALANCE_IN_PROGRESS);
  } else if (g->state == SL_GROUP_STABLE) {
    sl_sync_group_write_response(req, KAFKA_NONE, m->assignment, m->assignment_len);
    finish_add(&f, req);
    member_touch(m);
  } else {
    /* CompletingRebalance: park until the leader's assignment arrives. */
    if (m->sync_req) sync_error(&f, m->sync_req, KAFKA_REBALANCE_IN_PROGRESS); /* superseded */
    m->sync_req = req;
    member_touch(m);
    if (m == g->leader) group_complete_sync(g, assignments, n_assignments, &f);
  }
  finish_all(&f);
}

/* ---- Heartbeat, LeaveGroup, commit check ---- */

int16_t sl_group_heartbeat(sl_group_coordinator_t *gc, sl_slice_t group_id, int32_t generation, sl_slice_t member_id) {
  if (!gc || gc->closing) return KAFKA_COORDINATOR_NOT_AVAILABLE;
  sl_group_t *g = sl_group_find(gc, group_id);
  if (!g) return KAFKA_UNKNOWN_MEMBER_ID;
  if (g->state == SL_GROUP_DEAD) return KAFKA_COORDINATOR_NOT_AVAILABLE;
  if (g->state == SL_GROUP_EMPTY) return KAFKA_UNKNOWN_MEMBER_ID;
  sl_group_member_t *m = member_find(g, member_id);
  if (!m) return KAFKA_UNKNOWN_MEMBER_ID;
  if (g->state == SL_GROUP_PREPARING_REBALANCE) {
    member_touch(m);
    return KAFKA_REBALANCE_IN_PROGRESS; /* how members learn that they must rejoin */
  }
  if (generation != g->generation) return KAFKA_ILLEGAL_GENERATION;
  member_touch(m);
  return KAFKA_NONE;
}

int16_t sl_group_leave(sl_group_coordinator_t *gc, sl_slice_t group_id, sl_slice_t member_id) {
  if (!gc || gc->closing) return KAFKA_COORDINATOR_NOT_AVAILABLE;
  sl_group_t *g = sl_group_find(gc, group_id);
  if (!g) return KAFKA_UNKNOWN_MEMBER_ID;
  if (g->state == SL_GROUP_DEAD) return KAFKA_COORDINATOR_NOT_AVAILABLE;
  finish_list_t f = {0};
  sl_group_pending_t *p = pending_find(g, member_id);
  if (p) {
    pending_remove(g, p);
    try_complete_join(g, &f);
    finish_all(&f);
    return KAFKA_NONE;
  }
  sl_group_member_t *m = member_find(g, member_id);
  if (!m) return KAFKA_UNKNOWN_MEMBER_ID;
  SL_INFO("group", "group %s: member %s left", g->group_id, m->member_id);
  member_remove(g, m, &f);
  group_member_gone(g, "member left", &f);
  finish_all(&f);
  return KAFKA_NONE;
}

int16_t sl_group_commit_allowed(sl_group_coordinator_t *gc, sl_slice_t group_id, int32_t generation,
                                sl_slice_t member_id) {
  if (!gc || gc->closing) return KAFKA_COORDINATOR_NOT_AVAILABLE;
  sl_group_t *g = sl_group_find(gc, group_id);
  if (!g) {
    if (generation >= 0) return KAFKA_ILLEGAL_GENERATION;
    /* A consumer that assigns partitions itself and only stores offsets here. */
    group_create(gc, group_id);
    return KAFKA_NONE;
  }
  if (g->state == SL_GROUP_DEAD) return KAFKA_COORDINATOR_NOT_AVAILABLE;
  if (generation < 0 && g->state == SL_GROUP_EMPTY) return KAFKA_NONE;
  if (g->state == SL_GROUP_COMPLETING_REBALANCE) return KAFKA_REBALANCE_IN_PROGRESS;
  sl_group_member_t *m = member_find(g, member_id);
  if (!m) return KAFKA_UNKNOWN_MEMBER_ID;
  if (generation != g->generation) return KAFKA_ILLEGAL_GENERATION;
  member_touch(m);
  return KAFKA_NONE; /* Stable, or PreparingRebalance: members commit before rejoining */
}

/* ---- open / close ---- */

sl_group_coordinator_t *sl_groups_of(const sl_kafka_request_t *req) {
  return req->broker ? req->broker->groups : NULL;
}

static void group_free_cb(uv_handle_t *h) {
  sl_group_t *g = h->data;
  free(g->members);
  free(g->group_id);
  free(g->protocol_type);
  free(g->last_protocol_type);
  free(g->protocol_name);
  free(g);
}

/* Unlinks a memberless group and frees it (its timer's close callback). */
static void group_forget(sl_group_t *g) {
  sl_group_coordinator_t *gc = g->gc;
  sl_group_t **pp = &gc->buckets[sl_group_hash(g->group_id, g->group_id_len) & (gc->n_buckets - 1)];
  while (*pp != g) pp = &(*pp)->hash_next;
  *pp = g->hash_next;
  gc->n_groups--;
  g->state = SL_GROUP_DEAD;
  while (g->pending) pending_remove(g, g->pending);
  uv_timer_stop(&g->rebalance_timer);
  uv_close((uv_handle_t *)&g->rebalance_timer, group_free_cb);
}

static bool has_members(const sl_group_t *g) { return g && (g->n_members > 0 || g->state != SL_GROUP_EMPTY); }

int16_t sl_group_delete(sl_group_coordinator_t *gc, sl_slice_t group_id, sl_offset_commit_cb cb, void *arg) {
  if (gc->closing) return KAFKA_COORDINATOR_NOT_AVAILABLE;
  sl_group_t *g = sl_group_find(gc, group_id);
  if (has_members(g)) return KAFKA_NON_EMPTY_GROUP;
  if (!g && sl_offset_store_newest_commit_ms(gc->offsets, group_id) == INT64_MIN) return KAFKA_GROUP_ID_NOT_FOUND;
  if (g) group_forget(g);
  SL_INFO("group", "group %.*s: deleted", (int)group_id.len, (const char *)group_id.ptr);
  sl_offset_store_delete_group(gc->offsets, group_id, cb, arg);
  return KAFKA_NONE;
}

static void on_expired(void *arg, int status) {
  char *id = arg;
  if (status != 0) SL_WARN("group", "group %s: deleting its expired offsets failed: %s", id, strerror(-status));
  free(id);
}

typedef struct {
  sl_group_coordinator_t *gc;
  int64_t now;
  char **expired;
  size_t n, cap;
} expiry_t;

static void check_group_offsets(void *arg, sl_slice_t id) {
  expiry_t *x = arg;
  if (has_members(sl_group_find(x->gc, id))) return; /* an active group's offsets do not expire */
  if (sl_offset_store_pending(x->gc->offsets, id)) return; /* a commit on its way is not old */
  int64_t newest = sl_offset_store_newest_commit_ms(x->gc->offsets, id);
  if (newest == INT64_MIN || x->now - newest < x->gc->offsets_retention_ms) return;
  if (x->n == x->cap) {
    x->cap = x->cap ? x->cap * 2 : 16;
    x->expired = realloc(x->expired, x->cap * sizeof *x->expired);
    if (!x->expired) abort();
  }
  x->expired[x->n++] = dup_slice(id);
}

static void on_expiry_timer(uv_timer_t *t) {
  sl_group_coordinator_t *gc = t->data;
  expiry_t x = {gc, sl_wall_ms(), NULL, 0, 0};
  sl_offset_store_each_group(gc->offsets, check_group_offsets, &x); /* collect first: deleting changes the map */
  for (size_t i = 0; i < x.n; i++) {
    sl_slice_t id = {(const uint8_t *)x.expired[i], strlen(x.expired[i])};
    sl_group_t *g = sl_group_find(gc, id);
    if (g) group_forget(g);
    SL_INFO("group", "group %s: committed offsets expired (none newer than %lld ms)", x.expired[i],
            (long long)gc->offsets_retention_ms);
    sl_offset_store_delete_group(gc->offsets, id, on_expired, x.expired[i]);
  }
  free(x.expired);
  /* memberless groups that have no offsets (left without committing) hold nothing worth keeping */
  for (size_t i = 0; i < gc->n_buckets; i++) {
    for (sl_group_t *g = gc->buckets[i], *next; g; g = next) {
      next = g->hash_next;
      sl_slice_t id = {(const uint8_t *)g->group_id, g->group_id_len};
      if (!has_members(g) && !g->pending && sl_offset_store_newest_commit_ms(gc->offsets, id) == INT64_MIN &&
          !sl_offset_store_pending(gc->offsets, id))
        group_forget(g);
    }
  }
}

static void on_expiry_timer_closed(uv_handle_t *h) { free(h); }

void sl_groups_set_retention(sl_group_coordinator_t *gc, int64_t retention_ms, int64_t check_ms) {
  gc->offsets_retention_ms = retention_ms;
  if (retention_ms <= 0 || gc->expiry_timer) return;
  gc->expiry_timer = malloc(sizeof *gc->expiry_timer);
  if (!gc->expiry_timer) abort();
  uv_timer_init(gc->loop, gc->expiry_timer);
  gc->expiry_timer->data = gc;
  uv_timer_start(gc->expiry_timer, on_expiry_timer, (uint64_t)check_ms, (uint64_t)check_ms);
  uv_unref((uv_handle_t *)gc->expiry_timer);
}

int sl_groups_open_dir(sl_broker_t *b, uv_loop_t *loop, const char *groups_dir, int64_t initial_delay_ms,
                       int64_t min_session_ms, int64_t max_session_ms, sl_group_coordinator_t **out) {
  sl_group_coordinator_t *gc = calloc(1, sizeof(*gc));
  if (!gc) return -ENOMEM;
  gc->broker = b;
  gc->loop = loop;
  gc->initial_rebalance_delay_ms = initial_delay_ms;
  gc->min_session_timeout_ms = min_session_ms;
  gc->max_session_timeout_ms = max_session_ms;
  int rc = sl_offset_store_open(loop, groups_dir, &gc->offsets);
  if (rc < 0) {
    free(gc);
    return rc;
  }
  groups_rehash(gc);
  *out = gc;
  return 0;
}

int sl_groups_open(sl_broker_t *b, sl_group_coordinator_t **out) {
  const char *data_dir = b->cfg && b->cfg->data_dir && b->cfg->data_dir[0] ? b->cfg->data_dir : ".";
  size_t n = strlen(data_dir) + sizeof("/groups");
  char *dir = malloc(n);
  if (!dir) return -ENOMEM;
  snprintf(dir, n, "%s/groups", data_dir);
  int rc = sl_groups_open_dir(b, b->loop, dir, b->cfg ? b->cfg->group_initial_rebalance_delay_ms : 0,
                              b->cfg ? b->cfg->group_min_session_timeout_ms : 6000,
                              b->cfg ? b->cfg->group_max_session_timeout_ms : 1800000, out);
  free(dir);
  if (rc == 0 && b->cfg)
    sl_groups_set_retention(*out, b->cfg->offsets_retention_ms, b->cfg->offsets_retention_check_interval_ms);
  return rc;
}


void sl_groups_close(sl_group_coordinator_t *gc) {
  if (!gc) return;
  finish_list_t f = {0};
  gc->closing = true;
  for (size_t i = 0; i < gc->n_buckets; i++) {
    sl_group_t *g = gc->buckets[i];
    while (g) {
      sl_group_t *next = g->hash_next;
      g->state = SL_GROUP_DEAD;
      while (g->n_members) {
        sl_group_member_t *m = g->members[g->n_members - 1];
        if (m->join_req) join_error(&f, m->join_req, KAFKA_COORDINATOR_NOT_AVAILABLE, m->member_id);
        if (m->sync_req) sync_error(&f, m->sync_req, KAFKA_COORDINATOR_NOT_AVAILABLE);
        m->join_req = m->sync_req = NULL;
        member_remove(g, m, &f);
      }
      while (g->pending) pending_remove(g, g->pending);
      uv_timer_stop(&g->rebalance_timer);
      uv_close((uv_handle_t *)&g->rebalance_timer, group_free_cb);
      g = next;
    }
  }
  if (gc->expiry_timer) uv_close((uv_handle_t *)gc->expiry_timer, on_expiry_timer_closed);
  free(gc->buckets);
  sl_offset_store_close(gc->offsets);
  free(gc);
  finish_all(&f);
}
