"""Helpers for the group-coordinator tests: a coordinator with deterministic member ids and
no initial rebalance delay, and a small driver that joins/syncs members the way a consumer
does, so each test reads as the protocol exchange it checks."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from headwater.coordinator.group import (
    GroupCoordinator,
    GroupCoordinatorConfig,
    JoinGroupResult,
    Pending,
    SyncGroupResult,
)

SESSION_MS = 10_000
REBALANCE_MS = 30_000


def ids() -> Callable[[str], str]:
    """member id factory: prefix + "-" + a counter (instead of a uuid4)."""
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}-{next(counter)}"


def make_coordinator(**config: int) -> GroupCoordinator:
    config.setdefault("group_initial_rebalance_delay_ms", 0)
    return GroupCoordinator(GroupCoordinatorConfig(**config), member_id_factory=ids())


@dataclass
class Driver:
    """Drives one coordinator for one group, as consumers would."""

    coord: GroupCoordinator
    group: str = "g"
    now: int = 1_000
    results: dict[str, JoinGroupResult] = field(default_factory=dict)

    def join(
        self,
        client_id: str = "c",
        *,
        member_id: str = "",
        instance_id: str | None = None,
        protocols: Sequence[tuple[str, bytes]] = (("range", b"sub"),),
        session_ms: int = SESSION_MS,
        rebalance_ms: int = REBALANCE_MS,
        protocol_type: str = "consumer",
        **kwargs: object,
    ) -> Pending[JoinGroupResult]:
        return self.coord.join_group(
            self.group,
            member_id=member_id,
            group_instance_id=instance_id,
            client_id=client_id,
            client_host="/127.0.0.1",
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=rebalance_ms,
            protocol_type=protocol_type,
            protocols=protocols,
            now_ms=self.now,
            **kwargs,  # type: ignore[arg-type]
        )

    def sync(
        self,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        instance_id: str | None = None,
    ) -> Pending[SyncGroupResult]:
        return self.coord.sync_group(
            self.group,
            member_id=member_id,
            generation_id=generation,
            group_instance_id=instance_id,
            assignments=assignments,
            now_ms=self.now,
        )

    def heartbeat(self, member_id: str, generation: int, instance_id: str | None = None) -> None:
        self.coord.heartbeat(
            self.group,
            member_id=member_id,
            generation_id=generation,
            group_instance_id=instance_id,
            now_ms=self.now,
        )

    def tick(self, advance_ms: int = 0) -> list:
        self.now += advance_ms
        return self.coord.tick(self.now)

    def rejoin_all(self, results: dict[str, JoinGroupResult]) -> dict[str, JoinGroupResult]:
        """Every member in ``results`` rejoins with its id; returns the new results."""
        pendings = {m: self.join(member_id=m) for m in results}
        assert all(p.done() for p in pendings.values())
        return {m: p.result() for m, p in pendings.items()}

    def stable_group(self, n: int, assign: Callable[[list[str]], dict[str, bytes]] | None = None):
        """Bring ``n`` dynamic members to Stable; returns ({member: JoinGroupResult},
        {member: assignment})."""
        first = self.join("c0").result()
        results = {first.member_id: first}
        for i in range(1, n):
            p = self.join(f"c{i}")
            results = self.rejoin_all(results)
            assert p.done()
            new = p.result()
            results[new.member_id] = new
        gens = {r.generation_id for r in results.values()}
        assert len(gens) == 1
        gen = gens.pop()
        leader = next(r for r in results.values() if r.is_leader)
        members = [m.member_id for m in leader.members]
        assignments = (assign or (lambda ms: {m: m.encode() for m in ms}))(members)
        syncs = {m: self.sync(m, gen) for m in results if m != leader.member_id}
        syncs[leader.member_id] = self.sync(leader.member_id, gen, assignments)
        return results, {m: p.result().assignment for m, p in syncs.items()}
