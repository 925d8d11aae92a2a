/* Type coercion rules (see coerce.h). */
#include "stream/coerce.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cql/types.h" /* the CQL text forms of dates and uuids, shared with the store and client */

static void trim(const char **s, size_t *len) {
  while (*len && isspace((unsigned char)**s)) (*s)++, (*len)--;
  while (*len && isspace((unsigned char)(*s)[*len - 1])) (*len)--;
}

int sl_coerce_parse_int(const char *s, size_t len, int64_t *out) {
  trim(&s, &len);
  if (len == 0 || len > 40) return -EINVAL;
  /* the common cases without strtoll/strtod: a plain integer of up to 18 digits, or a character neither takes */
  size_t i = s[0] == '+' || s[0] == '-';
  uint64_t fast = 0; /* unsigned: wraps harmlessly past 18 digits, where it is not used */
  for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) fast = fast * 10 + (uint64_t)(s[i] - '0');
  size_t ndig = i - (size_t)(s[0] == '+' || s[0] == '-');
  if (i == len && ndig >= 1 && ndig <= 18) {
    *out = s[0] == '-' ? -(int64_t)fast : (int64_t)fast;
    return 0;
  }
  for (size_t k = i; k < len; k++)
    if (!strchr("0123456789+-.eE", s[k])) return -EINVAL; /* NUL passes: the slow path below decides */
  char tmp[48];
  memcpy(tmp, s, len);
  tmp[len] = 0;
  char *end;
  errno = 0;
  long long v = strtoll(tmp, &end, 10);
  if (errno == 0 && *end == 0) {
    *out = v;
    return 0;
  }
  /* "3.0" and "1e3" are whole numbers too */
  double d;
  if (sl_coerce_parse_real(tmp, len, &d) != 0 || d != floor(d) || fabs(d) > 9.2e18) return -EINVAL;
  *out = (int64_t)d;
  return 0;
}

int sl_coerce_parse_real(const char *s, size_t len, double *out) {
  trim(&s, &len);
  if (len == 0 || len > 64) return -EINVAL;
  char tmp[72];
  memcpy(tmp, s, len);
  tmp[len] = 0;
  char *end;
  errno = 0;
  double v = strtod(tmp, &end);
  if (errno == ERANGE || *end != 0 || isnan(v) || isinf(v)) return -EINVAL;
  /* strtod also takes hex floats and "inf"; plain decimal only */
  for (size_t i = 0; i < len; i++) {
    if (!strchr("0123456789+-.eE", tmp[i])) return -EINVAL;
  }
  *out = v;
  return 0;
}

int sl_coerce_parse_bool(const char *s, size_t len, bool *out) {
  trim(&s, &len);
  static const char *const yes[] = {"true", "yes", "on", "1", "t", "y"};
  static const char *const no[] = {"false", "no", "off", "0", "f", "n"};
  for (int i = 0; i < 6; i++) {
    if (len == strlen(yes[i]) && strncasecmp(s, yes[i], len) == 0) return *out = true, 0;
    if (len == strlen(no[i]) && strncasecmp(s, no[i], len) == 0) return *out = false, 0;
  }
  return -EINVAL;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int sl_coerce_parse_uuid(const char *s, size_t len, uint8_t out[16]) {
  trim(&s, &len);
  if (len != 36 && len != 32) return -EINVAL;
  int n = 0;
  for (size_t i = 0; i < len; i++) {
    if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (s[i] != '-') return -EINVAL;
      continue;
    }
    int h = hexval(s[i]), l = i + 1 < len ? hexval(s[i + 1]) : -1;
    if (h < 0 || l < 0) return -EINVAL;
    out[n++] = (uint8_t)(h << 4 | l);
    i++;
  }
  return n == 16 ? 0 : -EINVAL;
}

void sl_coerce_format_uuid(const uint8_t u[16], char out[37]) { sl_cql_format_uuid(u, out); }

static int digits(const char *s, size_t len, size_t *pos, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (*pos >= len || !isdigit((unsigned char)s[*pos])) return -EINVAL;
    v = v * 10 + (s[(*pos)++] - '0');
  }
  *out = v;
  return 0;
}

