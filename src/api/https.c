/* HTTPS for the REST API: with api.tls_cert_file and api.tls_key_file the listener speaks TLS only (h2o does the
 * handshake on its accept context's SSL_CTX), and ALPN offers HTTP/2 before HTTP/1.1, so browsers get h2.
 * Half a configuration or a file that cannot be read is a start-up error naming the setting and the file: an API
 * meant to be private must not come up in clear text. */
#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/log.h"

static int readable(const char *setting, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    int e = errno;
    SL_ERROR("api", "cannot read %s %s: %s", setting, path, strerror(e));
    return -e;
  }
  fclose(f);
  return 0;
}

static void ssl_error(const char *what, const char *path) {
  char why[256] = "unknown OpenSSL error";
  unsigned long e = ERR_get_error();
  if (e) ERR_error_string_n(e, why, sizeof why);
  ERR_clear_error();
  SL_ERROR("api", "%s %s: %s", what, path, why);
}

int api_https_create(const sl_api_config_t *cfg, SSL_CTX **out) {
  *out = NULL;
  const char *cert = cfg->tls_cert_file ? cfg->tls_cert_file : "", *key = cfg->tls_key_file ? cfg->tls_key_file : "";
  if (!cert[0] && !key[0]) return 0; /* plain HTTP */
  if (!cert[0] || !key[0]) {
    SL_ERROR("api", "TLS needs both api.tls_cert_file and api.tls_key_file (only %s is set)",
             cert[0] ? "api.tls_cert_file" : "api.tls_key_file");
    return -EINVAL;
  }
  int rc;
  if ((rc = readable("api.tls_cert_file", cert)) != 0 || (rc = readable("api.tls_key_file", key)) != 0) return rc;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return -ENOMEM;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); /* HTTP/2 requires 1.2 or later (RFC 7540 §9.2) */
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  rc = -EINVAL;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    ssl_error("cannot load the PEM certificate chain api.tls_cert_file", cert);
    goto fail;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    ssl_error("cannot load the PEM private key api.tls_key_file", key);
    goto fail;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ssl_error("the private key does not match the certificate: api.tls_key_file", key);
    goto fail;
  }
  h2o_ssl_register_alpn_protocols(ctx, h2o_alpn_protocols); /* h2, then http/1.1 */
  *out = ctx;
  return 0;

fail:
  SSL_CTX_free(ctx);
  return rc;
}
