/* TLS over memory BIOs (see tls.h).
 *
 * OpenSSL's error queue is per thread and shared by every session on the loop thread (in `sluice up` the store's
 * server sessions and the CQL client's sessions live on one thread), and SSL_get_error() misreports when stale
 * entries are left in it: so every entry point clears the queue before calling into OpenSSL, and a failure's reason
 * is copied into the session and the queue cleared again. */
#include "net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

struct sl_tls_ctx {
  SSL_CTX *ctx;
};

struct sl_tls_conn {
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  sl_buf_t pending; /* plaintext written before the handshake finished */
  char err[256];    /* why the session failed (sl_tls_conn_error) */
};

/* Copies the reason of the failure at the head of the error queue (and, for a certificate the client refused, the
 * verification result saying why) into t->err, then empties the queue. */
static void record_failure(sl_tls_conn_t *t, int ssl_error) {
  unsigned long e = ERR_get_error();
  const char *reason = e ? ERR_reason_error_string(e) : NULL;
  char code[128];
  if (e && !reason) {
    ERR_error_string_n(e, code, sizeof code);
    reason = code;
  }
  if (!reason) reason = ssl_error == SSL_ERROR_SYSCALL ? "unexpected end of the TLS stream" : "TLS protocol error";
  long v = SSL_get_verify_result(t->ssl);
  if (e && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED && v != X509_V_OK)
    snprintf(t->err, sizeof t->err, "%s: %s", reason, X509_verify_cert_error_string(v));
  else snprintf(t->err, sizeof t->err, "%s", reason);
  ERR_clear_error();
}

int sl_tls_ctx_create(const char *cert_file, const char *key_file, sl_tls_ctx_t **out, char *err, size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    snprintf(err, errlen, "cannot create a TLS context");
    return -ENOMEM;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    char why[256];
    ERR_error_string_n(ERR_get_error(), why, sizeof why);
    snprintf(err, errlen, "cannot load TLS certificate %s / key %s: %s", cert_file, key_file, why);
    SSL_CTX_free(ctx);
    return -EINVAL;
  }
  sl_tls_ctx_t *t = malloc(sizeof *t);
  if (!t) {
    SSL_CTX_free(ctx);
    return -ENOMEM;
  }
  t->ctx = ctx;
  *out = t;
  return 0;
}

void sl_tls_ctx_free(sl_tls_ctx_t *ctx) {
  if (!ctx) return;
  SSL_CTX_free(ctx->ctx);
  free(ctx);
}

/* A session over two fresh memory BIOs, in neither role yet. */
static sl_tls_conn_t *conn_alloc(sl_tls_ctx_t *ctx) {
  sl_tls_conn_t *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->ssl = SSL_new(ctx->ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio) {
    if (t->ssl) SSL_free(t->ssl);
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    free(t);
    return NULL;
  }
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  sl_buf_init(&t->pending);
  return t;
}

sl_tls_conn_t *sl_tls_conn_new(sl_tls_ctx_t *ctx) {
  sl_tls_conn_t *t = conn_alloc(ctx);
  if (t) SSL_set_accept_state(t->ssl);
  return t;
}

void sl_tls_conn_free(sl_tls_conn_t *t) {
  if (!t) return;
  SSL_free(t->ssl);
  sl_buf_free(&t->pending);
  free(t);
}

static void drain_wbio(sl_tls_conn_t *t, sl_buf_t *wire) {
  size_t n;
  while ((n = BIO_ctrl_pending(t->wbio)) > 0) {
    uint8_t *dst = sl_buf_extend(wire, n);
    int got = BIO_read(t->wbio, dst, (int)n);
    wire->len -= n - (size_t)(got > 0 ? got : 0);
  }
}

/* Writes plaintext; 0, or -1 on a fatal error. */
static int write_plain(sl_tls_conn_t *t, const uint8_t *plain, size_t len, sl_buf_t *wire) {
  while (len > 0) {
    int n = SSL_write(t->ssl, plain, (int)(len > 1 << 30 ? 1 << 30 : len));
    if (n <= 0) {
      int e = SSL_get_error(t->ssl, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        sl_buf_put(&t->pending, plain, len); /* the handshake is not done: send later */
        break;
      }
      record_failure(t, e);
      return -1;
    }
    plain += n;
    len -= (size_t)n;
  }
  drain_wbio(t, wire);
  return 0;
}

int sl_tls_conn_feed(sl_tls_conn_t *t, const uint8_t *in, size_t len, sl_buf_t *plain, sl_buf_t *wire) {
  ERR_clear_error();
  if (len && BIO_write(t->rbio, in, (int)len) != (int)len) {
    snprintf(t->err, sizeof t->err, "cannot buffer %zu bytes of TLS input", len);
    ERR_clear_error();
    return -1;
  }
  for (;;) {
    sl_buf_reserve(plain, 16384);
    int n = SSL_read(t->ssl, plain->data + plain->len, (int)(plain->cap - plain->len));
    if (n > 0) {
      plain->len += (size_t)n;
      continue;
    }
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    if (e == SSL_ERROR_ZERO_RETURN) break; /* close_notify: the TCP EOF that follows closes us */
    record_failure(t, e);
    SL_DEBUG("tls", "TLS session failed: %s", t->err);
    drain_wbio(t, wire); /* let the alert reach the peer */
    return -1;
  }
  drain_wbio(t, wire);
  if (t->pending.len && SSL_is_init_finished(t->ssl)) {
    sl_buf_t held = t->pending;
    sl_buf_init(&t->pending);
    int rc = write_plain(t, held.data, held.len, wire);
    sl_buf_free(&held);
    return rc;
  }
  return 0;
}

