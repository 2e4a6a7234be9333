# Declarations of csrc/ for Cython. The only place the C headers are named.
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t


cdef extern from "hw_common.h" nogil:
    ctypedef enum hw_status:
        HW_OK
        HW_ERR_TRUNCATED
        HW_ERR_CORRUPT
        HW_ERR_CRC
        HW_ERR_OVERFLOW
        HW_ERR_FULL
        HW_ERR_IO
    enum:
        HW_LOG_OVERHEAD
        HW_BATCH_HEADER_SIZE
        HW_MAGIC_V2
        HW_RECORD_MAX_OVERHEAD


cdef extern from "hw_crc32c.h" nogil:
    void hw_crc32c_init()
    uint32_t hw_crc32c(uint32_t crc, const uint8_t *buf, size_t len)
    uint32_t hw_crc32c_portable(uint32_t crc, const uint8_t *buf, size_t len)
    const char *hw_crc32c_impl_name()


cdef extern from "hw_varint.h" nogil:
    size_t hw_varint_size(int64_t v)
    size_t hw_varint_write(uint8_t *p, int64_t v)
    hw_status hw_varint_read(const uint8_t **pos, const uint8_t *end, int64_t *out)


cdef extern from "hw_batch.h" nogil:
    ctypedef struct hw_batch_header:
        int64_t base_offset
        int32_t batch_length
        int32_t partition_leader_epoch
        int8_t magic
        uint32_t crc
        int16_t attributes
        int32_t last_offset_delta
        int64_t base_timestamp
        int64_t max_timestamp
        int64_t producer_id
        int16_t producer_epoch
        int32_t base_sequence
        int32_t records_count

    ctypedef struct hw_record:
        int64_t timestamp_delta
        int64_t offset_delta
        int64_t key_len
        const uint8_t *key
        int64_t value_len
        const uint8_t *value
        int64_t header_count
        const uint8_t *headers
        const uint8_t *headers_end

    ctypedef struct hw_batch_writer:
        uint8_t *start
        uint8_t *pos
        uint8_t *end
        int64_t base_timestamp
        int64_t max_timestamp
        int32_t count

    hw_status hw_batch_parse_header(const uint8_t *buf, size_t len, hw_batch_header *out)
    hw_status hw_batch_validate(const uint8_t *buf, size_t len, hw_batch_header *out)
    hw_status hw_batch_check_crc(const uint8_t *buf, const hw_batch_header *h)
    hw_status hw_record_read(const uint8_t **pos, const uint8_t *end, hw_record *out)
    hw_status hw_header_read(const uint8_t **pos, const uint8_t *end, const uint8_t **key,
                             int64_t *key_len, const uint8_t **value, int64_t *value_len)
    hw_status hw_records_columns(const uint8_t *p, const uint8_t *end, int32_t count,
                                 int64_t base_offset, int64_t base_timestamp, int64_t append_time,
                                 int64_t start_offset, const uint8_t *origin, int64_t *offsets,
                                 int64_t *timestamps, int64_t *key_pos, int64_t *key_len,
                                 int64_t *value_pos, int64_t *value_len, size_t *kept)
    hw_status hw_records_columns_ex(const uint8_t *p, const uint8_t *end, int32_t count,
                                    int64_t base_offset, int64_t base_timestamp,
                                    int64_t append_time, int64_t start_offset,
                                    const uint8_t *origin, int64_t *offsets, int64_t *timestamps,
                                    int64_t *key_pos, int64_t *key_len, int64_t *value_pos,
                                    int64_t *value_len, int64_t *record_pos,
                                    int64_t *header_count, size_t *kept)
    hw_status hw_batch_begin(hw_batch_writer *w, uint8_t *buf, size_t cap, int64_t base_offset,
                             int32_t partition_leader_epoch, int16_t attributes,
                             int64_t producer_id, int16_t producer_epoch, int32_t base_sequence,
                             int64_t base_timestamp)
    size_t hw_header_size(size_t key_len, int64_t value_len)
    hw_status hw_batch_write_record(hw_batch_writer *w, int64_t timestamp, const uint8_t *key,
                                    int64_t key_len, const uint8_t *value, int64_t value_len,
                                    int64_t header_count, size_t headers_bytes)
    hw_status hw_batch_write_header(hw_batch_writer *w, const uint8_t *key, size_t key_len,
                                    const uint8_t *value, int64_t value_len)
    hw_status hw_batch_write_fixed(hw_batch_writer *w, const uint8_t *data, size_t width,
                                   size_t count, int64_t timestamp)
    hw_status hw_batch_write_values(hw_batch_writer *w, const uint8_t *const *ptrs,
                                    const int64_t *lens, size_t count, int64_t timestamp)
    size_t hw_batch_finish(hw_batch_writer *w)
    void hw_batch_update_crc(uint8_t *buf, size_t size)


