/**
 * @file hw_crc32c.c
 * @brief CRC-32C: portable slicing-by-8 plus SSE4.2 / ARMv8 hardware paths (see hw_crc32c.h).
 *
 * Joining parallel streams: if A = crc(X) and B = crc0(Y) (a CRC of Y started from 0 with no
 * pre/post inversion), then crc(X || Y) = shift(A, |Y|) ^ B, where shift multiplies by
 * x^(8|Y|) mod P. shift() for a fixed |Y| is linear over GF(2), so it is four 256-entry tables
 * indexed by the bytes of A. We build them for the two block sizes used (HW_CRC_LONG and
 * HW_CRC_SHORT) once at init.
 */
#include "hw_crc32c.h"

#include <string.h>

#define HW_CRC_POLY 0x82f63b78u
#define HW_CRC_LONG 8192
#define HW_CRC_SHORT 256

static uint32_t crc_table[8][256];
static uint32_t crc_long_shift[4][256];
static uint32_t crc_short_shift[4][256];
static int crc_ready;

typedef uint32_t (*crc_fn)(uint32_t, const uint8_t *, size_t);
static crc_fn crc_impl;
static const char *crc_impl_name = "table";

/* ---------------------------------------------------------------- portable */

static void crc_table_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ HW_CRC_POLY : c >> 1;
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = crc_table[0][n];
        for (int k = 1; k < 8; k++) {
            c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_table[k][n] = c;
        }
    }
}

uint32_t hw_crc32c_portable(uint32_t crc, const uint8_t *buf, size_t len) {
    uint32_t c = ~crc;
    while (len && ((uintptr_t)buf & 7)) {
        c = crc_table[0][(c ^ *buf++) & 0xff] ^ (c >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, buf, 8);
        w ^= c; /* little-endian hosts only; the build targets x86-64 and arm64 */
        c = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
            crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
            crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
            crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
        buf += 8;
        len -= 8;
    }
    while (len--) c = crc_table[0][(c ^ *buf++) & 0xff] ^ (c >> 8);
    return ~c;
}

/* ---------------------------------------------------------------- shift tables */

/* Multiply the 32x32 GF(2) matrix `mat` (column n = image of bit n) by vector `vec`. */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    for (int n = 0; vec; n++, vec >>= 1)
        if (vec & 1) sum ^= mat[n];
    return sum;
}

static void gf2_square(uint32_t *out, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) out[n] = gf2_times(mat, mat[n]);
}

/* Operator that appends `len` zero bytes (len a power of two >= 1) to a raw CRC register. */
static void crc_zeros_operator(uint32_t *op, size_t len) {
    uint32_t a[32], b[32];
    a[0] = HW_CRC_POLY; /* one zero bit */
    for (int n = 1; n < 32; n++) a[n] = 1u << (n - 1);
    gf2_square(b, a);   /* 2 bits */
    gf2_square(a, b);   /* 4 bits */
    gf2_square(b, a);   /* 8 bits = 1 byte */
    uint32_t *cur = b, *tmp = a;
    for (size_t l = len; l > 1; l >>= 1) {
        gf2_square(tmp, cur);
        uint32_t *t = cur;
        cur = tmp;
        tmp = t;
    }
    memcpy(op, cur, sizeof(a));
}

static void crc_shift_table_init(uint32_t table[4][256], size_t len) {
    uint32_t op[32];
    crc_zeros_operator(op, len);
    for (uint32_t n = 0; n < 256; n++) {
        table[0][n] = gf2_times(op, n);
        table[1][n] = gf2_times(op, n << 8);
        table[2][n] = gf2_times(op, n << 16);
        table[3][n] = gf2_times(op, n << 24);
    }
}

static inline uint32_t crc_shift(uint32_t table[4][256], uint32_t crc) {
    return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^ table[2][(crc >> 16) & 0xff] ^
           table[3][crc >> 24];
}

/* ---------------------------------------------------------------- hardware */

