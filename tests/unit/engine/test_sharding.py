"""Sharding: the pure assignment, the Lease rounds against an in-memory API server, and the controllers' gate.

The assignment is a function of the Leases and the time, so most tests are tables. The membership's rounds
run against :class:`InMemoryLeases`, which honours resourceVersions as the API server does, on a fake clock:
replicas join, die, are cut off from the API server, and the invariant that matters (no shard reconciled by
two replicas at once) is checked after every round.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client

from modelrollout.config import Settings
from modelrollout.engine import sharding
from modelrollout.engine.controller import Controller
from modelrollout.engine.freshness import WatchFreshness
from modelrollout.engine.queue import Priority
from modelrollout.engine.sharding import LEASE_SECONDS, RENEW_SECONDS, Member, Membership, assign, plan, shard_of
from modelrollout.engine.tickwrites import HeldClearings

# --- shard_of ------------------------------------------------------------------------------------------------


def test_a_namespace_stays_in_its_shard_across_processes_and_versions() -> None:
    """sha256, not Python's salted ``hash``: every replica, and the next release, agree."""
    assert [shard_of("team-a", 2), shard_of("team-b", 2), shard_of("team-a", 16), shard_of("", 7)] == [0, 0, 4, 1]
    assert all(shard_of(f"ns-{n}", 5) == shard_of(f"ns-{n}", 5) for n in range(100))


def test_namespaces_spread_evenly() -> None:
    counts = Counter(shard_of(f"team-{n}", 4) for n in range(4000))
    assert set(counts) == {0, 1, 2, 3}
    assert all(900 < count < 1100 for count in counts.values()), counts


# --- the assignment ------------------------------------------------------------------------------------------


def members(*names: str, seen: float = 0.0, shards: int = 2) -> dict[str, Member]:
    return {name: Member(seen=seen, shards=shards) for name in names}


def test_two_replicas_split_two_shards_from_nothing() -> None:
    everyone = members("a", "b")
    assert plan("a", 2, everyone, {}, now=1).acquire == {0}
    assert plan("b", 2, everyone, {}, now=1).acquire == {1}


@pytest.mark.parametrize(("shards", "replicas"), [(2, 2), (4, 3), (16, 3), (3, 5), (8, 8), (1, 2)])
def test_every_shard_has_one_replica_and_shares_differ_by_one_at_most(shards: int, replicas: int) -> None:
    names = [f"r{n}" for n in range(replicas)]
    target = assign(shards, names, {})
    assert sorted(target) == list(range(shards))
    counts = Counter(target.values())
    assert max(counts.values()) == math.ceil(shards / replicas)
    assert max(counts.values()) - min(counts[name] for name in names) <= 1


def test_a_settled_assignment_does_not_move() -> None:
    holders = {0: "b", 1: "a", 2: "b", 3: "c", 4: "a"}
    assert assign(5, ["a", "b", "c"], holders) == holders


def test_a_joining_replica_gets_its_share_from_the_one_that_held_everything() -> None:
    holders = {s: "a" for s in range(4)}
    alone = plan("a", 4, members("a", shards=4), holders, now=1)
    assert (alone.hold, alone.release) == ({0, 1, 2, 3}, set())
    both = members("a", "b", shards=4)
    first = plan("a", 4, both, holders, now=1)
    assert (first.hold, first.release) == ({0, 1}, {2, 3})
    assert plan("b", 4, both, holders, now=1).acquire == set(), "held by a live replica: wait for the release"
    released = {0: "a", 1: "a"}
    assert plan("b", 4, both, released, now=2).acquire == {2, 3}


def test_three_replicas_on_four_shards_do_not_leave_one_empty() -> None:
    """ceil(4 / 3) = 2: two replicas holding two each are at their fair share, yet the third must get one."""
    holders = {0: "a", 1: "a", 2: "b", 3: "b"}
    everyone = members("a", "b", "c", shards=4)
    assert plan("a", 4, everyone, holders, now=1).release == set(), "a ranks first: it keeps the extra shard"
    assert plan("b", 4, everyone, holders, now=1).release == {3}
    assert plan("c", 4, everyone, {0: "a", 1: "a", 2: "b"}, now=2).acquire == {3}