cdef extern from "hw_index.h" nogil:
    ctypedef struct hw_index:
        int fd
        uint8_t *map
        size_t map_len
        size_t entries
        size_t max_entries
        size_t entry_size
        int64_t base_offset
    enum:
        HW_OFFSET_ENTRY
        HW_TIME_ENTRY
    hw_status hw_index_open(hw_index *ix, const char *path, size_t entry_size,
                            int64_t base_offset, size_t max_bytes, int *err)
    hw_status hw_offset_index_append(hw_index *ix, int64_t offset, size_t position)
    hw_status hw_time_index_append(hw_index *ix, int64_t timestamp, int64_t offset)
    hw_status hw_offset_index_write(hw_index *ix, int64_t offset, size_t position, int *err)
    hw_status hw_time_index_write(hw_index *ix, int64_t timestamp, int64_t offset, int *err)
    void hw_offset_index_lookup(const hw_index *ix, int64_t target, int64_t *offset,
                                size_t *position)
    void hw_time_index_lookup(const hw_index *ix, int64_t target, int64_t *timestamp,
                              int64_t *offset)
    void hw_offset_index_entry(const hw_index *ix, size_t n, int64_t *offset, size_t *position)
    void hw_time_index_entry(const hw_index *ix, size_t n, int64_t *timestamp, int64_t *offset)
    hw_status hw_index_check(const hw_index *ix, size_t segment_size)
    hw_status hw_index_flush(hw_index *ix, int *err)
    hw_status hw_index_close(hw_index *ix, int trim, int *err)


cdef extern from "hw_segment.h" nogil:
    ctypedef struct hw_segment:
        int fd
        uint8_t *map
        size_t map_len
        size_t file_len
        size_t size
        size_t synced

    ctypedef struct hw_scan_result:
        size_t valid_bytes
        size_t batches
        hw_status status
        int64_t first_offset
        int64_t next_offset
        int64_t max_timestamp
        int64_t offset_of_max_timestamp
        size_t bytes_since_index

    hw_status hw_segment_open(hw_segment *s, const char *path, size_t max_bytes, int create,
                              int *err)
    hw_status hw_segment_reserve(hw_segment *s, size_t need, int *err)
    hw_status hw_segment_append(hw_segment *s, const uint8_t *data, size_t len, int *err)
    hw_status hw_segment_flush(hw_segment *s, int *err)
    hw_status hw_segment_truncate(hw_segment *s, size_t size, int *err)
    hw_status hw_segment_close(hw_segment *s, int trim, int *err)
    void hw_segment_release_pages(hw_segment *s, size_t upto)
    void hw_segment_scan(const uint8_t *buf, size_t start, size_t end, int verify_crc,
                         int64_t min_offset, int contiguous, hw_index *oi, hw_index *ti,
                         size_t index_interval, hw_scan_result *out)
    int hw_segment_find_next_batch(const uint8_t *buf, size_t start, size_t end, size_t *pos)
    hw_status hw_segment_find_offset(const uint8_t *buf, size_t start, size_t end,
                                     int64_t target, size_t *pos)
    hw_status hw_segment_find_timestamp(const uint8_t *buf, size_t start, size_t end,
                                        int64_t ts, size_t *pos)
    hw_status hw_segment_extent(const uint8_t *buf, size_t size, size_t position,
                                size_t max_bytes, int verify_crc, size_t *end)


cdef extern from "hw_guard.h" nogil:
    int hw_guard_init()


cdef extern from "hw_endian.h" nogil:
    int16_t hw_load_i16(const uint8_t *p)
    int32_t hw_load_i32(const uint8_t *p)
    int64_t hw_load_i64(const uint8_t *p)
    void hw_store_i16(uint8_t *p, int16_t v)
    void hw_store_i32(uint8_t *p, int32_t v)
    void hw_store_i64(uint8_t *p, int64_t v)
