"""Request handlers, one module per family of APIs, merged into one table by api key.

- meta.py: ApiVersions, Metadata, DescribeCluster
- data.py: Produce, Fetch, ListOffsets, OffsetForLeaderEpoch, DeleteRecords, InitProducerId
- groups.py: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
  OffsetFetch, DescribeGroups, ListGroups, DeleteGroups
- admin.py: CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs,
  IncrementalAlterConfigs
- txn.py: AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit, DescribeProducers,
  DescribeTransactions, ListTransactions (InitProducerId with a transactional id: data.py
  hands it to txn.py)

Each module exports `HANDLERS: dict[int, handler]` (handler contract: server/context.py). An API
is advertised in ApiVersions iff it has a handler here.
"""

from __future__ import annotations

from typing import Any

from headwater.server.handlers import admin, data, groups, meta, txn

HANDLERS: dict[int, Any] = {}
for _module in (meta, data, groups, admin, txn):
    for _key, _fn in _module.HANDLERS.items():
        if _key in HANDLERS:  # pragma: no cover - a wiring mistake, caught by the import
            raise RuntimeError(f"two handlers for api key {_key}")
        HANDLERS[_key] = _fn

__all__ = ["HANDLERS"]
