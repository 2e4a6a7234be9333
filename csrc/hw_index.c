/**
 * @file hw_index.c
 * @brief Offset and time indexes (layouts and search strategy in hw_index.h).
 */
#include "hw_index.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hw_endian.h"

hw_status hw_index_open(hw_index *ix, const char *path, size_t entry_size, int64_t base_offset,
                        size_t max_bytes, int *err) {
    memset(ix, 0, sizeof(*ix));
    ix->fd = -1;
    ix->entry_size = entry_size;
    ix->base_offset = base_offset;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        *err = errno;
        return HW_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *err = errno;
        close(fd);
        return HW_ERR_IO;
    }
    size_t file_len = (size_t)st.st_size;
    size_t max_entries = max_bytes / entry_size;
    if (max_entries < file_len / entry_size) max_entries = file_len / entry_size;
    size_t alloc = max_entries * entry_size;
    if (alloc == 0) { /* an empty sealed index: nothing to map */
        ix->fd = fd;
        return HW_OK;
    }
    if (alloc > file_len) {
        int rc = posix_fallocate(fd, 0, (off_t)alloc);
        if (rc != 0) {
            *err = rc;
            close(fd);
            return HW_ERR_IO;
        }
    }
    void *m = mmap(NULL, alloc, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        *err = errno;
        close(fd);
        return HW_ERR_IO;
    }
    ix->fd = fd;
    ix->map = m;
    ix->map_len = alloc;
    ix->max_entries = max_entries;
    ix->entries = file_len / entry_size;
    return HW_OK;
}

void hw_offset_index_entry(const hw_index *ix, size_t n, int64_t *offset, size_t *position) {
    const uint8_t *e = ix->map + n * HW_OFFSET_ENTRY;
    *offset = ix->base_offset + hw_load_i32(e);
    *position = hw_load_u32(e + 4);
}

void hw_time_index_entry(const hw_index *ix, size_t n, int64_t *timestamp, int64_t *offset) {
    const uint8_t *e = ix->map + n * HW_TIME_ENTRY;
    *timestamp = hw_load_i64(e);
    *offset = ix->base_offset + hw_load_i32(e + 8);
}

/* 1: append `entry`, 0: nothing to do (not above the last entry), or an error status. */
static int offset_entry(const hw_index *ix, int64_t offset, size_t position, uint8_t *entry,
                        hw_status *st) {
    int64_t rel = offset - ix->base_offset;
    *st = HW_OK;
    if (rel < 0 || rel > INT32_MAX || position > UINT32_MAX) {
        *st = HW_ERR_OVERFLOW;
        return 0;
    }
    if (ix->entries > 0) {
        int64_t last;
        size_t lpos;
        hw_offset_index_entry(ix, ix->entries - 1, &last, &lpos);
        if (offset <= last) return 0;
    }
    if (ix->entries >= ix->max_entries) {
        *st = HW_ERR_FULL;
        return 0;
    }
    hw_store_i32(entry, (int32_t)rel);
    hw_store_u32(entry + 4, (uint32_t)position);
    return 1;
}

static int time_entry(const hw_index *ix, int64_t timestamp, int64_t offset, uint8_t *entry,
                      hw_status *st) {
    int64_t rel = offset - ix->base_offset;
    *st = HW_OK;
    if (rel < 0 || rel > INT32_MAX) {
        *st = HW_ERR_OVERFLOW;
        return 0;
    }
    if (ix->entries > 0) {
        int64_t last_ts, last_off;
        hw_time_index_entry(ix, ix->entries - 1, &last_ts, &last_off);
        if (timestamp <= last_ts) return 0; /* only strictly greater timestamps */
    }
    if (ix->entries >= ix->max_entries) {
        *st = HW_ERR_FULL;
        return 0;
    }
    hw_store_i64(entry, timestamp);
    hw_store_i32(entry + 8, (int32_t)rel);
    return 1;
}

/* Store into the mapping: the bulk path (recovery rebuilds thousands of entries). */
static void store_entry(hw_index *ix, const uint8_t *entry) {
    memcpy(ix->map + ix->entries * ix->entry_size, entry, ix->entry_size);
    ix->entries++;
}

/* pwrite: the one-entry-per-append path. A first store into a page of the fallocate'd index
 * takes a fault that converts the extent (about 0.1 ms per append measured here); a pwrite of
 * the same bytes goes through the page cache, which the mapping shares. */
