/**
 * @file hw_segment.h
 * @brief A mapped .log segment file: append, flush, scan, truncate.
 *
 * The file is mapped MAP_SHARED over a virtual range of `map_len` bytes (segment.bytes for the
 * active segment, the file size for sealed ones) for zero-copy reads, and is only ever read
 * below `size`, which never passes the end of the file. Appends are pwrite()s of whole batches
 * (built in a caller buffer), not stores into the mapping: a full disk or an I/O error is then
 * an errno from the write, never SIGBUS inside a store (RELIABILITY.md section 2: stores into
 * a sparse mapping on a full fs raise SIGBUS), and the page cache takes them at 1.5-2x the
 * rate of first-touch faults on a fallocate'd mapping on these machines (bench/README.md).
 * A failed or short write is cut off again, so the file is left as it was. Files written by
 * older builds may end in a preallocated zero tail; the scan reports it as a clean end.
 *
 * @locality one writer at a time (the caller's lock); readers of [0, size) may run in
 *           parallel with appends since appends only write above `size`.
 */
#ifndef HW_SEGMENT_H
#define HW_SEGMENT_H

#include "hw_batch.h"
#include "hw_common.h"


typedef struct hw_segment {
    int fd;
    uint8_t *map;
    size_t map_len;  /* virtual length of the mapping */
    size_t file_len; /* bytes backed by the file (allocated) */
    size_t size;     /* end of data */
    size_t synced;   /* data below this has been msync'd + fdatasync'd */
} hw_segment;

/**
 * @brief Open (or create) and map a segment.
 * @param max_bytes the mapping length for an appendable segment; 0 maps the file as it is
 *        (read-only use). The data size starts as the file size; the caller sets `size`
 *        after a scan.
 * @param err errno on HW_ERR_IO.
 */
hw_status hw_segment_open(hw_segment *s, const char *path, size_t max_bytes, int create,
                          int *err);

/** @brief HW_ERR_FULL if `need` more bytes would pass the mapping (the caller rolls). */
hw_status hw_segment_reserve(hw_segment *s, size_t need, int *err);

/** @brief pwrite `len` bytes at the end of data. On failure the file is cut back: nothing
 *  changes. */
hw_status hw_segment_append(hw_segment *s, const uint8_t *data, size_t len, int *err);

/** @brief fdatasync the file. */
hw_status hw_segment_flush(hw_segment *s, int *err);

/** @brief Drop data from `size` on: the file is cut and re-extended lazily (zeros). */
hw_status hw_segment_truncate(hw_segment *s, size_t size, int *err);

/** @brief Unmap and close; `trim` cuts the file to the data size first. */
hw_status hw_segment_close(hw_segment *s, int trim, int *err);

/** @brief Tell the kernel the pages below `upto` need not stay mapped (RSS control). The data
 *  stays in the page cache and dirty pages are still written back. */
void hw_segment_release_pages(hw_segment *s, size_t upto);

typedef struct hw_index hw_index;

typedef struct hw_scan_result {
    size_t valid_bytes;      /* end of the last good batch */
    size_t batches;
    hw_status status;        /* HW_OK: clean end or zero tail; else why the scan stopped */
    int64_t first_offset;    /* -1 if no batch */
    int64_t next_offset;     /* last offset + 1 of the last good batch, -1 if none */
    int64_t max_timestamp;
    int64_t offset_of_max_timestamp;
    size_t bytes_since_index; /* index.interval.bytes accounting to continue appends with */
} hw_scan_result;

/**
 * @brief Walk batches in buf[start:end) and stop at the first one that is partial or bad.
 * @param min_offset the first batch's base offset must be >= this (and each next one >= the
 *        previous last offset + 1); a violation is HW_ERR_CORRUPT.
 * @param contiguous if set, "==" instead of ">=": no offset gaps (logs that are never
 *        compacted). baseOffset is outside the CRC, so this is what catches a flipped one.
 * @param oi, ti if not NULL, index entries are appended as the append path would have
 *        (kafka-spec.md b.2), every `index_interval` bytes.
 * A 17-byte run of zeros where a batch should start ends the scan with HW_OK if everything up
 * to `end` is zero (preallocated tail) and HW_ERR_TRUNCATED otherwise. A batch_length of 0
 * (our writer patches the length last) is an unfinished write: HW_ERR_TRUNCATED.
 */
void hw_segment_scan(const uint8_t *buf, size_t start, size_t end, int verify_crc,
                     int64_t min_offset, int contiguous, hw_index *oi, hw_index *ti,
                     size_t index_interval, hw_scan_result *out);

/** @brief Find the first position >= from where a whole, CRC-valid batch starts.
 *  @returns 1 and *pos if found, else 0. Used to tell a torn tail (nothing valid after the
 *  damage) from damage in the middle of the log. */
int hw_segment_find_next_batch(const uint8_t *buf, size_t from, size_t end, size_t *pos);

/** @brief Position of the batch holding `target` scanning from `start` (a batch boundary),
 *  i.e. the first batch whose last offset >= target. *pos = end if there is none. */
hw_status hw_segment_find_offset(const uint8_t *buf, size_t start, size_t end, int64_t target,
                                 size_t *pos);

/** @brief First batch (from `start`) whose max_timestamp >= ts. */
hw_status hw_segment_find_timestamp(const uint8_t *buf, size_t start, size_t end, int64_t ts,
                                    size_t *pos);

/**
 * @brief Whole batches from `position` (a batch boundary): at least one, then more while the
 * total stays within max_bytes (KIP-74), checking each CRC if asked. Runs under the SIGBUS
 * guard (hw_guard.h): an unreadable page ends the walk with HW_ERR_IO.
 * @param end out: the end of the last whole, valid batch taken.
 * @returns HW_OK, or why the walk stopped early at *end (HW_ERR_CRC, HW_ERR_CORRUPT,
 *          HW_ERR_TRUNCATED, HW_ERR_IO).
 */
hw_status hw_segment_extent(const uint8_t *buf, size_t size, size_t position, size_t max_bytes,
                            int verify_crc, size_t *end);

#endif /* HW_SEGMENT_H */
