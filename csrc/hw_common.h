/**
 * @file hw_common.h
 * @brief Status codes, limits and small macros shared by every csrc/ module.
 *
 * csrc/ is C11 with no Python.h: pointer+length in, an out-pointer, an hw_status back.
 * C never prints, never allocates in per-record loops and never aborts outside HW_ASSERT
 * (live only in debug builds, -DHW_DEBUG).
 */
#ifndef HW_COMMON_H
#define HW_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define HW_LIKELY(x) __builtin_expect(!!(x), 1)
#define HW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HW_NOINLINE __attribute__((noinline))
#define HW_INLINE static inline __attribute__((always_inline))

#ifdef HW_DEBUG
#include <assert.h>
#define HW_ASSERT(x) assert(x)
#else
#define HW_ASSERT(x) ((void)0)
#endif

/** Result of every fallible csrc/ function. Values are stable: Python maps them in one place. */
typedef enum hw_status {
    HW_OK = 0,
    HW_ERR_TRUNCATED = 1, /**< the buffer ends inside the item: a partial tail, not corruption */
    HW_ERR_CORRUPT = 2,   /**< bad magic, length, count or record structure */
    HW_ERR_CRC = 3,       /**< CRC-32C mismatch */
    HW_ERR_OVERFLOW = 4,  /**< a value does not fit (e.g. relative offset > INT32_MAX): roll */
    HW_ERR_FULL = 5,      /**< the destination (buffer, index, segment) has no room */
    HW_ERR_IO = 6,        /**< a system call failed; errno is in the out-parameter */
} hw_status;

/* RecordBatch v2 layout constants (kafka-spec.md a.1). */
#define HW_LOG_OVERHEAD 12          /* baseOffset (8) + batchLength (4) */
#define HW_BATCH_HEADER_SIZE 61
#define HW_BATCH_MIN_LENGTH (HW_BATCH_HEADER_SIZE - HW_LOG_OVERHEAD) /* 49 */
#define HW_MAGIC_V2 2
#define HW_RECORD_MAX_OVERHEAD 21   /* length 5 + attributes 1 + ts delta 10 + offset delta 5 */

#define HW_POS_BASE_OFFSET 0
#define HW_POS_LENGTH 8
#define HW_POS_LEADER_EPOCH 12
#define HW_POS_MAGIC 16
#define HW_POS_CRC 17
#define HW_POS_ATTRIBUTES 21
#define HW_POS_LAST_OFFSET_DELTA 23
#define HW_POS_BASE_TIMESTAMP 27
#define HW_POS_MAX_TIMESTAMP 35
#define HW_POS_PRODUCER_ID 43
#define HW_POS_PRODUCER_EPOCH 51
#define HW_POS_BASE_SEQUENCE 53
#define HW_POS_RECORDS_COUNT 57

#define HW_ATTR_CODEC_MASK 0x07
#define HW_ATTR_LOG_APPEND_TIME 0x08
#define HW_ATTR_TRANSACTIONAL 0x10
#define HW_ATTR_CONTROL 0x20
#define HW_ATTR_DELETE_HORIZON 0x40

#endif /* HW_COMMON_H */
