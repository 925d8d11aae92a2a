/* SASL PLAIN and SCRAM-SHA-256 server mechanisms (see sasl.h). Credentials are kept only as SCRAM keys and a
 * PBKDF2 hash, never as the configured passwords. */
#include "kafka/sasl.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SALT_LEN = 16, KEY_LEN = 32, SCRAM_ITERATIONS = 4096, NONCE_LEN = 24, MAX_NAME = 256 };

typedef struct {
  char name[MAX_NAME];
  uint8_t salt[SALT_LEN];
  uint8_t salted[KEY_LEN]; /* PBKDF2(password): PLAIN checks a password by deriving the same value */
  uint8_t stored_key[KEY_LEN];
  uint8_t server_key[KEY_LEN];
} user_t;

struct sl_sasl_users {
  user_t *v;
  size_t n;
};

typedef enum { MECH_PLAIN, MECH_SCRAM_SHA256 } mech_t;

struct sl_sasl_session {
  const sl_sasl_users_t *users;
  mech_t mech;
  int step;
  const user_t *user;
  char nonce[128];          /* client nonce + server nonce */
  char auth_message[2048];  /* client-first-bare + "," + server-first (the client-final part is added later) */
};

static void hmac_sha256(const uint8_t *key, size_t klen, const void *msg, size_t mlen, uint8_t out[KEY_LEN]) {
  unsigned int len = KEY_LEN;
  HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &len);
}

static void derive(user_t *u, const char *password, size_t plen) {
  PKCS5_PBKDF2_HMAC(password, (int)plen, u->salt, SALT_LEN, SCRAM_ITERATIONS, EVP_sha256(), KEY_LEN, u->salted);
  uint8_t client_key[KEY_LEN];
  hmac_sha256(u->salted, KEY_LEN, "Client Key", 10, client_key);
  SHA256(client_key, KEY_LEN, u->stored_key);
  hmac_sha256(u->salted, KEY_LEN, "Server Key", 10, u->server_key);
}

int sl_sasl_users_create(const char *spec, sl_sasl_users_t **out, const char **err) {
  sl_sasl_users_t *u = calloc(1, sizeof *u);
  if (!u) return -ENOMEM;
  const char *p = spec ? spec : "";
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *colon = memchr(p, ':', len);
    if (!colon || colon == p || (size_t)(colon - p) >= MAX_NAME) {
      *err = "sasl_users must be user:password[,user:password...]";
      sl_sasl_users_free(u);
      return -EINVAL;
    }
    user_t *nv = realloc(u->v, (u->n + 1) * sizeof *nv);
    if (!nv) {
      sl_sasl_users_free(u);
      return -ENOMEM;
    }
    u->v = nv;
    user_t *usr = &u->v[u->n++];
    memset(usr, 0, sizeof *usr);
    memcpy(usr->name, p, (size_t)(colon - p));
    if (RAND_bytes(usr->salt, SALT_LEN) != 1) {
      *err = "no randomness for SCRAM salts";
      sl_sasl_users_free(u);
      return -EIO;
    }
    derive(usr, colon + 1, len - (size_t)(colon - p) - 1);
    p += len;
    if (*p == ',') p++;
  }
  *out = u;
  return 0;
}

void sl_sasl_users_free(sl_sasl_users_t *u) {
  if (!u) return;
  OPENSSL_cleanse(u->v, u->n * sizeof *u->v);
  free(u->v);
  free(u);
}

static const user_t *find_user(const sl_sasl_users_t *u, const char *name, size_t len) {
  for (size_t i = 0; i < u->n; i++) {
    if (strlen(u->v[i].name) == len && memcmp(u->v[i].name, name, len) == 0) return &u->v[i];
  }
  return NULL;
}

bool sl_sasl_mechanism_enabled(const char *enabled, const char *name, size_t len) {
  const char *p = enabled ? enabled : "";
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    size_t n = strcspn(p, ", ");
    if (n && n == len && strncasecmp(p, name, len) == 0) return true;
    p += n;
  }
  return false;
}

sl_sasl_session_t *sl_sasl_session_new(const sl_sasl_users_t *users, const char *mechanism, size_t len) {
  mech_t m;
  if (len == 5 && strncmp(mechanism, "PLAIN", 5) == 0) m = MECH_PLAIN;
  else if (len == 13 && strncmp(mechanism, "SCRAM-SHA-256", 13) == 0) m = MECH_SCRAM_SHA256;
  else return NULL;
  sl_sasl_session_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->users = users;
  s->mech = m;
  return s;
}

void sl_sasl_session_free(sl_sasl_session_t *s) {
  if (s) OPENSSL_cleanse(s, sizeof *s);
  free(s);
}

