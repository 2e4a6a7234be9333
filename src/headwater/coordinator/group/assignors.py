"""Client-side partition assignors: ``range``, ``roundrobin``, ``cooperative-sticky``.

The group leader runs one of these over every member's Subscription (kafka-spec.md e.3) and
sends the result in its SyncGroup. The broker never runs them; the embedded consumer does.

Input: ``partitions_per_topic`` ({topic: partition count}, topics unknown to the cluster are
absent) and ``subscriptions`` ({member_id: Subscription}). Output: {member_id: Assignment} with
an entry for every member, partitions sorted by (topic, partition). Subscribed topics missing
from ``partitions_per_topic`` are ignored.

Member order (range and roundrobin, as Kafka's ``MemberInfo``): static members first, sorted by
``group.instance.id``, then dynamic members sorted by member id.

- ``range``: per topic, the subscribed members in member order; with n partitions and m
  members, each takes n // m consecutive partitions and the first n % m members one more.
- ``roundrobin``: all subscribed topic-partitions sorted by (topic, partition), dealt one at a
  time to a circular iterator over the members in order, skipping members not subscribed to
  the partition's topic. The iterator is not reset between partitions.
- ``cooperative-sticky`` (KIP-429): keep every valid owned partition, give unowned partitions
  to the least-loaded eligible member, then move partitions from a member to an eligible member
  holding at least two fewer until no such move exists (balanced: with equal subscriptions the
  counts differ by at most one; every move is forced by balance, so movement is minimal for
  equal subscriptions). A partition that changes owner is then withheld from its new owner this
  round: the old owner sees it missing from its assignment and revokes it, rejoins, and the
  next rebalance (where nobody owns it) hands it over. Claims come from ``owned_partitions``;
  the claimant's generation is ``generation_id`` (Subscription v2+) or else the int32 in
  ``user_data``. Only claims of the highest generation count; a partition claimed twice in
  that generation counts as unowned. Cost: O(moves x members) with equal subscriptions; mixed
  subscriptions can cost O(partitions x members) per move, fine for embedded group sizes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Protocol

from headwater.coordinator.group.protocol import Assignment, Subscription, TopicPartition

_I32 = struct.Struct(">i")


class Assignor(Protocol):
    """A named assignment strategy (the protocol name in JoinGroup ``protocols``)."""

    name: str

    def subscription_user_data(self, generation_id: int) -> bytes | None:
        """The ``user_data`` this member puts in its Subscription."""
        ...

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        """Compute every member's assignment."""
        ...


def member_order(subscriptions: Mapping[str, Subscription]) -> list[str]:
    """Member ids in Kafka's MemberInfo order: static by instance id first, then member id."""

    def key(member_id: str) -> tuple[int, str, str]:
        instance_id = subscriptions[member_id].group_instance_id
        if instance_id is not None:
            return (0, instance_id, member_id)
        return (1, member_id, "")

    return sorted(subscriptions, key=key)


def _finish(result: Mapping[str, Iterable[TopicPartition]]) -> dict[str, Assignment]:
    return {member: Assignment(tuple(sorted(parts))) for member, parts in result.items()}


class RangeAssignor:
    """Kafka's RangeAssignor (no rack awareness)."""

    name = "range"

    def subscription_user_data(self, generation_id: int) -> bytes | None:
        return None

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        order = member_order(subscriptions)
        result: dict[str, list[TopicPartition]] = {m: [] for m in order}
        topics = sorted({t for s in subscriptions.values() for t in s.topics})
        for topic in topics:
            n = partitions_per_topic.get(topic)
            if n is None:
                continue
            members = [m for m in order if topic in subscriptions[m].topics]
            per_member, extra = divmod(n, len(members))
            for i, member in enumerate(members):
                start = per_member * i + min(i, extra)
                length = per_member + (1 if i < extra else 0)
                result[member].extend(
                    TopicPartition(topic, p) for p in range(start, start + length)
                )
        return _finish(result)


class RoundRobinAssignor:
    """Kafka's RoundRobinAssignor."""

    name = "roundrobin"

    def subscription_user_data(self, generation_id: int) -> bytes | None:
        return None

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        order = member_order(subscriptions)
        result: dict[str, list[TopicPartition]] = {m: [] for m in order}
        topics = sorted(
            {t for s in subscriptions.values() for t in s.topics if t in partitions_per_topic}
        )
        cursor = 0
        for topic in topics:
            for p in range(partitions_per_topic[topic]):
                # Some member subscribes to `topic`, so this loop ends within len(order) steps.
                while topic not in subscriptions[order[cursor]].topics:
                    cursor = (cursor + 1) % len(order)
                result[order[cursor]].append(TopicPartition(topic, p))
                cursor = (cursor + 1) % len(order)
        return _finish(result)


