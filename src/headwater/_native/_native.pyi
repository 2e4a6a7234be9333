"""Type stubs for headwater._native._native (the Cython binding over csrc/).

The codec part of this surface (everything above the "segments" line) is mirrored name for name
by headwater._pure, the slow pure-Python twin used as a test oracle. Segments and indexes exist
only natively.
"""

from collections.abc import Sequence

Buffer = bytes | bytearray | memoryview

BATCH_HEADER_SIZE: int  # 61
LOG_OVERHEAD: int  # 12: baseOffset + batchLength
MAGIC: int  # 2

# hw_status codes (csrc/hw_common.h), exposed for tests.
HW_OK: int
HW_ERR_TRUNCATED: int
HW_ERR_CORRUPT: int
HW_ERR_CRC: int
HW_ERR_OVERFLOW: int
HW_ERR_FULL: int
HW_ERR_IO: int

def crc32c(data: Buffer, value: int = 0) -> int:
    """CRC-32C of data; `value` is a previous result to continue from (crc32c(b, crc32c(a)) ==
    crc32c(a + b))."""

def crc32c_impl() -> str:
    """'sse4.2', 'armv8' or 'table': the implementation chosen at module init."""

def encode_varint(value: int) -> bytes:
    """Zig-zag varlong (int64) encoding, as Kafka record fields use."""

def decode_varint(buf: Buffer, pos: int = 0) -> tuple[int, int]:
    """Decode a zig-zag varlong at buf[pos:]. Returns (value, next_pos).
    Raises TruncatedError when the buffer ends mid-varint, CorruptRecordError after 10 bytes."""

