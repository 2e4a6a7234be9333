/**
 * @file hw_varint.h
 * @brief Zig-zag varints (int32 "varint", int64 "varlong") as Kafka records use them.
 *
 * Encoding: zigzag(n) = (n << 1) ^ (n >> 63), then LEB128: 7 bits a byte, LSB first, high bit
 * set on every byte but the last. An int64 takes at most 10 bytes; a decoder that has read 10
 * bytes with the continuation bit still set reports HW_ERR_CORRUPT, and one that reaches `end`
 * first reports HW_ERR_TRUNCATED. Vectors: kafka-spec.md a.3.
 */
#ifndef HW_VARINT_H
#define HW_VARINT_H

#include "hw_common.h"

#define HW_VARINT_MAX 10

/** @brief Bytes needed to encode `v` as a zig-zag varlong: 7 bits a byte, from the
 *  highest set bit (no loop: record headers size three varints per record). */
static inline size_t hw_varint_size(int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    unsigned bits = 64u - (unsigned)__builtin_clzll(z | 1);
    return (bits + 6u) / 7u;
}

/** @brief Write zig-zag varlong `v` at `p` (room for HW_VARINT_MAX bytes is the caller's job).
 *  @returns bytes written. One- and two-byte values (most record fields) skip the loop. */
static inline size_t hw_varint_write(uint8_t *p, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    if (HW_LIKELY(z < 0x80)) {
        p[0] = (uint8_t)z;
        return 1;
    }
    if (z < 0x4000) {
        p[0] = (uint8_t)(z | 0x80);
        p[1] = (uint8_t)(z >> 7);
        return 2;
    }
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    return n;
}

/**
 * @brief Decode a zig-zag varlong from [*pos, end).
 * @param pos in: where to start; out (on HW_OK only): first byte after the varint.
 * @returns HW_OK, HW_ERR_TRUNCATED (end reached mid-varint) or HW_ERR_CORRUPT (> 10 bytes).
 */
static inline hw_status hw_varint_read(const uint8_t **pos, const uint8_t *end, int64_t *out) {
    const uint8_t *p = *pos;
    /* Fast path: most record fields (attributes, small deltas, null/short lengths, header
     * count) fit one byte. */
    if (HW_LIKELY(p < end && !(*p & 0x80))) {
        uint8_t b = *p;
        *out = (int64_t)(b >> 1) ^ -(int64_t)(b & 1);
        *pos = p + 1;
        return HW_OK;
    }
    uint64_t z = 0;
    unsigned shift = 0;
    for (int i = 0; i < HW_VARINT_MAX; i++) {
        if (HW_UNLIKELY(p >= end)) return HW_ERR_TRUNCATED;
        uint8_t b = *p++;
        z |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
            *pos = p;
            return HW_OK;
        }
        shift += 7;
    }
    return HW_ERR_CORRUPT;
}

#endif /* HW_VARINT_H */
