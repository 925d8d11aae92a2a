/* TLS over memory BIOs (see tls.h). */
#include "net/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"

struct sl_tls_ctx {
  SSL_CTX *ctx;
};

struct sl_tls_conn {
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  sl_buf_t pending; /* plaintext written before the handshake finished */
};

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

sl_tls_conn_t *sl_tls_conn_new(sl_tls_ctx_t *ctx) {
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
  SSL_set_accept_state(t->ssl);
  sl_buf_init(&t->pending);
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
      return -1;
    }
    plain += n;
    len -= (size_t)n;
  }
  drain_wbio(t, wire);
  return 0;
}

int sl_tls_conn_feed(sl_tls_conn_t *t, const uint8_t *in, size_t len, sl_buf_t *plain, sl_buf_t *wire) {
  if (len && BIO_write(t->rbio, in, (int)len) != (int)len) return -1;
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
    char why[256];
    ERR_error_string_n(ERR_get_error(), why, sizeof why);
    SL_DEBUG("tls", "TLS session failed: %s", why);
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
  if (!SSL_is_init_finished(t->ssl)) {
    sl_buf_put(&t->pending, plain, len);
    return 0;
  }
  return write_plain(t, plain, len, wire);
}