static hw_status write_entry(hw_index *ix, const uint8_t *entry, int *err) {
    off_t at = (off_t)(ix->entries * ix->entry_size);
    size_t done = 0;
    while (done < ix->entry_size) {
        ssize_t n = pwrite(ix->fd, entry + done, ix->entry_size - done, at + (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            *err = n < 0 ? errno : ENOSPC;
            return HW_ERR_IO;
        }
        done += (size_t)n;
    }
    ix->entries++;
    return HW_OK;
}

hw_status hw_offset_index_append(hw_index *ix, int64_t offset, size_t position) {
    uint8_t entry[HW_OFFSET_ENTRY];
    hw_status st;
    if (offset_entry(ix, offset, position, entry, &st)) store_entry(ix, entry);
    return st;
}

hw_status hw_time_index_append(hw_index *ix, int64_t timestamp, int64_t offset) {
    uint8_t entry[HW_TIME_ENTRY];
    hw_status st;
    if (time_entry(ix, timestamp, offset, entry, &st)) store_entry(ix, entry);
    return st;
}

hw_status hw_offset_index_write(hw_index *ix, int64_t offset, size_t position, int *err) {
    uint8_t entry[HW_OFFSET_ENTRY];
    hw_status st;
    if (offset_entry(ix, offset, position, entry, &st)) return write_entry(ix, entry, err);
    return st;
}

hw_status hw_time_index_write(hw_index *ix, int64_t timestamp, int64_t offset, int *err) {
    uint8_t entry[HW_TIME_ENTRY];
    hw_status st;
    if (time_entry(ix, timestamp, offset, entry, &st)) return write_entry(ix, entry, err);
    return st;
}

/* Key of entry n: relative offset for the offset index, timestamp for the time index. */
static inline int64_t entry_key(const hw_index *ix, size_t n) {
    const uint8_t *e = ix->map + n * ix->entry_size;
    return ix->entry_size == HW_OFFSET_ENTRY ? (int64_t)hw_load_i32(e) : hw_load_i64(e);
}

/* Largest n in [lo, hi) with key(n) <= target, or -1. */
static int64_t search(const hw_index *ix, int64_t target, size_t lo, size_t hi) {
    int64_t found = -1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry_key(ix, mid) <= target) {
            found = (int64_t)mid;
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return found;
}

static int64_t warm_search(const hw_index *ix, int64_t target) {
    size_t n = ix->entries;
    if (n == 0) return -1;
    size_t warm = HW_INDEX_WARM_BYTES / ix->entry_size;
    size_t first_warm = n > warm ? n - warm : 0;
    if (entry_key(ix, first_warm) <= target) return search(ix, target, first_warm, n);
    return search(ix, target, 0, first_warm);
}

void hw_offset_index_lookup(const hw_index *ix, int64_t target, int64_t *offset,
                            size_t *position) {
    int64_t n = warm_search(ix, target - ix->base_offset);
    if (n < 0) {
        *offset = ix->base_offset;
        *position = 0;
        return;
    }
    hw_offset_index_entry(ix, (size_t)n, offset, position);
}

void hw_time_index_lookup(const hw_index *ix, int64_t target, int64_t *timestamp,
                          int64_t *offset) {
    int64_t n = warm_search(ix, target);
    if (n < 0) {
        *timestamp = -1;
        *offset = ix->base_offset;
        return;
    }
    hw_time_index_entry(ix, (size_t)n, timestamp, offset);
}

hw_status hw_index_check(const hw_index *ix, size_t segment_size) {
    int64_t prev = INT64_MIN;
    for (size_t n = 0; n < ix->entries; n++) {
        int64_t key = entry_key(ix, n);
        if (key <= prev) return HW_ERR_CORRUPT;
        prev = key;
        const uint8_t *e = ix->map + n * ix->entry_size;
        if (ix->entry_size == HW_OFFSET_ENTRY) {
            if (hw_load_i32(e) < 0 || hw_load_u32(e + 4) >= segment_size) return HW_ERR_CORRUPT;
        } else {
            /* Time entries: offsets must not go backwards either. */
            int32_t rel = hw_load_i32(e + 8);
            if (rel < 0) return HW_ERR_CORRUPT;
            if (n > 0 && rel < hw_load_i32(e - HW_TIME_ENTRY + 8)) return HW_ERR_CORRUPT;
        }
    }
    return HW_OK;
}

hw_status hw_index_flush(hw_index *ix, int *err) {
    size_t used = ix->entries * ix->entry_size;
    if (used && msync(ix->map, used, MS_SYNC) != 0) {
        *err = errno;
        return HW_ERR_IO;
    }
    return HW_OK;
}

hw_status hw_index_close(hw_index *ix, int trim, int *err) {
    hw_status st = HW_OK;
    if (ix->fd < 0) return HW_OK;
    if (ix->map) munmap(ix->map, ix->map_len);
    if (trim && ftruncate(ix->fd, (off_t)(ix->entries * ix->entry_size)) != 0) {
        *err = errno;
        st = HW_ERR_IO;
    }
    if (close(ix->fd) != 0 && st == HW_OK) {
        *err = errno;
        st = HW_ERR_IO;
    }
    ix->map = NULL;
    ix->fd = -1;
    return st;
}
