# cython: language_level=3, freethreading_compatible=False
"""headwater._native: the one extension module, thin types over csrc/.

The only code that sees csrc/. Per-record and per-byte work happens in C; this file moves
pointers between Python objects and C, owns the C resources (`__cinit__` acquires,
`__dealloc__` releases) and maps hw_status to exceptions in one place, `_raise_for`.

The GIL is released around bulk work: CRCs of 64 KiB and more, segment scans, msync/fdatasync
and large copies. Small calls keep it, because the switch costs more than the work.

mmap lifetime: a Segment counts the buffers it has exported (each `memoryview(segment)` or
`segment.view()`); `truncate()` and `close()` raise BufferError while any is alive, so a
zero-copy read can never outlive its mapping.
"""

cimport cython
from cpython cimport array
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.object cimport Py_SIZE, PyObject
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8String, PyUnicode_DecodeUTF8
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset
from libc.errno cimport errno
from posix.unistd cimport ftruncate
from posix.types cimport off_t
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

from headwater._native.csrc cimport *

import array as _array_mod
import logging
import os
import time

from headwater.errors import (
    CorruptRecordError,
    InvalidCrcError,
    InvalidRecordError,
    InvalidTimestampError,
    KafkaApiError,
    KafkaStorageError,
    SegmentFullError,
    SegmentOffsetOverflowError,
    MessageTooLargeError,
    TruncatedError,
)

hw_crc32c_init()
hw_guard_init()

cdef array.array _Q_TEMPLATE = array.array("q", [])

BATCH_HEADER_SIZE = HW_BATCH_HEADER_SIZE
LOG_OVERHEAD = HW_LOG_OVERHEAD
MAGIC = HW_MAGIC_V2

globals().update(
    HW_OK=HW_OK, HW_ERR_TRUNCATED=HW_ERR_TRUNCATED, HW_ERR_CORRUPT=HW_ERR_CORRUPT,
    HW_ERR_CRC=HW_ERR_CRC, HW_ERR_OVERFLOW=HW_ERR_OVERFLOW, HW_ERR_FULL=HW_ERR_FULL,
    HW_ERR_IO=HW_ERR_IO,
)

cdef size_t NOGIL_BYTES = 65536


cdef int _raise_for(hw_status st, str context, int *err=NULL) except -1:
    """The one hw_status -> exception mapping. `err` points at the errno the C call filled in
    (a pointer, so it is read after the call, not when the arguments are packed)."""
    if st == HW_OK:
        return 0
    if st == HW_ERR_TRUNCATED:
        raise TruncatedError(f"{context}: buffer ends inside the item")
    if st == HW_ERR_CRC:
        raise InvalidCrcError(f"{context}: CRC-32C mismatch")
    if st == HW_ERR_CORRUPT:
        raise CorruptRecordError(f"{context}: corrupt")
    if st == HW_ERR_OVERFLOW:
        raise SegmentOffsetOverflowError(f"{context}: value does not fit")
    if st == HW_ERR_FULL:
        raise SegmentFullError(f"{context}: no room")
    if st == HW_ERR_IO:
        code = err[0] if err != NULL else 0
        raise OSError(code, f"{context}: {os.strerror(code)}")
    raise AssertionError(f"unknown hw_status {st}")


cdef inline int64_t _now_ms():
    """int(time.time() * 1000) from the vDSO clock, without a Python call."""
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000 + ts.tv_nsec // 1000000


# ---------------------------------------------------------------- bytes-like access

cdef struct _bytes_ref:
    const uint8_t *ptr
    Py_ssize_t length      # -1 for None
    bint release
    Py_buffer view


cdef inline int _acquire(object obj, _bytes_ref *ref) except -1:
    ref.release = False
    if obj is None:
        ref.ptr = NULL
        ref.length = -1
    elif PyBytes_CheckExact(obj):
        ref.ptr = <const uint8_t *>PyBytes_AS_STRING(obj)
        ref.length = PyBytes_GET_SIZE(obj)
    else:
        PyObject_GetBuffer(obj, &ref.view, PyBUF_SIMPLE)
        ref.ptr = <const uint8_t *>ref.view.buf
        ref.length = ref.view.len
        ref.release = True
    return 0


cdef inline void _release(_bytes_ref *ref) noexcept:
    if ref.release:
        PyBuffer_Release(&ref.view)
        ref.release = False


cdef inline Py_ssize_t _length_of(object obj) except -2:
    """Byte length of a value (-1 for None) without keeping a buffer."""
    cdef _bytes_ref ref
    if obj is None:
        return -1
    if PyBytes_CheckExact(obj):
        return PyBytes_GET_SIZE(obj)
    _acquire(obj, &ref)
    _release(&ref)
    return ref.length


# ---------------------------------------------------------------- crc32c, varint

def crc32c(data, uint32_t value=0):
    cdef _bytes_ref ref
    cdef uint32_t out
    _acquire(data, &ref)
    try:
        if ref.length < 0:
            raise TypeError("crc32c() needs a bytes-like object, not None")
        if <size_t>ref.length >= NOGIL_BYTES:
            with nogil:
                out = hw_crc32c(value, ref.ptr, <size_t>ref.length)
        else:
            out = hw_crc32c(value, ref.ptr, <size_t>ref.length)
    finally:
        _release(&ref)
    return out


def crc32c_impl():
    return hw_crc32c_impl_name().decode()


def _crc32c_portable(data, uint32_t value=0):
    cdef _bytes_ref ref
    _acquire(data, &ref)
    try:
        return hw_crc32c_portable(value, ref.ptr, <size_t>ref.length)
    finally:
        _release(&ref)


def encode_varint(int64_t value):
    cdef uint8_t buf[10]
    cdef size_t n = hw_varint_write(buf, value)
    return PyBytes_FromStringAndSize(<char *>buf, <Py_ssize_t>n)


def decode_varint(buf, Py_ssize_t pos=0):
    cdef _bytes_ref ref
    cdef const uint8_t *p
    cdef int64_t value
    cdef hw_status st
    _acquire(buf, &ref)
    try:
        if pos < 0 or pos > ref.length:
            raise IndexError("position out of range")
        p = ref.ptr + pos
        st = hw_varint_read(&p, ref.ptr + ref.length, &value)
        _raise_for(st, "varint")
        return value, <Py_ssize_t>(p - ref.ptr)
    finally:
        _release(&ref)


# ---------------------------------------------------------------- batch headers

@cython.final
@cython.freelist(64)
cdef class BatchHeader:
    """The 61-byte RecordBatch v2 header, decoded (field names: kafka-spec.md a.1)."""
    cdef readonly int64_t base_offset
    cdef readonly int32_t batch_length
    cdef readonly int32_t partition_leader_epoch
    cdef readonly int magic
    cdef readonly uint32_t crc
    cdef readonly int16_t attributes
    cdef readonly int32_t last_offset_delta
    cdef readonly int64_t base_timestamp
    cdef readonly int64_t max_timestamp
    cdef readonly int64_t producer_id
    cdef readonly int16_t producer_epoch
    cdef readonly int32_t base_sequence
    cdef readonly int32_t records_count

    @property
    def size(self):
        return <int64_t>self.batch_length + HW_LOG_OVERHEAD

    @property
    def last_offset(self):
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self):
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self):
        return self.attributes & 0x07

    @property
    def timestamp_type(self):
        return (self.attributes >> 3) & 1

    @property
    def is_transactional(self):
        return bool(self.attributes & 0x10)

    @property
    def is_control(self):
        return bool(self.attributes & 0x20)

    def __repr__(self):
        return (f"BatchHeader(base_offset={self.base_offset}, last_offset={self.last_offset}, "
                f"size={self.size}, records_count={self.records_count}, "
                f"attributes={self.attributes:#x}, producer_id={self.producer_id})")


cdef BatchHeader _header_from(const hw_batch_header *h):
    cdef BatchHeader o = BatchHeader.__new__(BatchHeader)
    o.base_offset = h.base_offset
    o.batch_length = h.batch_length
    o.partition_leader_epoch = h.partition_leader_epoch
    o.magic = h.magic
    o.crc = h.crc
    o.attributes = h.attributes
    o.last_offset_delta = h.last_offset_delta
    o.base_timestamp = h.base_timestamp
    o.max_timestamp = h.max_timestamp
    o.producer_id = h.producer_id
    o.producer_epoch = h.producer_epoch
    o.base_sequence = h.base_sequence
    o.records_count = h.records_count
    return o


def parse_batch_header(buf, Py_ssize_t pos=0):
    cdef _bytes_ref ref
    cdef hw_batch_header h
    _acquire(buf, &ref)
    try:
        if pos < 0 or pos > ref.length:
            raise IndexError("position out of range")
        _raise_for(hw_batch_parse_header(ref.ptr + pos, <size_t>(ref.length - pos), &h),
                   f"batch at {pos}")
        return _header_from(&h)
    finally:
        _release(&ref)


def committed_runs(data, aborted, control_type):
    """Position ranges [start, end) of `data` (whole batches of one read) holding the batches a
    read_committed consumer delivers: every batch but the transactional data batches of
    aborted transactions; control batches stay inside the ranges (the decoders skip them).

    Kafka's consumer algorithm (kafka-spec.md d.4): `aborted` lists (producer id, first offset)
    of the aborted transactions overlapping the read; before each batch with a producer id,
    every entry with first offset <= the batch's last offset is taken and its producer marked
    aborted; a transactional batch of a marked producer is skipped; that producer's ABORT marker
    unmarks it. `control_type(view, header)` gives a control batch's marker type (0 ABORT,
    1 COMMIT) or None; it is called only for markers of marked producers. One C walk over the
    headers: the Python version cost a quarter of a read_committed consume_batch.
    """
    cdef _bytes_ref ref
    cdef hw_batch_header h
    cdef size_t pos = 0, size, n
    cdef Py_ssize_t k = 0, npending
    cdef Py_ssize_t run_start = -1
    cdef int64_t last
    cdef bint skip
    cdef list pending = sorted(aborted, key=_second)
    cdef set marked = set()
    cdef list runs = []
    npending = len(pending)
    _acquire(data, &ref)
    try:
        n = <size_t>ref.length
        while pos < n:
            _raise_for(hw_batch_parse_header(ref.ptr + pos, n - pos, &h), f"batch at {pos}")
            size = <size_t>h.batch_length + HW_LOG_OVERHEAD
            if size > n - pos:
                raise TruncatedError(f"batch at {pos} runs past the end of the read")
            skip = False
            if h.producer_id >= 0:
                last = h.base_offset + h.last_offset_delta
                while k < npending and pending[k][1] <= last:
                    marked.add(pending[k][0])
                    k += 1
                if h.attributes & 0x20:
                    if h.records_count > 0 and h.producer_id in marked:
                        view = memoryview(data)[pos:pos + size]
                        try:
                            ctype = control_type(view, _header_from(&h))
                        finally:
                            view.release()
                        if ctype == _CONTROL_ABORT:
                            marked.discard(h.producer_id)
                elif (h.attributes & 0x10) and h.producer_id in marked:
                    skip = True
            if skip:
                if run_start >= 0:
                    runs.append((run_start, <Py_ssize_t>pos))
                    run_start = -1
            elif run_start < 0:
                run_start = <Py_ssize_t>pos
            pos += size
        if run_start >= 0:
            runs.append((run_start, <Py_ssize_t>n))
        return runs
    finally:
        _release(&ref)


cdef object _second(object pair):
    return pair[1]


cdef int _CONTROL_ABORT = 0  # control record type (kafka-spec.md a.5): 0 ABORT, 1 COMMIT


def check_batch(buf, Py_ssize_t pos=0):
    cdef _bytes_ref ref
    cdef hw_batch_header h
    cdef hw_status st
    _acquire(buf, &ref)
    try:
        if pos < 0 or pos > ref.length:
            raise IndexError("position out of range")
        if <size_t>(ref.length - pos) >= NOGIL_BYTES:
            with nogil:
                st = hw_batch_validate(ref.ptr + pos, <size_t>(ref.length - pos), &h)
        else:
            st = hw_batch_validate(ref.ptr + pos, <size_t>(ref.length - pos), &h)
        _raise_for(st, f"batch at {pos}")
        return _header_from(&h)
    finally:
        _release(&ref)


# ---------------------------------------------------------------- building

cdef Py_ssize_t _headers_bytes(object hdrs) except -1:
    cdef Py_ssize_t total = 0
    for hk, hv in hdrs:
        kb = hk.encode() if isinstance(hk, str) else bytes(hk)
        total += <Py_ssize_t>hw_header_size(<size_t>len(kb), _length_of(hv))
    return total


cdef Py_ssize_t _bound(list values, list keys, list headers) except -1:
    """Upper bound of the records section for these records."""
    cdef Py_ssize_t n = len(values), i, total = 0, v
    for i in range(n):
        v = _length_of(values[i])
        total += HW_RECORD_MAX_OVERHEAD + 15 + (v if v > 0 else 0)
        if keys is not None:
            v = _length_of(keys[i])
            total += v if v > 0 else 0
        if headers is not None and headers[i]:
            total += _headers_bytes(headers[i])
    return total


cdef struct _plain_values:
    const uint8_t **ptrs
    int64_t *lens
    size_t payload


cdef int _plain_values_init(_plain_values *pv, Py_ssize_t n) except -1:
    pv.payload = 0
    pv.ptrs = <const uint8_t **>malloc(<size_t>(n if n > 0 else 1) * sizeof(uint8_t *))
    pv.lens = <int64_t *>malloc(<size_t>(n if n > 0 else 1) * sizeof(int64_t))
    if pv.ptrs == NULL or pv.lens == NULL:
        _plain_values_free(pv)
        raise MemoryError()
    return 0


cdef void _plain_values_free(_plain_values *pv) noexcept:
    free(pv.ptrs)
    free(pv.lens)
    pv.ptrs = NULL
    pv.lens = NULL


cdef bint _plain_values_fill(_plain_values *pv, list values) noexcept:
    """Pointers and lengths of `values` (room for len(values) entries) and the sum of their
    lengths; False as soon as one is neither bytes nor None."""
    cdef Py_ssize_t n = PyList_GET_SIZE(values), i
    cdef size_t payload = 0
    cdef PyObject *v
    for i in range(n):
        v = PyList_GET_ITEM(values, i)
        if PyBytes_CheckExact(<object>v):
            pv.ptrs[i] = <const uint8_t *>PyBytes_AS_STRING(<object>v)
            pv.lens[i] = PyBytes_GET_SIZE(<object>v)
            payload += <size_t>pv.lens[i]
        elif v == <PyObject *>None:
            pv.ptrs[i] = NULL
            pv.lens[i] = -1
        else:
            return False
    pv.payload = payload
    return True


cdef int _write_plain_values(hw_batch_writer *w, list values, int64_t timestamp) except -1:
    """Fast path: only bytes/None values, no keys, headers or per-record timestamps. Returns 0
    if some value is another type (the caller then takes the general path)."""
    cdef Py_ssize_t n = len(values), i
    cdef object v
    cdef const uint8_t **ptrs = <const uint8_t **>malloc(<size_t>(n if n > 0 else 1) * sizeof(uint8_t *))
    cdef int64_t *lens = <int64_t *>malloc(<size_t>(n if n > 0 else 1) * sizeof(int64_t))
    cdef hw_status st
    if ptrs == NULL or lens == NULL:
        free(ptrs)
        free(lens)
        raise MemoryError()
    try:
        for i in range(n):
            v = values[i]
            if PyBytes_CheckExact(v):
                ptrs[i] = <const uint8_t *>PyBytes_AS_STRING(v)
                lens[i] = PyBytes_GET_SIZE(v)
            elif v is None:
                ptrs[i] = NULL
                lens[i] = -1
            else:
                return 0
        # The list holds references to the values for the duration of the call.
        st = hw_batch_write_values(w, ptrs, lens, <size_t>n, timestamp)
        _raise_for(st, "record")
        return 1
    finally:
        free(ptrs)
        free(lens)


