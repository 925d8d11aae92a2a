/* TLS for the project's listeners and clients (OpenSSL with memory BIOs), so every protocol gets it without knowing:
 * the TCP layer feeds it ciphertext from the socket and writes the ciphertext it produces. Nothing here touches a
 * socket or blocks, so the handshake is driven by the event loop's reads and writes like any other bytes. */
#ifndef SL_NET_TLS_H
#define SL_NET_TLS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct sl_tls_ctx sl_tls_ctx_t;
typedef struct sl_tls_conn sl_tls_conn_t;

/* A server context from PEM files (the certificate file may hold the chain). Returns 0, or a negative errno with a
 * message in err. */
int sl_tls_ctx_create(const char *cert_file, const char *key_file, sl_tls_ctx_t **out, char *err, size_t errlen);
void sl_tls_ctx_free(sl_tls_ctx_t *ctx);

sl_tls_conn_t *sl_tls_conn_new(sl_tls_ctx_t *ctx);
void sl_tls_conn_free(sl_tls_conn_t *t);
/* Consumes ciphertext from the peer: appends decrypted bytes to `plain` and bytes to send back (handshake, alerts)
 * to `wire`. Returns 0, or -1 when the session failed (close the connection). */
int sl_tls_conn_feed(sl_tls_conn_t *t, const uint8_t *in, size_t len, sl_buf_t *plain, sl_buf_t *wire);
/* Encrypts plaintext into `wire`; before the handshake completes it is held and sent once it does. */
int sl_tls_conn_encrypt(sl_tls_conn_t *t, const uint8_t *plain, size_t len, sl_buf_t *wire);

/* ---- Client side. sl_tls_conn_feed / sl_tls_conn_encrypt / sl_tls_conn_free serve both sides. */

/* What a client context trusts and presents. A string that is NULL or "" is not set. */
typedef struct {
  const char *ca_file;   /* PEM CA certificates the server's chain must lead to; unset: the system's default trust
                          * store (OpenSSL's default verify paths). The chain is verified either way. */
  const char *cert_file; /* client certificate (PEM, may hold the chain) for mutual TLS; needs key_file */
  const char *key_file;  /* its private key (PEM, unencrypted) */
} sl_tls_client_config_t;

/* A client context (TLS 1.2 or later, peer verification on). Returns 0, or a negative errno with a message in err:
 * -ENOENT/-EACCES for a file that cannot be read, -EINVAL for one OpenSSL cannot use or a certificate without its
 * key. Free with sl_tls_ctx_free once no session made from it is in use. */
int sl_tls_client_ctx_create(const sl_tls_client_config_t *cfg, sl_tls_ctx_t **out, char *err, size_t errlen);

/* A client session. verify_name (NULL or "": no name check, the chain is still verified) is what the server's
 * certificate must name: an IP literal is matched against its IP SANs, anything else as a DNS name against its DNS
 * SANs (its CN when it has none; no partial wildcards). sni, when set and not an IP literal (RFC 6066), is sent as
 * server_name. Returns NULL when out of memory or when a name is unusable. Free with sl_tls_conn_free. */
sl_tls_conn_t *sl_tls_conn_new_client(sl_tls_ctx_t *ctx, const char *sni, const char *verify_name);
/* Starts a client handshake: appends the ClientHello to wire. The server's answers go to sl_tls_conn_feed, which
 * completes the handshake. Returns 0 or -EPROTO. */
int sl_tls_conn_start(sl_tls_conn_t *t, sl_buf_t *wire);
/* Whether the handshake has completed (application data may flow). */
bool sl_tls_conn_established(const sl_tls_conn_t *t);
/* Why the session failed, once a call above returned an error, e.g. "certificate verify failed: IP address
 * mismatch" or "tlsv13 alert certificate required"; "" before any failure. Owned by t. */
const char *sl_tls_conn_error(const sl_tls_conn_t *t);

#endif
