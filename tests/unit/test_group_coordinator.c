/* Unit tests for the group coordinator (src/kafka/group_coordinator.c and the group API handlers): the two-step
 * join, rebalances that finish as soon as everyone is back, sync parking, heartbeat errors by state, leave,
 * session expiry, protocol selection, manual-assign commits, and shutdown with parked requests (under LSan).
 *
 * Requests are built by hand and run through the real handlers; this file provides sl_kafka_request_finish so the
 * responses can be inspected (the connection layer is not linked). */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kafka/codec.h"
#include "kafka/errors.h"
#include "kafka/group_internal.h"

/* ---- a fake connection layer ---- */

#define MAX_DONE 64
typedef struct {
  sl_buf_t resp;
  int16_t version;
} done_resp_t;
static done_resp_t done[MAX_DONE];
static int n_done;

void sl_kafka_request_finish(sl_kafka_request_t *req) {
  assert_true(n_done < MAX_DONE);
  done[n_done].resp = req->resp; /* takes the buffer */
  done[n_done].version = req->api_version;
  n_done++;
  free(req->frame);
  free(req);
}

const char *sl_kafka_request_peer(const sl_kafka_request_t *req) {
  (void)req;
  return "127.0.0.1:40000";
}

static void reset_done(void) {
  for (int i = 0; i < n_done; i++) sl_buf_free(&done[i].resp);
  n_done = 0;
}

static sl_broker_t broker;

static sl_kafka_request_t *mkreq(int16_t key, int16_t version, const char *client, sl_buf_t *body) {
  sl_kafka_request_t *req = calloc(1, sizeof(*req));
  req->broker = &broker;
  req->api_key = key;
  req->api_version = version;
  req->frame = body->data; /* takes the buffer */
  req->frame_len = body->len;
  sl_buf_init(body);
  sl_reader_init(&req->body, req->frame, req->frame_len);
  req->client_id = (sl_slice_t){(const uint8_t *)client, strlen(client)};
  sl_buf_init(&req->resp);
  return req;
}

/* ---- request builders ---- */

static void put_str(sl_buf_t *b, const char *s) {
  kafka_write_cstring(b, s);
}

typedef struct {
  const char *names[3];
  const char *metas[3];
} protos_t;

static sl_kafka_request_t *join_req(int16_t v, const char *group, const char *member, int32_t session,
                                    const protos_t *p) {
  sl_buf_t b;
  sl_buf_init(&b);
  put_str(&b, group);
  kafka_write_int32(&b, session);
  if (v >= 1) kafka_write_int32(&b, session * 2);
  put_str(&b, member);
  if (v >= 5) put_str(&b, NULL);
  put_str(&b, "consumer");
  int n = 0;
  while (n < 3 && p->names[n]) n++;
  kafka_write_array_len(&b, n);
  for (int i = 0; i < n; i++) {
    put_str(&b, p->names[i]);
    kafka_write_bytes(&b, p->metas[i], strlen(p->metas[i]));
  }
  return mkreq(11, v, "cli", &b);
}

typedef struct {
  int16_t error;
  int32_t generation;
  char protocol[64], leader[128], member[128];
  int32_t n_members;
  char members[4][128];
  char metas[4][64];
} join_resp_t;

static void str_out(sl_reader_t *r, char *out, size_t cap) {
  sl_slice_t s = kafka_read_string(r);
  snprintf(out, cap, "%.*s", (int)s.len, s.ptr ? (const char *)s.ptr : "");
}

static join_resp_t parse_join(int i) {
  join_resp_t j;
  memset(&j, 0, sizeof(j));
  sl_reader_t r;
  sl_reader_init(&r, done[i].resp.data, done[i].resp.len);
  if (done[i].version >= 2) (void)kafka_read_int32(&r);
  j.error = kafka_read_int16(&r);
  j.generation = kafka_read_int32(&r);
  str_out(&r, j.protocol, sizeof j.protocol);
  str_out(&r, j.leader, sizeof j.leader);
  str_out(&r, j.member, sizeof j.member);
  j.n_members = kafka_read_array_len(&r, 6);
  for (int k = 0; k < j.n_members && k < 4; k++) {
    str_out(&r, j.members[k], sizeof j.members[k]);
    if (done[i].version >= 5) (void)kafka_read_string(&r);
    sl_slice_t m = kafka_read_bytes(&r);
    snprintf(j.metas[k], sizeof j.metas[k], "%.*s", (int)m.len, (const char *)m.ptr);
  }
  assert_false(r.err);
  assert_int_equal(sl_reader_remaining(&r), 0);
  return j;
}