cdef int _write_records(hw_batch_writer *w, list values, list keys, list headers,
                        list timestamps, int64_t timestamp) except -1:
    cdef Py_ssize_t n = len(values), i
    if keys is None and headers is None and timestamps is None:
        if _write_plain_values(w, values, timestamp):
            return 0
    cdef _bytes_ref kref, vref, href
    cdef int64_t ts = timestamp
    cdef Py_ssize_t hcount, hbytes
    cdef hw_status st
    for i in range(n):
        if timestamps is not None:
            ts = timestamps[i]
        hdrs = headers[i] if headers is not None else None
        if hdrs:
            hcount = len(hdrs)
            hbytes = _headers_bytes(hdrs)
        else:
            hcount = 0
            hbytes = 0
        _acquire(values[i], &vref)
        try:
            if keys is not None:
                _acquire(keys[i], &kref)
            else:
                kref.ptr = NULL
                kref.length = -1
                kref.release = False
            try:
                st = hw_batch_write_record(w, ts, kref.ptr, kref.length, vref.ptr, vref.length,
                                           hcount, <size_t>hbytes)
            finally:
                _release(&kref)
        finally:
            _release(&vref)
        _raise_for(st, "record")
        if hcount:
            for hk, hv in hdrs:
                kb = hk.encode() if isinstance(hk, str) else bytes(hk)
                _acquire(hv, &href)
                try:
                    st = hw_batch_write_header(w, <const uint8_t *>PyBytes_AS_STRING(kb),
                                               <size_t>PyBytes_GET_SIZE(kb), href.ptr,
                                               href.length)
                finally:
                    _release(&href)
                _raise_for(st, "header")
    return 0


cdef list _as_list(object seq, Py_ssize_t n, str name):
    if seq is None:
        return None
    cdef list out = seq if type(seq) is list else list(seq)
    if len(out) != n:
        raise ValueError(f"{name} has {len(out)} items for {n} values")
    return out


def build_batch(values, keys=None, headers=None, timestamps=None, *, int64_t base_offset=0,
                int64_t timestamp=-1, int64_t producer_id=-1, int producer_epoch=-1,
                int32_t base_sequence=-1, int32_t partition_leader_epoch=-1,
                int attributes=0):
    cdef list vals = values if type(values) is list else list(values)
    cdef Py_ssize_t n = len(vals)
    cdef list ks = _as_list(keys, n, "keys")
    cdef list hs = _as_list(headers, n, "headers")
    cdef list tss = _as_list(timestamps, n, "timestamps")
    if attributes & 0x07:
        raise ValueError("build_batch writes uncompressed batches; use compress_batch")
    if n == 0:
        raise ValueError("a batch needs at least one record")
    if timestamp == -1 and tss is None:
        timestamp = _now_ms()
    cdef int64_t base_ts = tss[0] if (tss is not None and n > 0) else timestamp
    cdef Py_ssize_t cap = HW_BATCH_HEADER_SIZE + _bound(vals, ks, hs)
    cdef uint8_t *buf = <uint8_t *>malloc(<size_t>cap)
    cdef hw_batch_writer w
    cdef size_t size
    if buf == NULL:
        raise MemoryError()
    try:
        _raise_for(hw_batch_begin(&w, buf, <size_t>cap, base_offset, partition_leader_epoch,
                                  <int16_t>attributes, producer_id, <int16_t>producer_epoch,
                                  base_sequence, base_ts), "batch")
        _write_records(&w, vals, ks, hs, tss, timestamp)
        size = hw_batch_finish(&w)
        return PyBytes_FromStringAndSize(<char *>buf, <Py_ssize_t>size)
    finally:
        free(buf)


cdef inline void _control_record(int control_type, int32_t coordinator_epoch, uint8_t *key,
                                 uint8_t *value) noexcept:
    """A transaction marker's record (kafka-spec.md a.5): key int16 version 0, int16 type;
    value int16 version 0, int32 coordinator epoch."""
    key[0] = 0
    key[1] = 0
    key[2] = <uint8_t>((control_type >> 8) & 0xff)
    key[3] = <uint8_t>(control_type & 0xff)
    value[0] = 0
    value[1] = 0
    value[2] = <uint8_t>((coordinator_epoch >> 24) & 0xff)
    value[3] = <uint8_t>((coordinator_epoch >> 16) & 0xff)
    value[4] = <uint8_t>((coordinator_epoch >> 8) & 0xff)
    value[5] = <uint8_t>(coordinator_epoch & 0xff)


def build_control_batch(int control_type, *, int64_t producer_id, int producer_epoch,
                        int32_t coordinator_epoch, int64_t timestamp, int64_t base_offset=0,
                        int32_t partition_leader_epoch=-1):
    cdef uint8_t key[4]
    cdef uint8_t value[6]
    _control_record(control_type, coordinator_epoch, key, value)
    cdef uint8_t buf[128]
    cdef hw_batch_writer w
    _raise_for(hw_batch_begin(&w, buf, 128, base_offset, partition_leader_epoch, 0x30,
                              producer_id, <int16_t>producer_epoch, -1, timestamp), "control")
    _raise_for(hw_batch_write_record(&w, timestamp, key, 4, value, 6, 0, 0), "control")
    cdef size_t size = hw_batch_finish(&w)
    return PyBytes_FromStringAndSize(<char *>buf, <Py_ssize_t>size)


# ---------------------------------------------------------------- records

@cython.final
@cython.freelist(256)
@cython.no_gc
cdef class Record:
    """One decoded record: offset, timestamp, key, value, headers [(str, bytes | None)]."""
    cdef readonly int64_t offset
    cdef readonly int64_t timestamp
    cdef readonly object key
    cdef readonly object value
    cdef list _headers  # None for "no headers": most records have none, skip the list

    def __init__(self, offset, timestamp, key, value, headers=None):
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self._headers = list(headers) if headers else None

    @property
    def headers(self):
        return self._headers if self._headers is not None else []

    def __eq__(self, other):
        if not isinstance(other, Record):
            return NotImplemented
        cdef Record o = other
        return (self.offset == o.offset and self.timestamp == o.timestamp
                and self.key == o.key and self.value == o.value and self.headers == o.headers)

    def __hash__(self):
        return hash((self.offset, self.timestamp, self.key, self.value))

    def __repr__(self):
        return (f"Record(offset={self.offset}, timestamp={self.timestamp}, key={self.key!r}, "
                f"value={self.value!r}, headers={self.headers!r})")


cdef inline object _bytes_or_none(const uint8_t *p, int64_t n):
    if n < 0:
        return None
    return PyBytes_FromStringAndSize(<const char *>p, <Py_ssize_t>n)




def decode_records(records, Py_ssize_t count, int64_t base_offset, int64_t base_timestamp,
                   int64_t log_append_time=-1):
    cdef _bytes_ref ref
    cdef const uint8_t *p
    cdef const uint8_t *end
    cdef const uint8_t *hp
    cdef const uint8_t *hk
    cdef const uint8_t *hv
    cdef int64_t hkl, hvl
    cdef hw_record r
    cdef hw_status st
    cdef Record rec
    cdef list out = []
    cdef list hdrs
    cdef Py_ssize_t i, j
    if count < 0:
        raise CorruptRecordError(f"negative record count {count}")
    _acquire(records, &ref)
    try:
        p = ref.ptr
        end = ref.ptr + ref.length
        if count > ref.length // 7 + 1:
            raise CorruptRecordError(f"{count} records cannot fit in {ref.length} bytes")
        for i in range(count):
            st = hw_record_read(&p, end, &r)
            if st != HW_OK:
                raise CorruptRecordError(f"record {i} of {count}: bad structure")
            rec = Record.__new__(Record)
            # Unsigned adds: wrap like Java's long arithmetic instead of signed-overflow UB.
            rec.offset = <int64_t>(<uint64_t>base_offset + <uint64_t>r.offset_delta)
            rec.timestamp = log_append_time if log_append_time >= 0 else <int64_t>(<uint64_t>base_timestamp + <uint64_t>r.timestamp_delta)
            rec.key = _bytes_or_none(r.key, r.key_len)
            rec.value = _bytes_or_none(r.value, r.value_len)
            if r.header_count:
                hdrs = []
                hp = r.headers
                for j in range(r.header_count):
                    hw_header_read(&hp, r.headers_end, &hk, &hkl, &hv, &hvl)
                    hdrs.append((PyUnicode_DecodeUTF8(<const char *>hk, <Py_ssize_t>hkl, "replace"),
                                 _bytes_or_none(hv, hvl)))
                rec._headers = hdrs
            out.append(rec)
        if p != end:
            raise CorruptRecordError(f"{end - p} bytes left after {count} records")
    finally:
        _release(&ref)
    return out


@cython.final
cdef class RecordIterator:
    """Iterates the records of whole batches in a buffer, in C: skips control batches and
    records below `start_offset`, decompresses compressed batches through `decompress`
    (a callable (BatchHeader, memoryview) -> bytes, one call per batch).

    Holds a buffer on `data` until exhausted (or deallocated)."""
    cdef _bytes_ref ref
    cdef bint holding
    cdef object decompress
    cdef object section
    cdef object data
    cdef size_t pos
    cdef const uint8_t *rpos
    cdef const uint8_t *rend
    cdef int64_t base_offset
    cdef int64_t base_timestamp
    cdef int64_t append_time
    cdef int64_t start_offset
    cdef int32_t remaining

    def __cinit__(self, data, int64_t start_offset=-1, decompress=None):
        self.data = data
        _acquire(data, &self.ref)
        self.holding = True
        self.decompress = decompress
        self.start_offset = start_offset
        self.pos = 0
        self.remaining = 0

    def __dealloc__(self):
        if self.holding:
            _release(&self.ref)

    cdef void _finish(self):
        if self.holding:
            _release(&self.ref)
            self.holding = False
        self.section = None
        self.data = None

    def __iter__(self):
        return self

    cdef int _next_batch(self) except -1:
        """Load the next batch with records to deliver. Returns 0 at the end."""
        cdef hw_batch_header h
        cdef hw_status st
        cdef size_t size
        cdef _bytes_ref sref
        while True:
            if not self.holding or self.pos >= <size_t>self.ref.length:
                return 0
            st = hw_batch_parse_header(self.ref.ptr + self.pos, <size_t>self.ref.length - self.pos, &h)
            if st == HW_ERR_TRUNCATED:
                return 0  # a partial batch at the end of a fetch is normal
            _raise_for(st, f"batch at {self.pos}")
            size = <size_t>h.batch_length + HW_LOG_OVERHEAD
            if (h.attributes & 0x20) or h.base_offset + h.last_offset_delta < self.start_offset \
                    or h.records_count <= 0:
                self.pos += size
                continue
            self.base_offset = h.base_offset
            self.base_timestamp = h.base_timestamp
            self.append_time = h.max_timestamp if (h.attributes & 0x08) else -1
            self.remaining = h.records_count
            if h.attributes & 0x07:
                if self.decompress is None:
                    raise CorruptRecordError("compressed batch and no decompressor")
                view = memoryview(self.data)[self.pos:self.pos + size]
                self.section = self.decompress(_header_from(&h), view)
                view.release()
                if not PyBytes_CheckExact(self.section):
                    self.section = bytes(self.section)
                self.rpos = <const uint8_t *>PyBytes_AS_STRING(self.section)
                self.rend = self.rpos + PyBytes_GET_SIZE(self.section)
            else:
                self.section = None
                self.rpos = self.ref.ptr + self.pos + HW_BATCH_HEADER_SIZE
                self.rend = self.ref.ptr + self.pos + size
            self.pos += size
            return 1

    cdef int _advance(self, hw_record *r, int64_t *offset) except -1:
        """Read the next deliverable record into r/offset. Returns 0 at the end."""
        while True:
            if self.remaining <= 0:
                if not self._next_batch():
                    self._finish()
                    return 0
                continue
            if hw_record_read(&self.rpos, self.rend, r) != HW_OK:
                self._finish()
                raise CorruptRecordError(f"record of batch at offset {self.base_offset}: bad structure")
            self.remaining -= 1
            offset[0] = <int64_t>(<uint64_t>self.base_offset + <uint64_t>r.offset_delta)
            if offset[0] >= self.start_offset:
                return 1

    cdef inline int64_t _timestamp_of(self, hw_record *r):
        if self.append_time >= 0:
            return self.append_time
        return <int64_t>(<uint64_t>self.base_timestamp + <uint64_t>r.timestamp_delta)

    def __next__(self):
        cdef hw_record r
        cdef Record rec
        cdef int64_t offset
        if not self._advance(&r, &offset):
            raise StopIteration
        rec = Record.__new__(Record)
        rec.offset = offset
        rec.timestamp = self._timestamp_of(&r)
        rec.key = _bytes_or_none(r.key, r.key_len)
        rec.value = _bytes_or_none(r.value, r.value_len)
        if r.header_count:
            rec._headers = _decode_headers(&r)
        return rec


cdef list _decode_headers(hw_record *r):
    cdef list hdrs = []
    cdef const uint8_t *hp = r.headers
    cdef const uint8_t *hk
    cdef const uint8_t *hv
    cdef int64_t hkl, hvl
    cdef Py_ssize_t j
    for j in range(r.header_count):
        hw_header_read(&hp, r.headers_end, &hk, &hkl, &hv, &hvl)
        hdrs.append((PyUnicode_DecodeUTF8(<const char *>hk, <Py_ssize_t>hkl, "replace"),
                     _bytes_or_none(hv, hvl)))
    return hdrs


# Column arrays of dead RecordColumns, reused by the next decode_columns. A read of ~1 MiB of
# small records needs six ~70 KB columns; fresh ones cost more than the walk that fills them
# (malloc returns freed memory to the OS, so every read page-faults its columns in again).
# Only arrays referenced by nothing else are taken (a kept column, or a buffer exported from
# one, holds a reference); the pool is bounded in count and bytes.
cdef list _column_pool = []
cdef Py_ssize_t _column_pool_bytes = 0
cdef Py_ssize_t COLUMN_POOL_MAX = 96            # 16 reads of 6 columns
cdef Py_ssize_t COLUMN_POOL_MAX_BYTES = 32 << 20
cdef Py_ssize_t COLUMN_MAX_POOLED = 1 << 20     # items (8 MiB): bigger columns are freed


cdef void _pool_put(PyObject *col) noexcept:
    """Keep `col` (a borrowed pointer, so the check sees the true count) if only the dying
    RecordColumns holds it."""
    global _column_pool_bytes
    cdef Py_ssize_t n
    if col.ob_refcnt != 1 or _column_pool is None or len(_column_pool) >= COLUMN_POOL_MAX:
        return
    cdef object o = <object>col
    if type(o) is not array.array:
        return
    n = Py_SIZE(o)
    if n > COLUMN_MAX_POOLED or _column_pool_bytes + n * 8 > COLUMN_POOL_MAX_BYTES:
        return
    _column_pool.append(o)
    _column_pool_bytes += n * 8


cdef array.array _column(Py_ssize_t n):
    """An array('q') of n uninitialized items, from the pool when it has one."""
    global _column_pool_bytes
    cdef array.array a
    if not _column_pool:
        return array.clone(_Q_TEMPLATE, n, zero=False)
    a = _column_pool.pop()
    _column_pool_bytes -= Py_SIZE(a) * 8
    array.resize_smart(a, n)  # keeps the memory unless n is far smaller or larger
    return a


