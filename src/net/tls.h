/* TLS for the project's listeners (OpenSSL with memory BIOs), so every protocol gets it without knowing: the TCP
 * layer feeds it ciphertext from the socket and writes the ciphertext it produces. */
#ifndef SL_NET_TLS_H
#define SL_NET_TLS_H
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

#endif
