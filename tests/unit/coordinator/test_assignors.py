"""Client-side assignors: range, roundrobin, cooperative-sticky (kafka-spec.md e.3).

Goal: range and roundrobin give Kafka's exact outputs (member order: static by instance id,
then member id); cooperative-sticky is balanced, moves as little as possible and, per KIP-429,
only revokes a moving partition in the first rebalance and assigns it in the next; every
assignor assigns each subscribed partition to exactly one subscribed member.
Method: small cases with outputs worked out by hand from Kafka's algorithms (the two-consumer
cases are those of Kafka's RangeAssignorTest/RoundRobinAssignorTest); multi-round
cooperative scenarios where ownership and generation are fed back as a consumer would; a
hypothesis property over random topics, partition counts and subscriptions.
"""

from __future__ import annotations

import struct
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.coordinator.group.assignors import (
    ASSIGNORS,
    CooperativeStickyAssignor,
    RangeAssignor,
    RoundRobinAssignor,
    get_assignor,
)
from headwater.coordinator.group.protocol import (
    Assignment,
    Subscription,
    TopicPartition,
    decode_subscription,
    encode_subscription,
)


def tps(*items: tuple[str, int]) -> tuple[TopicPartition, ...]:
    return tuple(TopicPartition(t, p) for t, p in items)


def parts(result: dict[str, Assignment]) -> dict[str, list[tuple[str, int]]]:
    return {m: [tuple(tp) for tp in a.partitions] for m, a in result.items()}


def test_registry_names() -> None:
    assert sorted(ASSIGNORS) == ["cooperative-sticky", "range", "roundrobin"]
    assert isinstance(get_assignor("range"), RangeAssignor)


def test_range_two_consumers_two_topics_three_partitions() -> None:
    subs = {"c1": Subscription(("t1", "t2")), "c2": Subscription(("t1", "t2"))}
    got = parts(RangeAssignor().assign({"t1": 3, "t2": 3}, subs))
    assert got == {
        "c1": [("t1", 0), ("t1", 1), ("t2", 0), ("t2", 1)],
        "c2": [("t1", 2), ("t2", 2)],
    }


def test_range_static_members_sort_first_by_instance_id() -> None:
    subs = {
        "a": Subscription(("t",)),
        "z": Subscription(("t",), group_instance_id="i1"),
        "y": Subscription(("t",), group_instance_id="i2"),
    }
    got = parts(RangeAssignor().assign({"t": 5}, subs))
    assert got == {"z": [("t", 0), ("t", 1)], "y": [("t", 2), ("t", 3)], "a": [("t", 4)]}


def test_range_mixed_subscriptions_and_unknown_topic() -> None:
    subs = {"c1": Subscription(("t1",)), "c2": Subscription(("t1", "t2", "missing"))}
    got = parts(RangeAssignor().assign({"t1": 2, "t2": 2}, subs))
    assert got == {"c1": [("t1", 0)], "c2": [("t1", 1), ("t2", 0), ("t2", 1)]}


def test_roundrobin_two_consumers_two_topics_three_partitions() -> None:
    subs = {"c1": Subscription(("t1", "t2")), "c2": Subscription(("t1", "t2"))}
    got = parts(RoundRobinAssignor().assign({"t1": 3, "t2": 3}, subs))
    assert got == {
        "c1": [("t1", 0), ("t1", 2), ("t2", 1)],
        "c2": [("t1", 1), ("t2", 0), ("t2", 2)],
    }


def test_roundrobin_mixed_subscriptions_skip_unsubscribed_members() -> None:
    subs = {
        "c1": Subscription(("t1",)),
        "c2": Subscription(("t1", "t2")),
        "c3": Subscription(("t1",)),
    }
    got = parts(RoundRobinAssignor().assign({"t1": 3, "t2": 2}, subs))
    assert got == {
        "c1": [("t1", 0)],
        "c2": [("t1", 1), ("t2", 0), ("t2", 1)],
        "c3": [("t1", 2)],
    }


def test_member_without_topics_gets_empty_assignment() -> None:
    subs = {"c1": Subscription(("t",)), "c2": Subscription(())}
    for assignor in ASSIGNORS.values():
        got = assignor.assign({"t": 2}, subs)
        assert got["c2"] == Assignment()