@cython.final
cdef class RecordColumns:
    """Records of whole batches decoded into columns (no Python object per record).

    `offsets`, `timestamps`, `key_offsets`, `key_lengths`, `value_offsets`, `value_lengths` are
    array('q') of equal length (numpy: np.frombuffer(col, dtype=np.int64)); lengths are -1
    for null. Key and value bytes live in `data`: the read view itself when every batch is
    uncompressed (zero-copy), else one buffer holding the decompressed record sections.
    Control batches and records below the start offset are left out."""
    cdef readonly object offsets
    cdef readonly object timestamps
    cdef readonly object key_offsets
    cdef readonly object key_lengths
    cdef readonly object value_offsets
    cdef readonly object value_lengths
    cdef readonly object data

    def __dealloc__(self):
        # Hand the columns nobody else holds back to the pool for the next decode.
        _pool_put(<PyObject *>self.offsets)
        _pool_put(<PyObject *>self.timestamps)
        _pool_put(<PyObject *>self.key_offsets)
        _pool_put(<PyObject *>self.key_lengths)
        _pool_put(<PyObject *>self.value_offsets)
        _pool_put(<PyObject *>self.value_lengths)

    def __len__(self):
        return len(self.offsets)

    def value(self, Py_ssize_t i):
        cdef int64_t n = self.value_lengths[i]
        if n < 0:
            return None
        cdef int64_t p = self.value_offsets[i]
        return memoryview(self.data)[p:p + n]

    def key(self, Py_ssize_t i):
        cdef int64_t n = self.key_lengths[i]
        if n < 0:
            return None
        cdef int64_t p = self.key_offsets[i]
        return memoryview(self.data)[p:p + n]

    def values(self):
        """Every value as bytes (None for null): one object per record, for convenience."""
        cdef _bytes_ref ref
        cdef list out = []
        cdef Py_ssize_t i, n = len(self.offsets)
        cdef int64_t[:] vo = self.value_offsets
        cdef int64_t[:] vl = self.value_lengths
        _acquire(self.data, &ref)
        try:
            for i in range(n):
                out.append(_bytes_or_none(ref.ptr + vo[i], vl[i]))
        finally:
            _release(&ref)
        return out


cdef inline bint _in_runs(list runs, Py_ssize_t *r, size_t pos):
    """Whether the batch at `pos` lies in one of `runs` (sorted [start, end) ranges on batch
    boundaries; None = everything); `r` walks them forward with the batches."""
    if runs is None:
        return True
    while r[0] < len(runs) and <size_t>runs[r[0]][1] <= pos:
        r[0] += 1
    return r[0] < len(runs) and <size_t>runs[r[0]][0] <= pos


def decode_columns(data, int64_t start_offset=-1, decompress=None, list runs=None):
    """Decode the records of the whole batches in `data` into a RecordColumns; with `runs`
    ([start, end) position ranges, as committed_runs() gives), only the batches inside them
    (one RecordColumns for a read_committed read, whatever the aborted batches between)."""
    cdef _bytes_ref ref
    cdef hw_batch_header h
    cdef hw_record r
    cdef hw_status st
    cdef size_t pos = 0, size
    cdef Py_ssize_t count = 0, k = 0
    cdef bint compressed = False
    cdef list sections = []
    cdef const uint8_t *p
    cdef const uint8_t *end
    cdef const uint8_t *base
    cdef int64_t off, ts, append_time, i
    cdef size_t kept = 0
    cdef int64_t[:] o_, t_, ko, kl, vo, vl
    cdef Py_ssize_t run = 0
    _acquire(data, &ref)
    try:
        # Pass 1: count records, find compressed batches.
        while pos < <size_t>ref.length:
            st = hw_batch_parse_header(ref.ptr + pos, <size_t>ref.length - pos, &h)
            if st == HW_ERR_TRUNCATED:
                break
            _raise_for(st, f"batch at {pos}")
            size = <size_t>h.batch_length + HW_LOG_OVERHEAD
            if not _in_runs(runs, &run, pos):
                pos += size
                continue
            if not (h.attributes & 0x20) and h.records_count > 0 and h.base_offset + h.last_offset_delta >= start_offset:
                count += h.records_count
                if h.attributes & 0x07:
                    compressed = True
            pos += size
        offsets = _column(count)
        timestamps = _column(count)
        koff = _column(count)
        klen = _column(count)
        voff = _column(count)
        vlen = _column(count)
        o_ = offsets
        t_ = timestamps
        ko = koff
        kl = klen
        vo = voff
        vl = vlen
        out_data = data
        buf = None
        if compressed:
            buf = bytearray()
        # Pass 2: decode.
        pos = 0
        run = 0
        while pos < <size_t>ref.length and k < count:
            st = hw_batch_parse_header(ref.ptr + pos, <size_t>ref.length - pos, &h)
            if st != HW_OK:
                break
            size = <size_t>h.batch_length + HW_LOG_OVERHEAD
            if (h.attributes & 0x20) or h.records_count <= 0 or h.base_offset + h.last_offset_delta < start_offset or not _in_runs(runs, &run, pos):
                pos += size
                continue
            append_time = h.max_timestamp if (h.attributes & 0x08) else -1
            if h.attributes & 0x07:
                if decompress is None:
                    raise CorruptRecordError("compressed batch and no decompressor")
                view = memoryview(data)[pos:pos + size]
                section = decompress(_header_from(&h), view)
                view.release()
                sections.append(section)
                p = <const uint8_t *>PyBytes_AS_STRING(section) if PyBytes_CheckExact(section) else NULL
                if p == NULL:
                    section = bytes(section)
                    sections[len(sections) - 1] = section  # (wraparound is off)
                    p = <const uint8_t *>PyBytes_AS_STRING(section)
                end = p + PyBytes_GET_SIZE(section)
                base = p - len(buf)  # positions are relative to the concatenation
                buf += section
            else:
                p = ref.ptr + pos + HW_BATCH_HEADER_SIZE
                end = ref.ptr + pos + size
                if compressed:
                    base = p - len(buf)
                    buf += memoryview(data)[pos + HW_BATCH_HEADER_SIZE:pos + size]
                else:
                    base = ref.ptr
            if h.records_count > count - k:
                raise CorruptRecordError(f"batch at offset {h.base_offset}: record count changed")
            st = hw_records_columns(p, end, h.records_count, h.base_offset, h.base_timestamp,
                                    append_time, start_offset, base, &o_[k], &t_[k], &ko[k],
                                    &kl[k], &vo[k], &vl[k], &kept)
            k += <Py_ssize_t>kept
            if st != HW_OK:
                raise CorruptRecordError(f"record of batch at offset {h.base_offset}: bad structure")
            pos += size
    finally:
        _release(&ref)
    cdef RecordColumns c = RecordColumns.__new__(RecordColumns)
    if k < count:
        for a in (offsets, timestamps, koff, klen, voff, vlen):
            array.resize(a, k)
    c.offsets = offsets
    c.timestamps = timestamps
    c.key_offsets = koff
    c.key_lengths = klen
    c.value_offsets = voff
    c.value_lengths = vlen
    c.data = bytes(buf) if compressed else out_data
    return c



# ---------------------------------------------------------------- indexes

@cython.final
cdef class ScanResult:
    cdef readonly Py_ssize_t valid_bytes
    cdef readonly Py_ssize_t batches
    cdef readonly int status
    cdef readonly int64_t first_offset
    cdef readonly int64_t next_offset
    cdef readonly int64_t max_timestamp
    cdef readonly int64_t offset_of_max_timestamp
    cdef readonly Py_ssize_t bytes_since_index

    def __repr__(self):
        return (f"ScanResult(valid_bytes={self.valid_bytes}, batches={self.batches}, "
                f"status={self.status}, next_offset={self.next_offset})")


cdef class _Index:
    cdef hw_index ix
    cdef readonly str path
    cdef bint is_open

    cdef int _open(self, str path, int64_t base_offset, size_t max_bytes,
                   size_t entry_size) except -1:
        cdef int err = 0
        cdef bytes p = os.fsencode(path)
        if self.is_open:
            raise ValueError("index already open")
        self.path = path
        _raise_for(hw_index_open(&self.ix, p, entry_size, base_offset, max_bytes, &err),
                   f"open {path}", &err)
        self.is_open = True
        return 0

    def __dealloc__(self):
        cdef int err = 0
        if self.is_open:
            hw_index_close(&self.ix, 0, &err)

    @property
    def entries(self):
        return self.ix.entries

    @property
    def max_entries(self):
        return self.ix.max_entries

    @property
    def base_offset(self):
        return self.ix.base_offset

    @property
    def is_full(self):
        return self.ix.entries >= self.ix.max_entries

    def truncate_entries(self, size_t n):
        if n < self.ix.entries:
            self.ix.entries = n

    def check(self, size_t segment_size):
        self._check_open()
        return hw_index_check(&self.ix, segment_size) == HW_OK

    def flush(self):
        cdef int err = 0
        self._check_open()
        _raise_for(hw_index_flush(&self.ix, &err), f"msync {self.path}", &err)

    def close(self, bint trim=True):
        cdef int err = 0
        cdef hw_status st
        if not self.is_open:
            return
        self.is_open = False
        st = hw_index_close(&self.ix, trim, &err)
        _raise_for(st, f"close {self.path}", &err)

    cdef int _check_open(self) except -1:
        if not self.is_open:
            raise ValueError(f"index {self.path} is closed")
        return 0


@cython.final
cdef class OffsetIndex(_Index):
    """.index: relative offset -> byte position, 8-byte entries."""

    def __init__(self, str path, int64_t base_offset, size_t max_bytes):
        self._open(path, base_offset, max_bytes, HW_OFFSET_ENTRY)

    def append(self, int64_t offset, size_t position):
        """Returns False if the index is full (roll); raises on a relative-offset overflow."""
        self._check_open()
        cdef int err = 0
        cdef hw_status st = hw_offset_index_write(&self.ix, offset, position, &err)
        if st == HW_ERR_FULL:
            return False
        _raise_for(st, f"index {self.path}", &err)
        return True

    def lookup(self, int64_t offset):
        cdef int64_t o
        cdef size_t pos
        self._check_open()
        hw_offset_index_lookup(&self.ix, offset, &o, &pos)
        return o, pos

    def entry(self, size_t n):
        cdef int64_t o
        cdef size_t pos
        if n >= self.ix.entries:
            raise IndexError(n)
        hw_offset_index_entry(&self.ix, n, &o, &pos)
        return o, pos

    def entry_index(self, int64_t offset):
        """Number of entries with offset < `offset` (for truncation)."""
        cdef size_t lo = 0, hi = self.ix.entries, mid
        cdef int64_t o
        cdef size_t pos
        while lo < hi:
            mid = (lo + hi) // 2
            hw_offset_index_entry(&self.ix, mid, &o, &pos)
            if o < offset:
                lo = mid + 1
            else:
                hi = mid
        return lo


@cython.final
cdef class TimeIndex(_Index):
    """.timeindex: timestamp -> relative offset, 12-byte entries."""

    def __init__(self, str path, int64_t base_offset, size_t max_bytes):
        self._open(path, base_offset, max_bytes, HW_TIME_ENTRY)

    def append(self, int64_t timestamp, int64_t offset):
        self._check_open()
        cdef int err = 0
        cdef hw_status st = hw_time_index_write(&self.ix, timestamp, offset, &err)
        if st == HW_ERR_FULL:
            return False
        _raise_for(st, f"index {self.path}", &err)
        return True

    def lookup(self, int64_t timestamp):
        cdef int64_t ts, o
        self._check_open()
        hw_time_index_lookup(&self.ix, timestamp, &ts, &o)
        return ts, o

    def entry(self, size_t n):
        cdef int64_t ts, o
        if n >= self.ix.entries:
            raise IndexError(n)
        hw_time_index_entry(&self.ix, n, &ts, &o)
        return ts, o

    def last(self):
        if self.ix.entries == 0:
            return -1, self.ix.base_offset
        return self.entry(self.ix.entries - 1)

    def entry_index(self, int64_t offset):
        """Number of entries whose offset < `offset`."""
        cdef size_t n = 0
        cdef int64_t ts, o
        while n < self.ix.entries:
            hw_time_index_entry(&self.ix, n, &ts, &o)
            if o >= offset:
                break
            n += 1
        return n


# ---------------------------------------------------------------- segments

cdef inline size_t _zz_size(size_t v) nogil:
    """Bytes of the zig-zag varint of a non-negative v."""
    cdef size_t n = 1
    v <<= 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef size_t _fixed_batch_size(size_t width, size_t count):
    """Exact size of the batch hw_batch_write_fixed builds (timestamp delta 0): records differ
    only in the offset delta's varint, whose size changes at 64, 8192, 2^20 and 2^27."""
    cdef size_t total = HW_BATCH_HEADER_SIZE, od = 0, end, body
    cdef size_t fixed = 1 + 1 + 1 + _zz_size(width) + width + 1
    cdef size_t limits[5]
    limits[0] = 64
    limits[1] = 8192
    limits[2] = 1 << 20
    limits[3] = 1 << 27
    limits[4] = <size_t>1 << 62
    cdef int k
    for k in range(5):
        if od >= count:
            break
        end = limits[k] if limits[k] < count else count
        if end > od:
            body = fixed + <size_t>(k + 1)
            total += (end - od) * (_zz_size(body) + body)
            od = end
    return total


@cython.final
cdef hw_status _build_fixed(hw_batch_writer *w, uint8_t *buf, size_t bound, int64_t base_offset,
                            int32_t partition_leader_epoch, int64_t producer_id, int producer_epoch,
                            int32_t base_sequence, int64_t timestamp, const uint8_t *data,
                            size_t width, size_t count, size_t *size) noexcept nogil:
    cdef hw_status st
    hw_batch_begin(w, buf, bound, base_offset, partition_leader_epoch, 0,
                   producer_id, <int16_t>producer_epoch, base_sequence, timestamp)
    st = hw_batch_write_fixed(w, data, width, count, timestamp)
    size[0] = hw_batch_finish(w)
    return st


cdef hw_status _build_offsets(hw_batch_writer *w, uint8_t *buf, size_t bound, int64_t base_offset,
                              int32_t partition_leader_epoch, int64_t producer_id, int producer_epoch,
                              int32_t base_sequence, int64_t timestamp, const uint8_t *data,
                              const int64_t *offs, size_t count, size_t *size) noexcept nogil:
    cdef hw_status st = HW_OK
    cdef size_t i
    hw_batch_begin(w, buf, bound, base_offset, partition_leader_epoch, 0,
                   producer_id, <int16_t>producer_epoch, base_sequence, timestamp)
    for i in range(count):
        st = hw_batch_write_record(w, timestamp, NULL, -1, data + offs[i], offs[i + 1] - offs[i], 0, 0)
        if st != HW_OK:
            break
    size[0] = hw_batch_finish(w)
    return st


cdef void _stamp_copy(uint8_t *b, const uint8_t *src, size_t n, int64_t base_offset,
                      int32_t partition_leader_epoch, int64_t log_append_time) noexcept nogil:
    """A client's batch copied with base offset and leader epoch stamped; with a log append
    time, also the LogAppendTime attribute, max timestamp and CRC."""
    cdef int16_t attrs
    memcpy(b, src, n)
    hw_store_i64(b, base_offset)
    hw_store_i32(b + 12, partition_leader_epoch)
    if log_append_time >= 0:
        attrs = hw_load_i16(b + 21)
        hw_store_i16(b + 21, <int16_t>(attrs | 0x08))
        hw_store_i64(b + 35, log_append_time)
        hw_batch_update_crc(b, n)