class BatchHeader:
    """The 61-byte RecordBatch v2 header, decoded. Field names follow kafka-spec.md a.1."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int
    # derived
    @property
    def size(self) -> int: ...  # 12 + batch_length
    @property
    def last_offset(self) -> int: ...
    @property
    def compression(self) -> int: ...  # attributes & 7
    @property
    def timestamp_type(self) -> int: ...  # (attributes >> 3) & 1
    @property
    def is_transactional(self) -> bool: ...
    @property
    def is_control(self) -> bool: ...

def parse_batch_header(buf: Buffer, pos: int = 0) -> BatchHeader:
    """Decode the header at buf[pos:] and check magic == 2, batch_length >= 49 and that the whole
    batch fits in buf. No CRC check. Raises TruncatedError if buf ends before the batch does,
    CorruptRecordError for bad magic/length."""

def check_batch(buf: Buffer, pos: int = 0) -> BatchHeader:
    """parse_batch_header plus the CRC-32C check and, for uncompressed batches, a walk of every
    record (lengths consistent, records_count records, offset deltas 0..n-1 not required but
    last_offset_delta >= records_count - 1). Raises CorruptRecordError (subclass
    InvalidCrcError for a CRC mismatch)."""

def build_batch(
    values: Sequence[Buffer | None],
    keys: Sequence[Buffer | None] | None = None,
    headers: Sequence[Sequence[tuple[str, Buffer | None]] | None] | None = None,
    timestamps: Sequence[int] | None = None,
    *,
    base_offset: int = 0,
    timestamp: int = -1,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = -1,
    attributes: int = 0,
) -> bytes:
    """Build one uncompressed RecordBatch v2. Record i gets offset delta i. Timestamps: per record
    from `timestamps`, else `timestamp` for all (``-1`` means now in ms). base_timestamp is the
    first record's timestamp, max_timestamp the largest. `attributes` may carry the
    transactional/control bits; the codec bits must be 0 (compress afterwards with
    headwater.record.compress_batch)."""

def build_control_batch(
    control_type: int,
    *,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp: int,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
) -> bytes:
    """A transaction marker batch (kafka-spec.md a.5): attributes 0x30, one record with key
    (version 0, control_type) and value (version 0, coordinator_epoch)."""

class Record:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]

def decode_records(
    records: Buffer,
    count: int,
    base_offset: int,
    base_timestamp: int,
    log_append_time: int = -1,
) -> list[Record]:
    """Decode `count` records from an (uncompressed) records section. If log_append_time >= 0,
    every record's timestamp is that value (LogAppendTime batches). Bounds-checked: raises
    CorruptRecordError on any inconsistency, never reads outside `records`."""

# ---------------------------------------------------------------- segments (native only)

class ScanResult:
    valid_bytes: int  # end position of the last good batch
    batches: int
    status: int  # HW_OK (clean end or zero-filled preallocated tail), HW_ERR_TRUNCATED (torn
    #              tail), HW_ERR_CORRUPT / HW_ERR_CRC (bad batch at valid_bytes)
    first_offset: int  # -1 if no batch
    next_offset: int  # last_offset + 1 of the last good batch, or -1
    max_timestamp: int
    offset_of_max_timestamp: int

class Segment:
    """A mapped .log file. The file is grown by posix_fallocate in steps, so a full disk is an
    OSError(ENOSPC) from append/open, never SIGBUS."""

    def __init__(self, path: str, max_bytes: int, create: bool = False) -> None: ...
    @property
    def size(self) -> int: ...  # bytes of data (write position)
    @property
    def path(self) -> str: ...
    @property
    def exported_views(self) -> int: ...
    def append(self, data: Buffer) -> int: ...  # returns the position written at
    def append_records(
        self,
        values: Sequence[Buffer | None],
        keys: Sequence[Buffer | None] | None,
        timestamp: int,
        base_offset: int,
        partition_leader_epoch: int,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        attributes: int = 0,
    ) -> tuple[int, int]: ...  # build a batch straight into the mapping: (position, size)
    def append_one(
        self, value: Buffer | None, key: Buffer | None, timestamp: int, base_offset: int,
        partition_leader_epoch: int, producer_id: int, producer_epoch: int, base_sequence: int,
        max_batch_bytes: int,
    ) -> tuple[int, int]: ...  # append_records([value], [key]) of one record: (position, size)
    def read_messages(
        self, position: int, max_bytes: int, verify_crc: bool, start_offset: int, topic: str,
        partition: int, decompress: object = None,
    ) -> tuple[list[Message], int, int, int]: ...  # extent + decode_messages: (msgs, end, status, next offset or -1)
    def append_fixed(
        self, data: Buffer, width: int, count: int, timestamp: int, base_offset: int,
        partition_leader_epoch: int,
    ) -> tuple[int, int]: ...  # values are data[i*width:(i+1)*width]
    def append_offsets(
        self, data: Buffer, offsets: Buffer, count: int, timestamp: int, base_offset: int,
        partition_leader_epoch: int,
    ) -> tuple[int, int]: ...  # values are data[offsets[i]:offsets[i+1]] (int64 offsets)
    def view(self, position: int, size: int) -> memoryview: ...  # zero-copy
    def read(self, position: int, size: int) -> bytes: ...  # copy (pread semantics)
    def scan(self, position: int = 0, end: int = -1, verify_crc: bool = True) -> ScanResult: ...
    def batch_positions(self, position: int, end: int) -> list[tuple[int, int, int, int]]: ...
    def find_batch(self, position: int, target_offset: int) -> tuple[int, int]: ...
    def flush(self) -> None: ...  # msync + fdatasync; OSError on failure
    def truncate(self, size: int) -> None: ...  # BufferError while views are alive
    def close(self, trim: bool = True) -> None: ...  # BufferError while views are alive

class OffsetIndex:
    def __init__(self, path: str, base_offset: int, max_bytes: int) -> None: ...
    entries: int
    def append(self, offset: int, position: int) -> None: ...
    def lookup(self, offset: int) -> tuple[int, int]: ...  # largest entry <= offset, else (base, 0)
    def truncate_entries(self, n: int) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...

class TimeIndex:
    def __init__(self, path: str, base_offset: int, max_bytes: int) -> None: ...
    entries: int
    def append(self, timestamp: int, offset: int) -> None: ...
    def lookup(self, timestamp: int) -> tuple[int, int]: ...
    def last(self) -> tuple[int, int]: ...
    def truncate_entries(self, n: int) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


# ---------------------------------------------------------------- consumer read path

def payload_size(values: Sequence[Buffer | None], keys: Sequence[Buffer | None] | None = None) -> int: ...

class RecordIterator:
    """Records of whole batches (control batches skipped), from start_offset on."""
    def __init__(self, data: Buffer, start_offset: int = -1, decompress: object = None) -> None: ...
    def __iter__(self) -> RecordIterator: ...
    def __next__(self) -> Record: ...

class RecordColumns:
    """Records of whole batches as int64 columns over one buffer (zero-copy when uncompressed)."""
    offsets: object  # int64 array
    timestamps: object
    key_offsets: object  # position in `data`, -1 for a null key
    key_lengths: object
    value_offsets: object
    value_lengths: object
    data: object  # the buffer the positions refer to
    def __len__(self) -> int: ...
    def value(self, i: int) -> bytes | None: ...
    def key(self, i: int) -> bytes | None: ...

def decode_columns(data: Buffer, start_offset: int = -1, decompress: object = None) -> RecordColumns: ...

class Message:
    """confluent_kafka.Message's accessors; built in C by decode_messages()."""
    def __init__(
        self, topic: str | None, partition: int, offset: int, key: bytes | None, value: bytes | None,
        headers: list[tuple[str, bytes | None]] | None = None, timestamp: int = -1,
        timestamp_type: int = 1, error: object = None,
    ) -> None: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int: ...
    def offset(self) -> int: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> list[tuple[str, bytes | None]] | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def error(self) -> object: ...
    def latency(self) -> float | None: ...
    def set_value(self, value: bytes | None) -> None: ...
    def set_key(self, key: bytes | None) -> None: ...
    def set_headers(self, headers: list[tuple[str, bytes | None]] | None) -> None: ...
    def __len__(self) -> int: ...