static sl_kafka_request_t *sync_req(const char *group, int32_t gen, const char *member, int n, const char **ids,
                                    const char **assign) {
  sl_buf_t b;
  sl_buf_init(&b);
  put_str(&b, group);
  kafka_write_int32(&b, gen);
  put_str(&b, member);
  put_str(&b, NULL);
  kafka_write_array_len(&b, n);
  for (int i = 0; i < n; i++) {
    put_str(&b, ids[i]);
    kafka_write_bytes(&b, assign[i], strlen(assign[i]));
  }
  return mkreq(14, 3, "cli", &b);
}

static int16_t parse_sync(int i, char *assignment, size_t cap) {
  sl_reader_t r;
  sl_reader_init(&r, done[i].resp.data, done[i].resp.len);
  (void)kafka_read_int32(&r);
  int16_t e = kafka_read_int16(&r);
  sl_slice_t a = kafka_read_bytes(&r);
  snprintf(assignment, cap, "%.*s", (int)a.len, (const char *)a.ptr);
  assert_false(r.err);
  return e;
}

static int16_t simple_call(int16_t key, int16_t v, const char *group, int32_t gen, const char *member) {
  sl_buf_t b;
  sl_buf_init(&b);
  put_str(&b, group);
  if (key == 12) kafka_write_int32(&b, gen);
  put_str(&b, member);
  if (key == 12 && v >= 3) put_str(&b, NULL);
  sl_kafka_request_t *req = mkreq(key, v, "cli", &b);
  int before = n_done;
  int rc = key == 12 ? sl_kafka_handle_heartbeat(req) : sl_kafka_handle_leave_group(req);
  assert_int_equal(rc, 0);
  assert_int_equal(n_done, before + 1);
  sl_reader_t r;
  sl_reader_init(&r, done[before].resp.data, done[before].resp.len);
  if (v >= 1) (void)kafka_read_int32(&r);
  return kafka_read_int16(&r);
}
#define heartbeat(g, gen, m) simple_call(12, 3, g, gen, m)
#define leave(g, m) simple_call(13, 1, g, 0, m)

/* ---- fixture ---- */

typedef struct {
  char dir[64];
  uv_loop_t loop;
} fixture_t;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof f->dir, "/tmp/sl-test-groups-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  uv_loop_init(&f->loop);
  memset(&broker, 0, sizeof(broker));
  broker.loop = &f->loop;
  /* Session timeouts of 100 ms keep the expiry test fast. */
  assert_int_equal(sl_groups_open_dir(&broker, &f->loop, f->dir, 0, 100, 600000, &broker.groups), 0);
  n_done = 0;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  sl_groups_close(broker.groups);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  reset_done();
  nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static const protos_t RANGE_RR = {{"range", "roundrobin"}, {"m-range", "m-rr"}};

/* Two-step join (v5): returns the member id. */
static void join_new_session(const char *group, const protos_t *p, char *id_out, int32_t session) {
  int before = n_done;
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, group, "", session, p)), 0);
  assert_int_equal(n_done, before + 1);
  join_resp_t j = parse_join(before);
  assert_int_equal(j.error, KAFKA_MEMBER_ID_REQUIRED);
  assert_true(strncmp(j.member, "cli-", 4) == 0);
  assert_int_equal(strlen(j.member), 4 + 36);
  strcpy(id_out, j.member);
}
#define join_new(g, p, id) join_new_session(g, p, id, 10000)