cdef class Segment:
    """A mapped .log file (csrc/hw_segment.h). Appends pwrite batches built in a staging
    buffer (kept between appends: a fresh 1 MiB malloc is an mmap plus 256 page faults);
    reads are zero-copy views that pin the mapping."""
    cdef hw_segment seg
    cdef uint8_t *stage
    cdef size_t stage_cap
    cdef readonly str path
    cdef readonly int exports
    cdef bint is_open

    def __cinit__(self, str path, size_t max_bytes=0, bint create=False):
        cdef int err = 0
        cdef bytes p = os.fsencode(path)
        self.path = path
        _raise_for(hw_segment_open(&self.seg, p, max_bytes, create, &err), f"open {path}", &err)
        self.is_open = True

    def __dealloc__(self):
        cdef int err = 0
        if self.is_open and self.exports == 0:
            hw_segment_close(&self.seg, 0, &err)
        free(self.stage)
        self.stage = NULL

    cdef uint8_t *_staging(self, size_t size) except NULL:
        cdef uint8_t *p
        if size > self.stage_cap:
            p = <uint8_t *>realloc(self.stage, size)
            if p == NULL:
                raise MemoryError()
            self.stage = p
            self.stage_cap = size
        return self.stage

    cdef int _check_open(self) except -1:
        if not self.is_open:
            raise ValueError(f"segment {self.path} is closed")
        return 0

    @property
    def size(self):
        return self.seg.size

    @size.setter
    def size(self, size_t value):
        """Set the data size after a recovery scan (bytes above it are ignored)."""
        if value > self.seg.file_len:
            raise ValueError("size beyond the file")
        self.seg.size = value
        if self.seg.synced > value:
            self.seg.synced = value

    @property
    def file_len(self):
        return self.seg.file_len

    @property
    def map_len(self):
        return self.seg.map_len

    @property
    def synced(self):
        return self.seg.synced

    @property
    def exported_views(self):
        return self.exports

    @property
    def closed(self):
        return not self.is_open

    def __getbuffer__(self, Py_buffer *buffer, int flags):
        if not self.is_open:
            raise BufferError("segment is closed")
        if flags & PyBUF_WRITABLE:
            raise BufferError("segment views are read-only")
        buffer.buf = <void *>self.seg.map
        buffer.obj = self
        buffer.len = <Py_ssize_t>self.seg.size
        buffer.readonly = 1
        buffer.itemsize = 1
        buffer.format = NULL
        buffer.ndim = 1
        buffer.shape = NULL
        buffer.strides = NULL
        buffer.suboffsets = NULL
        buffer.internal = NULL
        self.exports += 1

    def __releasebuffer__(self, Py_buffer *buffer):
        self.exports -= 1

    def view(self, Py_ssize_t position, Py_ssize_t size):
        """Zero-copy read-only view of [position, position+size)."""
        self._check_open()
        if position < 0 or size < 0 or <size_t>(position + size) > self.seg.size:
            raise IndexError(f"view [{position}, {position + size}) outside [0, {self.seg.size})")
        return memoryview(self)[position:position + size]

    def read(self, Py_ssize_t position, Py_ssize_t size):
        """Copy of [position, position+size)."""
        self._check_open()
        if position < 0 or size < 0 or <size_t>(position + size) > self.seg.size:
            raise IndexError(f"read [{position}, {position + size}) outside [0, {self.seg.size})")
        return PyBytes_FromStringAndSize(<const char *>self.seg.map + position, size)

    def reserve(self, size_t need):
        cdef int err = 0
        self._check_open()
        _raise_for(hw_segment_reserve(&self.seg, need, &err), f"allocate {self.path}", &err)

    def append(self, data):
        """Copy a complete batch (or batches) at the end. Returns the position written at."""
        cdef _bytes_ref ref
        cdef int err = 0
        cdef hw_status st
        cdef size_t pos = self.seg.size
        self._check_open()
        _acquire(data, &ref)
        try:
            if <size_t>ref.length >= NOGIL_BYTES:
                with nogil:
                    st = hw_segment_append(&self.seg, ref.ptr, <size_t>ref.length, &err)
            else:
                st = hw_segment_append(&self.seg, ref.ptr, <size_t>ref.length, &err)
        finally:
            _release(&ref)
        _raise_for(st, f"append {self.path}", &err)
        return pos

    cdef object _write_staged(self, uint8_t *buf, size_t size, Py_ssize_t max_batch_bytes):
        """pwrite a batch built in `buf` (freed by the caller). Returns (position, size)."""
        cdef size_t pos
        self._write_staged_at(buf, size, max_batch_bytes, &pos)
        return pos, size

    cdef int _write_staged_at(self, uint8_t *buf, size_t size, Py_ssize_t max_batch_bytes,
                              size_t *pos_out) except -1:
        """_write_staged, the position written at in *pos_out."""
        cdef int err = 0
        cdef hw_status st
        cdef size_t pos = self.seg.size
        pos_out[0] = pos
        if max_batch_bytes >= 0 and size > <size_t>max_batch_bytes:
            raise MessageTooLargeError(
                f"batch of {size} bytes exceeds max.message.bytes={max_batch_bytes}")
        if size >= NOGIL_BYTES:
            with nogil:
                st = hw_segment_append(&self.seg, buf, size, &err)
        else:
            st = hw_segment_append(&self.seg, buf, size, &err)
        if self.stage_cap > (64 << 20):
            # Do not keep a huge staging buffer around after an outsized batch.
            free(self.stage)
            self.stage = NULL
            self.stage_cap = 0
        _raise_for(st, f"append {self.path}", &err)
        return 0

    def append_records(self, values, keys=None, int64_t timestamp=-1, int64_t base_offset=0,
                       int32_t partition_leader_epoch=-1, int64_t producer_id=-1,
                       int producer_epoch=-1, int32_t base_sequence=-1, int attributes=0,
                       timestamps=None, headers=None, Py_ssize_t max_batch_bytes=-1):
        """Build one batch and append it. Returns (position, size). Raises
        MessageTooLargeError (nothing written) if it is larger than max_batch_bytes."""
        cdef list vals = values if type(values) is list else list(values)
        cdef Py_ssize_t n = len(vals)
        cdef list ks = _as_list(keys, n, "keys")
        cdef list hs = _as_list(headers, n, "headers")
        cdef list tss = _as_list(timestamps, n, "timestamps")
        cdef hw_batch_writer w
        cdef size_t bound
        cdef uint8_t *buf
        self._check_open()
        if n == 0:
            raise ValueError("a batch needs at least one record")
        if timestamp == -1 and tss is None:
            timestamp = _now_ms()
        cdef int64_t base_ts = tss[0] if tss is not None else timestamp
        cdef _plain_values plain
        if ks is None and hs is None and tss is None:
            # The producer's case: one walk over the list gives the pointers, lengths and the
            # size bound (the general path walks it three times).
            _plain_values_init(&plain, n)
            try:
                if _plain_values_fill(&plain, vals):
                    bound = HW_BATCH_HEADER_SIZE + <size_t>n * (HW_RECORD_MAX_OVERHEAD + 15) + plain.payload
                    buf = self._staging(bound)
                    hw_batch_begin(&w, buf, bound, base_offset, partition_leader_epoch,
                                   <int16_t>attributes, producer_id, <int16_t>producer_epoch,
                                   base_sequence, base_ts)
                    # The list holds references to the values for the duration of the call.
                    _raise_for(hw_batch_write_values(&w, plain.ptrs, plain.lens, <size_t>n, timestamp),
                               "record")
                    return self._write_staged(buf, hw_batch_finish(&w), max_batch_bytes)
            finally:
                _plain_values_free(&plain)
        bound = HW_BATCH_HEADER_SIZE + <size_t>_bound(vals, ks, hs)
        buf = self._staging(bound)
        if True:
            hw_batch_begin(&w, buf, bound, base_offset, partition_leader_epoch,
                           <int16_t>attributes, producer_id, <int16_t>producer_epoch,
                           base_sequence, base_ts)
            _write_records(&w, vals, ks, hs, tss, timestamp)
            return self._write_staged(buf, hw_batch_finish(&w), max_batch_bytes)

    def append_one(self, value, key, int64_t timestamp, int64_t base_offset,
                   int32_t partition_leader_epoch, int64_t producer_id, int producer_epoch,
                   int32_t base_sequence, Py_ssize_t max_batch_bytes):
        """append_records([value], [key] or None, timestamp, ...) for one record (value and
        key bytes-like or None), positional arguments only: a single-record send pays for one
        call here instead of append_records' list walks and keyword parsing. The bytes are
        append_records' (tests compare them). Returns (position, size)."""
        cdef size_t pos, size
        self._append_one(value, key, timestamp, base_offset, partition_leader_epoch, producer_id,
                         producer_epoch, base_sequence, max_batch_bytes, &pos, &size)
        return pos, size

    cdef int _append_one(self, value, key, int64_t timestamp, int64_t base_offset,
                         int32_t partition_leader_epoch, int64_t producer_id, int producer_epoch,
                         int32_t base_sequence, Py_ssize_t max_batch_bytes,
                         size_t *pos_out, size_t *size_out) except -1:
        """append_one() for C callers (PartitionLogCore): position and size through pointers."""
        cdef _bytes_ref kref, vref
        cdef hw_batch_writer w
        cdef size_t bound
        cdef uint8_t *buf
        cdef hw_status st
        self._check_open()
        _acquire(value, &vref)
        try:
            _acquire(key, &kref)
            try:
                # Lengths are -1 for None; the record's framing fits in the per-record bound
                # append_records uses (HW_RECORD_MAX_OVERHEAD + 15).
                bound = (HW_BATCH_HEADER_SIZE + HW_RECORD_MAX_OVERHEAD + 15
                         + <size_t>(vref.length if vref.length > 0 else 0)
                         + <size_t>(kref.length if kref.length > 0 else 0))
                buf = self._staging(bound)
                hw_batch_begin(&w, buf, bound, base_offset, partition_leader_epoch, 0,
                               producer_id, <int16_t>producer_epoch, base_sequence, timestamp)
                st = hw_batch_write_record(&w, timestamp, kref.ptr, kref.length, vref.ptr,
                                           vref.length, 0, 0)
            finally:
                _release(&kref)
        finally:
            _release(&vref)
        _raise_for(st, "record")
        size_out[0] = hw_batch_finish(&w)
        return self._write_staged_at(buf, size_out[0], max_batch_bytes, pos_out)

    cdef int _append_control(self, int control_type, int64_t timestamp, int64_t base_offset,
                             int32_t partition_leader_epoch, int64_t producer_id,
                             int producer_epoch, int32_t coordinator_epoch,
                             Py_ssize_t max_batch_bytes, size_t *pos_out,
                             size_t *size_out) except -1:
        """append_batch(build_control_batch(...), base_offset, ...) built in place: the same
        bytes (a test compares them) without the batch object or its header's parse."""
        cdef uint8_t key[4]
        cdef uint8_t value[6]
        cdef hw_batch_writer w
        cdef uint8_t *buf
        self._check_open()
        _control_record(control_type, coordinator_epoch, key, value)
        buf = self._staging(128)
        _raise_for(hw_batch_begin(&w, buf, 128, base_offset, partition_leader_epoch, 0x30,
                                  producer_id, <int16_t>producer_epoch, -1, timestamp), "control")
        _raise_for(hw_batch_write_record(&w, timestamp, key, 4, value, 6, 0, 0), "control")
        size_out[0] = hw_batch_finish(&w)
        return self._write_staged_at(buf, size_out[0], max_batch_bytes, pos_out)

    def append_fixed(self, data, size_t width, size_t count, int64_t timestamp=-1,
                     int64_t base_offset=0, int32_t partition_leader_epoch=-1,
                     Py_ssize_t max_batch_bytes=-1, int64_t producer_id=-1,
                     int producer_epoch=-1, int32_t base_sequence=-1):
        """One batch of `count` values, value i = data[i*width:(i+1)*width] (numpy S<n>)."""
        cdef _bytes_ref ref
        cdef hw_batch_writer w
        cdef size_t size = 0, bound
        cdef hw_status st = HW_OK
        cdef uint8_t *buf
        self._check_open()
        if count == 0:
            raise ValueError("a batch needs at least one record")
        if timestamp == -1:
            timestamp = _now_ms()
        _acquire(data, &ref)
        try:
            if <size_t>ref.length < width * count:
                raise ValueError("data is shorter than width * count")
            size = _fixed_batch_size(width, count)
            if max_batch_bytes >= 0 and size > <size_t>max_batch_bytes:
                # Known exactly before building: nothing is built or written.
                raise MessageTooLargeError(
                    f"batch of {size} bytes exceeds max.message.bytes={max_batch_bytes}")
            bound = HW_BATCH_HEADER_SIZE + count * (HW_RECORD_MAX_OVERHEAD + 15 + width)
            buf = self._staging(bound)
            # A small build is over before another thread could use the GIL: releasing it
            # would only hand it around and cost a wakeup to get it back.
            if bound >= NOGIL_BYTES:
                with nogil:
                    st = _build_fixed(&w, buf, bound, base_offset, partition_leader_epoch, producer_id,
                                      producer_epoch, base_sequence, timestamp, ref.ptr, width, count, &size)
            else:
                st = _build_fixed(&w, buf, bound, base_offset, partition_leader_epoch, producer_id,
                                  producer_epoch, base_sequence, timestamp, ref.ptr, width, count, &size)
            _raise_for(st, "record")
            return self._write_staged(buf, size, max_batch_bytes)
        finally:
            _release(&ref)

    def append_offsets(self, data, offsets, size_t count, int64_t timestamp=-1,
                       int64_t base_offset=0, int32_t partition_leader_epoch=-1,
                       Py_ssize_t max_batch_bytes=-1, int64_t producer_id=-1,
                     int producer_epoch=-1, int32_t base_sequence=-1):
        """One batch of `count` values, value i = data[offsets[i]:offsets[i+1]]; `offsets`
        holds count+1 native int64s (a numpy int64 array or array('q'))."""
        cdef _bytes_ref ref, oref
        cdef hw_batch_writer w
        cdef size_t size = 0, i, bound
        cdef const int64_t *offs
        cdef hw_status st = HW_OK
        cdef uint8_t *buf
        self._check_open()
        if count == 0:
            raise ValueError("a batch needs at least one record")
        if timestamp == -1:
            timestamp = _now_ms()
        _acquire(data, &ref)
        try:
            _acquire(offsets, &oref)
            try:
                if <size_t>oref.length < (count + 1) * 8:
                    raise ValueError("offsets needs count + 1 int64 entries")
                offs = <const int64_t *>oref.ptr
                for i in range(count):
                    if offs[i] < 0 or offs[i + 1] < offs[i] or offs[i + 1] > ref.length:
                        raise ValueError(f"offsets[{i}:{i + 2}] out of order or out of range")
                bound = HW_BATCH_HEADER_SIZE + count * (HW_RECORD_MAX_OVERHEAD + 15) + <size_t>(offs[count] - offs[0])
                buf = self._staging(bound)
                if True:
                    if bound >= NOGIL_BYTES:
                        with nogil:
                            st = _build_offsets(&w, buf, bound, base_offset, partition_leader_epoch, producer_id,
                                                producer_epoch, base_sequence, timestamp, ref.ptr, offs, count, &size)
                    else:
                        st = _build_offsets(&w, buf, bound, base_offset, partition_leader_epoch, producer_id,
                                            producer_epoch, base_sequence, timestamp, ref.ptr, offs, count, &size)
                    _raise_for(st, "record")
                    return self._write_staged(buf, size, max_batch_bytes)
            finally:
                _release(&oref)
        finally:
            _release(&ref)

    def append_batch(self, data, int64_t base_offset, int32_t partition_leader_epoch,
                     int64_t log_append_time=-1):
        """Append one client-built batch with base offset and leader epoch stamped (the CRC
        does not cover them). With log_append_time >= 0, also set the LogAppendTime attribute
        and max_timestamp, and recompute the CRC. Returns (position, size)."""
        cdef _bytes_ref ref
        cdef uint8_t *b
        self._check_open()
        _acquire(data, &ref)
        try:
            if ref.length < HW_BATCH_HEADER_SIZE:
                raise TruncatedError("batch shorter than its header")
            b = self._staging(<size_t>ref.length)
            if True:
                # A small copy is over before another thread could use the GIL (see above).
                if <size_t>ref.length >= NOGIL_BYTES:
                    with nogil:
                        _stamp_copy(b, ref.ptr, <size_t>ref.length, base_offset, partition_leader_epoch, log_append_time)
                else:
                    _stamp_copy(b, ref.ptr, <size_t>ref.length, base_offset, partition_leader_epoch, log_append_time)
                return self._write_staged(b, <size_t>ref.length, -1)
        finally:
            _release(&ref)

    def next_offset_after(self, size_t start, size_t end):
        """The offset after the last whole batch in [start, end): its last offset + 1, or -1
        if no whole batch is there. Reads only the headers (a reader's next fetch position
        after the batches extent() returned, without walking them in Python)."""
        cdef hw_batch_header h
        cdef size_t pos = start
        cdef int64_t nxt = -1
        self._check_open()
        if end > self.seg.size or start > end:
            raise IndexError("range outside the segment")
        while pos < end:
            if hw_batch_parse_header(self.seg.map + pos, end - pos, &h) != HW_OK:
                break
            nxt = h.base_offset + h.last_offset_delta + 1
            pos += <size_t>h.batch_length + HW_LOG_OVERHEAD
        return nxt

    def extent(self, size_t position, size_t max_bytes, bint verify_crc=True):
        """Whole batches from `position`: at least one, then more while the total stays
        within max_bytes (KIP-74). Returns (end, status): status HW_OK, or why the walk stopped
        early at `end` (a bad batch there: HW_ERR_CRC / HW_ERR_CORRUPT / HW_ERR_TRUNCATED, or
        HW_ERR_IO when a page of the mapping could not be read: SIGBUS caught by the guard)."""
        cdef size_t end = position
        cdef hw_status st
        self._check_open()
        if position > self.seg.size:
            raise IndexError(position)
        if min(<size_t>max_bytes, self.seg.size - position) >= NOGIL_BYTES:
            with nogil:
                st = hw_segment_extent(self.seg.map, self.seg.size, position, max_bytes, verify_crc, &end)
        else:  # a tail read of a few records: keep the GIL (see append_fixed)
            st = hw_segment_extent(self.seg.map, self.seg.size, position, max_bytes, verify_crc, &end)
        return end, st

    def read_messages(self, size_t position, size_t max_bytes, bint verify_crc,
                      int64_t start_offset, topic, int32_t partition, decompress=None):
        """extent() then decode_messages() of those batches, straight from the mapping: a
        consumer's read of a few records without a view, a ReadResult or a Python walk of the
        headers. Returns (messages, end, status, next_offset): end and status as extent()
        (end == position: the first batch could not be read, nothing decoded); next_offset
        the offset after the last batch returned (control batches included), -1 if none."""
        cdef list out = []
        cdef size_t end
        cdef hw_status st
        cdef int64_t nxt = self._read_messages_into(out, position, max_bytes, verify_crc,
                                                    start_offset, topic, partition, decompress,
                                                    &end, &st)
        return out, end, st, nxt

    cdef int64_t _read_messages_into(self, list out, size_t position, size_t max_bytes,
                                     bint verify_crc, int64_t start_offset, topic,
                                     int32_t partition, decompress, size_t *end_out,
                                     hw_status *st_out) except? -2:
        """read_messages() for C callers (PartitionLogCore): messages appended to `out`,
        end and status through pointers, the next offset returned."""
        cdef size_t end = position
        cdef hw_status st
        cdef int64_t nxt = -1
        end_out[0] = position
        self._check_open()
        if position > self.seg.size:
            raise IndexError(position)
        if min(<size_t>max_bytes, self.seg.size - position) >= NOGIL_BYTES:
            with nogil:
                st = hw_segment_extent(self.seg.map, self.seg.size, position, max_bytes, verify_crc, &end)
        else:
            st = hw_segment_extent(self.seg.map, self.seg.size, position, max_bytes, verify_crc, &end)
        if end > position:
            # extent() checked every batch in [position, end): whole, and bounds-checked as the
            # decode walks each record.
            nxt = _decode_messages_into(out, self.seg.map + position, end - position, self,
                                        position, start_offset, topic, partition, decompress)
        end_out[0] = end
        st_out[0] = st
        return nxt

    def last_nonzero(self, size_t start, size_t end):
        """1 + position of the last non-zero byte in [start, end), or `start` if all zero."""
        cdef size_t p = end
        self._check_open()
        if end > self.seg.file_len or start > end:
            raise IndexError("range outside the file")
        with nogil:
            while p > start and self.seg.map[p - 1] == 0:
                p -= 1
        return p

    def flush(self):
        cdef int err = 0
        cdef hw_status st
        self._check_open()
        with nogil:
            st = hw_segment_flush(&self.seg, &err)
        _raise_for(st, f"flush {self.path}", &err)

    def release_pages(self, size_t upto):
        if self.is_open:
            hw_segment_release_pages(&self.seg, upto)

    def truncate(self, size_t size):
        cdef int err = 0
        self._check_open()
        if self.exports:
            raise BufferError(f"{self.exports} views of {self.path} are alive")
        _raise_for(hw_segment_truncate(&self.seg, size, &err), f"truncate {self.path}", &err)

    def close(self, bint trim=True):
        cdef int err = 0
        cdef hw_status st
        if not self.is_open:
            return
        if self.exports:
            raise BufferError(f"{self.exports} views of {self.path} are alive")
        self.is_open = False
        free(self.stage)
        self.stage = NULL
        self.stage_cap = 0
        st = hw_segment_close(&self.seg, trim, &err)
        _raise_for(st, f"close {self.path}", &err)

    def scan(self, size_t position=0, Py_ssize_t end=-1, bint verify_crc=True,
             int64_t min_offset=-1, OffsetIndex offset_index=None, TimeIndex time_index=None,
             size_t index_interval=4096, bint contiguous=False):
        """Walk batches from `position`; see hw_segment_scan."""
        cdef hw_scan_result r
        cdef size_t stop = self.seg.file_len if end < 0 else <size_t>end
        cdef hw_index *oi = NULL
        cdef hw_index *ti = NULL
        self._check_open()
        if stop > self.seg.file_len or position > stop:
            raise IndexError("scan range outside the file")
        if offset_index is not None:
            oi = &offset_index.ix
        if time_index is not None:
            ti = &time_index.ix
        with nogil:
            hw_segment_scan(self.seg.map, position, stop, verify_crc,
                            min_offset if min_offset >= 0 else -(1LL << 62),
                            contiguous and min_offset >= 0, oi, ti, index_interval, &r)
        cdef ScanResult o = ScanResult.__new__(ScanResult)
        o.valid_bytes = r.valid_bytes
        o.batches = r.batches
        o.status = r.status
        o.first_offset = r.first_offset
        o.next_offset = r.next_offset
        o.max_timestamp = r.max_timestamp
        o.offset_of_max_timestamp = r.offset_of_max_timestamp
        o.bytes_since_index = r.bytes_since_index
        return o

    def find_next_batch(self, size_t start, Py_ssize_t end=-1):
        """First position >= start holding a whole CRC-valid batch, or -1."""
        cdef size_t stop = self.seg.file_len if end < 0 else <size_t>end
        cdef size_t pos = 0
        cdef int found
        self._check_open()
        if stop > self.seg.file_len:
            raise IndexError("range outside the file")
        with nogil:
            found = hw_segment_find_next_batch(self.seg.map, start, stop, &pos)
        return <Py_ssize_t>pos if found else -1

    def find_offset(self, size_t start, int64_t target):
        """Position of the first batch from `start` whose last offset >= target (or size)."""
        cdef size_t pos
        self._check_open()
        cdef hw_status st = hw_segment_find_offset(self.seg.map, start, self.seg.size, target, &pos)
        if st != HW_OK:
            raise CorruptRecordError(f"{self.path}: bad batch header at position {pos}")
        return pos

    def find_timestamp(self, size_t start, int64_t timestamp):
        cdef size_t pos
        self._check_open()
        cdef hw_status st = hw_segment_find_timestamp(self.seg.map, start, self.seg.size, timestamp, &pos)
        if st != HW_OK:
            raise CorruptRecordError(f"{self.path}: bad batch header at position {pos}")
        return pos

    def header_at(self, size_t position):
        """Parse (no CRC) the batch header at `position`."""
        cdef hw_batch_header h
        self._check_open()
        if position > self.seg.size:
            raise IndexError(position)
        _raise_for(hw_batch_parse_header(self.seg.map + position, self.seg.size - position, &h),
                   f"{self.path} at {position}")
        return _header_from(&h)

    def check_at(self, size_t position):
        """Full validation (CRC included) of the batch at `position`."""
        cdef hw_batch_header h
        cdef hw_status st
        self._check_open()
        if position > self.seg.size:
            raise IndexError(position)
        if self.seg.size - position >= NOGIL_BYTES:
            with nogil:
                st = hw_batch_validate(self.seg.map + position, self.seg.size - position, &h)
        else:
            st = hw_batch_validate(self.seg.map + position, self.seg.size - position, &h)
        _raise_for(st, f"{self.path} at {position}")
        return _header_from(&h)




