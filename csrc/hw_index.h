/**
 * @file hw_index.h
 * @brief Kafka's sparse .index (offset -> position) and .timeindex (timestamp -> offset).
 *
 *   .index      entries of 8 bytes:  int32 relative_offset | int32 position
 *   .timeindex  entries of 12 bytes: int64 timestamp       | int32 relative_offset
 *
 * Both big-endian, relative to the segment's base offset, strictly increasing. The file is
 * allocated (posix_fallocate) and mapped to segment.index.bytes, and trimmed to the used size
 * on close; an untrimmed file after a crash is rebuilt by recovery (entries past the end are
 * zeros, so the entry count cannot be trusted).
 *
 * Lookup is a binary search for the largest entry <= target, first in the "warm" section, the
 * last 8 KiB of entries (1024 offset entries: the lookups of consumers near the tail touch only
 * these 2-3 pages, which stay resident), then in the rest.
 */
#ifndef HW_INDEX_H
#define HW_INDEX_H

#include "hw_common.h"

#define HW_OFFSET_ENTRY 8
#define HW_TIME_ENTRY 12
#define HW_INDEX_WARM_BYTES 8192

struct hw_index {
    int fd;
    uint8_t *map;
    size_t map_len;
    size_t entries;
    size_t max_entries;
    size_t entry_size;
    int64_t base_offset;
};
typedef struct hw_index hw_index;

/** @brief Open/create and map. `entries` starts as file length / entry size. */
hw_status hw_index_open(hw_index *ix, const char *path, size_t entry_size, int64_t base_offset,
                        size_t max_bytes, int *err);

/** @brief Offset entry. HW_ERR_FULL: no room (roll); HW_ERR_OVERFLOW: relative offset does
 *  not fit int32; an offset not above the last entry is ignored (HW_OK). */
hw_status hw_offset_index_append(hw_index *ix, int64_t offset, size_t position);
hw_status hw_time_index_append(hw_index *ix, int64_t timestamp, int64_t offset);

/** @brief The same appends through pwrite instead of a store into the mapping (the
 *  per-append path; see write_entry in hw_index.c). HW_ERR_IO with *err on failure. */
hw_status hw_offset_index_write(hw_index *ix, int64_t offset, size_t position, int *err);
hw_status hw_time_index_write(hw_index *ix, int64_t timestamp, int64_t offset, int *err);

/** @brief Largest entry with offset <= target; (base_offset, 0) if none. */
void hw_offset_index_lookup(const hw_index *ix, int64_t target, int64_t *offset,
                            size_t *position);
/** @brief Largest entry with timestamp <= target; (-1, base_offset) if none. */
void hw_time_index_lookup(const hw_index *ix, int64_t target, int64_t *timestamp,
                          int64_t *offset);

void hw_offset_index_entry(const hw_index *ix, size_t n, int64_t *offset, size_t *position);
void hw_time_index_entry(const hw_index *ix, size_t n, int64_t *timestamp, int64_t *offset);

/** @brief Structural check: strictly increasing entries, positions < segment_size.
 *  @returns HW_OK or HW_ERR_CORRUPT. */
hw_status hw_index_check(const hw_index *ix, size_t segment_size);

hw_status hw_index_flush(hw_index *ix, int *err);
hw_status hw_index_close(hw_index *ix, int trim, int *err);

#endif /* HW_INDEX_H */