static void test_join_sync_heartbeat_leave(void **state) {
  (void)state;
  char a[128], b[128];
  join_new("g", &RANGE_RR, a);
  /* The only member: the rebalance completes at once. */
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g", a, 10000, &RANGE_RR)), 0);
  assert_int_equal(n_done, 2);
  join_resp_t j = parse_join(1);
  assert_int_equal(j.error, 0);
  assert_int_equal(j.generation, 1);
  assert_string_equal(j.protocol, "range");
  assert_string_equal(j.leader, a);
  assert_int_equal(j.n_members, 1);
  assert_string_equal(j.metas[0], "m-range");
  const char *ids[2] = {a};
  const char *as[2] = {"A1"};
  char out[64];
  assert_int_equal(sl_kafka_handle_sync_group(sync_req("g", 1, a, 1, ids, as)), 0);
  assert_int_equal(parse_sync(2, out, sizeof out), 0);
  assert_string_equal(out, "A1");
  assert_int_equal(heartbeat("g", 1, a), KAFKA_NONE);
  assert_int_equal(heartbeat("g", 0, a), KAFKA_ILLEGAL_GENERATION);
  assert_int_equal(heartbeat("g", 1, "nobody"), KAFKA_UNKNOWN_MEMBER_ID);
  assert_int_equal(heartbeat("nogroup", 1, a), KAFKA_UNKNOWN_MEMBER_ID);

  /* A second member: its join parks until the first rejoins; the first learns through its heartbeat. */
  join_new("g", &RANGE_RR, b);
  int before = n_done;
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g", b, 10000, &RANGE_RR)), 0);
  assert_int_equal(n_done, before);
  assert_int_equal(heartbeat("g", 1, a), KAFKA_REBALANCE_IN_PROGRESS);
  /* Stable-era sync during PreparingRebalance. */
  assert_int_equal(sl_kafka_handle_sync_group(sync_req("g", 1, a, 0, NULL, NULL)), 0);
  assert_int_equal(parse_sync(n_done - 1, out, sizeof out), KAFKA_REBALANCE_IN_PROGRESS);
  before = n_done;
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g", a, 10000, &RANGE_RR)), 0);
  assert_int_equal(n_done, before + 2); /* both answered, as soon as everyone was back */
  join_resp_t jb = parse_join(before), ja = parse_join(before + 1);
  if (strcmp(ja.member, a) != 0) {
    join_resp_t t = ja;
    ja = jb;
    jb = t;
  }
  assert_int_equal(ja.generation, 2);
  assert_int_equal(jb.generation, 2);
  assert_string_equal(ja.leader, a); /* the leader stays the leader */
  assert_int_equal(ja.n_members, 2);
  assert_int_equal(jb.n_members, 0);

  /* The follower's sync parks until the leader's arrives. */
  assert_int_equal(heartbeat("g", 2, b), KAFKA_NONE); /* CompletingRebalance */
  before = n_done;
  assert_int_equal(sl_kafka_handle_sync_group(sync_req("g", 2, b, 0, NULL, NULL)), 0);
  assert_int_equal(n_done, before);
  const char *ids2[2] = {a, b};
  const char *as2[2] = {"for-a", "for-b"};
  assert_int_equal(sl_kafka_handle_sync_group(sync_req("g", 2, a, 2, ids2, as2)), 0);
  assert_int_equal(n_done, before + 2);
  char o1[64], o2[64];
  assert_int_equal(parse_sync(before, o1, sizeof o1), 0);
  assert_int_equal(parse_sync(before + 1, o2, sizeof o2), 0);
  assert_true((strcmp(o1, "for-a") == 0 && strcmp(o2, "for-b") == 0) ||
              (strcmp(o1, "for-b") == 0 && strcmp(o2, "for-a") == 0));
  /* Stable: a repeated sync gets the stored assignment. */
  assert_int_equal(sl_kafka_handle_sync_group(sync_req("g", 2, b, 0, NULL, NULL)), 0);
  assert_int_equal(parse_sync(n_done - 1, out, sizeof out), 0);
  assert_string_equal(out, "for-b");

  /* The leader leaves: b must rejoin, and becomes leader of generation 3. */
  assert_int_equal(leave("g", a), KAFKA_NONE);
  assert_int_equal(leave("g", a), KAFKA_UNKNOWN_MEMBER_ID);
  assert_int_equal(heartbeat("g", 2, b), KAFKA_REBALANCE_IN_PROGRESS);
  before = n_done;
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g", b, 10000, &RANGE_RR)), 0);
  assert_int_equal(n_done, before + 1);
  j = parse_join(before);
  assert_int_equal(j.generation, 3);
  assert_string_equal(j.leader, b);
  /* The last member leaves: Empty. */
  assert_int_equal(leave("g", b), KAFKA_NONE);
  assert_int_equal(heartbeat("g", 3, b), KAFKA_UNKNOWN_MEMBER_ID);
  assert_int_equal(broker.groups->n_groups, 1);
  assert_int_equal(sl_group_find(broker.groups, (sl_slice_t){(const uint8_t *)"g", 1})->state, SL_GROUP_EMPTY);
}