def payload_size(values, keys=None):
    """Sum of the byte lengths of `values` (and `keys`), None counting 0. Raises TypeError
    for items that are not bytes-like (str included)."""
    cdef list vals = values if type(values) is list else list(values)
    cdef Py_ssize_t total = 0, n, i
    cdef object v
    cdef PyObject *item
    if keys is None:
        # The common case (a producer's batch of values): borrowed items, no references
        # taken; anything but bytes or None goes to the general loop below.
        n = PyList_GET_SIZE(vals)
        for i in range(n):
            item = <PyObject *>PyList_GET_ITEM(vals, i)
            if PyBytes_CheckExact(<object>item):
                total += PyBytes_GET_SIZE(<object>item)
            elif item != <PyObject *>None:
                break
        else:
            return total
        total = 0
    for seq in (vals, keys):
        if seq is None:
            continue
        for v in seq:
            if v is None:
                continue
            if PyBytes_CheckExact(v):
                total += PyBytes_GET_SIZE(v)
            elif isinstance(v, str):
                raise TypeError("record keys and values must be bytes-like, not str")
            else:
                n = _length_of(v)
                total += n
    return total


# ---------------------------------------------------------------- consumer messages

@cython.final
@cython.freelist(256)
@cython.no_gc
cdef class Message:
    """One record (or an error event) with confluent_kafka.Message's accessors. Built in C by
    decode_messages() so a consumer pays one object per record, not a Python __init__."""
    cdef public object _topic
    cdef public int32_t _partition
    cdef public int64_t _offset
    cdef public object _key
    cdef public object _value
    cdef public object _headers
    cdef public int64_t _timestamp
    cdef public int _ts_type
    cdef public object _error
    cdef public object _latency

    def __init__(self, topic, int32_t partition, int64_t offset, key, value, headers=None,
                 int64_t timestamp=-1, int timestamp_type=1, error=None):
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._key = key
        self._value = value
        self._headers = headers
        self._timestamp = timestamp
        self._ts_type = timestamp_type
        self._error = error

    def topic(self):
        return self._topic

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def key(self):
        return self._key

    def value(self):
        return self._value

    def headers(self):
        return self._headers or None

    def timestamp(self):
        if self._timestamp < 0:
            return 0, -1
        return self._ts_type, self._timestamp

    def error(self):
        return self._error

    def latency(self):
        return self._latency

    def set_value(self, value):
        self._value = value

    def set_key(self, key):
        self._key = key

    def set_headers(self, headers):
        self._headers = headers

    def __len__(self):
        return 0 if self._value is None else len(self._value)

    def __repr__(self):
        return (f"Message(topic={self._topic!r}, partition={self._partition}, "
                f"offset={self._offset}, key={self._key!r})")


def decode_messages(data, int64_t start_offset, topic, int32_t partition, decompress=None):
    """Messages for every record of the whole batches in `data` from start_offset on (control
    batches skipped). Timestamp type 2 (LogAppendTime) or 1 (CreateTime) per batch. Each batch
    is walked by one C loop into columns; Messages are then built from them."""
    cdef _bytes_ref ref
    cdef list out = []
    _acquire(data, &ref)
    try:
        _decode_messages_into(out, ref.ptr, <size_t>ref.length, data, 0, start_offset, topic,
                              partition, decompress)
    finally:
        _release(&ref)
    return out


cdef int64_t _decode_messages_into(list out, const uint8_t *base, size_t length, object owner,
                                   size_t owner_pos, int64_t start_offset, object topic,
                                   int32_t partition, object decompress) except -2:
    """decode_messages() over [base, base+length), appending to `out`. `owner` is the object
    holding those bytes at `owner_pos` (a compressed batch is handed to `decompress` as a
    memoryview slice of it). Returns the offset after the last whole batch walked (-1: none):
    where a reader continues, control batches included."""
    cdef hw_batch_header h
    cdef hw_status st
    cdef hw_record r
    cdef size_t pos = 0, size, kept, j
    cdef const uint8_t *p
    cdef const uint8_t *end
    cdef const uint8_t *origin
    cdef const uint8_t *rp
    cdef int64_t append_time
    cdef int64_t *cols = NULL
    cdef int64_t next_offset = -1
    cdef Py_ssize_t cap = 0
    cdef Message m
    cdef object section
    cdef int ts_type
    try:
        while pos < length:
            st = hw_batch_parse_header(base + pos, length - pos, &h)
            if st == HW_ERR_TRUNCATED:
                break
            _raise_for(st, f"batch at {pos}")
            size = <size_t>h.batch_length + HW_LOG_OVERHEAD
            next_offset = h.base_offset + h.last_offset_delta + 1
            if (h.attributes & 0x20) or h.records_count <= 0 or h.base_offset + h.last_offset_delta < start_offset:
                pos += size
                continue
            append_time = h.max_timestamp if (h.attributes & 0x08) else -1
            ts_type = 2 if append_time >= 0 else 1
            section = None
            if h.attributes & 0x07:
                if decompress is None:
                    raise CorruptRecordError("compressed batch and no decompressor")
                view = memoryview(owner)[owner_pos + pos:owner_pos + pos + size]
                try:
                    section = decompress(_header_from(&h), view)
                finally:
                    view.release()
                if not PyBytes_CheckExact(section):
                    section = bytes(section)
                p = <const uint8_t *>PyBytes_AS_STRING(section)
                end = p + PyBytes_GET_SIZE(section)
            else:
                p = base + pos + HW_BATCH_HEADER_SIZE
                end = base + pos + size
            origin = p
            if h.records_count > cap:
                free(cols)
                cap = h.records_count
                cols = <int64_t *>malloc(<size_t>cap * 8 * sizeof(int64_t))
                if cols == NULL:
                    raise MemoryError()
            st = hw_records_columns_ex(p, end, h.records_count, h.base_offset, h.base_timestamp,
                                       append_time, start_offset, origin, cols, cols + cap,
                                       cols + 2 * cap, cols + 3 * cap, cols + 4 * cap,
                                       cols + 5 * cap, cols + 6 * cap, cols + 7 * cap, &kept)
            if st != HW_OK:
                raise CorruptRecordError(f"record of batch at offset {h.base_offset}: bad structure")
            for j in range(kept):
                m = Message.__new__(Message)
                m._topic = topic
                m._partition = partition
                m._offset = cols[j]
                m._timestamp = cols[cap + j]
                m._ts_type = ts_type
                m._key = _bytes_or_none(origin + cols[2 * cap + j], cols[3 * cap + j])
                m._value = _bytes_or_none(origin + cols[4 * cap + j], cols[5 * cap + j])
                if cols[7 * cap + j]:
                    rp = origin + cols[6 * cap + j]
                    hw_record_read(&rp, end, &r)
                    m._headers = _decode_headers(&r)
                out.append(m)
            pos += size
    finally:
        free(cols)
    return next_offset


def last_offsets(list messages):
    """{(topic, partition): offset + 1 of the last non-error message} over `messages`."""
    cdef dict out = {}
    _last_offsets_into(out, messages)
    return out


cdef int _last_offsets_into(dict out, list messages) except -1:
    """last_offsets(messages), stored into `out`."""
    cdef Message m
    cdef Message last = None
    cdef Py_ssize_t i, n = len(messages)
    # Messages come in runs of one partition (one read each): store once per run, at its
    # last message, instead of a key tuple and a dict store per message.
    for i in range(n):
        m = messages[i]
        if m._error is not None:
            continue
        if last is not None and (m._topic is not last._topic or m._partition != last._partition):
            out[(last._topic, last._partition)] = last._offset + 1
        last = m
    if last is not None:
        out[(last._topic, last._partition)] = last._offset + 1
    return 0


# ---------------------------------------------------------------- producer hot path

from cpython.dict cimport PyDict_GetItemWithError
from cpython.list cimport PyList_CheckExact, PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyCFunction, PyMethodDef, PyObject, PyTypeObject
from cpython.dict cimport PyDict_SetItemString
from cpython.type cimport PyType_Modified
from cpython.pythread cimport (
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_get_thread_ident,
    PyThread_release_lock,
    PyThread_type_lock,
    WAIT_LOCK,
    NOWAIT_LOCK,
)
from cpython.unicode cimport PyUnicode_CheckExact