def test_three_members_twelve_partitions_balanced() -> None:
    subs = {f"m{i}": Subscription(("t",)) for i in range(3)}
    for assignor in ASSIGNORS.values():
        got = assignor.assign({"t": 12}, subs)
        assert [len(a.partitions) for a in got.values()] == [4, 4, 4], assignor.name
        assert sorted(tp for a in got.values() for tp in a.partitions) == list(
            tps(*[("t", p) for p in range(12)])
        )
    rng = parts(RangeAssignor().assign({"t": 12}, subs))
    assert rng["m0"] == [("t", p) for p in range(4)]
    assert rng["m2"] == [("t", p) for p in range(8, 12)]


# Cooperative-sticky.


def owned_subs(
    result: dict[str, Assignment], topics: tuple[str, ...], generation: int
) -> dict[str, Subscription]:
    """What each member sends in its next JoinGroup (Subscription v2 with ownedPartitions)."""
    return {
        m: Subscription(topics, owned_partitions=a.partitions, generation_id=generation)
        for m, a in result.items()
    }


def test_cooperative_sticky_growth_revokes_first_then_assigns() -> None:
    cs = CooperativeStickyAssignor()
    first = cs.assign({"t": 12}, {"a": Subscription(("t",))})
    assert len(first["a"].partitions) == 12
    subs = owned_subs(first, ("t",), generation=1)
    subs["b"] = Subscription(("t",))
    subs["c"] = Subscription(("t",))
    round1 = cs.assign({"t": 12}, subs)
    # Round 1: "a" keeps 4 of its own and revokes 8; the new members get nothing yet.
    assert len(round1["a"].partitions) == 4
    assert set(round1["a"].partitions) <= set(first["a"].partitions)
    assert round1["b"].partitions == () and round1["c"].partitions == ()
    # Round 2 (the revoking member rejoined): the 8 released partitions are handed out.
    round2 = cs.assign({"t": 12}, owned_subs(round1, ("t",), generation=2))
    assert round2["a"] == round1["a"]
    assert len(round2["b"].partitions) == 4 and len(round2["c"].partitions) == 4
    assert sorted(tp for a in round2.values() for tp in a.partitions) == sorted(
        first["a"].partitions
    )


def test_cooperative_sticky_member_leaving_moves_only_its_partitions() -> None:
    cs = CooperativeStickyAssignor()
    topics = ("t",)
    start = cs.assign({"t": 12}, {m: Subscription(topics) for m in "abc"})
    subs = owned_subs(start, topics, generation=3)
    del subs["c"]
    after = cs.assign({"t": 12}, subs)
    for m in "ab":
        assert set(start[m].partitions) <= set(after[m].partitions)
    assert sorted(len(a.partitions) for a in after.values()) == [6, 6]
    assert set(after["a"].partitions) | set(after["b"].partitions) == {
        TopicPartition("t", p) for p in range(12)
    }


def test_cooperative_sticky_is_stable_when_nothing_changes() -> None:
    cs = CooperativeStickyAssignor()
    topics = ("t1", "t2")
    start = cs.assign({"t1": 5, "t2": 4}, {m: Subscription(topics) for m in "abc"})
    again = cs.assign({"t1": 5, "t2": 4}, owned_subs(start, topics, generation=1))
    assert again == start


def test_cooperative_sticky_minimal_movement_when_unbalanced() -> None:
    cs = CooperativeStickyAssignor()
    owned = {
        "a": tps(*[("t", p) for p in range(6)]),
        "b": tps(*[("t", p) for p in range(6, 12)]),
        "c": (),
    }
    subs = {m: Subscription(("t",), owned_partitions=o, generation_id=5) for m, o in owned.items()}
    r1 = cs.assign({"t": 12}, subs)
    # Exactly two partitions leave a and two leave b; c gets them next round.
    assert len(r1["a"].partitions) == 4 and len(r1["b"].partitions) == 4
    assert r1["c"].partitions == ()
    r2 = cs.assign({"t": 12}, owned_subs(r1, ("t",), generation=6))
    assert len(r2["c"].partitions) == 4
    moved = sum(len(set(owned[m]) - set(r2[m].partitions)) for m in "ab")
    assert moved == 4


def test_cooperative_sticky_ignores_stale_generation_and_double_claims() -> None:
    cs = CooperativeStickyAssignor()
    subs = {
        # Stale claim (older generation) on t-0: not honoured.
        "a": Subscription(("t",), owned_partitions=tps(("t", 0)), generation_id=1),
        "b": Subscription(("t",), owned_partitions=tps(("t", 1), ("t", 2)), generation_id=2),
        "c": Subscription(("t",), owned_partitions=tps(("t", 2)), generation_id=2),
    }
    valid = cs.valid_owners({"t": 4}, subs)
    assert valid == {TopicPartition("t", 1): "b"}  # t-2 claimed twice: nobody owns it


