/**
 * @file hw_segment.c
 * @brief Mapped .log segment (see hw_segment.h for the model).
 */
#include "hw_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hw_endian.h"
#include "hw_guard.h"
#include "hw_index.h"

static size_t page_size(void) {
    static size_t ps;
    if (!ps) ps = (size_t)sysconf(_SC_PAGESIZE);
    return ps;
}

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

hw_status hw_segment_open(hw_segment *s, const char *path, size_t max_bytes, int create,
                          int *err) {
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
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
    size_t map_len = max_bytes > file_len ? max_bytes : file_len;
    map_len = round_up(map_len, page_size());
    uint8_t *map = NULL;
    if (map_len > 0) {
        void *m = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            *err = errno;
            close(fd);
            return HW_ERR_IO;
        }
        map = m;
    }
    s->fd = fd;
    s->map = map;
    s->map_len = map_len;
    s->file_len = file_len;
    s->size = file_len;
    s->synced = file_len;
    return HW_OK;
}

hw_status hw_segment_reserve(hw_segment *s, size_t need, int *err) {
    (void)err;
    return s->size + need <= s->map_len ? HW_OK : HW_ERR_FULL;
}

hw_status hw_segment_append(hw_segment *s, const uint8_t *data, size_t len, int *err) {
    if (s->size + len > s->map_len) return HW_ERR_FULL;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(s->fd, data + done, len - done, (off_t)(s->size + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            *err = n < 0 ? errno : ENOSPC;
            /* Leave the file as it was: cut whatever part of this write landed. */
            if (done > 0 || n < 0) (void)ftruncate(s->fd, (off_t)s->size);
            return HW_ERR_IO;
        }
        done += (size_t)n;
    }
    s->size += len;
    if (s->size > s->file_len) s->file_len = s->size;
    return HW_OK;
}

hw_status hw_segment_flush(hw_segment *s, int *err) {
    /* Appends are pwrite()s, never stores into the mapping, so fdatasync alone covers them
     * (an msync first would make each durable append wait for two device flushes). */
    /* Only what was written before the sync started is known durable: the caller may run
     * this without the log's lock while appends continue. */
    size_t target = s->size;
    if (fdatasync(s->fd) != 0) {
        *err = errno;
        return HW_ERR_IO;
    }
    if (target > s->synced) s->synced = target;
    return HW_OK;
}

hw_status hw_segment_truncate(hw_segment *s, size_t size, int *err) {
    if (size > s->size) return HW_ERR_CORRUPT;
    if (ftruncate(s->fd, (off_t)size) != 0 || fdatasync(s->fd) != 0) {
        *err = errno;
        return HW_ERR_IO;
    }
    s->file_len = size;
    s->size = size;
    if (s->synced > size) s->synced = size;
    return HW_OK;
}

hw_status hw_segment_close(hw_segment *s, int trim, int *err) {
    hw_status st = HW_OK;
    if (s->fd < 0) return HW_OK;
    if (trim && s->file_len != s->size) {
        if (ftruncate(s->fd, (off_t)s->size) != 0) {
            *err = errno;
            st = HW_ERR_IO;
        }
    }
    if (s->map) munmap(s->map, s->map_len);
    if (close(s->fd) != 0 && st == HW_OK) {
        *err = errno;
        st = HW_ERR_IO;
    }
    s->map = NULL;
    s->fd = -1;
    return st;
}

void hw_segment_release_pages(hw_segment *s, size_t upto) {
    size_t len = upto / page_size() * page_size();
    if (s->map && len > 0) (void)madvise(s->map, len, MADV_DONTNEED);
}

/* ---------------------------------------------------------------- scanning */

static int all_zero(const uint8_t *p, size_t n) {
    /* Compare 64 bytes at a time; tails are short. */
    static const uint8_t zeros[64];
    while (n >= 64) {
        if (memcmp(p, zeros, 64) != 0) return 0;
        p += 64;
        n -= 64;
    }
    return n == 0 || memcmp(p, zeros, n) == 0;
}