@cython.final
cdef class FastRLock:
    """A re-entrant lock taken by C code without a Python call (`with` works from Python).
    The producer's hot path takes it once per record.

    Every acquire and release runs with the GIL held, and the GIL already orders them, so an
    uncontended acquire/release is a few field updates; the OS lock is touched only when a
    thread has to wait. The waiter then takes the (free) OS lock on behalf of the owner, blocks
    on it with the GIL released, and the owner's last release frees it: the waiter wakes as
    the new owner. Going through the OS lock on every record cost more than the rest of
    produce(): CPython 3.11's PyThread_acquire_lock reads the monotonic clock even when asked
    not to wait. This relies on the GIL (the module is built with
    freethreading_compatible=False); a free-threaded build would need atomics here.

    State: `_count` > 0 while owned (by `_owner`); `_waiting` threads are blocked on, or about
    to block on, the OS lock; `_os_held` says the OS lock is held for the current owner.
    Whenever a thread waits, the OS lock is held by the owner or by the waiter being handed
    the lock, so every waiter is eventually woken.
    """
    cdef PyThread_type_lock _lock
    cdef unsigned long _owner
    cdef int _count
    cdef int _waiting
    cdef bint _os_held

    def __cinit__(self):
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError()

    def __dealloc__(self):
        if self._lock != NULL:
            PyThread_free_lock(self._lock)

    cdef inline int _acquire(self) except -1:
        cdef unsigned long me = PyThread_get_thread_ident()
        if self._count == 0:
            if self._waiting == 0:
                self._owner = me
                self._count = 1
                return 0
        elif self._owner == me:
            self._count += 1
            return 0
        return self._acquire_contended(me)

    cdef int _acquire_contended(self, unsigned long me) except -1:
        """Wait for the owner (or for the waiter being handed the lock) to let go."""
        cdef int got
        if not self._os_held and self._waiting == 0:
            # The owner took the lock on the fast path, so the OS lock is free: take it in
            # the owner's name, so that its last release wakes us.
            if not PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
                raise AssertionError("FastRLock: OS lock held without an owner")
            self._os_held = True
        self._waiting += 1
        with nogil:
            got = PyThread_acquire_lock(self._lock, WAIT_LOCK)
        self._waiting -= 1
        self._os_held = True
        self._owner = me
        self._count = 1
        return 0

    cdef inline void _release(self) noexcept:
        self._count -= 1
        if self._count == 0:
            self._owner = 0
            if self._os_held:
                self._os_held = False
                PyThread_release_lock(self._lock)

    cdef inline bint _is_owned(self):
        return self._count > 0 and self._owner == PyThread_get_thread_ident()

    def acquire(self, bint blocking=True, timeout=-1):
        """Take the lock; with blocking=False, return False at once if another thread has it.
        `timeout` is accepted for threading.RLock compatibility and ignored (waits forever)."""
        if not blocking and (self._count > 0 or self._waiting > 0) and not self._is_owned():
            return False
        self._acquire()
        return True

    def release(self):
        if not self._is_owned():
            raise RuntimeError("cannot release un-acquired lock")
        self._release()

    def _is_locked(self):
        """Whether some thread holds the lock (for tests)."""
        return self._count > 0

    def __enter__(self):
        self._acquire()
        return self

    def __exit__(self, *exc):
        self._release()
        return False


# ---------------------------------------------------------------- log hot path

# Bytes reserved per record beyond key and value when estimating a batch's size before it is
# built (length 5 + attributes 1 + timestamp delta 10 + offset delta 5 + key/value lengths 10
# + header count 5): an upper bound, so a roll decided on it is never too late.
RECORD_BOUND = 36
# Segments keep at most this much of their written data mapped in our page tables (RSS):
# pages below are released (madvise) once per RELEASE_STEP_BYTES appended.
RESIDENT_BYTES = 64 << 20
RELEASE_STEP_BYTES = 16 << 20
cdef int64_t _RESIDENT = RESIDENT_BYTES
cdef int64_t _RELEASE_STEP = RELEASE_STEP_BYTES
cdef int64_t _SEG_INT32_MAX = 0x7FFFFFFF

# flush.policy as PartitionLogCore._flush_policy holds it.
FLUSH_OTHER = 0
FLUSH_INTERVAL = 1
FLUSH_BATCH = 2

cdef object _log_logger = logging.getLogger("headwater.log")


cdef extern from *:
    """
    /* tuple.__new__(cls, (a, b, c, d)) for a tuple subclass (a NamedTuple) in one allocation:
       what tuple_subtype_new does, without the temporary tuple and the call machinery. */
    static PyObject *hw_tuple_subtype4(PyObject *cls, PyObject *a, PyObject *b, PyObject *c,
                                       PyObject *d) {
        PyTypeObject *t = (PyTypeObject *)cls;
        PyObject *o = t->tp_alloc(t, 4);
        if (o == NULL) return NULL;
        Py_INCREF(a); PyTuple_SET_ITEM(o, 0, a);
        Py_INCREF(b); PyTuple_SET_ITEM(o, 1, b);
        Py_INCREF(c); PyTuple_SET_ITEM(o, 2, c);
        Py_INCREF(d); PyTuple_SET_ITEM(o, 3, d);
        return o;
    }
    """
    object hw_tuple_subtype4(object cls, object a, object b, object c, object d)


cdef class ProducerStateEntryCore:
    """The fields of log.producer_state.ProducerStateEntry (documented there), in C: the
    single-record append reads and updates them for every idempotent record."""
    cdef public int64_t producer_id
    cdef public int producer_epoch
    cdef public int coordinator_epoch
    cdef public int64_t last_timestamp
    cdef public object current_txn_first_offset  # int | None
    cdef public object batch_metadata            # deque[BatchMetadata]


cdef object _next_in_sequence(object manager, int64_t producer_id, int epoch, int64_t base_seq):
    cdef ProducerStateEntryCore cur
    found = (<dict?>manager.producers).get(producer_id)
    if found is None:
        return None
    cur = <ProducerStateEntryCore?>found
    if epoch != cur.producer_epoch or cur.current_txn_first_offset is not None:
        return None
    metas = cur.batch_metadata
    if not metas:
        return None
    last = metas[len(metas) - 1]  # (wraparound is off in this module)
    if base_seq != ((<int64_t>last[0] + 1) & 0x7FFFFFFF):  # last[0]: BatchMetadata.last_seq
        return None
    return cur


cdef int _append_next(object manager, ProducerStateEntryCore entry, int64_t base_seq,
                      int64_t offset, int64_t timestamp) except -1:
    metas = entry.batch_metadata
    # A BatchMetadata like the last one (last_seq, last_offset, offset_delta, timestamp), built
    # in C: the NamedTuple's own __new__ is a Python function, tuple.__new__ a generic call.
    metas.append(hw_tuple_subtype4(type(metas[len(metas) - 1]), base_seq, offset, 0, timestamp))
    entry.last_timestamp = timestamp
    manager._clean_snapshot = None
    manager.map_end_offset = offset + 1
    return 0


def next_in_sequence(manager, int64_t producer_id, int epoch, int64_t base_seq):
    """log.producer_state.ProducerStateManager.next_in_sequence (documented there)."""
    return _next_in_sequence(manager, producer_id, epoch, base_seq)


def append_next(manager, entry, int64_t base_seq, int64_t offset, int64_t timestamp):
    """log.producer_state.ProducerStateManager.append_next (documented there)."""
    _append_next(manager, entry, base_seq, offset, timestamp)


cdef class LogSegmentCore:
    """The fields of log.segment.LogSegment that an append and a tail read touch, with the
    index bookkeeping of an append (after_append) and the tail-read position test, in C:
    LogSegment subclasses it and owns everything else (opening, recovery, truncation,
    sealing). A segment's `log` is its mapped .log file, `offset_index` and `time_index` its
    indexes."""
    cdef public Segment log
    cdef public _Index offset_index
    cdef public _Index time_index
    cdef public list corrupt_ranges
    cdef public int64_t base_offset
    cdef public int64_t next_offset              # last offset + 1 of the last batch
    cdef public int64_t index_interval_bytes
    cdef public int64_t bytes_since_index
    cdef public int64_t released_upto            # mapping pages released up to here
    cdef public int64_t max_timestamp
    cdef public int64_t offset_of_max_timestamp
    cdef public int64_t first_batch_max_timestamp
    # Where the last appended batch starts, and the offset a reader there asks for (the next
    # offset before that append): position_of() of exactly that offset is this position, gaps
    # or not. A tailing reader asks for it on every read; the index walk it saves reads up to
    # index.interval.bytes of headers. -1: no append yet.
    cdef public int64_t last_append_offset
    cdef public int64_t last_append_position

    cdef inline bint _index_full(self):
        return (self.offset_index.ix.entries >= self.offset_index.ix.max_entries
                or self.time_index.ix.entries >= self.time_index.ix.max_entries)

    def index_is_full(self):
        return self._index_full()

    cdef inline int64_t _tail_position(self, int64_t offset):
        """The position of `offset` if it is where the last append started (a tail read),
        else -1. The size test covers truncation: every append sets both fields, so they are
        stale only if the segment was cut below that batch since."""
        if (offset == self.last_append_offset and not self.corrupt_ranges
                and self.last_append_position < <int64_t>self.log.seg.size):
            return self.last_append_position
        return -1

    def tail_position(self, int64_t offset):
        return self._tail_position(offset)

    cdef int _after_append(self, int64_t position, int64_t size, int64_t last_offset,
                           int64_t max_timestamp) except -1:
        cdef int64_t ts_max, off_max
        if self.bytes_since_index > self.index_interval_bytes:
            ts_max = max(self.max_timestamp, max_timestamp)
            off_max = last_offset if max_timestamp >= self.max_timestamp else self.offset_of_max_timestamp
            try:
                self.offset_index.append(last_offset, position)
                self.time_index.append(ts_max, off_max)
            except OSError as exc:
                # The batch is already written; an index is derived data. A missing entry
                # only makes lookups walk further (the next open checks and rebuilds it).
                _log_logger.warning("index append failed for %s: %s", self.log.path, exc)
            self.bytes_since_index = 0
        self.bytes_since_index += size
        if self.first_batch_max_timestamp < 0 and position == 0:
            self.first_batch_max_timestamp = max_timestamp
        if max_timestamp >= self.max_timestamp:
            self.max_timestamp = max_timestamp
            self.offset_of_max_timestamp = last_offset
        self.last_append_offset = self.next_offset
        self.last_append_position = position
        self.next_offset = last_offset + 1
        return 0

    def after_append(self, int64_t position, int64_t size, int64_t last_offset,
                     int64_t max_timestamp):
        """Index bookkeeping for one batch just written at `position`."""
        self._after_append(position, size, last_offset, max_timestamp)


