/* A Kafka client connection: framing, request header parsing, and the in-order response queue.
 *
 *   bytes ──kafka_on_data──> frame (int32 size, bounded by max_request_bytes) ──parse header──> request
 *         ──handler──> ... ──sl_kafka_request_finish──> flush_responses (head of queue first) ──> socket
 *
 * Kafka answers requests on one connection in the order they arrived, however long each takes (a parked Fetch
 * delays the responses behind it). Pipelined requests are processed at once; reading pauses while too many are
 * outstanding or too much is waiting to be written, so a slow or greedy client cannot grow our memory.
 *
 * Authentication, when broker.sasl_mechanisms is set (otherwise a connection starts AUTHENTICATED):
 *
 *   NEED_HANDSHAKE ──SaslHandshake v1: sl_kafka_conn_sasl_begin()──> KAFKA_TOKENS ──SaslAuthenticate ok──> AUTHENTICATED
 *        │                                                                │ failed: answer 58, close
 *        └──SaslHandshake v0 (kafka-python): sl_kafka_conn_sasl_begin()──> RAW_TOKENS ──raw frames: handle_raw_token()
 *                                                                           ok: AUTHENTICATED; failed: close
 * Before AUTHENTICATED only ApiVersions and the SASL requests of the current state are accepted; anything else closes
 * the connection, as Kafka does. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/connection.h"
#include "kafka/dispatch.h"
#include "kafka/errors.h"
#include "kafka/sasl.h"

enum {
  MAX_OUTSTANDING_REQUESTS = 128,
  MAX_QUEUED_WRITE_BYTES = 64 * 1024 * 1024,
};

typedef enum { AUTH_NEED_HANDSHAKE, AUTH_KAFKA_TOKENS, AUTH_RAW_TOKENS, AUTH_AUTHENTICATED } auth_state_t;

struct sl_kafka_conn {
  sl_tcp_conn_t *tcp;
  sl_broker_t *broker;
  auth_state_t auth;
  sl_sasl_session_t *sasl;
  sl_kafka_request_t *head, *tail; /* requests awaiting their response, oldest first */
  size_t outstanding;
  bool paused;
};

static void maybe_resume(sl_kafka_conn_t *c) {
  if (c->paused && c->outstanding < MAX_OUTSTANDING_REQUESTS / 2 &&
      sl_tcp_conn_write_queue_bytes(c->tcp) < MAX_QUEUED_WRITE_BYTES / 2) {
    c->paused = false;
    sl_tcp_conn_resume(c->tcp);
  }
}

void sl_kafka_request_free(sl_kafka_request_t *req) {
  sl_buf_free(&req->resp);
  free(req->frame);
  free(req);
}

/* Sends every finished response at the head of the queue. */
static void flush_responses(sl_kafka_conn_t *c) {
  while (c->head && c->head->finished) {
    sl_kafka_request_t *req = c->head;
    c->head = req->next;
    if (!c->head) c->tail = NULL;
    c->outstanding--;
    if (!req->no_response) {
      sl_buf_patch_be32(&req->resp, 0, (uint32_t)(req->resp.len - 4));
      sl_tcp_conn_write(c->tcp, &req->resp);
    }
    bool close_after = req->close_after;
    sl_kafka_request_free(req);
    if (close_after) {
      sl_tcp_conn_close_after_writes(c->tcp);
      return;
    }
  }
  maybe_resume(c);
}

bool sl_kafka_conn_sasl_expecting_handshake(const sl_kafka_conn_t *c) { return c->auth == AUTH_NEED_HANDSHAKE; }

void sl_kafka_conn_sasl_begin(sl_kafka_conn_t *c, sl_sasl_session_t *session, bool raw_tokens) {
  sl_sasl_session_free(c->sasl);
  c->sasl = session;
  c->auth = raw_tokens ? AUTH_RAW_TOKENS : AUTH_KAFKA_TOKENS;
}

sl_sasl_session_t *sl_kafka_conn_sasl_session(sl_kafka_conn_t *c) {
  return c->auth == AUTH_KAFKA_TOKENS ? c->sasl : NULL;
}

void sl_kafka_conn_sasl_finish(sl_kafka_conn_t *c, bool authenticated) {
  if (authenticated) c->auth = AUTH_AUTHENTICATED;
  else c->auth = AUTH_NEED_HANDSHAKE; /* the connection closes after the failure answer anyway */
}

