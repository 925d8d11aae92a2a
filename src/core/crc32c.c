/* CRC-32C: a slice-by-8 table implementation, and the SSE4.2 crc32 instruction where available (chosen once). */
#include "core/crc32c.h"

#include <stdbool.h>
#include <string.h>

static uint32_t table[8][256];
static int table_ready;

static void build_table(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++) {
    for (int t = 1; t < 8; t++) table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
  }
  table_ready = 1;
}

static uint32_t crc32c_soft(uint32_t crc, const uint8_t *p, size_t len) {
  if (!table_ready) build_table();
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    v ^= crc; /* little-endian hosts only; x86_64 and aarch64 both are */
    crc = table[7][v & 0xff] ^ table[6][(v >> 8) & 0xff] ^ table[5][(v >> 16) & 0xff] ^
          table[4][(v >> 24) & 0xff] ^ table[3][(v >> 32) & 0xff] ^ table[2][(v >> 40) & 0xff] ^
          table[1][(v >> 48) & 0xff] ^ table[0][v >> 56];
    p += 8;
    len -= 8;
  }
  while (len--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t len) {
  uint64_t c = crc;
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    len -= 8;
  }
  uint32_t c32 = (uint32_t)c;
  while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}
#endif

uint32_t sl_crc32c(uint32_t crc, const void *data, size_t len) {
  crc = ~crc;
#if defined(__x86_64__)
  static int has_hw = -1;
  if (has_hw < 0) {
    __builtin_cpu_init();
    has_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
  }
  if (has_hw) return ~crc32c_hw(crc, data, len);
#endif
  return ~crc32c_soft(crc, data, len);
}
