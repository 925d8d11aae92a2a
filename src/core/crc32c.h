/* CRC-32C (Castagnoli), as used by Kafka record batches. Hardware instruction when the CPU has SSE4.2. */
#ifndef SL_CORE_CRC32C_H
#define SL_CORE_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: pass 0 to start. */
uint32_t sl_crc32c(uint32_t crc, const void *data, size_t len);

#endif