int sl_coerce_iso8601(const char *s, size_t len, int64_t *ms) {
  trim(&s, &len);
  size_t p = 0;
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (digits(s, len, &p, 4, &y) || p >= len || s[p++] != '-' || digits(s, len, &p, 2, &mo) || p >= len ||
      s[p++] != '-' || digits(s, len, &p, 2, &d))
    return -EINVAL;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return -EINVAL;
  int64_t frac_ms = 0, offset_min = 0;
  if (p < len && (s[p] == 'T' || s[p] == 't' || s[p] == ' ')) {
    p++;
    if (digits(s, len, &p, 2, &h) || p >= len || s[p++] != ':' || digits(s, len, &p, 2, &mi)) return -EINVAL;
    if (p < len && s[p] == ':') {
      p++;
      if (digits(s, len, &p, 2, &sec)) return -EINVAL;
      if (p < len && (s[p] == '.' || s[p] == ',')) {
        p++;
        int nd = 0;
        int64_t scale = 100;
        if (p >= len || !isdigit((unsigned char)s[p])) return -EINVAL;
        while (p < len && isdigit((unsigned char)s[p])) {
          if (nd++ < 3) frac_ms += (s[p] - '0') * scale, scale /= 10;
          p++;
          if (nd > 9) return -EINVAL;
        }
      }
    }
    if (h > 23 || mi > 59 || sec > 60) return -EINVAL;
    if (p < len && (s[p] == 'Z' || s[p] == 'z')) {
      p++;
    } else if (p < len && (s[p] == '+' || s[p] == '-')) {
      int sign = s[p++] == '-' ? -1 : 1, oh, om = 0;
      if (digits(s, len, &p, 2, &oh)) return -EINVAL;
      if (p < len && s[p] == ':') p++;
      if (p < len && digits(s, len, &p, 2, &om)) return -EINVAL;
      if (oh > 23 || om > 59) return -EINVAL;
      offset_min = sign * (oh * 60 + om);
    }
  }
  if (p != len) return -EINVAL;
  int64_t days = sl_cql_days_from_civil(y, (unsigned)mo, (unsigned)d);
  *ms = ((days * 24 + h) * 60 + mi - offset_min) * 60000 + (int64_t)sec * 1000 + frac_ms;
  return 0;
}

int64_t sl_coerce_epoch_int(int64_t v) {
  int64_t a = v < 0 ? -v : v;
  if (a < 100000000000LL) return v * 1000;       /* seconds */
  if (a < 100000000000000LL) return v;           /* milliseconds */
  if (a < 100000000000000000LL) return v / 1000; /* microseconds */
  return v / 1000000;                            /* nanoseconds */
}

int sl_coerce_epoch_real(double v, int64_t *ms) {
  if (isnan(v) || isinf(v) || fabs(v) > 9e18) return -EINVAL;
  if (fabs(v) < 1e11) {
    *ms = (int64_t)llround(v * 1000.0);
    return 0;
  }
  *ms = sl_coerce_epoch_int((int64_t)v);
  return 0;
}

int32_t sl_coerce_day(int64_t ms) {
  int64_t d = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
  return (int32_t)d;
}

void sl_coerce_record_uuid(const char *topic, int32_t partition, int64_t offset, uint8_t out[16]) {
  /* Sluice's namespace: a fixed random UUID (7a3c2f4e-9b1d-5e8a-b6c4-2d9f0e1a3b5c) */
  static const uint8_t ns[16] = {0x7a, 0x3c, 0x2f, 0x4e, 0x9b, 0x1d, 0x5e, 0x8a,
                                 0xb6, 0xc4, 0x2d, 0x9f, 0x0e, 0x1a, 0x3b, 0x5c};
  char name[512];
  int n = snprintf(name, sizeof name, "%s/%d/%lld", topic, partition, (long long)offset);
  if (n < 0 || (size_t)n >= sizeof name) n = (int)sizeof name - 1;
  uint8_t input[16 + sizeof name], digest[EVP_MAX_MD_SIZE];
  memcpy(input, ns, sizeof ns);
  memcpy(input + 16, name, (size_t)n);
  unsigned dlen = 0;
  EVP_Digest(input, 16 + (size_t)n, digest, &dlen, EVP_sha1(), NULL);
  memcpy(out, digest, 16);
  out[6] = (uint8_t)((out[6] & 0x0f) | 0x50); /* version 5 */
  out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}
