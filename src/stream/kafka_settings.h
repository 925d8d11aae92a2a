/* How Sluice's Kafka clients (the processor's consumers and dead-letter producer, the simulator) reach brokers that
 * require TLS and/or SASL: the settings a role embeds and declares in its config table with
 * SL_KAFKA_SETTINGS_FIELDS, applied to a librdkafka configuration by sl_kafka_conf_new (kafka_uv.h). */
#ifndef SL_STREAM_KAFKA_SETTINGS_H
#define SL_STREAM_KAFKA_SETTINGS_H
#include <stddef.h>

typedef struct {
  char *security_protocol; /* "" = plaintext; ssl, sasl_plaintext or sasl_ssl */
  char *sasl_mechanism;    /* PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 */
  char *sasl_username, *sasl_password;
  char *ssl_ca_file;       /* PEM bundle the brokers' certificates chain to ("" = the system's) */
  char *properties;        /* further librdkafka properties: key=value[,key=value...] */
} sl_kafka_settings_t;

/* Config table entries for a role's `<prefix>.kafka.*` keys (prefix a string literal, member the embedded
 * sl_kafka_settings_t of the role's config struct `type`). */
#define SL_KAFKA_SETTINGS_FIELDS(prefix, type, member)                                                             \
  {prefix ".kafka.security_protocol", SL_CONFIG_STRING, offsetof(type, member.security_protocol), "", 0, 0,        \
   "plaintext (empty), ssl, sasl_plaintext or sasl_ssl"},                                                          \
      {prefix ".kafka.sasl_mechanism", SL_CONFIG_STRING, offsetof(type, member.sasl_mechanism), "", 0, 0,          \
       "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with a sasl_ security protocol)"},                                  \
      {prefix ".kafka.sasl_username", SL_CONFIG_STRING, offsetof(type, member.sasl_username), "", 0, 0,            \
       "SASL user"},                                                                                               \
      {prefix ".kafka.sasl_password", SL_CONFIG_STRING, offsetof(type, member.sasl_password), "", 0, 0,            \
       "SASL password"},                                                                                           \
      {prefix ".kafka.ssl_ca_file", SL_CONFIG_STRING, offsetof(type, member.ssl_ca_file), "", 0, 0,                \
       "PEM CA bundle to verify the brokers' certificates (empty: the system's)"},                                 \
      {prefix ".kafka.properties", SL_CONFIG_STRING, offsetof(type, member.properties), "", 0, 0,                  \
       "further librdkafka properties, key=value[,key=value...]"}

#endif
