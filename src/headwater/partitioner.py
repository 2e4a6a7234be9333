"""Key hashing and partition choice, compatible with the Java, kafka-python and librdkafka clients.

Hashes (kafka-spec.md f.1, f.2):

    murmur2(key)   Java's Utils.murmur2, as a signed int32 (the Java return value)
    crc32(key)     zlib/IEEE CRC-32 (librdkafka's `consistent`), NOT the CRC-32C of batches
    fnv1a(key)     FNV-1a 32 with librdkafka's Sarama-compatible absolute value

    partition = (murmur2(key) & 0x7fffffff) % n      Utils.toPositive: a mask, never abs()

Partitioners by librdkafka's names (`partitioner` config); `murmur2_random` is headwater's
default because it puts a key where the Java client and kafka-python's DefaultPartitioner do:

    name               keyed key            null key        empty key (b"")
    murmur2_random     murmur2 % n          sticky          murmur2(b"") % n
    murmur2            murmur2 % n          murmur2(b"")    murmur2(b"") % n
    consistent_random  crc32 % n            sticky          sticky
    consistent         crc32 % n            0 (crc32 = 0)   0
    fnv1a_random       fnv1a % n            sticky          fnv1a(b"") % n
    fnv1a              fnv1a % n            fnv1a(b"")      fnv1a(b"") % n
    random             random per record    sticky          random per record

"sticky" is librdkafka's rule (rdkafka_msg.c `rd_kafka_msg_sticky_partition`): one random
partition per topic, kept until `sticky.partitioning.linger.ms` (default 10) has passed since
it was picked; then a fresh random pick (which may be the same partition). Linger 0 turns
stickiness off: every "sticky" record is then a random pick. As in librdkafka, the
non-random partitioners (murmur2, consistent, fnv1a) never stick.

Time comes from a `now_ms` argument or an injected clock, so tests drive stickiness step by
step (STYLE.md section 5). Randomness comes from an injectable `random.Random`.

Speed: murmur2 is pure Python: about 1.5 us for an 8-byte key and 3 us for 16 bytes on the
development VM (kafka-python's is ~1.7x slower), far above the ~500 ns per-record budget of
produce() at 2 M records/s, so a C port is warranted for the per-record path. Until then a
Partitioner keeps a bounded dict of key hashes (a hit is ~100 ns), and `murmur2_array` hashes
a numpy array of fixed-width keys column-wise (~70 M keys/s for 16-byte keys).
Thread-safety: the hash functions are pure; a Partitioner's sticky state is guarded by a lock
(its hash cache is a dict whose single get/set operations are atomic under the GIL).
"""

from __future__ import annotations

import random as _random
import struct
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from headwater.errors import ConfigError

SEED = 0x9747B28C
M = 0x5BD1E995
MASK32 = 0xFFFFFFFF

STICKY_LINGER_MS_DEFAULT = 10
DEFAULT_PARTITIONER = "murmur2_random"
PARTITIONERS = (
    "murmur2_random",
    "murmur2",
    "consistent_random",
    "consistent",
    "fnv1a_random",
    "fnv1a",
    "random",
)

# Unpackers of n little-endian uint32 blocks, cached per block count (keys are short, so
# few distinct counts occur).
_BLOCK_UNPACK: dict[int, Callable[[Any], tuple[int, ...]]] = {}

# A Partitioner remembers this many key hashes (bytes keys only): real key sets repeat (user
# ids, device ids), and a dict hit is ~20x cheaper than the pure-Python murmur2.
HASH_CACHE_ENTRIES = 8192


def murmur2_unsigned(data: Any) -> int:
    """Java's murmur2 of `data` as an unsigned 32-bit int (what kafka-python's murmur2 returns)."""
    # The constants are literals, not globals: a global lookup per block costs ~10% here.
    if isinstance(data, str):
        data = data.encode()
    length = len(data)
    h = 0x9747B28C ^ length
    n4 = length >> 2
    if n4:
        unpack = _BLOCK_UNPACK.get(n4)
        if unpack is None:
            unpack = _BLOCK_UNPACK[n4] = struct.Struct(f"<{n4}I").unpack_from
        for k in unpack(data):
            k = (k * 0x5BD1E995) & 0xFFFFFFFF
            h = ((h * 0x5BD1E995) & 0xFFFFFFFF) ^ (((k ^ (k >> 24)) * 0x5BD1E995) & 0xFFFFFFFF)
    tail = length & 3
    if tail:
        i = length - tail
        if tail == 3:
            h ^= data[i + 2] << 16
        if tail >= 2:
            h ^= data[i + 1] << 8
        h = ((h ^ data[i]) * 0x5BD1E995) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0x5BD1E995) & 0xFFFFFFFF
    return h ^ (h >> 15)