def test_a_dead_replicas_shards_are_taken_over_once_its_lease_expires() -> None:
    holders = {0: "a", 1: "b"}
    everyone = {"a": Member(seen=0.0, shards=2), "b": Member(seen=20.0, shards=2)}
    assert plan("b", 2, everyone, holders, now=LEASE_SECONDS - 0.1).acquire == set()
    taking = plan("b", 2, everyone, holders, now=LEASE_SECONDS)
    assert (taking.hold, taking.acquire) == ({1}, {0})


def test_no_replica_acts_while_they_disagree_on_the_number_of_shards() -> None:
    everyone = {"a": Member(seen=0.0, shards=2), "b": Member(seen=0.0, shards=4)}
    mixed = plan("a", 2, everyone, {0: "a", 1: "a"}, now=1)
    assert (mixed.hold, mixed.acquire, mixed.release) == (set(), set(), {0, 1})
    assert plan("b", 4, everyone, {}, now=1).acquire == set()


# --- the rounds against an in-memory API server --------------------------------------------------------------


class InMemoryLeases:
    """``CoordinationV1Api`` for one namespace: create, replace and delete honour resourceVersions."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self._versions = itertools.count(1)
        self.unreachable: set[str] = set()
        """Replicas cut off from the API server (by the identity in what they write or list)."""

    def client_for(self, identity: str) -> LeasesOf:
        return LeasesOf(self, identity)

    def store(self, body: dict[str, Any]) -> None:
        kept = {**body, "metadata": {**body["metadata"], "resourceVersion": str(next(self._versions))}}
        self.leases[body["metadata"]["name"]] = kept

    def holder(self, shard: int) -> str | None:
        lease = self.leases.get(sharding.lease_name("shard", str(shard)))
        return None if lease is None else lease["spec"].get("holderIdentity")


class LeasesOf:
    """One replica's view of :class:`InMemoryLeases`: fails while that replica is cut off."""

    def __init__(self, server: InMemoryLeases, identity: str) -> None:
        self.server = server
        self.identity = identity

    def _reachable(self) -> None:
        if self.identity in self.server.unreachable:
            raise client.ApiException(status=503, reason="Service Unavailable")

    def list_namespaced_lease(self, namespace: str, **_: Any) -> Any:
        self._reachable()
        items = [
            client.V1Lease(
                metadata=client.V1ObjectMeta(
                    name=name,
                    resource_version=body["metadata"]["resourceVersion"],
                    annotations=body["metadata"].get("annotations"),
                ),
                spec=client.V1LeaseSpec(
                    holder_identity=body["spec"].get("holderIdentity"),
                    lease_transitions=body["spec"].get("leaseTransitions"),
                ),
            )
            for name, body in self.server.leases.items()
        ]
        return SimpleNamespace(items=items)

    def create_namespaced_lease(self, namespace: str, body: Any, **_: Any) -> None:
        self._reachable()
        if body["metadata"]["name"] in self.server.leases:
            raise client.ApiException(status=409, reason="AlreadyExists")
        self.server.store(body)

    def replace_namespaced_lease(self, name: str, namespace: str, body: Any, **_: Any) -> None:
        self._reachable()
        current = self.server.leases.get(name)
        if current is None:
            raise client.ApiException(status=404, reason="NotFound")
        if current["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"]:
            raise client.ApiException(status=409, reason="Conflict")
        self.server.store(body)

    def delete_namespaced_lease(self, name: str, namespace: str, body: Any = None, **_: Any) -> None:
        self._reachable()
        current = self.server.leases.get(name)
        if current is None:
            raise client.ApiException(status=404, reason="NotFound")
        expected = body.preconditions.resource_version if body is not None else None
        if expected is not None and expected != current["metadata"]["resourceVersion"]:
            raise client.ApiException(status=409, reason="Conflict")
        del self.server.leases[name]