const char *sl_sasl_session_user(const sl_sasl_session_t *s) { return s->user ? s->user->name : NULL; }

/* PLAIN: [authzid] NUL authcid NUL passwd; the authzid may be empty or equal to the authcid. */
static sl_sasl_status_t plain_step(sl_sasl_session_t *s, const uint8_t *in, size_t len, const char **reason) {
  const uint8_t *nul1 = memchr(in, 0, len);
  const uint8_t *nul2 = nul1 ? memchr(nul1 + 1, 0, len - (size_t)(nul1 + 1 - in)) : NULL;
  if (!nul2) {
    *reason = "malformed PLAIN token";
    return SL_SASL_FAILED;
  }
  size_t authz_len = (size_t)(nul1 - in);
  const char *authc = (const char *)nul1 + 1;
  size_t authc_len = (size_t)(nul2 - nul1 - 1);
  const char *password = (const char *)nul2 + 1;
  size_t plen = len - (size_t)(nul2 + 1 - in);
  if (authz_len && (authz_len != authc_len || memcmp(in, authc, authc_len) != 0)) {
    *reason = "authorization id differs from the user";
    return SL_SASL_FAILED;
  }
  const user_t *u = find_user(s->users, authc, authc_len);
  user_t probe;
  memcpy(probe.salt, u ? u->salt : (const uint8_t *)"sluice-no-such-u", SALT_LEN);
  derive(&probe, password, plen); /* same cost whether or not the user exists */
  if (!u || CRYPTO_memcmp(probe.salted, u->salted, KEY_LEN) != 0) {
    *reason = "Authentication failed: invalid credentials";
    return SL_SASL_FAILED;
  }
  s->user = u;
  return SL_SASL_DONE;
}

/* Finds "key=" as an attribute of a SCRAM message (attributes are comma-separated, key a single letter). */
static bool scram_attr(const char *msg, size_t len, char key, const char **val, size_t *vlen) {
  size_t i = 0;
  while (i + 1 < len) {
    size_t end = i;
    while (end < len && msg[end] != ',') end++;
    if (msg[i] == key && msg[i + 1] == '=') {
      *val = msg + i + 2;
      *vlen = end - i - 2;
      return true;
    }
    i = end + 1;
  }
  return false;
}