def decode_messages(data: Buffer, start_offset: int, topic: str, partition: int, decompress: object = None) -> list[Message]: ...
def last_offsets(messages: list[Message]) -> dict[tuple[str, int], int]: ...  # offset + 1 of each partition's last

# ---------------------------------------------------------------- producer buffers

class FastRLock:
    """A reentrant lock that takes the OS lock only when a thread has to wait."""
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(self, *exc: object) -> None: ...

class PartitionBuffer:
    values: list[bytes | None]
    keys: list[bytes | None] | None
    headers: dict[int, object] | None
    timestamps: dict[int, int] | None
    callbacks: dict[int, object] | None
    nbytes: int
    first_ms: float
    next_sequence: int
    def take(self) -> tuple[list[bytes | None], list[bytes | None] | None, dict[int, object] | None, dict[int, int] | None, dict[int, object] | None]: ...

class TopicBuffers:
    name: str
    partitions: int
    buffers: list[PartitionBuffer]
    sticky: int
    def __init__(self, name: str, partitions: int, sticky: int) -> None: ...

class ProducerCore:
    """Base of client.producer.Producer: produce() (C) for the common record."""
    def produce(
        self, topic: str, value: Buffer | str | None = None, key: Buffer | str | None = None,
        partition: int = -1, on_delivery: object = None, timestamp: int = 0,
        headers: object = None, callback: object = None,
    ) -> None: ...
    def _send_one_fast(
        self, topic: str, value: Buffer | None, partition: int,
    ) -> tuple[int, int, BaseException | None] | None: ...  # Producer._send_one of a plain record, in C

class ConsumerCore:
    """Base of client.consumer.Consumer: one consume() pass and a single partition's tail read (C)."""
    def _take_ready(self, want: int) -> list[Message]: ...
