/* Bearer tokens (RFC 6750) on the REST API. api.tokens (comma-separated) and api.tokens_file (one per line) name
 * the accepted tokens; with none the API is open, as before. With some, every endpoint but /health and /ready
 * (load balancers probe them) needs `Authorization: Bearer <token>`; live streams also take `?access_token=`,
 * because a browser's EventSource cannot send headers. Static dashboard files are served by h2o's file handler
 * and never get here: they hold no data.
 *
 * Only SHA-256 digests of the tokens are kept. A presented token is hashed and compared with every digest by
 * CRYPTO_memcmp, without stopping at a match: the time taken depends neither on how much of a token matches nor on
 * its length, nor on which token matched. */
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/log.h"

/* Longest token accepted in the settings; a presented token longer than TOKEN_MAX_PRESENTED is refused unhashed. */
enum { TOKEN_MAX = 1024, TOKEN_MAX_PRESENTED = 4096, MAX_TOKENS = 10000 };

static int digest(const char *s, size_t n, uint8_t out[API_TOKEN_DIGEST]) {
  unsigned int len = 0;
  if (EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) != 1 || len != API_TOKEN_DIGEST) return -EIO;
  return 0;
}

/* RFC 6750's b64token: what fits in an Authorization header unquoted. Refusing anything else at start-up catches
 * a token that could never be sent (a space, a quote) or a list separated by something other than commas. */
static bool b64token(const char *s, size_t n) {
  size_t i = 0;
  while (i < n && (isalnum((unsigned char)s[i]) || (s[i] && strchr("-._~+/", s[i])))) i++;
  if (i == 0) return false;
  while (i < n && s[i] == '=') i++;
  return i == n;
}

static int add_token(sl_api_t *api, const char *s, size_t n, const char *where) {
  while (n && isspace((unsigned char)*s)) s++, n--;
  while (n && isspace((unsigned char)s[n - 1])) n--;
  if (!n) return 0; /* "a,,b", trailing commas, blank lines */
  if (n > TOKEN_MAX || !b64token(s, n)) {
    SL_ERROR("api", "%s: a token is not 1 to %d characters of A-Z a-z 0-9 - . _ ~ + / (then = padding)", where,
             TOKEN_MAX);
    return -EINVAL;
  }
  if (api->ntokens == MAX_TOKENS) {
    SL_ERROR("api", "%s: more than %d tokens", where, MAX_TOKENS);
    return -EINVAL;
  }
  uint8_t (*d)[API_TOKEN_DIGEST] = realloc(api->token_digests, (api->ntokens + 1) * sizeof *d);
  if (!d) return -ENOMEM;
  api->token_digests = d;
  int rc = digest(s, n, d[api->ntokens]);
  if (rc != 0) return rc;
  api->ntokens++;
  return 0;
}

static int load_list(sl_api_t *api, const char *list) {
  const char *p = list;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    int rc = add_token(api, p, n, "api.tokens");
    if (rc != 0) return rc;
    if (!comma) return 0;
    p = comma + 1;
  }
}

/* One token per line; blank lines and lines starting with '#' are skipped. */
static int load_file(sl_api_t *api, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    int e = errno;
    SL_ERROR("api", "cannot read api.tokens_file %s: %s", path, strerror(e));
    return -e;
  }
  char where[300];
  snprintf(where, sizeof where, "api.tokens_file %s", path);
  char line[TOKEN_MAX + 64];
  int rc = 0;
  while (rc == 0 && fgets(line, sizeof line, f)) {
    size_t n = strlen(line);
    if (n == sizeof line - 1 && line[n - 1] != '\n' && !feof(f)) {
      SL_ERROR("api", "%s: a line is longer than %d characters", where, TOKEN_MAX);
      rc = -EINVAL;
      break;
    }
    const char *s = line;
    while (isspace((unsigned char)*s)) s++;
    if (*s == '#') continue;
    rc = add_token(api, line, n, where);
  }
  if (rc == 0 && ferror(f)) {
    SL_ERROR("api", "cannot read api.tokens_file %s", path);
    rc = -EIO;
  }
  fclose(f);
  return rc;
}