def murmur2(data: Any) -> int:
    """Java's Utils.murmur2 of `data` (bytes-like or str as UTF-8): a signed int32."""
    h = murmur2_unsigned(data)
    return h - 0x100000000 if h & 0x80000000 else h


def murmur2_partition(data: Any, num_partitions: int) -> int:
    """The Java client's partition for a serialized key: toPositive(murmur2) % n."""
    return (murmur2_unsigned(data) & 0x7FFFFFFF) % num_partitions


def murmur2_array(keys: Any) -> Any:
    """murmur2 (unsigned, numpy uint32) of every key in a numpy array of dtype ``S<w>``.

    Each key is the full ``w`` bytes of its element (numpy's S dtype hides trailing NULs when
    indexing, but the bytes are there, as the log stores them). Vectorized: one pass per
    4-byte column, so n keys cost about w/4 numpy operations.
    """
    import numpy as np

    arr = np.ascontiguousarray(keys)
    if arr.dtype.kind != "S" or arr.ndim != 1:
        raise TypeError(f"murmur2_array needs a 1-d array of dtype S<w>, not {arr.dtype}")
    width = arr.dtype.itemsize
    raw = arr.view(np.uint8).reshape(len(arr), width)
    m = np.uint32(M)
    h = np.full(len(arr), (SEED ^ width) & MASK32, dtype=np.uint32)
    with np.errstate(over="ignore"):
        n4 = width >> 2
        if n4:
            blocks = np.ascontiguousarray(raw[:, : n4 * 4]).view("<u4").astype(np.uint32)
            for j in range(n4):
                k = blocks[:, j] * m
                k ^= k >> np.uint32(24)
                k *= m
                h *= m
                h ^= k
        tail = width & 3
        base = width & ~3
        if tail:
            if tail == 3:
                h ^= raw[:, base + 2].astype(np.uint32) << np.uint32(16)
            if tail >= 2:
                h ^= raw[:, base + 1].astype(np.uint32) << np.uint32(8)
            h ^= raw[:, base].astype(np.uint32)
            h *= m
        h ^= h >> np.uint32(13)
        h *= m
        h ^= h >> np.uint32(15)
    return h


def crc32(data: Any) -> int:
    """zlib/IEEE CRC-32 (librdkafka's `consistent` partitioner), unsigned."""
    if isinstance(data, str):
        data = data.encode()
    return zlib.crc32(data) & MASK32


def fnv1a(data: Any) -> int:
    """librdkafka's rd_fnv1a: FNV-1a 32, then the absolute value of it as an int32 (Sarama's
    NewHashPartitioner does the same), returned unsigned."""
    if isinstance(data, str):
        data = data.encode()
    h = 0x811C9DC5
    for b in bytes(data):
        h = ((h ^ b) * 0x01000193) & MASK32
    if h & 0x80000000:
        h = (0x100000000 - h) & MASK32  # -h as int32; INT32_MIN stays itself, as in C
    return h


def _key_bytes(key: Any) -> Any:
    return key.encode() if isinstance(key, str) else key