def _claim_generation(sub: Subscription) -> int:
    if sub.generation_id != -1:
        return sub.generation_id
    if sub.user_data is not None and len(sub.user_data) >= 4:
        generation: int = _I32.unpack_from(sub.user_data)[0]
        return generation
    return -1


class CooperativeStickyAssignor:
    """Kafka's CooperativeStickyAssignor: sticky, balanced, incremental (KIP-429)."""

    name = "cooperative-sticky"

    def subscription_user_data(self, generation_id: int) -> bytes | None:
        return _I32.pack(generation_id)

    def valid_owners(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> dict[TopicPartition, str]:
        """Partition -> member holding a valid claim (see the module docstring)."""
        max_generation = max((_claim_generation(s) for s in subscriptions.values()), default=-1)
        owners: dict[TopicPartition, str] = {}
        contested: set[TopicPartition] = set()
        for member in sorted(subscriptions):
            sub = subscriptions[member]
            if _claim_generation(sub) != max_generation:
                continue
            for tp in sub.owned_partitions:
                if tp.topic not in sub.topics:
                    continue
                if not 0 <= tp.partition < partitions_per_topic.get(tp.topic, 0):
                    continue
                if tp in owners and owners[tp] != member:
                    contested.add(tp)
                owners[tp] = member
        for tp in contested:
            del owners[tp]
        return owners

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        members = sorted(subscriptions)
        if not members:
            return {}
        eligible: dict[str, list[str]] = {}
        for member in members:
            for topic in subscriptions[member].topics:
                if topic in partitions_per_topic and member not in eligible.get(topic, ()):
                    eligible.setdefault(topic, []).append(member)
        previous = self.valid_owners(partitions_per_topic, subscriptions)

        owned: dict[str, set[TopicPartition]] = {m: set() for m in members}
        for tp, member in previous.items():
            owned[member].add(tp)

        # Unowned partitions, most constrained first, to the least-loaded eligible member.
        unowned = [
            TopicPartition(topic, p)
            for topic in sorted(eligible)
            for p in range(partitions_per_topic[topic])
            if TopicPartition(topic, p) not in previous
        ]
        unowned.sort(key=lambda tp: (len(eligible[tp.topic]), tp))
        for tp in unowned:
            target = min(eligible[tp.topic], key=lambda m: (len(owned[m]), m))
            owned[target].add(tp)

        self._balance(owned, eligible, previous)

        # KIP-429: a partition changing owner is only revoked this round.
        result: dict[str, set[TopicPartition]] = {m: set(parts) for m, parts in owned.items()}
        for tp, old_owner in previous.items():
            for member in eligible[tp.topic]:
                if member != old_owner and tp in result[member]:
                    result[member].discard(tp)
        return _finish(result)

    @staticmethod
    def _balance(
        owned: dict[str, set[TopicPartition]],
        eligible: Mapping[str, list[str]],
        previous: Mapping[TopicPartition, str],
    ) -> None:
        """Move partitions from a member to an eligible one with >= 2 fewer, until none moves.

        A donor gives away partitions it did not hold before this round first (moving those
        revokes nothing), then its own, highest (topic, partition) first.
        """
        while True:
            moved = False
            for donor in sorted(owned, key=lambda m: (-len(owned[m]), m)):
                donor_count = len(owned[donor])
                candidates = sorted(
                    owned[donor], key=lambda tp: (previous.get(tp) != donor, tp), reverse=True
                )
                for tp in candidates:
                    receiver = min(eligible[tp.topic], key=lambda m: (len(owned[m]), m))
                    if donor_count - len(owned[receiver]) >= 2:
                        owned[donor].discard(tp)
                        owned[receiver].add(tp)
                        moved = True
                        break
                if moved:
                    break
            if not moved:
                return


ASSIGNORS: dict[str, Assignor] = {
    a.name: a for a in (RangeAssignor(), RoundRobinAssignor(), CooperativeStickyAssignor())
}


def get_assignor(name: str) -> Assignor:
    """The assignor called ``name``.

    Raises:
        KeyError: no assignor has that name.
    """
    return ASSIGNORS[name]
