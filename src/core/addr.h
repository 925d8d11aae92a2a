/* Network addresses as users write them. */
#ifndef SL_CORE_ADDR_H
#define SL_CORE_ADDR_H
#include <stddef.h>

/* Splits "host:port" at the last colon; "[v6]:port" loses its brackets. Returns 0 or -EINVAL. */
int sl_addr_split(const char *s, char *host, size_t hostlen, int *port);

#endif