/* A raw SASL token after SaslHandshake v0: answered with a size-prefixed token and no Kafka header. */
static int handle_raw_token(sl_kafka_conn_t *c, const uint8_t *token, size_t len) {
  if (c->head) {
    SL_WARN("kafka", "%s: raw SASL token while responses are pending; closing", sl_tcp_conn_peer(c->tcp));
    return -1;
  }
  sl_buf_t out;
  sl_buf_init(&out);
  sl_buf_put_be32(&out, 0);
  const char *reason = NULL;
  sl_sasl_status_t st = sl_sasl_step(c->sasl, token, len, &out, &reason);
  if (st == SL_SASL_FAILED) {
    SL_WARN("kafka", "%s: SASL authentication failed: %s; closing", sl_tcp_conn_peer(c->tcp), reason);
    sl_buf_free(&out);
    return -1;
  }
  sl_buf_patch_be32(&out, 0, (uint32_t)(out.len - 4));
  sl_tcp_conn_write(c->tcp, &out);
  if (st == SL_SASL_DONE) {
    SL_INFO("kafka", "%s: authenticated as '%s'", sl_tcp_conn_peer(c->tcp), sl_sasl_session_user(c->sasl));
    c->auth = AUTH_AUTHENTICATED;
  }
  return 0;
}

/* Before authentication only ApiVersions and the SASL request the state expects may pass. */
static bool allowed_before_auth(const sl_kafka_conn_t *c, int16_t api_key) {
  if (api_key == KAFKA_API_API_VERSIONS) return true;
  if (api_key == KAFKA_API_SASL_HANDSHAKE) return c->auth == AUTH_NEED_HANDSHAKE;
  if (api_key == KAFKA_API_SASL_AUTHENTICATE) return c->auth == AUTH_KAFKA_TOKENS;
  return false;
}

const char *sl_kafka_request_peer(const sl_kafka_request_t *req) {
  return req->conn ? sl_tcp_conn_peer(req->conn->tcp) : "";
}

void sl_kafka_request_finish(sl_kafka_request_t *req) {
  req->finished = true;
  if (!req->conn) {
    sl_kafka_request_free(req);
    return;
  }
  flush_responses(req->conn);
}

void sl_kafka_request_finish_silently(sl_kafka_request_t *req) {
  req->no_response = true;
  sl_kafka_request_finish(req);
}

sl_kafka_request_t *sl_kafka_request_parse(sl_broker_t *b, const char *peer, const uint8_t *frame, size_t len,
                                           const sl_kafka_api_t **api_out) {
  sl_reader_t r;
  sl_reader_init(&r, frame, len);
  int16_t api_key = kafka_read_int16(&r);
  int16_t api_version = kafka_read_int16(&r);
  int32_t correlation_id = kafka_read_int32(&r);
  if (r.err) {
    SL_WARN("kafka", "%s: request shorter than its header; closing", peer);
    return NULL;
  }
  const sl_kafka_api_t *api = sl_kafka_api_find(api_key);
  if (!api) {
    SL_WARN("kafka", "%s: unknown API key %d; closing (as Kafka does)", peer, api_key);
    return NULL;
  }
  bool is_api_versions = api_key == KAFKA_API_API_VERSIONS;
  if (api_version < api->min_version || (api_version > api->max_version && !is_api_versions)) {
    SL_WARN("kafka", "%s: %s v%d is not supported (v%d-v%d); closing (as Kafka does)", peer, api->name, api_version,
            api->min_version, api->max_version);
    return NULL;
  }
  sl_kafka_request_t *req = calloc(1, sizeof *req);
  if (!req) return NULL;
  req->frame = malloc(len);
  if (!req->frame) {
    free(req);
    return NULL;
  }
  memcpy(req->frame, frame, len);
  req->frame_len = len;
  req->broker = b;
  req->api_key = api_key;
  req->api_version = api_version;
  req->correlation_id = correlation_id;
  /* An unsupported ApiVersions is answered without parsing its body, in the v0 layout. */
  req->flexible = api_version >= api->first_flexible && api_version <= api->max_version;
  sl_reader_init(&req->body, req->frame, len);
  req->body.pos = 8;
  req->client_id = kafka_read_string(&req->body); /* keeps its int16 length even in header v2 */
  if (req->flexible) kafka_skip_tags(&req->body);
  if (req->body.err) {
    SL_WARN("kafka", "%s: malformed %s v%d request header; closing", peer, api->name, api_version);
    sl_kafka_request_free(req);
    return NULL;
  }
  sl_buf_init(&req->resp);
  kafka_write_int32(&req->resp, 0); /* size, patched when sent */
  kafka_write_int32(&req->resp, correlation_id);
  /* Response header v1 carries tags, except for ApiVersions which always uses header v0. */
  if (req->flexible && !is_api_versions) kafka_write_empty_tags(&req->resp);
  *api_out = api;
  return req;
}