cdef class PartitionLogCore:
    """The C part of log.partition_log.PartitionLog: the single-record append (append_one,
    the linger.ms=0 send) and the consumer's tail read (read_messages) without Python frames,
    with the two steps every append shares: whether the active segment takes it without a
    roll (_tail_segment_locked) and the flush policy's step after it (_after_append_locked).
    PartitionLog subclasses it, sets every field and owns every other rule: a roll, a
    producer's first or out-of-order batch, a flush, a topic whose rules need append()
    (compression, LogAppendTime, compaction), a read PartitionLog.read() must make.

    The `_c_*` fields mirror `config` (PartitionLog._configure_fast sets them whenever
    `config` is another LogConfig than `_one_config`)."""
    cdef public FastRLock _lock
    cdef public object config
    cdef public list _segments
    cdef public object _offline      # the I/O error that took the log offline, or None
    cdef public object _producers    # ProducerStateManager
    cdef public object _decompress   # the log's decompress callback for read_messages
    cdef public bint _closed
    # Set by LogManager: a scheduler flushes flush.policy=interval logs (maybe_flush), so
    # appends skip the time-based flush. A bare PartitionLog flushes inside append.
    cdef public bint scheduled_flush
    cdef public int64_t _unflushed_messages
    cdef public int64_t _last_flush_ms
    cdef public int64_t _log_start_offset
    cdef public int32_t partition_leader_epoch
    cdef public object _one_config
    cdef public bint _one_needs_append   # the topic's rules need append() for one record
    cdef public int64_t _c_segment_bytes
    cdef public int64_t _c_roll_ms       # segment.ms - the segment's jitter
    cdef public int64_t _c_max_message_bytes
    cdef public int64_t _c_flush_messages
    cdef public int64_t _c_flush_ms
    cdef public int _c_flush_policy      # FLUSH_INTERVAL, FLUSH_BATCH or FLUSH_OTHER

    cdef inline int _check_config(self) except -1:
        if self.config is not self._one_config:
            self._configure_fast(self.config)
        return 0

    cdef LogSegmentCore _tail_segment(self, int64_t size_bound, int64_t max_timestamp,
                                      int64_t count):
        """The active segment if it takes an append of `count` records, at most
        `size_bound` bytes, without a roll (and is not empty: a first append goes by the
        general rules); else None. Config must be current (_check_config)."""
        cdef LogSegmentCore seg
        cdef int64_t size
        if not self._segments:
            return None
        seg = <LogSegmentCore>self._segments[len(self._segments) - 1]
        size = <int64_t>seg.log.seg.size
        if (size
                and size + size_bound <= self._c_segment_bytes
                and size + size_bound <= <int64_t>seg.log.seg.map_len
                and seg.next_offset + count - 1 - seg.base_offset <= _SEG_INT32_MAX
                and (seg.first_batch_max_timestamp < 0
                     or max_timestamp - seg.first_batch_max_timestamp <= self._c_roll_ms)
                and not seg._index_full()):
            return seg
        return None

    def _tail_segment_locked(self, int64_t size_bound, int64_t max_timestamp, int64_t count):
        """_segment_for_append_locked's common case: the active segment, or None when the
        general rules decide (a roll, an empty segment)."""
        self._check_config()
        return self._tail_segment(size_bound, max_timestamp, count)

    cdef int _after_append(self, LogSegmentCore seg, int64_t count, bint sync) except -1:
        cdef int64_t size
        self._check_config()
        self._unflushed_messages += count
        if self._c_flush_policy == FLUSH_INTERVAL:
            # With a scheduler (LogManager's owner calls maybe_flush), a time-based flush is
            # its job: an append never waits for it.
            if self._unflushed_messages >= self._c_flush_messages or (
                    not self.scheduled_flush
                    and _now_ms() - self._last_flush_ms >= self._c_flush_ms):
                self._flush_interval_locked(seg)
        elif self._c_flush_policy == FLUSH_BATCH and sync:
            self._flush_segment_locked(seg)
        size = <int64_t>seg.log.seg.size
        if size - _RESIDENT >= seg.released_upto + _RELEASE_STEP:
            # madvise walks every page of the range: once per RELEASE_STEP_BYTES appended,
            # not once per append (pages reads faulted back in go again with the next step).
            seg.log.release_pages(size - _RESIDENT)
            seg.released_upto = size - _RESIDENT
        return 0

    def _after_append_locked(self, LogSegmentCore seg, int64_t count, bint sync=True):
        """The flush policy's step after an append. `sync=False` (a transactional batch, a
        coordinator record nobody waits on): flush.policy=batch leaves it to the next fsync
        of this log. A transaction's data gets one: its COMMIT marker's when it is the only
        partition (the marker follows the data in this file, and a roll seals, so fsyncs,
        the segment before), else sync_transactional() before the PrepareCommit record."""
        self._after_append(seg, count, sync)

    cdef object _append_one(self, value, key, int64_t timestamp, int64_t producer_id,
                            int producer_epoch, int32_t base_sequence):
        cdef int64_t ts, base, bound
        cdef size_t pos = 0, size = 0
        cdef LogSegmentCore seg
        self._check_config()
        if self._one_needs_append:
            return self.append(
                [value], None if key is None else [key], None, None if not timestamp else [timestamp],
                producer_id=producer_id, producer_epoch=producer_epoch, base_sequence=base_sequence)
        if timestamp:
            if timestamp < 0:
                raise InvalidTimestampError("negative record timestamp")
            ts = timestamp
        else:
            ts = _now_ms()
        bound = (HW_BATCH_HEADER_SIZE + RECORD_BOUND + (0 if value is None else len(value))
                 + (0 if key is None else len(key)))
        nxt = info = None
        self._lock._acquire()
        try:
            if self._closed or self._offline is not None:
                self._check_writable()
            if producer_id >= 0:
                if base_sequence < 0:
                    raise InvalidRecordError("idempotent batch without a base sequence")
                # The common case (the producer's next record) needs no duplicate search.
                nxt = _next_in_sequence(self._producers, producer_id, producer_epoch, base_sequence)
                if nxt is None:
                    info = self._producers.prepare(producer_id)
                    dup = info.validate_data_batch(producer_epoch, base_sequence, 0, False)
                    if dup is not None:
                        return int(dup.first_offset)
            seg = self._tail_segment(bound, ts, 1)
            if seg is None:
                seg = <LogSegmentCore?>self._segment_for_append_locked(bound, ts, 1)
            base = seg.next_offset  # the log end offset
            try:
                seg.log._append_one(value, key, ts, base, self.partition_leader_epoch,
                                    producer_id, producer_epoch, base_sequence,
                                    self._c_max_message_bytes, &pos, &size)
            except OSError as exc:
                # The C layer already cut any part of the write that landed.
                raise KafkaStorageError(f"append to {seg.log.path} failed: {exc}") from exc
            seg._after_append(pos, size, base, ts)
            if nxt is not None:
                _append_next(self._producers, nxt, base_sequence, base, ts)
            elif info is not None:
                info.append_data_batch(producer_epoch, base_sequence, base, base, ts, False)
                self._producers.update(info)
                self._producers.update_map_end_offset(base + 1)
            self._after_append(seg, 1, True)
            return base
        finally:
            self._lock._release()

    def append_one(self, value, key=None, int64_t timestamp=0, int64_t producer_id=-1,
                   int producer_epoch=-1, int32_t base_sequence=-1):
        """append([value], [key]) of one plain record (bytes or None; `timestamp` 0 = now):
        the same batch bytes, checks and producer-state update, in fewer steps. It is the
        embedded producer's linger.ms=0 send, where append()'s argument sorting (kinds,
        lists, compression, headers) was a third of a record's produce-to-consume time.
        Anything else (a compressing or LogAppendTime topic, a compacted topic, a
        transactional batch) goes through append(), which owns those rules.

        Raises: as append()."""
        return self._append_one(value, key, timestamp, producer_id, producer_epoch, base_sequence)

    def _append_control_locked(self, int control_type, int64_t producer_id, int producer_epoch,
                               int32_t coordinator_epoch, int64_t timestamp):
        """Append a COMMIT/ABORT marker built in place (lock held, log writable, producer
        state checked: PartitionLog.write_txn_marker). The marker is one batch of 78 bytes
        with CreateTime `timestamp`; a LogAppendTime topic takes _append_raw_locked instead.
        Returns its offset. Raises KafkaStorageError as append()."""
        cdef LogSegmentCore seg
        cdef int64_t base
        cdef size_t pos = 0, size = 0
        self._check_config()
        seg = self._tail_segment(128, timestamp, 1)
        if seg is None:
            seg = <LogSegmentCore?>self._segment_for_append_locked(128, timestamp, 1)
        base = seg.next_offset
        try:
            seg.log._append_control(control_type, timestamp, base, self.partition_leader_epoch,
                                    producer_id, producer_epoch, coordinator_epoch,
                                    self._c_max_message_bytes, &pos, &size)
        except OSError as exc:
            raise KafkaStorageError(f"append to {seg.log.path} failed: {exc}") from exc
        seg._after_append(pos, size, base, timestamp)
        self._after_append(seg, 1, True)
        return base

    cdef object _read_messages(self, int64_t offset, Py_ssize_t max_bytes, topic,
                               int32_t partition, bint verify_crc, int isolation_level):
        cdef LogSegmentCore seg
        cdef int64_t leo, start, size, next_offset
        cdef size_t end_pos = 0
        cdef hw_status st
        cdef list msgs
        self._lock._acquire()
        try:
            if self._closed or self._offline is not None or self._producers._ongoing:
                return None
            if not self._segments:
                return None
            seg = <LogSegmentCore>self._segments[len(self._segments) - 1]
            leo = seg.next_offset
            if offset < seg.base_offset or offset < self._log_start_offset or offset > leo:
                return None
            if isolation_level != 0 and (isolation_level != 1 or (<object>seg).txn_index.entries):
                return None
            if offset == leo:
                return [], -1
            start = seg._tail_position(offset)
            if start < 0:
                start = (<object>seg).position_of(offset)
            size = <int64_t>seg.log.seg.size
            if start >= size:
                return None
            msgs = []
            next_offset = seg.log._read_messages_into(
                msgs, start, max_bytes, verify_crc, offset, topic, partition, self._decompress,
                &end_pos, &st)
            if <int64_t>end_pos == start:
                return None  # the first batch is unreadable: read() says why
            return msgs, (leo if <int64_t>end_pos >= size else next_offset)
        finally:
            self._lock._release()

    def read_messages(self, int64_t offset, Py_ssize_t max_bytes, topic, int32_t partition, *,
                      bint verify_crc=True, int isolation_level=0):
        """read() and decode_messages() in one step for a consumer's common read: from the
        active segment, no transaction open and no aborted one indexed there (so both
        isolation levels deliver every data record up to the log end). A tailing consumer
        reads a record or two per wakeup, where building the ReadResult and its view cost
        more than decoding.

        Returns (Messages from `offset` on, offset after the last batch read; -1 when nothing
        was there), or None when the read needs read(): any other case, including every
        error (read() raises it)."""
        return self._read_messages(offset, max_bytes, topic, partition, verify_crc, isolation_level)


cdef extern from "Python.h":
    list PyList_New(Py_ssize_t size)
    void Py_SET_SIZE(object o, Py_ssize_t size)

# A batch's values list, presized: capacity for this many items at most.
cdef Py_ssize_t _PRESIZE_MAX = 1 << 16


cdef list _presized_list(Py_ssize_t capacity):
    """An empty list with room for `capacity` items (at most _PRESIZE_MAX): a producer fills
    its partition buffer to about the size of the batch it sent last, and growing a list
    from empty to 8,000 items reallocates and copies it ~20 times (callgrind: PyList_Append
    cost 105 instructions a record with the growth, 62 without, before produce() inlined
    the append, hw_list_append). A list of size 0 whose item array is longer is a state
    lists are in after any pop; PyList_New leaves the unused slots NULL."""
    cdef list out
    if capacity <= 0:
        return []
    out = PyList_New(capacity if capacity < _PRESIZE_MAX else _PRESIZE_MAX)
    Py_SET_SIZE(out, 0)
    return out


cdef class PartitionBuffer:
    """Records buffered for one partition by a producer (see client/producer.py)."""
    cdef public list values
    cdef public object keys        # list | None
    cdef public object headers     # dict[int, ...] | None
    cdef public object timestamps  # dict[int, int] | None
    cdef public object callbacks   # dict[int, callable] | None
    cdef public Py_ssize_t nbytes
    cdef public double first_ms
    cdef public int64_t next_sequence
    # The partition's log, kept by ProducerCore._send_one_fast while it is open (a topic
    # deleted, or a broker closed, closes it: the next send looks it up again).
    cdef public object log

    def __init__(self):
        self.values = []
        self.keys = None
        self.headers = None
        self.timestamps = None
        self.callbacks = None
        self.nbytes = 0
        self.first_ms = 0.0
        self.next_sequence = 0

    def take(self):
        out = (self.values, self.keys, self.headers, self.timestamps, self.callbacks)
        self.values = _presized_list(PyList_GET_SIZE(self.values))
        self.keys = None
        self.headers = None
        self.timestamps = None
        self.callbacks = None
        self.nbytes = 0
        return out


cdef class TopicBuffers:
    """A producer's per-topic state: partition count, buffers, sticky partition (-1: none)."""
    cdef public str name
    cdef public Py_ssize_t partitions
    cdef public list buffers
    cdef public Py_ssize_t sticky

    def __init__(self, str name, Py_ssize_t partitions, Py_ssize_t sticky):
        self.name = name
        self.partitions = partitions
        self.buffers = [PartitionBuffer() for _ in range(partitions)]
        self.sticky = sticky


cdef double _monotonic():
    return time.monotonic()


cdef object _ZERO = 0  # produce()'s default timestamp (ints below 257 are shared objects)

cdef extern from "Python.h":
    # PyList_Append without Cython's automatic raise: the caller releases its lock first.
    int _list_append "PyList_Append" (object lst, object item)

cdef extern from *:
    """
    /* PyList_Append inlined for a list with room left (a presized partition buffer, see
       _presized_list): no call, no resize. 0, or -1 with MemoryError set. */
    static inline int hw_list_append(PyObject *list, PyObject *item) {
        PyListObject *l = (PyListObject *)list;
        Py_ssize_t n = Py_SIZE(l);
        if (n < l->allocated) {
            Py_INCREF(item);
            l->ob_item[n] = item;
            Py_SET_SIZE(l, n + 1);
            return 0;
        }
        return PyList_Append(list, item);
    }
    """
    int _list_append_fast "hw_list_append" (object lst, object item)


cdef int _error_set() except -1:
    """Propagate the exception already set (by a C-API call declared without `except`)."""
    return -1


# _send_plain's outcomes
cdef enum:
    _SEND_GENERAL = 0
    _SENT = 1
    _SEND_FAILED = 2


cdef class ProducerCore:
    """The C part of client.producer.Producer: produce() for the common record (bytes or None
    value, no key, headers, timestamp or callback) appends to the partition buffer without a
    Python frame. Everything else goes to the Python `_produce_general`; sends go to the Python
    `_send_locked`. Subclassed by Producer, which sets every field.

    produce() itself is installed below the class as a METH_FASTCALL function
    (`_produce_entry`); `_produce_args` is its general-argument form."""
    cdef public FastRLock _lock
    cdef public dict _topics
    cdef public Py_ssize_t _queued
    cdef public Py_ssize_t _max_message
    cdef public Py_ssize_t _batch_messages
    cdef public Py_ssize_t _batch_bytes
    cdef public double _linger_s
    cdef public bint _closed
    cdef public object _default_cb
    # The topic of the last fast-path record, the _topics dict it was found in and its state:
    # a loop producing to one topic skips the dict lookup. Valid while _topics is that same
    # dict, because the producer never replaces or removes an entry of a dict installed as
    # _topics (see Producer._topic_state); installing another dict changes the identity.
    cdef object _cached_topic
    cdef dict _cached_topics
    cdef TopicBuffers _cached_state
    cdef int64_t _sent_base  # the offset _append_now's record got
    cdef Py_ssize_t _sent_partition  # the partition _send_plain sent to
    cdef object _sent_error  # the exception _send_plain's append raised
    cdef DataSignal _signal  # the broker's (what _append_now wakes), looked up once

    def _produce_args(self, topic, value=None, key=None, Py_ssize_t partition=-1,
                      on_delivery=None, timestamp=0, headers=None, callback=None):
        """produce() with any arguments: the fast path unless a field needs Python."""
        if (key is not None or on_delivery is not None or callback is not None
                or headers is not None or (timestamp is not _ZERO and timestamp)):
            return self._produce_general(topic, value, key, partition, on_delivery, timestamp,
                                         headers, callback)
        return self._produce_fast(topic, value, partition)

    cdef object _produce_fast(self, object topic, object value, Py_ssize_t partition):
        """Buffer a record with no key, headers, timestamp or callback."""
        cdef Py_ssize_t size, i, p
        cdef TopicBuffers state
        cdef PartitionBuffer buf
        cdef PyObject *found
        cdef FastRLock lock
        cdef list values
        if value is None:
            size = 0
        elif PyBytes_CheckExact(value):
            size = PyBytes_GET_SIZE(value)
        else:
            size = -1
        if size < 0 or size > self._max_message or self._default_cb is not None:
            return self._produce_general(topic, value, None, partition)
        if not PyUnicode_CheckExact(topic) or self._topics is None:
            return self._produce_general(topic, value, None, partition)
        lock = self._lock
        lock._acquire()
        # From here every exit releases the lock. A str key's lookup cannot raise.
        if topic is self._cached_topic and self._topics is self._cached_topics:
            state = self._cached_state
        else:
            found = PyDict_GetItemWithError(self._topics, topic)
            if found == NULL:
                lock._release()
                return self._produce_general(topic, value, None, partition)
            state = <TopicBuffers>found
            self._cached_topic = topic
            self._cached_topics = self._topics
            self._cached_state = state
        if self._closed:
            lock._release()
            return self._produce_general(topic, value, None, partition)
        p = partition if partition >= 0 else state.sticky
        if (p < 0 or p >= state.partitions or state.buffers is None
                or p >= PyList_GET_SIZE(state.buffers)):
            # No sticky partition yet, or a partition this producer has not seen.
            lock._release()
            return self._produce_general(topic, value, None, partition)
        buf = <PartitionBuffer>PyList_GET_ITEM(state.buffers, p)
        values = buf.values
        if values is None or (buf.keys is not None and not PyList_CheckExact(buf.keys)):
            lock._release()
            return self._produce_general(topic, value, None, partition)
        i = PyList_GET_SIZE(values)
        if i == 0 and self._linger_s <= 0 and self._txn_id is None and not self._codec:
            # linger.ms=0 with nothing buffered: _send_locked would send this one record at
            # once; append it straight away (no callback asks for a report, see above).
            try:
                err = self._append_now(state, p, buf, value)
            finally:
                lock._release()
            if err is not None:
                self._send_failed(state.name, p, err)
            return None
        if _list_append_fast(values, value) < 0 or (buf.keys is not None and _list_append(buf.keys, None) < 0):
            lock._release()
            return _error_set()  # MemoryError
        if i == 0:
            buf.first_ms = _monotonic()
        buf.nbytes += size + 16
        self._queued += 1
        if i + 1 >= self._batch_messages or buf.nbytes >= self._batch_bytes or self._linger_s <= 0:
            try:
                self._send_locked(state, p)
            finally:
                lock._release()
            return None
        lock._release()
        return None


    def _send_one_fast(self, topic, value, Py_ssize_t partition):
        """Producer._send_one for the plainest record (bytes or None value, no key, headers
        or timestamp; a producer neither transactional nor compressing, nothing buffered)
        without a Python frame: the linger.ms=0 send of issue 3's latency bar. Every other
        case, including every error raised before the append, goes to _send_one, which
        owns them.

        Returns (partition, base offset or -1, exception from the append or None)."""
        cdef int r = self._send_plain(topic, value, partition)
        if r == _SENT:
            return self._sent_partition, self._sent_base, None
        if r == _SEND_FAILED:
            err, self._sent_error = self._sent_error, None
            return self._sent_partition, -1, err
        return self._send_one(topic, value, None, partition, 0)

    def _send_future(self, loop, topic, value, Py_ssize_t partition, meta_type, to_error):
        """AIOProducer.send's linger.ms=0 lane: _send_one_fast, then a future of `loop`
        completed with meta_type(topic, partition, offset, -1) (client.aio.RecordMetadata,
        built by record_metadata), or failed with to_error(the append's exception). None
        (nothing sent) when the record must take produce(): lingering, a transactional or
        compressing producer, records buffered."""
        cdef int r
        if self._linger_s > 0:
            return None
        r = self._send_plain(topic, value, partition)
        if r == _SEND_GENERAL:
            sent = self._send_one(topic, value, None, partition, 0)
            if sent is None:
                return None
            p, base, exc = <tuple>sent
        elif r == _SEND_FAILED:
            p, base, exc = self._sent_partition, -1, self._sent_error
            self._sent_error = None
        else:
            p, base, exc = self._sent_partition, self._sent_base, None
        fut = loop.create_future()
        if exc is not None:
            fut.set_exception(to_error(exc))
        else:
            fut.set_result(record_metadata(meta_type, topic, p, base, -1))
        if self._reports:
            self.poll(0)
        return fut

    cdef int _send_plain(self, topic, value, Py_ssize_t partition) except -1:
        """Send the plainest record now if this producer can (see _send_one_fast): _SENT
        (partition and offset in _sent_partition, _sent_base), _SEND_FAILED (the append's
        exception in _sent_error, nothing written), or _SEND_GENERAL: nothing done, the
        record needs _send_one."""
        cdef Py_ssize_t size, p, n
        cdef TopicBuffers state
        cdef FastRLock lock
        cdef PyObject *found
        if value is None:
            size = 0
        elif PyBytes_CheckExact(value):
            size = PyBytes_GET_SIZE(value)
        else:
            size = -1
        if (size < 0 or size > self._max_message or not PyUnicode_CheckExact(topic)
                or self._topics is None or self._txn_id is not None or self._codec):
            return _SEND_GENERAL
        lock = self._lock
        lock._acquire()
        # From here every exit releases the lock.
        if self._closed or self._queued:
            lock._release()
            return _SEND_GENERAL
        if topic is self._cached_topic and self._topics is self._cached_topics:
            state = self._cached_state
        else:
            found = PyDict_GetItemWithError(self._topics, topic)
            if found == NULL:
                lock._release()
                return _SEND_GENERAL
            state = <TopicBuffers>found
            self._cached_topic = topic
            self._cached_topics = self._topics
            self._cached_state = state
        n = state.partitions
        p = partition if partition >= 0 else state.sticky
        if p < 0 or p >= n or state.buffers is None or p >= PyList_GET_SIZE(state.buffers):
            # No sticky partition yet, or a partition this producer has not seen.
            lock._release()
            return _SEND_GENERAL
        try:
            err = self._append_now(state, p, <PartitionBuffer>PyList_GET_ITEM(state.buffers, p), value)
        finally:
            lock._release()
        self._sent_partition = p
        if err is not None:
            self._sent_error = err
            return _SEND_FAILED
        return _SENT

    cdef object _append_now(self, TopicBuffers state, Py_ssize_t p, PartitionBuffer buf, value):
        """Send one plain record to partition `p` now, the lock held: Broker._append_one
        without its frames (the log, kept in `buf` while open; its single-record append;
        the consumers' wakeup), the sticky partition moved on as _send_locked does. Returns
        the exception the append raised (nothing was written), else None with the offset in
        `_sent_base`."""
        cdef Py_ssize_t n = state.partitions
        if p == state.sticky and n > 1:
            # As _send_locked: a sent batch moves the sticky partition on.
            state.sticky = (p + 1 + self._rng.randrange(n - 1)) % n
        try:
            plog = buf.log
            if plog is None or (<PartitionLogCore?>plog)._closed:
                plog = buf.log = self._broker._log_for_append(state.name, p)
            if self._idempotent:
                self._sent_base = (<PartitionLogCore?>plog)._append_one(
                    value, None, 0, self.producer_id, self.producer_epoch, buf.next_sequence)
                buf.next_sequence = (buf.next_sequence + 1) & 0x7FFFFFFF
            else:
                self._sent_base = (<PartitionLogCore?>plog)._append_one(value, None, 0, -1, -1, -1)
            if self._signal is None:
                self._signal = <DataSignal?>self._broker._signal
            _notify_waiters(self._signal)
        except (KafkaApiError, OSError, ValueError, TypeError) as exc:
            return exc
        return None