int sl_tls_conn_encrypt(sl_tls_conn_t *t, const uint8_t *plain, size_t len, sl_buf_t *wire) {
  ERR_clear_error();
  if (!SSL_is_init_finished(t->ssl)) {
    sl_buf_put(&t->pending, plain, len);
    return 0;
  }
  return write_plain(t, plain, len, wire);
}

/* ---------------------------------------------------------------- client side */

static bool is_set(const char *s) { return s && *s; }

static bool is_ip_literal(const char *s) {
  unsigned char a[16];
  return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* The reason at the head of the error queue, then an empty queue. */
static void queue_reason(char *out, size_t cap) {
  unsigned long e = ERR_get_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  if (r) snprintf(out, cap, "%s", r);
  else if (e) ERR_error_string_n(e, out, cap);
  else snprintf(out, cap, "unknown error");
  ERR_clear_error();
}

/* 0 when path can be read; else a negative errno and a message (OpenSSL's own words for a missing file are "system
 * lib", which helps nobody). */
static int check_readable(const char *what, const char *path, char *err, size_t errlen) {
  if (access(path, R_OK) == 0) return 0;
  int e = errno;
  snprintf(err, errlen, "cannot read %s %s: %s", what, path, strerror(e));
  return -e;
}

int sl_tls_client_ctx_create(const sl_tls_client_config_t *cfg, sl_tls_ctx_t **out, char *err, size_t errlen) {
  *out = NULL;
  bool has_cert = is_set(cfg->cert_file), has_key = is_set(cfg->key_file);
  if (has_cert != has_key) {
    snprintf(err, errlen, "a TLS client certificate needs both a certificate file and a key file");
    return -EINVAL;
  }
  int rc;
  if (is_set(cfg->ca_file) && (rc = check_readable("TLS CA file", cfg->ca_file, err, errlen)) != 0) return rc;
  if (has_cert && ((rc = check_readable("TLS certificate file", cfg->cert_file, err, errlen)) != 0 ||
                   (rc = check_readable("TLS key file", cfg->key_file, err, errlen)) != 0))
    return rc;
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    ERR_clear_error();
    snprintf(err, errlen, "cannot create a TLS context");
    return -ENOMEM;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  /* Never talk to an unverified server: with no CA file the system's trust store decides (as Python's
   * ssl.create_default_context() does), it does not switch verification off. */
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  char why[256];
  if (is_set(cfg->ca_file)) {
    if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
      queue_reason(why, sizeof why);
      snprintf(err, errlen, "cannot load TLS CA file %s: %s", cfg->ca_file, why);
      SSL_CTX_free(ctx);
      return -EINVAL;
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    queue_reason(why, sizeof why);
    snprintf(err, errlen, "cannot load the system's TLS trust store: %s", why);
    SSL_CTX_free(ctx);
    return -EINVAL;
  }
  if (has_cert && (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1 ||
                   SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1 ||
                   SSL_CTX_check_private_key(ctx) != 1)) {
    queue_reason(why, sizeof why);
    snprintf(err, errlen, "cannot load TLS client certificate %s / key %s: %s", cfg->cert_file, cfg->key_file, why);
    SSL_CTX_free(ctx);
    return -EINVAL;
  }
  sl_tls_ctx_t *t = malloc(sizeof *t);
  if (!t) {
    SSL_CTX_free(ctx);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  t->ctx = ctx;
  *out = t;
  return 0;
}

sl_tls_conn_t *sl_tls_conn_new_client(sl_tls_ctx_t *ctx, const char *sni, const char *verify_name) {
  ERR_clear_error();
  sl_tls_conn_t *t = conn_alloc(ctx);
  if (!t) return NULL;
  SSL_set_connect_state(t->ssl);
  bool ok = true;
  if (is_set(sni) && !is_ip_literal(sni)) ok = SSL_set_tlsext_host_name(t->ssl, sni) == 1;
  if (ok && is_set(verify_name)) {
    X509_VERIFY_PARAM *p = SSL_get0_param(t->ssl);
    X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (is_ip_literal(verify_name)) ok = X509_VERIFY_PARAM_set1_ip_asc(p, verify_name) == 1;
    else ok = X509_VERIFY_PARAM_set1_host(p, verify_name, 0) == 1;
  }
  if (!ok) {
    ERR_clear_error();
    sl_tls_conn_free(t);
    return NULL;
  }
  return t;
}

int sl_tls_conn_start(sl_tls_conn_t *t, sl_buf_t *wire) {
  ERR_clear_error();
  int n = SSL_do_handshake(t->ssl);
  if (n != 1) {
    int e = SSL_get_error(t->ssl, n);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      record_failure(t, e);
      return -EPROTO;
    }
  }
  drain_wbio(t, wire);
  return 0;
}

bool sl_tls_conn_established(const sl_tls_conn_t *t) { return SSL_is_init_finished(t->ssl); }

const char *sl_tls_conn_error(const sl_tls_conn_t *t) { return t->err; }