/* Parses one frame into a request and runs its handler. Returns 0, or -1 to close the connection. */
static int handle_frame(sl_kafka_conn_t *c, const uint8_t *frame, size_t len) {
  const sl_kafka_api_t *api;
  if (c->auth == AUTH_RAW_TOKENS) return handle_raw_token(c, frame, len);
  sl_kafka_request_t *req = sl_kafka_request_parse(c->broker, sl_tcp_conn_peer(c->tcp), frame, len, &api);
  if (!req) return -1;
  if (c->auth != AUTH_AUTHENTICATED && !allowed_before_auth(c, req->api_key)) {
    SL_WARN("kafka", "%s: %s before SASL authentication; closing", sl_tcp_conn_peer(c->tcp), api->name);
    sl_kafka_request_free(req);
    return -1;
  }
  req->conn = c;
  if (c->tail) c->tail->next = req;
  else c->head = req;
  c->tail = req;
  c->outstanding++;

  if (api->handler(req) != 0) {
    SL_WARN("kafka", "%s: malformed %s v%d request (correlation id %d); closing", sl_tcp_conn_peer(c->tcp),
            api->name, req->api_version, req->correlation_id);
    req->finished = true; /* parked nowhere: kafka_on_close frees it with the connection */
    req->no_response = true;
    return -1;
  }
  return 0;
}

static ssize_t kafka_on_data(void *state, const uint8_t *data, size_t len) {
  sl_kafka_conn_t *c = state;
  size_t used = 0;
  while (!c->paused && len - used >= 4) {
    int32_t size = (int32_t)sl_load_be32(data + used);
    /* raw SASL tokens have no header; they are small, so 64 KiB bounds them */
    int32_t min = c->auth == AUTH_RAW_TOKENS ? 0 : 8;
    int64_t max = c->auth == AUTH_RAW_TOKENS ? 65536 : c->broker->cfg->max_request_bytes;
    if (size < min || size > max) {
      SL_WARN("kafka", "%s: request size %d is outside [%d, %lld]; closing", sl_tcp_conn_peer(c->tcp), size, min,
              (long long)max);
      return -1;
    }
    if (len - used - 4 < (size_t)size) break; /* wait for the rest of the frame */
    if (handle_frame(c, data + used + 4, (size_t)size) != 0) return -1;
    used += 4 + (size_t)size;
    if (c->outstanding >= MAX_OUTSTANDING_REQUESTS ||
        sl_tcp_conn_write_queue_bytes(c->tcp) >= MAX_QUEUED_WRITE_BYTES) {
      c->paused = true;
      sl_tcp_conn_pause(c->tcp);
    }
  }
  return (ssize_t)used;
}

static void *kafka_on_open(sl_tcp_conn_t *tcp, void *arg) {
  sl_broker_t *b = arg;
  if (b->stopping) return NULL;
  sl_kafka_conn_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->tcp = tcp;
  c->broker = b;
  c->auth = b->sasl_users ? AUTH_NEED_HANDSHAKE : AUTH_AUTHENTICATED;
  SL_DEBUG("kafka", "connection from %s", sl_tcp_conn_peer(tcp));
  return c;
}

static void kafka_on_close(void *state) {
  sl_kafka_conn_t *c = state;
  /* Finished requests are freed now; parked ones are orphaned and freed by whoever finishes them. */
  sl_kafka_request_t *req = c->head;
  while (req) {
    sl_kafka_request_t *next = req->next;
    req->next = NULL;
    if (req->finished) sl_kafka_request_free(req);
    else req->conn = NULL;
    req = next;
  }
  sl_sasl_session_free(c->sasl);
  free(c);
}

const sl_tcp_protocol_t sl_kafka_protocol = {kafka_on_open, kafka_on_data, kafka_on_close};