void hw_segment_scan(const uint8_t *buf, size_t start, size_t end, int verify_crc,
                     int64_t min_offset, int contiguous, hw_index *oi, hw_index *ti,
                     size_t index_interval, hw_scan_result *out) {
    memset(out, 0, sizeof(*out));
    out->first_offset = -1;
    out->next_offset = -1;
    out->max_timestamp = -1;
    out->offset_of_max_timestamp = -1;
    out->status = HW_OK;
    size_t pos = start;
    int64_t expect = min_offset;
    size_t since_index = 0;
    while (pos < end) {
        size_t left = end - pos;
        const uint8_t *p = buf + pos;
        if (left < HW_POS_MAGIC + 1 || all_zero(p, HW_POS_MAGIC + 1)) {
            out->status = all_zero(p, left) ? HW_OK : HW_ERR_TRUNCATED;
            break;
        }
        hw_batch_header h;
        hw_status st = hw_batch_parse_header(p, left, &h);
        if (st == HW_ERR_CORRUPT && h.magic == HW_MAGIC_V2 && h.batch_length == 0) {
            st = HW_ERR_TRUNCATED; /* our writer patches the length last: unfinished */
        }
        if (st == HW_OK && verify_crc) st = hw_batch_check_crc(p, &h);
        if (st == HW_OK && (h.base_offset < expect || (contiguous && h.base_offset != expect) ||
                            h.last_offset_delta < 0 ||
                            h.records_count < 0)) {
            st = HW_ERR_CORRUPT;
        }
        if (st != HW_OK) {
            out->status = st;
            break;
        }
        size_t size = (size_t)h.batch_length + HW_LOG_OVERHEAD;
        int64_t last = h.base_offset + h.last_offset_delta;
        if (out->first_offset < 0) out->first_offset = h.base_offset;
        if (h.max_timestamp > out->max_timestamp) {
            out->max_timestamp = h.max_timestamp;
            out->offset_of_max_timestamp = last;
        }
        if (oi && since_index > index_interval) {
            if (hw_offset_index_append(oi, last, pos) == HW_OK && ti)
                (void)hw_time_index_append(ti, out->max_timestamp,
                                           out->offset_of_max_timestamp);
            since_index = 0;
        }
        since_index += size;
        out->batches++;
        out->next_offset = last + 1;
        expect = last + 1;
        pos += size;
    }
    out->valid_bytes = pos;
    out->bytes_since_index = since_index;
}

int hw_segment_find_next_batch(const uint8_t *buf, size_t from, size_t end, size_t *pos) {
    for (size_t p = from; p + HW_BATCH_HEADER_SIZE <= end; p++) {
        if (buf[p + HW_POS_MAGIC] != HW_MAGIC_V2) continue;
        hw_batch_header h;
        if (hw_batch_parse_header(buf + p, end - p, &h) != HW_OK) continue;
        if (hw_batch_check_crc(buf + p, &h) != HW_OK) continue;
        *pos = p;
        return 1;
    }
    return 0;
}

hw_status hw_segment_find_offset(const uint8_t *buf, size_t start, size_t end, int64_t target,
                                 size_t *pos) {
    size_t p = start;
    while (p < end) {
        if (end - p < HW_BATCH_HEADER_SIZE) {
            *pos = p;
            return HW_ERR_TRUNCATED;
        }
        int64_t base = hw_load_i64(buf + p);
        int32_t length = hw_load_i32(buf + p + HW_POS_LENGTH);
        int32_t delta = hw_load_i32(buf + p + HW_POS_LAST_OFFSET_DELTA);
        if (length < HW_BATCH_MIN_LENGTH || (size_t)length + HW_LOG_OVERHEAD > end - p) {
            *pos = p;
            return HW_ERR_CORRUPT;
        }
        if (base + delta >= target) {
            *pos = p;
            return HW_OK;
        }
        p += (size_t)length + HW_LOG_OVERHEAD;
    }
    *pos = end;
    return HW_OK;
}

hw_status hw_segment_find_timestamp(const uint8_t *buf, size_t start, size_t end, int64_t ts,
                                    size_t *pos) {
    size_t p = start;
    while (p < end) {
        if (end - p < HW_BATCH_HEADER_SIZE) {
            *pos = p;
            return HW_ERR_TRUNCATED;
        }
        int32_t length = hw_load_i32(buf + p + HW_POS_LENGTH);
        int64_t max_ts = hw_load_i64(buf + p + HW_POS_MAX_TIMESTAMP);
        if (length < HW_BATCH_MIN_LENGTH || (size_t)length + HW_LOG_OVERHEAD > end - p) {
            *pos = p;
            return HW_ERR_CORRUPT;
        }
        if (max_ts >= ts) {
            *pos = p;
            return HW_OK;
        }
        p += (size_t)length + HW_LOG_OVERHEAD;
    }
    *pos = end;
    return HW_OK;
}

hw_status hw_segment_extent(const uint8_t *buf, size_t size, size_t position, size_t max_bytes,
                            int verify_crc, size_t *end) {
    /* volatile: these live across a possible siglongjmp back into this frame. */
    volatile size_t p = position;
    volatile hw_status st = HW_OK;
    sigjmp_buf jb;
    if (sigsetjmp(jb, 1) != 0) {
        *end = p;
        return HW_ERR_IO; /* SIGBUS: the page under p could not be read */
    }
    hw_guard_jmp = &jb;
    while (p < size) {
        hw_batch_header h;
        st = hw_batch_parse_header(buf + p, size - p, &h);
        if (st == HW_OK && verify_crc) st = hw_batch_check_crc(buf + p, &h);
        if (st != HW_OK) break;
        size_t n = (size_t)h.batch_length + HW_LOG_OVERHEAD;
        if (p > position && p + n - position > max_bytes) break;
        p += n;
    }
    hw_guard_jmp = NULL;
    *end = p;
    return st;
}