static void test_inconsistent_protocol_and_bad_session(void **state) {
  (void)state;
  char a[128];
  join_new("g", &RANGE_RR, a);
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g", a, 10000, &RANGE_RR)), 0);
  /* kafkajs's protocol shares nothing with librdkafka's (pitfall 18). */
  static const protos_t KJS = {{"RoundRobinAssigner"}, {"x"}};
  int before = n_done;
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g", "", 10000, &KJS)), 0);
  assert_int_equal(parse_join(before).error, KAFKA_INCONSISTENT_GROUP_PROTOCOL);
  /* A v2 joiner (kafka-python: no MEMBER_ID_REQUIRED) with a common protocol is admitted directly. */
  static const protos_t RR = {{"roundrobin"}, {"m"}};
  before = n_done;
  assert_int_equal(sl_kafka_handle_join_group(join_req(2, "g", "", 10000, &RR)), 0);
  assert_int_equal(n_done, before); /* parked: a must rejoin */
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g", a, 10000, &RANGE_RR)), 0);
  assert_int_equal(n_done, before + 2);
  assert_string_equal(parse_join(before).protocol, "roundrobin"); /* the only common one */
  before = n_done;
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g2", "", 50, &RANGE_RR)), 0);
  assert_int_equal(parse_join(before).error, KAFKA_INVALID_SESSION_TIMEOUT);
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "", "", 10000, &RANGE_RR)), 0);
  assert_int_equal(parse_join(before + 1).error, KAFKA_INVALID_GROUP_ID);
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g2", "cli-unknown", 10000, &RANGE_RR)), 0);
  assert_int_equal(parse_join(before + 2).error, KAFKA_UNKNOWN_MEMBER_ID);
}

static void test_protocol_selection(void **state) {
  (void)state;
  sl_group_protocol_t p1[] = {{"range", NULL, 0}, {"roundrobin", NULL, 0}};
  sl_group_protocol_t p2[] = {{"roundrobin", NULL, 0}, {"range", NULL, 0}};
  sl_group_protocol_t p3[] = {{"sticky", NULL, 0}, {"roundrobin", NULL, 0}};
  sl_group_protocol_t p4[] = {{"RoundRobinAssigner", NULL, 0}};
  sl_group_member_t m1 = {.protocols = p1, .n_protocols = 2};
  sl_group_member_t m2 = {.protocols = p2, .n_protocols = 2};
  sl_group_member_t m3 = {.protocols = p3, .n_protocols = 2};
  sl_group_member_t m4 = {.protocols = p4, .n_protocols = 1};
  sl_group_member_t *a[] = {&m1};
  assert_string_equal(sl_group_select_protocol(a, 1), "range");
  sl_group_member_t *b[] = {&m1, &m2, &m2};
  assert_string_equal(sl_group_select_protocol(b, 3), "roundrobin"); /* two first votes against one */
  sl_group_member_t *c[] = {&m1, &m2};
  assert_string_equal(sl_group_select_protocol(c, 2), "range"); /* tie: the first member's preference */
  sl_group_member_t *d[] = {&m1, &m3};
  assert_string_equal(sl_group_select_protocol(d, 2), "roundrobin"); /* the only common one */
  sl_group_member_t *e[] = {&m1, &m4};
  assert_null(sl_group_select_protocol(e, 2));
  assert_null(sl_group_select_protocol(NULL, 0));
}