int api_auth_load(sl_api_t *api) {
  const char *list = api->cfg.tokens ? api->cfg.tokens : "", *file = api->cfg.tokens_file ? api->cfg.tokens_file : "";
  int rc = 0;
  if (list[0] && (rc = load_list(api, list)) != 0) return rc;
  if (file[0] && (rc = load_file(api, file)) != 0) return rc;
  if ((list[0] || file[0]) && api->ntokens == 0) {
    /* authentication was asked for: an empty list must not leave the API open */
    SL_ERROR("api", "api.tokens / api.tokens_file name no token (leave both empty for an API without tokens)");
    return -EINVAL;
  }
  return 0;
}

void api_auth_free(sl_api_t *api) {
  free(api->token_digests);
  api->token_digests = NULL;
  api->ntokens = 0;
}

static bool token_ok(const sl_api_t *api, const char *s, size_t n) {
  uint8_t d[API_TOKEN_DIGEST];
  if (n == 0 || n > TOKEN_MAX_PRESENTED || digest(s, n, d) != 0) return false;
  int match = 0;
  for (size_t i = 0; i < api->ntokens; i++) match |= CRYPTO_memcmp(d, api->token_digests[i], sizeof d) == 0;
  return match;
}

static void reject(sl_api_t *api, h2o_req_t *req, api_route_t route, api_auth_reject_t why, const char *msg) {
  static const char *const challenge[] = {
      [API_AUTH_MISSING] = "Bearer realm=\"sluice\"",
      [API_AUTH_INVALID_TOKEN] = "Bearer realm=\"sluice\", error=\"invalid_token\"",
      [API_AUTH_INVALID_REQUEST] = "Bearer realm=\"sluice\", error=\"invalid_request\"",
  };
  api->auth_rejected[why]++;
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, challenge[why],
                 strlen(challenge[why]));
  if (why == API_AUTH_INVALID_REQUEST) api_reply_error(api, req, route, 400, "invalid_request", "%s", msg);
  else api_reply_error(api, req, route, 401, "unauthorized", "%s", msg);
}

/* RFC 6750 §3: no credentials, or credentials sent in a way this endpoint does not take, get a bare challenge;
 * a token that is not accepted gets error="invalid_token"; two tokens at once (§2: "MUST NOT use more than one
 * method") get error="invalid_request" with 400. */
bool api_auth_check(sl_api_t *api, h2o_req_t *req, api_route_t route, bool query_ok) {
  if (api->ntokens == 0) return true;
  const char *hdr = NULL;
  size_t hlen = 0;
  ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
  if (i != -1) {
    const h2o_iovec_t *v = &req->headers.entries[i].value;
    /* "Bearer" 1*SP token, the scheme in any case; "Bearer" alone is an empty token (parsers trim the trailing
     * space); anything else (Basic, ...) is no bearer credential */
    if (v->len >= 6 && !strncasecmp(v->base, "Bearer", 6) &&
        (v->len == 6 || v->base[6] == ' ' || v->base[6] == '\t')) {
      hdr = v->base + 6;
      hlen = v->len - 6;
      while (hlen && (*hdr == ' ' || *hdr == '\t')) hdr++, hlen--;
      while (hlen && (hdr[hlen - 1] == ' ' || hdr[hlen - 1] == '\t')) hlen--;
    }
  }
  char q[TOKEN_MAX_PRESENTED + 1];
  bool q_long = false;
  bool has_q = api_param(req, "access_token", q, sizeof q, &q_long);
  if (hdr && has_q) {
    reject(api, req, route, API_AUTH_INVALID_REQUEST,
           "send the token once: in the Authorization header or as access_token, not both");
    return false;
  }
  if (hdr) {
    if (token_ok(api, hdr, hlen)) return true;
    reject(api, req, route, API_AUTH_INVALID_TOKEN, "the bearer token is not valid");
    return false;
  }
  if (has_q && query_ok) {
    if (!q_long && token_ok(api, q, strlen(q))) return true;
    reject(api, req, route, API_AUTH_INVALID_TOKEN, "the access_token is not valid");
    return false;
  }
  if (has_q) { /* a token in a URL ends up in logs and browser history: only where there is no other way */
    reject(api, req, route, API_AUTH_MISSING,
           "access_token in the query string is accepted only by live streams (/api/v1/live/...); "
           "send Authorization: Bearer <token>");
    return false;
  }
  reject(api, req, route, API_AUTH_MISSING,
         query_ok ? "this endpoint needs a token: Authorization: Bearer <token>, or ?access_token=<token>"
                  : "this endpoint needs a token: Authorization: Bearer <token>");
  return false;
}