def test_cooperative_sticky_generation_from_user_data() -> None:
    cs = CooperativeStickyAssignor()
    assert cs.subscription_user_data(9) == struct.pack(">i", 9)
    sub = Subscription(
        ("t",), user_data=cs.subscription_user_data(9), owned_partitions=tps(("t", 0))
    )
    # A Subscription v1 (no generation field) read back: the generation comes from user_data.
    sub1 = decode_subscription(encode_subscription(sub, 1))
    other = Subscription(("t",), owned_partitions=tps(("t", 0)), generation_id=3)
    assert cs.valid_owners({"t": 1}, {"new": sub1, "old": other}) == {TopicPartition("t", 0): "new"}


# Property: every subscribed partition to exactly one subscribed member.


@st.composite
def clusters(draw: st.DrawFn) -> tuple[dict[str, int], dict[str, Subscription]]:
    topic_names = ["t0", "t1", "t2", "t3"]
    partitions = {t: draw(st.integers(0, 9)) for t in topic_names[: draw(st.integers(1, 4))]}
    members = draw(st.integers(1, 6))
    subs: dict[str, Subscription] = {}
    for i in range(members):
        topics = draw(st.lists(st.sampled_from(topic_names), min_size=0, max_size=4, unique=True))
        instance = draw(st.one_of(st.none(), st.sampled_from(["i0", "i1", "i2", "i3", "i4"])))
        if instance in {s.group_instance_id for s in subs.values()}:
            instance = None
        subs[f"m{i}"] = Subscription(tuple(topics), group_instance_id=instance)
    return partitions, subs


def check_exactly_once(
    partitions: dict[str, int], subs: dict[str, Subscription], result: dict[str, Assignment]
) -> None:
    assert set(result) == set(subs)
    counts = Counter(tp for a in result.values() for tp in a.partitions)
    subscribed = {t for s in subs.values() for t in s.topics if t in partitions}
    expected = {TopicPartition(t, p) for t in subscribed for p in range(partitions[t])}
    assert set(counts) == expected
    assert all(c == 1 for c in counts.values())
    for member, a in result.items():
        assert all(tp.topic in subs[member].topics for tp in a.partitions)


@settings(max_examples=150, deadline=None)
@given(clusters())
def test_every_assignor_assigns_each_partition_exactly_once(cluster) -> None:  # type: ignore[no-untyped-def]
    partitions, subs = cluster
    for assignor in ASSIGNORS.values():
        check_exactly_once(partitions, subs, assignor.assign(partitions, subs))


@settings(max_examples=100, deadline=None)
@given(clusters(), st.randoms(use_true_random=False))
def test_cooperative_sticky_revokes_first_and_converges(cluster, rnd) -> None:  # type: ignore[no-untyped-def]
    """Feed each round's assignment back as ownedPartitions until nothing is revoked.

    Every round: no partition twice, and nobody receives a partition another member still
    owns. Equal subscriptions settle in two rounds (revoke, then assign) and are balanced;
    mixed subscriptions may take a few more (greedy balancing), never more than five.
    """
    partitions, subs = cluster
    cs = CooperativeStickyAssignor()
    previous: dict[str, list[TopicPartition]] = {m: [] for m in subs}
    for t, n in partitions.items():
        for p in range(n):
            previous[rnd.choice(list(subs))].append(TopicPartition(t, p))
    owned = {m: tuple(previous[m]) for m in subs}
    rounds = 0
    while True:
        rounds += 1
        assert rounds <= 5, "cooperative-sticky did not converge"
        with_owned = {
            m: Subscription(s.topics, owned_partitions=owned[m], generation_id=rounds)
            for m, s in subs.items()
        }
        result = cs.assign(partitions, with_owned)
        counts = Counter(tp for a in result.values() for tp in a.partitions)
        assert all(c == 1 for c in counts.values())
        owners = cs.valid_owners(partitions, with_owned)
        for member, a in result.items():
            assert all(owners.get(tp, member) == member for tp in a.partitions)
        revoked = any(
            set(owners_of) - set(result[m].partitions)
            for m, owners_of in ((m, [tp for tp, o in owners.items() if o == m]) for m in subs)
        )
        owned = {m: a.partitions for m, a in result.items()}
        if not revoked and rounds > 1:
            break
    check_exactly_once(partitions, subs, result)
    if len({s.topics for s in subs.values()}) == 1:
        assert rounds <= 2
        sizes = [len(a.partitions) for a in result.values()]
        assert max(sizes) - min(sizes) <= 1