static void test_session_expiry(void **state) {
  fixture_t *f = *state;
  char a[128], b[128];
  join_new("g", &RANGE_RR, a);
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g", a, 150, &RANGE_RR)), 0);
  join_new("g", &RANGE_RR, b);
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g", b, 10000, &RANGE_RR)), 0);
  /* a never heartbeats or rejoins: after its session expires b's parked join completes alone. Its rebalance
   * timeout (300 ms) may fire first; either way a is gone. */
  int before = n_done;
  while (n_done == before) uv_run(&f->loop, UV_RUN_ONCE);
  join_resp_t j = parse_join(before);
  assert_int_equal(j.error, 0);
  assert_string_equal(j.member, b);
  assert_string_equal(j.leader, b);
  assert_int_equal(j.n_members, 1);
  assert_int_equal(heartbeat("g", j.generation, a), KAFKA_UNKNOWN_MEMBER_ID);
  /* A pending id that never comes back is forgotten after the session timeout. */
  char c[128];
  join_new_session("g", &RANGE_RR, c, 120);
  sl_group_t *g = sl_group_find(broker.groups, (sl_slice_t){(const uint8_t *)"g", 1});
  assert_non_null(g->pending);
  while (g->pending) uv_run(&f->loop, UV_RUN_ONCE);
  before = n_done;
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g", c, 10000, &RANGE_RR)), 0);
  assert_int_equal(parse_join(before).error, KAFKA_UNKNOWN_MEMBER_ID);
}

static int16_t commit(const char *group, int32_t gen, const char *member, int64_t offset, uv_loop_t *loop) {
  sl_buf_t b;
  sl_buf_init(&b);
  put_str(&b, group);
  kafka_write_int32(&b, gen);
  put_str(&b, member);
  put_str(&b, NULL); /* v7 group_instance_id */
  kafka_write_array_len(&b, 1);
  put_str(&b, "topic");
  kafka_write_array_len(&b, 1);
  kafka_write_int32(&b, 0);
  kafka_write_int64(&b, offset);
  kafka_write_int32(&b, 3);
  put_str(&b, "md");
  int before = n_done;
  assert_int_equal(sl_kafka_handle_offset_commit(mkreq(8, 7, "cli", &b)), 0);
  while (n_done == before) uv_run(loop, UV_RUN_ONCE);
  sl_reader_t r;
  sl_reader_init(&r, done[before].resp.data, done[before].resp.len);
  (void)kafka_read_int32(&r);
  assert_int_equal(kafka_read_int32(&r), 1);
  (void)kafka_read_string(&r);
  assert_int_equal(kafka_read_int32(&r), 1);
  assert_int_equal(kafka_read_int32(&r), 0);
  return kafka_read_int16(&r);
}

static int64_t fetch_offset(int16_t v, const char *group, bool all) {
  sl_buf_t b;
  sl_buf_init(&b);
  put_str(&b, group);
  if (all) {
    kafka_write_array_len(&b, -1);
  } else {
    kafka_write_array_len(&b, 1);
    put_str(&b, "topic");
    kafka_write_array_len(&b, 1);
    kafka_write_int32(&b, 0);
  }
  int before = n_done;
  assert_int_equal(sl_kafka_handle_offset_fetch(mkreq(9, v, "cli", &b)), 0);
  assert_int_equal(n_done, before + 1);
  sl_reader_t r;
  sl_reader_init(&r, done[before].resp.data, done[before].resp.len);
  if (v >= 3) (void)kafka_read_int32(&r);
  int32_t nt = kafka_read_int32(&r);
  if (nt == 0) return -2;
  (void)kafka_read_string(&r);
  assert_int_equal(kafka_read_int32(&r), 1);
  assert_int_equal(kafka_read_int32(&r), 0);
  int64_t off = kafka_read_int64(&r);
  if (v >= 5) assert_int_equal(kafka_read_int32(&r), off >= 0 ? 3 : -1);
  (void)kafka_read_string(&r);
  assert_int_equal(kafka_read_int16(&r), 0);
  if (v >= 2) assert_int_equal(kafka_read_int16(&r), 0);
  assert_false(r.err);
  assert_int_equal(sl_reader_remaining(&r), 0);
  return off;
}

