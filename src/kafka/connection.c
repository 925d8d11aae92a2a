/* A Kafka client connection: framing, request header parsing, and the in-order response queue.
 *
 *   bytes ──kafka_on_data──> frame (int32 size, bounded by max_request_bytes) ──parse header──> request
 *         ──handler──> ... ──sl_kafka_request_finish──> flush_responses (head of queue first) ──> socket
 *
 * Kafka answers requests on one connection in the order they arrived, however long each takes (a parked Fetch
 * delays the responses behind it). Pipelined requests are processed at once; reading pauses while too many are
 * outstanding or too much is waiting to be written, so a slow or greedy client cannot grow our memory. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "kafka/broker_internal.h"
#include "kafka/codec.h"
#include "kafka/connection.h"
#include "kafka/dispatch.h"
#include "kafka/errors.h"

enum {
  MAX_OUTSTANDING_REQUESTS = 128,
  MAX_QUEUED_WRITE_BYTES = 64 * 1024 * 1024,
};

struct sl_kafka_conn {
  sl_tcp_conn_t *tcp;
  sl_broker_t *broker;
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
    sl_kafka_request_free(req);
  }
  maybe_resume(c);
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
  sl_kafka_request_t *req = sl_kafka_request_parse(c->broker, sl_tcp_conn_peer(c->tcp), frame, len, &api);
  if (!req) return -1;
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
    if (size < 8 || size > c->broker->cfg->max_request_bytes) {
      SL_WARN("kafka", "%s: request size %d is outside [8, %lld]; closing", sl_tcp_conn_peer(c->tcp), size,
              (long long)c->broker->cfg->max_request_bytes);
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
  free(c);
}

const sl_tcp_protocol_t sl_kafka_protocol = {kafka_on_open, kafka_on_data, kafka_on_close};
