"""Helpers for the transaction-coordinator tests: a counter allocator and record decoding."""

from __future__ import annotations

from dataclasses import dataclass, field

from headwater.coordinator.txn import (
    InitPending,
    InitResult,
    TransactionCoordinator,
    TransactionCoordinatorConfig,
)
from headwater.coordinator.txn import records as rec

Record = tuple[bytes, bytes | None]

FIRST_PRODUCER_ID = 1000


@dataclass
class Allocator:
    """Hands out 1000, 1001, ... and remembers what it gave."""

    next_id: int = FIRST_PRODUCER_ID
    given: list[int] = field(default_factory=list)

    def __call__(self) -> int:
        pid = self.next_id
        self.next_id += 1
        self.given.append(pid)
        return pid


def make(
    config: TransactionCoordinatorConfig | None = None,
    allocator: Allocator | None = None,
    **kwargs: object,
) -> TransactionCoordinator:
    return TransactionCoordinator(config, allocator or Allocator(), **kwargs)  # type: ignore[arg-type]


def init(coord: TransactionCoordinator, txn_id: str, now_ms: int = 0, **kw: int) -> InitResult:
    """InitProducerId that must answer at once."""
    out = coord.init_producer_id(txn_id, kw.pop("timeout_ms", 60000), now_ms, **kw)
    assert isinstance(out, InitResult), out
    return out


def pending(coord: TransactionCoordinator, txn_id: str, now_ms: int = 0, **kw: int) -> InitPending:
    out = coord.init_producer_id(txn_id, kw.pop("timeout_ms", 60000), now_ms, **kw)
    assert isinstance(out, InitPending), out
    return out


def decoded(records: list[Record]) -> list[tuple[str, rec.TransactionLogValue | None]]:
    out = []
    for key, value in records:
        k = rec.decode_key(key)
        assert isinstance(k, rec.TransactionLogKey)
        out.append((k.transactional_id, None if value is None else rec.decode_value(value)))
    return out


def states(records: list[Record]) -> list[tuple[str, int, int, int | None]]:
    """(id, producer id, epoch, state id) per record; a tombstone has -1, -1, None."""
    return [
        (i, -1, -1, None)
        if v is None
        else (i, v.producer_id, v.producer_epoch, v.transaction_status)
        for i, v in decoded(records)
    ]


def value_record(txn_id: str, *fields: object) -> Record:
    """One ``__transaction_state`` record: ``fields`` are TransactionLogValue's, in order."""
    return (rec.encode_key(txn_id), rec.encode_value(rec.TransactionLogValue(*fields)))  # type: ignore[arg-type]
