/* SASL authentication for the Kafka listener: the PLAIN (RFC 4616) and SCRAM-SHA-256 (RFC 5802/7677) server
 * mechanisms, independent of how tokens travel (SaslAuthenticate requests, or raw frames after SaslHandshake v0).
 *
 *   sl_sasl_session_new(mechanism) ──sl_sasl_step(client token)──> SL_SASL_CONTINUE (send *out, wait for more)
 *                                                               ──> SL_SASL_DONE     (send *out, authenticated)
 *                                                               ──> SL_SASL_FAILED   (reason set; close)
 * PLAIN finishes in one step; SCRAM in two (client-first → server-first, client-final → server-final). */
#ifndef SL_KAFKA_SASL_H
#define SL_KAFKA_SASL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct sl_sasl_users sl_sasl_users_t;
typedef struct sl_sasl_session sl_sasl_session_t;

/* Parses "user:password,user:password" and derives the SCRAM credentials (random salt, 4096 iterations). Returns
 * 0, or -EINVAL with *err describing the problem. */
int sl_sasl_users_create(const char *spec, sl_sasl_users_t **out, const char **err);
void sl_sasl_users_free(sl_sasl_users_t *u);

/* The mechanism names this server offers, from a comma-separated setting; returns whether `name` is among them. */
bool sl_sasl_mechanism_enabled(const char *enabled, const char *name, size_t len);

/* NULL for an unknown mechanism. */
sl_sasl_session_t *sl_sasl_session_new(const sl_sasl_users_t *users, const char *mechanism, size_t len);
void sl_sasl_session_free(sl_sasl_session_t *s);

typedef enum { SL_SASL_CONTINUE = 0, SL_SASL_DONE = 1, SL_SASL_FAILED = -1 } sl_sasl_status_t;
/* Consumes one client token and appends the server's answer to `out`. On failure *reason says why (for the log
 * and the error message; it never says whether the user exists). */
sl_sasl_status_t sl_sasl_step(sl_sasl_session_t *s, const uint8_t *in, size_t len, sl_buf_t *out,
                              const char **reason);
/* The authenticated user (valid after SL_SASL_DONE). */
const char *sl_sasl_session_user(const sl_sasl_session_t *s);

#endif