class Partitioner:
    """Chooses a partition per record, by librdkafka's partitioner names.

    Args:
        name: one of PARTITIONERS (default "murmur2_random").
        sticky_linger_ms: librdkafka's `sticky.partitioning.linger.ms`; 0 disables stickiness.
        clock: returns now in ms when a call passes no now_ms (default: time.monotonic).
        rng: the random source (default: a private random.Random).

    Raises:
        ConfigError: an unknown name or a negative linger.
    """

    def __init__(
        self,
        name: str = DEFAULT_PARTITIONER,
        sticky_linger_ms: int = STICKY_LINGER_MS_DEFAULT,
        *,
        clock: Callable[[], int] | None = None,
        rng: _random.Random | None = None,
    ) -> None:
        if name not in PARTITIONERS:
            raise ConfigError(
                f"unknown partitioner {name!r}; expected one of {', '.join(PARTITIONERS)}"
            )
        if int(sticky_linger_ms) < 0:
            raise ConfigError("sticky.partitioning.linger.ms must be >= 0")
        self.name = name
        self.sticky_linger_ms = int(sticky_linger_ms)
        self._clock = clock or (lambda: int(time.monotonic() * 1000))
        self._rng = rng or _random.Random()
        self._lock = threading.Lock()
        # topic -> (sticky partition, ms it was picked)
        self._sticky: dict[str, tuple[int, int]] = {}
        # librdkafka: only the random-for-null variants (and plain random) ever stick.
        self._sticks = self.sticky_linger_ms > 0 and name not in ("murmur2", "consistent", "fnv1a")
        self._hash: Callable[[Any], int]
        if name.startswith("murmur2"):
            self._hash = self._murmur2_cached
        elif name.startswith("consistent"):
            self._hash = crc32
        elif name.startswith("fnv1a"):
            self._hash = fnv1a
        else:
            self._hash = crc32  # "random" hashes nothing; only b"" may reach it (never does)
        self._cache: dict[bytes, int] = {}

    def _murmur2_cached(self, key: Any) -> int:
        if type(key) is not bytes:
            return murmur2_unsigned(key) & 0x7FFFFFFF
        cache = self._cache
        h = cache.get(key)
        if h is None:
            if len(cache) >= HASH_CACHE_ENTRIES:
                cache.clear()  # cheaper than LRU bookkeeping; a hot set refills at once
            h = cache[key] = murmur2_unsigned(key) & 0x7FFFFFFF
        return h

    def __call__(self, topic: str, key: Any, num_partitions: int, now_ms: int | None = None) -> int:
        """Return the partition for a record with `key` (None = null key) in `topic`.

        Args:
            topic: the topic (stickiness is per topic).
            key: the serialized key: bytes-like, str (hashed as UTF-8) or None.
            num_partitions: the topic's partition count, >= 1.
            now_ms: the time for stickiness; default: the clock.
        """
        if num_partitions < 1:
            raise ValueError(f"num_partitions must be >= 1, got {num_partitions}")
        name = self.name
        if key is None:
            if self._sticks:
                return self._sticky_partition(topic, num_partitions, now_ms)
            if name.endswith("random"):
                return self._rng.randrange(num_partitions)
            return self._hash(b"") % num_partitions
        key = _key_bytes(key)
        if name == "consistent_random" and len(key) == 0:
            if self._sticks:
                return self._sticky_partition(topic, num_partitions, now_ms)
            return self._rng.randrange(num_partitions)
        if name == "random":
            return self._rng.randrange(num_partitions)
        return self._hash(key) % num_partitions

    partition = __call__

    def _sticky_partition(self, topic: str, num_partitions: int, now_ms: int | None) -> int:
        now = self._clock() if now_ms is None else now_ms
        with self._lock:
            current = self._sticky.get(topic)
            # rd_interval: a new pick once strictly more than linger has passed since the last.
            if (
                current is None
                or current[0] >= num_partitions
                or now - current[1] > self.sticky_linger_ms
            ):
                current = (self._rng.randrange(num_partitions), now)
                self._sticky[topic] = current
            return current[0]

    def reset_sticky(self, topic: str | None = None) -> None:
        """Forget the sticky partition of `topic` (all topics if None): the next null key re-picks."""
        with self._lock:
            if topic is None:
                self._sticky.clear()
            else:
                self._sticky.pop(topic, None)

    def __repr__(self) -> str:
        return f"Partitioner({self.name!r}, sticky_linger_ms={self.sticky_linger_ms})"


__all__ = [
    "DEFAULT_PARTITIONER",
    "PARTITIONERS",
    "Partitioner",
    "crc32",
    "fnv1a",
    "murmur2",
    "murmur2_array",
    "murmur2_partition",
    "murmur2_unsigned",
]
