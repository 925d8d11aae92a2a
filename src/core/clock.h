/* Wall-clock and monotonic time in milliseconds. */
#ifndef SL_CORE_CLOCK_H
#define SL_CORE_CLOCK_H
#include <stdint.h>

int64_t sl_wall_ms(void);      /* milliseconds since the Unix epoch (record timestamps, retention) */
int64_t sl_monotonic_ms(void); /* milliseconds on a clock that never jumps (timeouts) */

#endif
