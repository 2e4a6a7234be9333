/**
 * @file hw_batch.h
 * @brief RecordBatch v2: parse and validate headers, walk records, build batches.
 *
 * Layout (kafka-spec.md a.1, big-endian):
 *
 *     0  int64  base_offset            } not covered by the CRC: the broker stamps these
 *     8  int32  batch_length           }   (batch size = 12 + batch_length)
 *    12  int32  partition_leader_epoch }
 *    16  int8   magic (2)
 *    17  uint32 crc                      CRC-32C of bytes [21, end of batch)
 *    21  int16  attributes               codec 0x07, LogAppendTime 0x08, txn 0x10, control 0x20
 *    23  int32  last_offset_delta
 *    27  int64  base_timestamp
 *    35  int64  max_timestamp
 *    43  int64  producer_id
 *    51  int16  producer_epoch
 *    53  int32  base_sequence
 *    57  int32  records_count
 *    61  ...    records (or the compressed bytes of them)
 *
 * Record: varint length | int8 attributes | varlong ts_delta | varint offset_delta |
 *         varint key_len | key | varint value_len | value | varint header_count |
 *         { varint key_len | key | varint value_len | value } * header_count
 *
 * Building follows "reserve, then patch": hw_batch_begin() reserves the 61-byte header,
 * records are written after it, hw_batch_finish() patches length, last offset delta,
 * timestamps, count and finally the CRC.
 */
#ifndef HW_BATCH_H
#define HW_BATCH_H

#include "hw_common.h"

typedef struct hw_batch_header {
    int64_t base_offset;
    int32_t batch_length;
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
} hw_batch_header;

/**
 * @brief Decode the header at buf[0:len) and check magic and batch_length.
 * @returns HW_OK; HW_ERR_TRUNCATED if fewer than 17 bytes (can't see magic) or the batch runs
 *          past `len`; HW_ERR_CORRUPT for magic != 2, batch_length < 49.
 *          `out` is filled as far as the bytes allow, also on error.
 */
hw_status hw_batch_parse_header(const uint8_t *buf, size_t len, hw_batch_header *out);

/**
 * @brief parse_header + CRC-32C + (uncompressed only) a walk of every record.
 * Checks: records_count >= 0, last_offset_delta >= records_count - 1 (compaction may leave
 * gaps), each record's length equals the bytes its fields take, key/value lengths >= -1,
 * header count >= 0, header key length >= 0, and that the records exactly fill the batch.
 */
hw_status hw_batch_validate(const uint8_t *buf, size_t len, hw_batch_header *out);

/** @brief Only the CRC-32C check of a batch whose header already parsed. */
hw_status hw_batch_check_crc(const uint8_t *buf, const hw_batch_header *h);

/** One decoded record; key/value/headers point into the records buffer. */
typedef struct hw_record {
    int64_t timestamp_delta;
    int64_t offset_delta;
    int64_t key_len; /* -1: null */
    const uint8_t *key;
    int64_t value_len; /* -1: null */
    const uint8_t *value;
    int64_t header_count;
    const uint8_t *headers; /* start of the first header */
    const uint8_t *headers_end;
} hw_record;

/**
 * @brief Decode the record at *pos (bounded by end) and advance *pos past it.
 * @returns HW_OK, HW_ERR_TRUNCATED or HW_ERR_CORRUPT.
 */
hw_status hw_record_read(const uint8_t **pos, const uint8_t *end, hw_record *out);

/** @brief Decode one header at *pos (inside a record's header area). */
hw_status hw_header_read(const uint8_t **pos, const uint8_t *end, const uint8_t **key,
                         int64_t *key_len, const uint8_t **value, int64_t *value_len);

/**
 * @brief Decode `count` records from [p, end) into columns, keeping those with offset >=
 * start_offset: offsets, timestamps, and key/value positions (relative to `origin`) and lengths
 * (-1 null). One C loop with the record reader inlined (the columnar read path).
 * @param kept out: how many records were stored (columns must hold `count` entries).
 * @returns HW_OK or HW_ERR_CORRUPT.
 */