class Fleet:
    """Replicas on one fake clock; a round is every running replica's step, in a shuffled order."""

    def __init__(self, shards: int, seed: int = 0) -> None:
        self.shards = shards
        self.server = InMemoryLeases()
        self.now = 0.0
        self.running: dict[str, Membership] = {}
        self.random = random.Random(seed)
        self.namespaces = namespace_per_shard(shards)

    def join(self, name: str, shards: int | None = None) -> Membership:
        member = Membership(self.server.client_for(name), "ops", name, shards or self.shards, clock=lambda: self.now)
        self.running[name] = member
        return member

    def kill(self, name: str) -> None:
        """A SIGKILL: no more rounds, Leases left as they are."""
        del self.running[name]

    def round(self) -> None:
        self.now += RENEW_SECONDS
        order = list(self.running.values())
        self.random.shuffle(order)
        for member in order:
            member.step()
            assert_no_shard_reconciled_twice(self)

    def reconciled(self, name: str) -> set[int]:
        member = self.running[name]
        return {s for s, namespace in enumerate(self.namespaces) if member.holds(namespace)}

    def settle(self, rounds: int = 12) -> Iterator[None]:
        for _ in range(rounds):
            self.round()
            yield


def namespace_per_shard(shards: int) -> list[str]:
    """A namespace in each shard, so a test can ask ``holds`` about a shard."""
    found: dict[int, str] = {}
    for n in itertools.count():
        found.setdefault(shard_of(f"team-{n}", shards), f"team-{n}")
        if len(found) == shards:
            return [found[s] for s in range(shards)]
    raise AssertionError("unreachable")


def assert_no_shard_reconciled_twice(fleet: Fleet) -> None:
    seen: dict[int, str] = {}
    for name in fleet.running:
        for shard in fleet.reconciled(name):
            assert shard not in seen, f"t={fleet.now}: shard {shard} reconciled by {seen[shard]} and {name}"
            seen[shard] = name


def settled(fleet: Fleet) -> dict[str, set[int]]:
    for _ in fleet.settle():
        pass
    return {name: fleet.reconciled(name) for name in sorted(fleet.running)}


def test_two_replicas_split_the_shards_and_the_leases_say_who_holds_which() -> None:
    fleet = Fleet(shards=2)
    fleet.join("a")
    fleet.join("b")
    split = settled(fleet)
    assert sorted(len(shards) for shards in split.values()) == [1, 1]
    assert {fleet.server.holder(s) for s in range(2)} == {"a", "b"}
    for name, shards in split.items():
        assert all(fleet.server.holder(s) == name for s in shards)


def test_a_killed_replicas_shard_moves_within_thirty_seconds() -> None:
    fleet = Fleet(shards=2)
    fleet.join("a")
    fleet.join("b")
    before = settled(fleet)
    fleet.kill("a")
    killed = fleet.now
    while fleet.reconciled("b") != {0, 1}:
        fleet.round()
        assert fleet.now - killed <= 30, "takeover took longer than 30 s"
    assert fleet.now - killed >= LEASE_SECONDS, f"taken from a replica that might live: {before}"


def test_a_new_replica_takes_its_share_from_the_first() -> None:
    fleet = Fleet(shards=4)
    fleet.join("a")
    assert settled(fleet) == {"a": {0, 1, 2, 3}}
    fleet.join("b")
    split = settled(fleet)
    assert sorted(len(shards) for shards in split.values()) == [2, 2]


def test_a_stopped_replica_hands_over_at_once() -> None:
    fleet = Fleet(shards=2)
    fleet.join("a")
    fleet.join("b")
    settled(fleet)
    fleet.running.pop("a").stop()
    fleet.round()
    fleet.round()
    assert fleet.reconciled("b") == {0, 1}
    assert sharding.lease_name("member", "a") not in fleet.server.leases


def test_a_replica_cut_off_stops_before_another_takes_over() -> None:
    """Partitioned, ``a`` keeps running but cannot renew: it must stop reconciling before ``b`` starts."""
    fleet = Fleet(shards=2)
    fleet.join("a")
    fleet.join("b")
    settled(fleet)
    fleet.server.unreachable.add("a")
    cut = fleet.now
    while fleet.reconciled("b") != {0, 1}:
        fleet.round()  # asserts after every step that no shard is reconciled twice
        assert fleet.now - cut <= 30
    assert fleet.reconciled("a") == set()
    fleet.server.unreachable.clear()
    assert sorted(len(shards) for shards in settled(fleet).values()) == [1, 1], "back, it gets its share again"


def test_the_member_leases_of_replicas_gone_for_good_are_deleted() -> None:
    fleet = Fleet(shards=2)
    fleet.join("a")
    fleet.join("b")
    settled(fleet)
    fleet.kill("a")
    settled(fleet)
    assert sorted(fleet.server.leases) == [
        "modelrollout-member-b",
        "modelrollout-shard-0",
        "modelrollout-shard-1",
    ]


