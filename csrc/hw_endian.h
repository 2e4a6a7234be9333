/**
 * @file hw_endian.h
 * @brief Big-endian loads and stores (Kafka's byte order) on unaligned pointers.
 */
#ifndef HW_ENDIAN_H
#define HW_ENDIAN_H

#include <stdint.h>
#include <string.h>

static inline uint16_t hw_load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return __builtin_bswap16(v);
}
static inline uint32_t hw_load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return __builtin_bswap32(v);
}
static inline uint64_t hw_load_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}
static inline int16_t hw_load_i16(const uint8_t *p) { return (int16_t)hw_load_u16(p); }
static inline int32_t hw_load_i32(const uint8_t *p) { return (int32_t)hw_load_u32(p); }
static inline int64_t hw_load_i64(const uint8_t *p) { return (int64_t)hw_load_u64(p); }

static inline void hw_store_u16(uint8_t *p, uint16_t v) {
    v = __builtin_bswap16(v);
    memcpy(p, &v, 2);
}
static inline void hw_store_u32(uint8_t *p, uint32_t v) {
    v = __builtin_bswap32(v);
    memcpy(p, &v, 4);
}
static inline void hw_store_u64(uint8_t *p, uint64_t v) {
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}
static inline void hw_store_i16(uint8_t *p, int16_t v) { hw_store_u16(p, (uint16_t)v); }
static inline void hw_store_i32(uint8_t *p, int32_t v) { hw_store_u32(p, (uint32_t)v); }
static inline void hw_store_i64(uint8_t *p, int64_t v) { hw_store_u64(p, (uint64_t)v); }

#endif /* HW_ENDIAN_H */
