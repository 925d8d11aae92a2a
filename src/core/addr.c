/* Address parsing (see addr.h). */
#include "core/addr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int sl_addr_split(const char *s, char *host, size_t hostlen, int *port) {
  const char *colon = strrchr(s, ':');
  if (!colon) return -EINVAL;
  const char *h = s;
  size_t n = (size_t)(colon - s);
  if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
    h++;
    n -= 2;
  }
  if (n == 0 || n >= hostlen) return -EINVAL;
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (colon[1] == 0 || *end || p < 0 || p > 65535) return -EINVAL;
  memcpy(host, h, n);
  host[n] = 0;
  *port = (int)p;
  return 0;
}