def test_replicas_with_different_shard_counts_wait_for_each_other() -> None:
    fleet = Fleet(shards=2)
    fleet.join("a")
    settled(fleet)
    fleet.join("b", shards=4)
    assert settled(fleet) == {"a": set(), "b": set()}
    fleet.running.pop("a").stop()
    b = fleet.running["b"]
    settled(fleet)
    assert all(b.holds(namespace) for namespace in namespace_per_shard(4))
    assert {fleet.server.holder(s) for s in range(4)} == {"b"}


@pytest.mark.parametrize("seed", range(8))
def test_no_shard_is_ever_reconciled_by_two_replicas(seed: int) -> None:
    """Replicas join, die, stop and are cut off at random; every step is checked (``Fleet.round``)."""
    fleet = Fleet(shards=5, seed=seed)
    chaos = random.Random(seed)
    names = iter(f"r{n}" for n in itertools.count())
    for _ in range(3):
        fleet.join(next(names))
    for _ in range(60):
        event = chaos.random()
        if event < 0.08 and len(fleet.running) < 5:
            fleet.join(next(names))
        elif event < 0.12 and len(fleet.running) > 1:
            fleet.kill(chaos.choice(sorted(fleet.running)))
        elif event < 0.16 and len(fleet.running) > 1:
            fleet.running.pop(chaos.choice(sorted(fleet.running))).stop()
        elif event < 0.22:
            fleet.server.unreachable ^= {chaos.choice(sorted(fleet.running))}
        fleet.round()
    fleet.server.unreachable.clear()
    split = settled(fleet)
    assert sorted(s for shards in split.values() for s in shards) == list(range(5)), split
    assert max(len(shards) for shards in split.values()) == math.ceil(5 / len(split))


def test_the_identity_is_the_pods_name_or_a_unique_one() -> None:
    assert sharding.identity(Settings(shard_identity="operator-7c9f-x2")) == "operator-7c9f-x2"
    assert sharding.identity(Settings()) != sharding.identity(Settings())
    assert sharding.lease_name("member", "Host_Name.local") == "modelrollout-member-host-name.local"


# --- the controllers' gate -----------------------------------------------------------------------------------


class Recorder:
    """A queue that records what is added."""

    def __init__(self) -> None:
        self.added: list[tuple[str, str]] = []

    def add(self, key: tuple[str, str], *, priority: Priority = Priority.NORMAL) -> None:
        del priority
        self.added.append(key)


def test_a_controller_reconciles_only_its_shards_and_catches_up_on_one_gained() -> None:
    fleet = Fleet(shards=2)
    ours, theirs = fleet.namespaces
    a = fleet.join("a")
    settled(fleet)
    ticked: list[str] = []
    reconciler = SimpleNamespace(
        kind=SimpleNamespace(name="stub", plural="stubs", priority=lambda body: Priority.NORMAL),
        context=SimpleNamespace(freshness=WatchFreshness(), clearings=HeldClearings()),
        tick=lambda body, force, fresh: ticked.append(body["metadata"]["namespace"]),
        wake_in=lambda body, status: None,
        active=lambda body, status: False,
        status_of=lambda body: None,
    )
    controller = Controller(reconciler, workers=1)  # type: ignore[arg-type]
    recorder = Recorder()
    controller.queue = recorder  # type: ignore[assignment]
    controller.shard_by(a)
    fleet.join("b")
    settled(fleet)
    mine = next(ns for ns in (ours, theirs) if a.holds(ns))
    other = next(ns for ns in (ours, theirs) if not a.holds(ns))
    for namespace in (mine, other):
        controller.seen({"metadata": {"namespace": namespace, "name": "m"}})
    assert recorder.added == [(mine, "m"), (other, "m")], "every watch event is stored and queued"
    for key in recorder.added:
        controller._process(key)
    assert ticked == [mine], "only this replica's shard is reconciled"
    recorder.added.clear()
    fleet.kill("b")
    for _ in fleet.settle(rounds=8):
        pass
    assert recorder.added == [(other, "m")], "a shard gained: its stored resources are reconciled"
    controller._process((other, "m"))
    assert ticked == [mine, other]
