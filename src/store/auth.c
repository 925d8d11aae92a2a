/* PasswordAuthenticator (see auth.h). */
#include "store/auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SALT_LEN = 16, KEY_LEN = 32, ITERATIONS = 4096, MAX_NAME = 256, MAX_PASSWORD = 1024 };

typedef struct {
  char name[MAX_NAME];
  uint8_t salt[SALT_LEN];
  uint8_t hash[KEY_LEN]; /* PBKDF2-HMAC-SHA256(password, salt) */
} user_t;

struct sl_store_users {
  user_t *v;
  size_t n;
  uint8_t dummy_salt[SALT_LEN]; /* unknown users are derived against this, so they cost the same time */
};

static int derive(const uint8_t salt[SALT_LEN], const char *password, size_t plen, uint8_t out[KEY_LEN]) {
  return PKCS5_PBKDF2_HMAC(password, (int)plen, salt, SALT_LEN, ITERATIONS, EVP_sha256(), KEY_LEN, out) == 1 ? 0
                                                                                                               : -1;
}

int sl_store_users_create(const char *spec, sl_store_users_t **out, const char **err) {
  sl_store_users_t *u = calloc(1, sizeof *u);
  if (!u) return -ENOMEM;
  if (RAND_bytes(u->dummy_salt, SALT_LEN) != 1) {
    *err = "no randomness for password salts";
    sl_store_users_free(u);
    return -EIO;
  }
  const char *p = spec ? spec : "";
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *colon = memchr(p, ':', len);
    if (!colon || colon == p || (size_t)(colon - p) >= MAX_NAME || len - (size_t)(colon - p) - 1 > MAX_PASSWORD) {
      *err = "store.users must be user:password[,user:password...] (names under 256 bytes, passwords up to 1024)";
      sl_store_users_free(u);
      return -EINVAL;
    }
    user_t *nv = realloc(u->v, (u->n + 1) * sizeof *nv);
    if (!nv) {
      sl_store_users_free(u);
      return -ENOMEM;
    }
    u->v = nv;
    user_t *usr = &u->v[u->n++];
    memset(usr, 0, sizeof *usr);
    memcpy(usr->name, p, (size_t)(colon - p));
    if (RAND_bytes(usr->salt, SALT_LEN) != 1 || derive(usr->salt, colon + 1, len - (size_t)(colon - p) - 1,
                                                       usr->hash) != 0) {
      *err = "cannot derive the password hash";
      sl_store_users_free(u);
      return -EIO;
    }
    p += len;
    if (*p == ',') p++;
  }
  *out = u;
  return 0;
}

void sl_store_users_free(sl_store_users_t *u) {
  if (!u) return;
  if (u->v) OPENSSL_cleanse(u->v, u->n * sizeof *u->v);
  free(u->v);
  free(u);
}

size_t sl_store_users_count(const sl_store_users_t *u) { return u ? u->n : 0; }

int sl_store_users_check_plain(const sl_store_users_t *u, const uint8_t *token, size_t len, char *msg,
                               size_t msglen) {
  /* authzid \0 authcid \0 password (Cassandra's PlainTextSaslAuthenticator reads it back to front) */
  const uint8_t *nul2 = NULL, *nul1 = NULL;
  for (size_t i = len; i-- > 0;) {
    if (token[i] != 0) continue;
    if (!nul2) nul2 = token + i;
    else {
      nul1 = token + i;
      break;
    }
  }
  if (!nul2) {
    snprintf(msg, msglen, "Password must not be null");
    return -1;
  }
  const uint8_t *name = nul1 ? nul1 + 1 : token;
  size_t name_len = (size_t)(nul2 - name);
  const char *pw = (const char *)nul2 + 1;
  size_t pw_len = len - (size_t)(nul2 + 1 - token);
  if (name_len == 0) {
    snprintf(msg, msglen, "Authentication ID must not be null");
    return -1;
  }
  const user_t *found = NULL;
  for (size_t i = 0; i < u->n; i++)
    if (strlen(u->v[i].name) == name_len && memcmp(u->v[i].name, name, name_len) == 0) found = &u->v[i];
  uint8_t got[KEY_LEN];
  int ok = pw_len <= MAX_PASSWORD && derive(found ? found->salt : u->dummy_salt, pw, pw_len, got) == 0 && found &&
           CRYPTO_memcmp(got, found->hash, KEY_LEN) == 0;
  OPENSSL_cleanse(got, sizeof got);
  if (ok) return 0;
  /* the name is the client's: print at most a bounded, printable prefix of it */
  char shown[MAX_NAME + 1];
  size_t n = name_len < MAX_NAME ? name_len : MAX_NAME;
  for (size_t i = 0; i < n; i++) shown[i] = name[i] >= 0x20 && name[i] < 0x7F ? (char)name[i] : '?';
  shown[n] = 0;
  snprintf(msg, msglen, "Provided username %s and/or password are incorrect", shown);
  return -1;
}