static size_t b64_encode(const uint8_t *in, size_t len, char *out) {
  return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static int b64_decode(const char *in, size_t len, uint8_t *out, size_t cap) {
  if (len % 4 || len / 4 * 3 > cap) return -1;
  int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
  if (n < 0) return -1;
  while (len && in[len - 1] == '=') { /* EVP_DecodeBlock counts padding as zero bytes */
    len--;
    n--;
  }
  return n;
}

static sl_sasl_status_t scram_first(sl_sasl_session_t *s, const char *in, size_t len, sl_buf_t *out,
                                    const char **reason) {
  /* gs2 header: "n,," or "y,," with an optional "a=authzid" between the commas; we accept no channel binding */
  if (len < 3 || (in[0] != 'n' && in[0] != 'y') || in[1] != ',') {
    *reason = "malformed SCRAM client-first message (channel binding is not supported)";
    return SL_SASL_FAILED;
  }
  const char *second = memchr(in + 2, ',', len - 2);
  if (!second) {
    *reason = "malformed SCRAM gs2 header";
    return SL_SASL_FAILED;
  }
  const char *bare = second + 1;
  size_t bare_len = len - (size_t)(bare - in);
  const char *name, *cnonce;
  size_t name_len, cnonce_len;
  if (!scram_attr(bare, bare_len, 'n', &name, &name_len) || !scram_attr(bare, bare_len, 'r', &cnonce, &cnonce_len) ||
      cnonce_len == 0 || cnonce_len > 64 || bare_len > 512) {
    *reason = "SCRAM client-first message lacks n= or r=";
    return SL_SASL_FAILED;
  }
  /* usernames escape ',' as =2C and '=' as =3D */
  char user[MAX_NAME];
  size_t un = 0;
  for (size_t i = 0; i < name_len; i++) {
    if (un == sizeof user - 1) {
      *reason = "SCRAM user name too long";
      return SL_SASL_FAILED;
    }
    if (name[i] != '=') {
      user[un++] = name[i];
      continue;
    }
    if (name_len - i >= 3 && name[i + 1] == '2' && name[i + 2] == 'C') user[un++] = ',';
    else if (name_len - i >= 3 && name[i + 1] == '3' && name[i + 2] == 'D') user[un++] = '=';
    else {
      *reason = "bad escape in SCRAM user name";
      return SL_SASL_FAILED;
    }
    i += 2;
  }
  s->user = find_user(s->users, user, un);
  if (!s->user) {
    *reason = "Authentication failed: invalid credentials";
    return SL_SASL_FAILED;
  }
  uint8_t rnd[NONCE_LEN];
  if (RAND_bytes(rnd, sizeof rnd) != 1) {
    *reason = "no randomness for the SCRAM nonce";
    return SL_SASL_FAILED;
  }
  char snonce[64];
  size_t sn = b64_encode(rnd, sizeof rnd, snonce);
  snprintf(s->nonce, sizeof s->nonce, "%.*s%.*s", (int)cnonce_len, cnonce, (int)sn, snonce);
  char salt64[32];
  b64_encode(s->user->salt, SALT_LEN, salt64);
  char server_first[256];
  int n = snprintf(server_first, sizeof server_first, "r=%s,s=%s,i=%d", s->nonce, salt64, SCRAM_ITERATIONS);
  snprintf(s->auth_message, sizeof s->auth_message, "%.*s,%s", (int)bare_len, bare, server_first);
  sl_buf_put(out, server_first, (size_t)n);
  s->step = 1;
  return SL_SASL_CONTINUE;
}

static sl_sasl_status_t scram_final(sl_sasl_session_t *s, const char *in, size_t len, sl_buf_t *out,
                                    const char **reason) {
  const char *proof_attr = NULL;
  for (size_t i = 0; i + 3 <= len; i++) {
    if (in[i] == ',' && in[i + 1] == 'p' && in[i + 2] == '=') proof_attr = in + i;
  }
  const char *nonce, *cb;
  size_t nonce_len, cb_len;
  if (!proof_attr || !scram_attr(in, len, 'r', &nonce, &nonce_len) || !scram_attr(in, len, 'c', &cb, &cb_len)) {
    *reason = "malformed SCRAM client-final message";
    return SL_SASL_FAILED;
  }
  /* The nonce must end with the one we sent (Kafka checks the same way): librdkafka 2.0.2 sends its client nonce
   * again in front of the combined nonce. */
  size_t ours = strlen(s->nonce);
  if (nonce_len < ours || memcmp(nonce + nonce_len - ours, s->nonce, ours) != 0) {
    *reason = "SCRAM nonce mismatch";
    return SL_SASL_FAILED;
  }
  size_t without_proof = (size_t)(proof_attr - in);
  const char *proof64 = proof_attr + 3;
  size_t proof64_len = len - without_proof - 3;
  uint8_t proof[64];
  int plen = b64_decode(proof64, proof64_len, proof, sizeof proof);
  size_t am_len = strlen(s->auth_message);
  if (plen != KEY_LEN || am_len + 1 + without_proof >= sizeof s->auth_message) {
    *reason = "malformed SCRAM proof";
    return SL_SASL_FAILED;
  }
  char *am = s->auth_message;
  am[am_len] = ',';
  memcpy(am + am_len + 1, in, without_proof);
  am_len += 1 + without_proof;
  uint8_t signature[KEY_LEN], client_key[KEY_LEN], stored[KEY_LEN];
  hmac_sha256(s->user->stored_key, KEY_LEN, am, am_len, signature);
  for (int i = 0; i < KEY_LEN; i++) client_key[i] = proof[i] ^ signature[i];
  SHA256(client_key, KEY_LEN, stored);
  if (CRYPTO_memcmp(stored, s->user->stored_key, KEY_LEN) != 0) {
    *reason = "Authentication failed: invalid credentials";
    return SL_SASL_FAILED;
  }
  uint8_t server_sig[KEY_LEN];
  hmac_sha256(s->user->server_key, KEY_LEN, am, am_len, server_sig);
  char sig64[64];
  size_t n = b64_encode(server_sig, KEY_LEN, sig64);
  sl_buf_put(out, "v=", 2);
  sl_buf_put(out, sig64, n);
  s->step = 2;
  return SL_SASL_DONE;
}

sl_sasl_status_t sl_sasl_step(sl_sasl_session_t *s, const uint8_t *in, size_t len, sl_buf_t *out,
                              const char **reason) {
  if (s->mech == MECH_PLAIN) {
    if (s->step != 0) {
      *reason = "PLAIN takes one token";
      return SL_SASL_FAILED;
    }
    s->step = 1;
    return plain_step(s, in, len, reason);
  }
  if (len > 4096) {
    *reason = "SCRAM message too long";
    return SL_SASL_FAILED;
  }
  if (s->step == 0) return scram_first(s, (const char *)in, len, out, reason);
  if (s->step == 1) return scram_final(s, (const char *)in, len, out, reason);
  *reason = "SCRAM exchange already complete";
  return SL_SASL_FAILED;
}