hw_status hw_records_columns(const uint8_t *p, const uint8_t *end, int32_t count,
                             int64_t base_offset, int64_t base_timestamp, int64_t append_time,
                             int64_t start_offset, const uint8_t *origin, int64_t *offsets,
                             int64_t *timestamps, int64_t *key_pos, int64_t *key_len,
                             int64_t *value_pos, int64_t *value_len, size_t *kept);

/** @brief hw_records_columns plus, per kept record, its start position (relative to origin)
 *  and header count, so a caller can re-read the few records that have headers. */
hw_status hw_records_columns_ex(const uint8_t *p, const uint8_t *end, int32_t count,
                                int64_t base_offset, int64_t base_timestamp, int64_t append_time,
                                int64_t start_offset, const uint8_t *origin, int64_t *offsets,
                                int64_t *timestamps, int64_t *key_pos, int64_t *key_len,
                                int64_t *value_pos, int64_t *value_len, int64_t *record_pos,
                                int64_t *header_count, size_t *kept);

/* ---------------------------------------------------------------- building */

typedef struct hw_batch_writer {
    uint8_t *start;   /* batch header position */
    uint8_t *pos;     /* next record byte */
    uint8_t *end;     /* capacity limit */
    int64_t base_timestamp;
    int64_t max_timestamp;
    int32_t count;
} hw_batch_writer;

/** @brief Reserve the header at buf; fails with HW_ERR_FULL if cap < 61. */
hw_status hw_batch_begin(hw_batch_writer *w, uint8_t *buf, size_t cap, int64_t base_offset,
                         int32_t partition_leader_epoch, int16_t attributes, int64_t producer_id,
                         int16_t producer_epoch, int32_t base_sequence, int64_t base_timestamp);

/** @brief Size of a record's body (what its length varint counts). */
size_t hw_record_body_size(int64_t timestamp_delta, int64_t offset_delta, int64_t key_len,
                           int64_t value_len, int64_t header_count, size_t headers_bytes);

/** @brief Bytes one header takes. */
size_t hw_header_size(size_t key_len, int64_t value_len);

/**
 * @brief Append one record (key/value lengths -1 = null). Headers, if header_count > 0, must
 * follow immediately through hw_batch_write_header() and take exactly headers_bytes bytes.
 * Nothing is written on HW_ERR_FULL.
 */
hw_status hw_batch_write_record(hw_batch_writer *w, int64_t timestamp, const uint8_t *key,
                                int64_t key_len, const uint8_t *value, int64_t value_len,
                                int64_t header_count, size_t headers_bytes);

hw_status hw_batch_write_header(hw_batch_writer *w, const uint8_t *key, size_t key_len,
                                const uint8_t *value, int64_t value_len);

/**
 * @brief Append `count` records whose values are data[i*width:(i+1)*width], with null keys,
 * no headers and the batch's base timestamp: the layout of every record is known up front,
 * so this writes bytes directly instead of going through hw_batch_write_record (about 3x
 * fewer instructions per record). Nothing is written on HW_ERR_FULL.
 */
hw_status hw_batch_write_fixed(hw_batch_writer *w, const uint8_t *data, size_t width,
                               size_t count, int64_t timestamp);

/**
 * @brief Append `count` records with values (ptrs[i], lens[i]) (lens[i] = -1: null), null keys,
 * no headers and one timestamp: the list-of-bytes fast path of the common append.
 * Nothing is written on HW_ERR_FULL.
 */
hw_status hw_batch_write_values(hw_batch_writer *w, const uint8_t *const *ptrs,
                                const int64_t *lens, size_t count, int64_t timestamp);

/** @brief Patch length, last offset delta, timestamps, count and CRC. @returns batch size. */
size_t hw_batch_finish(hw_batch_writer *w);

/** @brief Rewrite the CRC field of a complete batch (after changing CRC-covered bytes). */
void hw_batch_update_crc(uint8_t *buf, size_t size);

#endif /* HW_BATCH_H */
