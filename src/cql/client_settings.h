/* TLS towards CQL nodes as a role's settings: the struct a role embeds, its config table entries
 * (`<prefix>.cql_tls.*`), and how it fills the client's configuration (client.h). */
#ifndef SL_CQL_CLIENT_SETTINGS_H
#define SL_CQL_CLIENT_SETTINGS_H
#include <stdbool.h>
#include <stddef.h>

#include "cql/client.h"

typedef struct {
  bool enabled;
  char *ca_file, *cert_file, *key_file, *server_name;
  bool check_hostname;
} sl_cql_tls_settings_t;

#define SL_CQL_TLS_SETTINGS_FIELDS(prefix, type, member)                                                           \
  {prefix ".cql_tls.enabled", SL_CONFIG_BOOL, offsetof(type, member.enabled), "false", 0, 0,                      \
   "connect to the CQL nodes over TLS"},                                                                           \
      {prefix ".cql_tls.ca_file", SL_CONFIG_STRING, offsetof(type, member.ca_file), "", 0, 0,                      \
       "PEM CA bundle the nodes' certificates chain to (empty: the system's)"},                                    \
      {prefix ".cql_tls.check_hostname", SL_CONFIG_BOOL, offsetof(type, member.check_hostname), "true", 0, 0,      \
       "a node's certificate must name it (its host name or IP address)"},                                         \
      {prefix ".cql_tls.cert_file", SL_CONFIG_STRING, offsetof(type, member.cert_file), "", 0, 0,                  \
       "client certificate (PEM) for mutual TLS"},                                                                 \
      {prefix ".cql_tls.key_file", SL_CONFIG_STRING, offsetof(type, member.key_file), "", 0, 0,                    \
       "private key of cql_tls.cert_file"},                                                                        \
      {prefix ".cql_tls.server_name", SL_CONFIG_STRING, offsetof(type, member.server_name), "", 0, 0,              \
       "name sent (SNI) and checked on every node instead of its own"}

static inline void sl_cql_tls_settings_apply(const sl_cql_tls_settings_t *s, sl_cql_client_config_t *cc) {
  cc->tls = s->enabled;
  cc->tls_ca_file = s->ca_file;
  cc->tls_check_hostname = s->check_hostname;
  cc->tls_cert_file = s->cert_file;
  cc->tls_key_file = s->key_file;
  cc->tls_server_name = s->server_name;
}

#endif
