/* PasswordAuthenticator for the store: the users from store.users, kept only as salted PBKDF2-SHA256 hashes, and
 * the check of a SASL PLAIN token ("authzid\0user\0password") as a CQL client sends it in AUTH_RESPONSE. */
#ifndef SL_STORE_AUTH_H
#define SL_STORE_AUTH_H
#include <stddef.h>
#include <stdint.h>

#define SL_STORE_PASSWORD_AUTHENTICATOR "org.apache.cassandra.auth.PasswordAuthenticator"

typedef struct sl_store_users sl_store_users_t;

/* Parses "user:password[,user:password...]". Returns 0, or a negative errno with *err set to a static reason. */
int sl_store_users_create(const char *spec, sl_store_users_t **out, const char **err);
void sl_store_users_free(sl_store_users_t *u);
size_t sl_store_users_count(const sl_store_users_t *u);

/* Checks a SASL PLAIN token. Returns 0 when the credentials are right; otherwise -1 and writes the error message
 * Cassandra would send (code 0x0100) into msg. The password comparison runs in constant time, and an unknown user
 * costs the same key derivation as a known one. */
int sl_store_users_check_plain(const sl_store_users_t *u, const uint8_t *token, size_t len, char *msg, size_t msglen);

#endif