# produce() is called once per record, so its argument parsing is a good part of its cost: a
# Cython def with eight defaulted parameters spends ~15 ns taking and dropping references to
# the defaults (measured: 56 ns vs 41 ns for a two-parameter def, per call from a loop). The
# method is therefore a METH_FASTCALL C function: produce(topic) / produce(topic, value) go
# straight to _produce_fast, any other call to _produce_args, which parses as a def does.

cdef extern from "Python.h":
    object PyObject_Vectorcall(object callable, PyObject **args, size_t nargsf, PyObject *kwnames)
    object PyDescr_NewMethod(PyTypeObject *cls, PyMethodDef *meth)
    int METH_FASTCALL
    int METH_KEYWORDS


cdef object _produce_entry(object self, PyObject **args, Py_ssize_t nargs, PyObject *kwnames):
    if kwnames == NULL:
        if nargs == 2:
            return (<ProducerCore>self)._produce_fast(<object>args[0], <object>args[1], -1)
        if nargs == 1:
            return (<ProducerCore>self)._produce_fast(<object>args[0], None, -1)
    return PyObject_Vectorcall(getattr(self, "_produce_args"), args, <size_t>nargs, kwnames)


cdef PyMethodDef _produce_def
_produce_def.ml_name = b"produce"
_produce_def.ml_meth = <PyCFunction><void *>_produce_entry
_produce_def.ml_flags = METH_FASTCALL | METH_KEYWORDS
_produce_def.ml_doc = (
    b"produce($self, /, topic, value=None, key=None, partition=-1, on_delivery=None, "
    b"timestamp=0, headers=None, callback=None)\n--\n\n"
    b"Buffer one record for `topic` (see Producer's module docstring).")
PyDict_SetItemString(<object>(<PyTypeObject *>ProducerCore).tp_dict, "produce",
                     PyDescr_NewMethod(<PyTypeObject *>ProducerCore, &_produce_def))
PyType_Modified(ProducerCore)


# ---------------------------------------------------------------- consumer hot path

cdef class ConsumerCore:
    """The C part of client.consumer.Consumer: _take_ready() (one consume() pass without its
    wait) and, for a consumer of one partition, the tail read it makes on every wakeup
    (PartitionLog.read_messages into the buffer) without Python frames. Everything else (the
    group protocol, auto-commit, several partitions, the first position, end-of-partition
    events, reads PartitionLog.read_messages hands over) calls the Python methods, which own
    those rules; _fill_one's fast branch is the Python twin of _fill_tail. Subclassed by
    Consumer, which sets every field."""
    cdef public FastRLock _lock
    cdef public bint _closed
    cdef public bint _subscribed
    cdef public bint _auto_commit
    cdef public bint _eof
    cdef public bint _check_crcs
    cdef public int _isolation
    cdef public Py_ssize_t _max_partition_bytes
    cdef public Py_ssize_t _fill_next
    cdef public list _buffer
    cdef public dict _positions
    cdef public dict _consumed
    cdef public set _paused
    cdef public set _eof_sent
    cdef public object _broker
    # The log _fill_tail read last, and its (topic, partition): kept while open.
    cdef object _tail_key
    cdef object _tail_log

    def _take_ready(self, Py_ssize_t want):
        """Drive the group, read assigned partitions until `want` messages are buffered, and
        take up to `want` of them (error events included)."""
        cdef list buf, taken
        cdef Py_ssize_t n
        cdef object key = None
        cdef FastRLock lock = self._lock
        lock._acquire()
        try:
            if self._closed:
                self._check_open()
            if self._subscribed:
                self._drive_group()
            if self._auto_commit:
                self._maybe_auto_commit()
            buf = self._buffer
            if PyList_GET_SIZE(buf) < want:
                # A read may hold only batches that are not delivered (markers, aborted
                # transactions): read on while positions advance, without waiting.
                if len(self._positions) == 1 and not self._paused:
                    # One assigned partition (a tailing reader): _fill without its rotation.
                    self._fill_next = 0
                    for key in self._positions:
                        break
                    while self._fill_tail(key) and PyList_GET_SIZE(buf) == 0:
                        pass
                else:
                    while self._fill(want) and PyList_GET_SIZE(buf) == 0:
                        pass
            n = PyList_GET_SIZE(buf)
            if n == 0:
                return []
            if n <= want:
                taken = buf[:]
                del buf[:]
            else:
                taken = buf[:want]
                del buf[:want]
            _last_offsets_into(self._consumed, taken)
            return taken
        finally:
            lock._release()

    cdef bint _fill_tail(self, object key) except -1:
        """Consumer._fill_one for a partition with a known position whose read
        PartitionLog.read_messages serves: True if the position advanced."""
        cdef object pos = self._positions[key]
        cdef Message last
        cdef int64_t nxt
        if pos is None:
            return self._fill_one(key)
        topic, partition = key
        plog = self._tail_log
        if plog is None or (<PartitionLogCore>plog)._closed or not (key is self._tail_key or key == self._tail_key):
            plog = self._broker.get_log(topic, partition)
            self._tail_key = key
            self._tail_log = plog
        fast = (<PartitionLogCore?>plog)._read_messages(
            pos, self._max_partition_bytes, topic, partition, self._check_crcs, self._isolation)
        if fast is None:
            return self._fill_one(key)  # read() decides (and raises what it raises)
        msgs, next_offset = fast
        nxt = next_offset
        if nxt < 0:
            if self._eof and key not in self._eof_sent:
                return self._fill_one(key)  # it appends the end-of-partition event
            return False
        if msgs:
            self._buffer.extend(msgs)
            last = (<list>msgs)[len(msgs) - 1]  # (wraparound is off in this module)
            if last._offset + 1 > nxt:
                nxt = last._offset + 1
        elif pos > nxt:
            nxt = pos
        # Past control batches too: the next fetch starts after the last batch read.
        self._positions[key] = nxt
        if self._eof_sent:
            self._eof_sent.discard(key)
        return True


# ---------------------------------------------------------------- asyncio faces' hot path

cdef extern from *:
    """
    /* object.__new__(cls) through the C API (object_new: allocation and the instance dict). */
    static PyObject *hw_new_instance(PyObject *cls) {
        static PyObject *empty = NULL;
        if (empty == NULL && (empty = PyTuple_New(0)) == NULL) return NULL;
        return PyBaseObject_Type.tp_new((PyTypeObject *)cls, empty, NULL);
    }
    """
    object hw_new_instance(object cls)

cdef extern from "Python.h":
    int PyObject_GenericSetAttr(object o, object name, object value) except -1


def record_metadata(cls, topic, int32_t partition, int64_t offset, int64_t timestamp):
    """cls(topic, partition, offset, timestamp) for client.aio.RecordMetadata, a frozen
    dataclass, without its __init__: the fields are set with the generic setattr (the
    dataclass's own refuses). One is made per send."""
    o = hw_new_instance(cls)
    PyObject_GenericSetAttr(o, "topic", topic)
    PyObject_GenericSetAttr(o, "partition", partition)
    PyObject_GenericSetAttr(o, "offset", offset)
    PyObject_GenericSetAttr(o, "timestamp", timestamp)
    return o


def consumer_record(cls, Message m):
    """client.aio.ConsumerRecord (a frozen dataclass, `cls`) of a Message, as
    record_metadata() builds RecordMetadata: aiokafka's timestamp_type is 0 for CreateTime
    (or none), 1 for LogAppendTime; headers a tuple of (key, value) pairs."""
    o = hw_new_instance(cls)
    PyObject_GenericSetAttr(o, "topic", m._topic if m._topic is not None else "")
    PyObject_GenericSetAttr(o, "partition", m._partition)
    PyObject_GenericSetAttr(o, "offset", m._offset)
    if m._timestamp < 0:
        PyObject_GenericSetAttr(o, "timestamp", -1)
        PyObject_GenericSetAttr(o, "timestamp_type", 0)
    else:
        PyObject_GenericSetAttr(o, "timestamp", m._timestamp)
        PyObject_GenericSetAttr(o, "timestamp_type", 0 if m._ts_type <= 1 else 1)
    PyObject_GenericSetAttr(o, "key", m._key)
    PyObject_GenericSetAttr(o, "value", m._value)
    PyObject_GenericSetAttr(o, "headers", tuple(m._headers) if m._headers else ())
    return o


cdef class Wakeup:
    """What the broker sets on every append (notify_data, on the loop's thread): completes
    the future a waiting asyncio consumer armed, without an Event's task per wait."""
    cdef object _fut

    def arm(self, loop):
        """A new future for this wait: set() completes it."""
        fut = self._fut = loop.create_future()
        return fut

    def disarm(self):
        self._fut = None

    cdef inline int _set(self) except -1:
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(None)
        return 0

    def set(self):
        self._set()


cdef extern from *:
    """
    #include <pthread.h>
    #include <time.h>
    /* A sequence number and a condition variable: notify() bumps the number and wakes every
       thread in wait(); wait() returns once the number is no longer `seen` (or at a timeout).
       The mutex is held only inside these C calls, never while taking the GIL. */
    typedef struct hw_signal {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        long long seq;
        int waiters;
    } hw_signal;

    static int hw_signal_init(hw_signal *s) {
        pthread_condattr_t a;
        s->seq = 0;
        s->waiters = 0;
        if (pthread_mutex_init(&s->mu, NULL) != 0) return -1;
        if (pthread_condattr_init(&a) != 0) return -1;
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        int rc = pthread_cond_init(&s->cv, &a);
        pthread_condattr_destroy(&a);
        return rc == 0 ? 0 : -1;
    }

    static void hw_signal_destroy(hw_signal *s) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
    }

    static void hw_signal_notify(hw_signal *s) {
        pthread_mutex_lock(&s->mu);
        s->seq++;
        if (s->waiters) pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }

    static long long hw_signal_seq(hw_signal *s) {
        pthread_mutex_lock(&s->mu);
        long long v = s->seq;
        pthread_mutex_unlock(&s->mu);
        return v;
    }

    static void hw_signal_wait(hw_signal *s, long long seen, double timeout) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        if (timeout < 0) timeout = 0;
        long long ns = (long long)(timeout * 1e9) + dl.tv_nsec;
        dl.tv_sec += (time_t)(ns / 1000000000LL);
        dl.tv_nsec = (long)(ns % 1000000000LL);
        pthread_mutex_lock(&s->mu);
        s->waiters++;
        while (s->seq == seen) {
            if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) != 0) break;  /* timeout */
        }
        s->waiters--;
        pthread_mutex_unlock(&s->mu);
    }
    """
    ctypedef struct hw_signal:
        pass
    int hw_signal_init(hw_signal *s)
    void hw_signal_destroy(hw_signal *s)
    void hw_signal_notify(hw_signal *s) nogil
    long long hw_signal_seq(hw_signal *s) nogil
    void hw_signal_wait(hw_signal *s, long long seen, double timeout) nogil


cdef class DataSignal:
    """What threads waiting for an append block on (client.broker.Broker): `seq` counts
    notify() calls; wait(seen, timeout) blocks, with the GIL released, until seq is no
    longer `seen` or `timeout` seconds pass. A pthread condition variable in C: the Python
    threading.Condition it replaces ran some forty lines of Python on both sides of every
    wakeup."""
    cdef hw_signal sig
    # (loop, event, thread id) of asyncio waiters, woken by notify_data: a tuple, replaced
    # whole (under the broker's lock), so notify_data iterates it without a lock.
    cdef public tuple async_waiters

    def __cinit__(self):
        if hw_signal_init(&self.sig) != 0:
            raise MemoryError("cannot create a condition variable")
        self.async_waiters = ()

    def __dealloc__(self):
        hw_signal_destroy(&self.sig)

    @property
    def seq(self):
        return hw_signal_seq(&self.sig)

    cdef inline void _notify(self) noexcept:
        hw_signal_notify(&self.sig)

    def notify(self):
        """Bump seq and wake every waiting thread (not the asyncio waiters)."""
        hw_signal_notify(&self.sig)

    cdef int _notify_all(self) except -1:
        return _notify_waiters(self)

    def wait(self, long long seen, double timeout):
        """Until seq != seen, or `timeout` seconds."""
        with nogil:
            hw_signal_wait(&self.sig, seen, timeout)


def notify_data(broker):
    """client.broker.Broker._notify_data (documented there), in C."""
    (<DataSignal?>broker._signal)._notify_all()


cdef int _notify_waiters(DataSignal signal) except -1:
    """Wake what waits for an append: threads through the condition variable, asyncio
    loops through their event (a linger.ms=0 send calls this once per record)."""
    signal._notify()
    waiters = signal.async_waiters
    if not waiters:
        return 0
    me = PyThread_get_thread_ident()
    for loop, event, thread in waiters:
        if thread == me:
            # On the loop's own thread (a loop runs on the thread that registered it): no
            # self-pipe write, no wakeup. Compared by thread, not by asyncio's running loop:
            # finding that costs a getpid() system call.
            if type(event) is Wakeup:
                (<Wakeup>event)._set()
            else:
                event.set()
            continue
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:
            pass  # that loop is closed; its consumer will never wait again
    return 0