static void test_offsets(void **state) {
  fixture_t *f = *state;
  assert_int_equal(fetch_offset(1, "manual", false), -1); /* unknown group: -1, not an error */
  assert_int_equal(fetch_offset(5, "manual", true), -2);  /* nothing committed: no topics */
  assert_int_equal(commit("manual", 5, "x", 10, &f->loop), KAFKA_ILLEGAL_GENERATION);
  assert_int_equal(commit("manual", -1, "", 10, &f->loop), KAFKA_NONE); /* creates the (Empty) group */
  assert_int_equal(fetch_offset(5, "manual", false), 10);
  assert_int_equal(fetch_offset(3, "manual", true), 10);
  /* A running group: only members of the current generation. */
  char a[128];
  join_new("run", &RANGE_RR, a);
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "run", a, 10000, &RANGE_RR)), 0);
  assert_int_equal(commit("run", -1, "", 1, &f->loop), KAFKA_REBALANCE_IN_PROGRESS); /* CompletingRebalance */
  const char *ids[1] = {a};
  const char *as[1] = {"x"};
  assert_int_equal(sl_kafka_handle_sync_group(sync_req("run", 1, a, 1, ids, as)), 0);
  assert_int_equal(commit("run", -1, "", 1, &f->loop), KAFKA_UNKNOWN_MEMBER_ID);
  assert_int_equal(commit("run", 2, a, 1, &f->loop), KAFKA_ILLEGAL_GENERATION);
  assert_int_equal(commit("run", 1, a, 77, &f->loop), KAFKA_NONE);
  assert_int_equal(fetch_offset(2, "run", false), 77);
}

static void test_close_with_parked_requests(void **state) {
  (void)state;
  char a[128], b[128];
  join_new("g", &RANGE_RR, a);
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g", a, 10000, &RANGE_RR)), 0);
  join_new("g", &RANGE_RR, b);
  int before = n_done;
  assert_int_equal(sl_kafka_handle_join_group(join_req(5, "g", b, 10000, &RANGE_RR)), 0);
  assert_int_equal(n_done, before);
  sl_groups_close(broker.groups); /* answers b's parked join */
  broker.groups = NULL;
  assert_int_equal(n_done, before + 1);
  assert_int_equal(parse_join(before).error, KAFKA_COORDINATOR_NOT_AVAILABLE);
  /* Teardown runs the loop: every timer closes and frees its owner (LSan checks). */
}

static void test_malformed(void **state) {
  (void)state;
  sl_buf_t b;
  sl_buf_init(&b);
  put_str(&b, "g");
  kafka_write_int32(&b, 10000);
  kafka_write_int32(&b, 10000);
  put_str(&b, "");
  put_str(&b, NULL);
  put_str(&b, "consumer");
  kafka_write_array_len(&b, 1000000); /* far more protocols than bytes */
  sl_kafka_request_t *req = mkreq(11, 5, "cli", &b);
  assert_true(sl_kafka_handle_join_group(req) < 0);
  free(req->frame);
  free(req);
  sl_buf_init(&b);
  put_str(&b, "g");
  kafka_write_int32(&b, 1);
  req = mkreq(12, 3, "cli", &b);
  assert_true(sl_kafka_handle_heartbeat(req) < 0);
  free(req->frame);
  free(req);
  assert_int_equal(n_done, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_join_sync_heartbeat_leave, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inconsistent_protocol_and_bad_session, setup, teardown),
      cmocka_unit_test(test_protocol_selection),
      cmocka_unit_test_setup_teardown(test_session_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_offsets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_with_parked_requests, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