#if defined(__x86_64__)
#include <nmmintrin.h>
#define HW_CRC_TARGET __attribute__((target("sse4.2")))
#define HW_CRC_U8(c, b) _mm_crc32_u8((uint32_t)(c), (b))
#define HW_CRC_U64(c, w) _mm_crc32_u64((c), (w))
#define HW_HAVE_HW_CRC 1
#elif defined(__aarch64__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#define HW_CRC_TARGET __attribute__((target("+crc")))
#define HW_CRC_U8(c, b) __crc32cb((uint32_t)(c), (b))
#define HW_CRC_U64(c, w) __crc32cd((uint32_t)(c), (w))
#define HW_HAVE_HW_CRC 1
#endif

#ifdef HW_HAVE_HW_CRC
HW_CRC_TARGET static uint32_t crc_hw(uint32_t crc, const uint8_t *buf, size_t len) {
    uint64_t c0 = (uint32_t)~crc;
    while (len && ((uintptr_t)buf & 7)) {
        c0 = HW_CRC_U8(c0, *buf++);
        len--;
    }
    while (len >= 3 * HW_CRC_LONG) {
        uint64_t c1 = 0, c2 = 0;
        const uint8_t *end = buf + HW_CRC_LONG;
        do {
            uint64_t w0, w1, w2;
            memcpy(&w0, buf, 8);
            memcpy(&w1, buf + HW_CRC_LONG, 8);
            memcpy(&w2, buf + 2 * HW_CRC_LONG, 8);
            c0 = HW_CRC_U64(c0, w0);
            c1 = HW_CRC_U64(c1, w1);
            c2 = HW_CRC_U64(c2, w2);
            buf += 8;
        } while (buf < end);
        c0 = crc_shift(crc_long_shift, (uint32_t)c0) ^ (uint32_t)c1;
        c0 = crc_shift(crc_long_shift, (uint32_t)c0) ^ (uint32_t)c2;
        buf += 2 * HW_CRC_LONG;
        len -= 3 * HW_CRC_LONG;
    }
    while (len >= 3 * HW_CRC_SHORT) {
        uint64_t c1 = 0, c2 = 0;
        const uint8_t *end = buf + HW_CRC_SHORT;
        do {
            uint64_t w0, w1, w2;
            memcpy(&w0, buf, 8);
            memcpy(&w1, buf + HW_CRC_SHORT, 8);
            memcpy(&w2, buf + 2 * HW_CRC_SHORT, 8);
            c0 = HW_CRC_U64(c0, w0);
            c1 = HW_CRC_U64(c1, w1);
            c2 = HW_CRC_U64(c2, w2);
            buf += 8;
        } while (buf < end);
        c0 = crc_shift(crc_short_shift, (uint32_t)c0) ^ (uint32_t)c1;
        c0 = crc_shift(crc_short_shift, (uint32_t)c0) ^ (uint32_t)c2;
        buf += 2 * HW_CRC_SHORT;
        len -= 3 * HW_CRC_SHORT;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, buf, 8);
        c0 = HW_CRC_U64(c0, w);
        buf += 8;
        len -= 8;
    }
    while (len--) c0 = HW_CRC_U8(c0, *buf++);
    return ~(uint32_t)c0;
}

static int cpu_has_crc(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
#else
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#endif
}
#endif

void hw_crc32c_init(void) {
    if (crc_ready) return;
    crc_table_init();
    crc_shift_table_init(crc_long_shift, HW_CRC_LONG);
    crc_shift_table_init(crc_short_shift, HW_CRC_SHORT);
    crc_impl = hw_crc32c_portable;
    crc_impl_name = "table";
#ifdef HW_HAVE_HW_CRC
    if (cpu_has_crc()) {
        crc_impl = crc_hw;
#if defined(__x86_64__)
        crc_impl_name = "sse4.2";
#else
        crc_impl_name = "armv8";
#endif
    }
#endif
    crc_ready = 1;
}

uint32_t hw_crc32c(uint32_t crc, const uint8_t *buf, size_t len) {
    HW_ASSERT(crc_ready);
    return crc_impl(crc, buf, len);
}

const char *hw_crc32c_impl_name(void) { return crc_impl_name; }
