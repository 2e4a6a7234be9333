/**
 * @file hw_crc32c.h
 * @brief CRC-32C (Castagnoli, reflected poly 0x82F63B78), the RecordBatch v2 checksum.
 *
 * Three implementations, one chosen by hw_crc32c_init() from what the CPU reports at run time
 * (never from compile flags): SSE4.2 `crc32` on x86-64, the ARMv8 CRC extension on arm64, and
 * a portable slicing-by-8 table. The hardware paths run three independent streams over 8 KiB
 * blocks and join them with a precomputed "shift by N zero bytes" table, hiding the 3-cycle
 * latency of the instruction (about 3x over a single stream).
 *
 * @locality hw_crc32c_init() must run once before any other call (module init); afterwards
 *           every function is pure and thread-safe.
 */
#ifndef HW_CRC32C_H
#define HW_CRC32C_H

#include "hw_common.h"

/** @brief Pick the implementation and build the tables. Idempotent. */
void hw_crc32c_init(void);

/** @brief Continue CRC-32C `crc` (0 to start) over buf[0:len). */
uint32_t hw_crc32c(uint32_t crc, const uint8_t *buf, size_t len);

/** @brief Always the table implementation (for tests of the dispatch). */
uint32_t hw_crc32c_portable(uint32_t crc, const uint8_t *buf, size_t len);

/** @brief "sse4.2", "armv8" or "table". */
const char *hw_crc32c_impl_name(void);

#endif /* HW_CRC32C_H */
