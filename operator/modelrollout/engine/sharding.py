"""Sharding across operator replicas: each replica reconciles the namespaces of the shards it holds.

For fleets beyond what one process handles (docs/benchmarks.md has the numbers). With ``shards``
set, namespaces are split into that many shards by a hash of their name (:func:`shard_of`): a
namespace's ModelDeployments, DriftMonitors and Experiments read each other, so they stay on one
replica. Every replica still watches and stores everything, so a shard moves without a new list;
it only reconciles what its shards hold (:meth:`Controller.shard_by
<modelrollout.engine.controller.Controller.shard_by>`).

The replicas find each other through Leases (coordination.k8s.io/v1) in the operator's namespace:

* a **member** Lease per replica, renewed every ``RENEW_SECONDS``: who is alive, and with how many shards;
* a **shard** Lease per shard, naming the replica that holds it. It is valid while its holder's member
  Lease is renewed, so a replica renews one Lease however many shards it holds.

Each replica computes the same fair assignment from what it sees (:func:`assign`): every live member
gets ``shards // members`` shards or one more (at most ``ceil(shards / members)``), keeping those it
holds where it can. It lets go of what the assignment gives another and takes the free shards it gives
itself. Every write carries the Lease's resourceVersion, so of two replicas racing for a shard the API
server lets one win; the other's 409 Conflict means it lost, and it looks again next round.

A member whose Lease has not changed for ``LEASE_SECONDS``, on the observer's own clock (as client-go's
leader election judges it, so skew between nodes does not matter), is gone, and its shards are free:
a dead replica's shards move within ``LEASE_SECONDS`` plus two rounds (about 21 s). A replica that cannot
renew stops reconciling a round before anyone may take over, and a shard it lets go is not reconciled
for a round before its Lease is released, so work in flight ends before another replica starts.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes import client

from modelrollout import GROUP
from modelrollout.config import Settings
from modelrollout.kube.client import is_status

logger = logging.getLogger(__name__)

LEASE_SECONDS = 15.0
"""How long a member Lease that does not change still counts: a dead replica's shards are free after this."""
RENEW_SECONDS = 3.0
"""How often each replica renews its member Lease and looks at the others'."""
REQUEST_SECONDS = 5.0
"""A Lease request that takes longer fails: a hung connection must not stall the rounds."""
ROLE_LABEL = f"{GROUP}/sharding"
"""On every sharding Lease: ``member`` or ``shard`` (one list with this selector reads them all)."""
SHARDS_ANNOTATION = f"{GROUP}/shards"
"""On a member Lease: the number of shards that replica runs with."""
PREFIX = "modelrollout"
MEMO_KEY = "sharding"
"""Where kopf's operator memo carries the :class:`Membership` to the controllers' start-up."""


def shard_of(namespace: str, shards: int) -> int:
    """The shard of a namespace: stable across processes, restarts and versions (not Python's ``hash``)."""
    digest = hashlib.sha256(namespace.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


@dataclass(frozen=True, slots=True)
class Member:
    """A replica as its member Lease shows it."""

    seen: float
    """When this replica last saw the Lease change (its own monotonic clock)."""
    shards: int
    """The number of shards the member runs with."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What one replica does with the shards this round."""

    hold: frozenset[int]
    """Its own per the Leases, and its to keep."""
    acquire: frozenset[int]
    """Free (never held, released, or held by a member that is gone) and assigned to it."""
    release: frozenset[int]
    """Its own per the Leases, but assigned to another (or the replicas disagree on the number of shards)."""


def live(me: str, members: Mapping[str, Member], now: float) -> set[str]:
    """The members whose Lease changed within ``LEASE_SECONDS``; always ``me``, which has just renewed."""
    return {me} | {name for name, member in members.items() if now - member.seen < LEASE_SECONDS}


def assign(shards: int, members: Collection[str], holders: Mapping[int, str]) -> dict[int, str]:
    """Every shard's replica: each member gets ``shards // len(members)`` or one more.

    The members holding most get the extra shards, and each keeps its lowest-numbered shards up to its
    share, so a settled assignment does not move; the rest go to those below their share. Deterministic,
    so replicas that see the same Leases agree. ``holders`` are the valid holders (live members).
    """
    ordered = sorted(members)
    held = {name: sorted(s for s, holder in holders.items() if holder == name and s < shards) for name in ordered}
    base, extra = divmod(shards, len(ordered))
    ranked = sorted(ordered, key=lambda name: (-len(held[name]), name))
    share = {name: base + (1 if rank < extra else 0) for rank, name in enumerate(ranked)}
    target = {s: name for name in ordered for s in held[name][: share[name]]}
    spare = iter(s for s in range(shards) if s not in target)
    for name in ordered:
        for _ in range(share[name] - sum(1 for owner in target.values() if owner == name)):
            target[next(spare)] = name
    return target


def plan(me: str, shards: int, members: Mapping[str, Member], holders: Mapping[int, str], now: float) -> Plan:
    """This replica's round, from the Leases as listed (``holders``: shard to its Lease's holder) and ``now``."""
    alive = live(me, members, now)
    mine = frozenset(s for s, holder in holders.items() if holder == me)
    if any(members[name].shards != shards for name in alive - {me}):
        # A rolling update that changes the number: a namespace would be in a shard of each count, and two
        # replicas would reconcile it. Nobody acts until every live replica runs with the same number.
        return Plan(frozenset(), frozenset(), mine)
    valid = {s: holder for s, holder in holders.items() if holder in alive and s < shards}
    wanted = {s for s, name in assign(shards, alive, valid).items() if name == me}
    return Plan(
        hold=frozenset(mine & wanted),
        acquire=frozenset(wanted - set(valid)),
        release=frozenset(mine - wanted),
    )


class LeaseApi(Protocol):
    """What the membership calls of ``CoordinationV1Api`` (the unit tests give an in-memory one)."""

    def list_namespaced_lease(self, namespace: str, **kwargs: Any) -> Any: ...
    def create_namespaced_lease(self, namespace: str, body: Any, **kwargs: Any) -> Any: ...
    def replace_namespaced_lease(self, name: str, namespace: str, body: Any, **kwargs: Any) -> Any: ...
    def delete_namespaced_lease(self, name: str, namespace: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class _Listed:
    """A sharding Lease as listed: enough to write it back with optimistic concurrency."""

    holder: str | None
    version: str
    transitions: int
    shards: int


Gained = Callable[[Callable[[str], bool]], None]
"""Called with a test of namespaces when shards are gained: those namespaces' resources are to be reconciled."""


class Membership:
    """This replica among the others: keeps its Leases on a thread, and says which namespaces it reconciles."""

    def __init__(
        self,
        leases: LeaseApi,
        namespace: str,
        identity: str,
        shards: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leases = leases
        self.namespace = namespace
        self.identity = identity
        self.shards = shards
        self._clock = clock
        self._member = lease_name("member", identity)
        self._reconciling: frozenset[int] = frozenset()
        self._valid_until = -math.inf
        """Past this (the last renewal plus ``LEASE_SECONDS - RENEW_SECONDS``) nothing is reconciled, even
        with the thread stuck in a request: the others take over only ``LEASE_SECONDS`` after it."""
        self._observed: dict[str, tuple[str, float]] = {}
        """Each Lease's resourceVersion and when it was first seen, for liveness on this replica's clock."""
        self._callbacks: list[Gained] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def holds(self, namespace: str) -> bool:
        """Whether this replica reconciles ``namespace`` now."""
        return self._clock() < self._valid_until and shard_of(namespace, self.shards) in self._reconciling

    def on_gained(self, callback: Gained) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def start(self) -> None:
        """A first round now (shards held before the watches start need no catching up), then one every few seconds."""
        self.step()
        self._thread = threading.Thread(target=self._run, name="sharding", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reconciling, release the shards and leave, so the others take over at once, not after expiry."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * RENEW_SECONDS)
        self._reconcile_only(frozenset())
        try:
            listed = self._list()
            for shard in range(self.shards):
                lease = listed.get(lease_name("shard", str(shard)))
                if lease is not None and lease.holder == self.identity:
                    self._write_shard(shard, lease, holder=None)
            self.leases.delete_namespaced_lease(self._member, self.namespace, _request_timeout=REQUEST_SECONDS)
        except Exception as error:  # leaving must not fail the shutdown: the Leases expire anyway
            logger.warning("sharding: left without releasing every Lease (they expire): %s", error)

    def step(self) -> None:
        """One round: renew, look at the others, let go of and take shards. Never raises."""
        now = self._clock()
        try:
            listed = self._list()
            self._renew(listed.get(self._member))
        except Exception as error:  # refused or unreachable alike: not renewed
            logger.warning("sharding: cannot renew the member Lease: %s", error)
            if now >= self._valid_until:
                self._reconcile_only(frozenset())  # holds() says no already; this logs it
            return
        if now >= self._valid_until:
            self._reconcile_only(frozenset())  # lapsed: another replica may have taken any shard meanwhile
        self._valid_until = now + LEASE_SECONDS - RENEW_SECONDS
        members, holders = self._read(listed, now)
        decided = plan(self.identity, self.shards, members, holders, now)
        self._forget_gone(members, listed, now)
        keep = set(decided.hold & self._reconciling)
        for shard in sorted(decided.hold - self._reconciling):
            # Ours per the Leases but not reconciled (a restart under the same name, a release called off, a
            # renewal back after a gap): rewritten first, so a replica that took it meanwhile makes this fail.
            if self._write_shard(shard, listed[lease_name("shard", str(shard))], holder=self.identity):
                keep.add(shard)
        for shard in decided.release:
            if shard in self._reconciling:
                continue  # not reconciled from now on; released next round, once work in flight is done
            self._write_shard(shard, listed[lease_name("shard", str(shard))], holder=None)
        for shard in sorted(decided.acquire):
            if self._write_shard(shard, listed.get(lease_name("shard", str(shard))), holder=self.identity):
                keep.add(shard)
        self._reconcile_only(frozenset(keep))

    def _run(self) -> None:
        while not self._stopping.wait(RENEW_SECONDS):
            try:
                self.step()
            except Exception:  # a bug must not end the thread: the shards would expire while the pod lives
                logger.exception("sharding: round failed")

    def _list(self) -> dict[str, _Listed]:
        found = self.leases.list_namespaced_lease(
            self.namespace, label_selector=ROLE_LABEL, _request_timeout=REQUEST_SECONDS
        )
        return {item.metadata.name: _listed(item) for item in found.items}

    def _renew(self, current: _Listed | None) -> None:
        body = lease_body(self._member, "member", holder=self.identity)
        body["metadata"]["annotations"] = {SHARDS_ANNOTATION: str(self.shards)}
        body["spec"] |= {"leaseDurationSeconds": int(LEASE_SECONDS), "renewTime": micro_time()}
        if current is not None:
            body["metadata"]["resourceVersion"] = current.version
            try:
                self.leases.replace_namespaced_lease(
                    self._member, self.namespace, body, _request_timeout=REQUEST_SECONDS
                )
            except client.ApiException as error:
                if not is_status(error, 404):  # deleted by the others while this replica was cut off
                    raise
            else:
                return
            del body["metadata"]["resourceVersion"]
        self.leases.create_namespaced_lease(self.namespace, body, _request_timeout=REQUEST_SECONDS)

    def _read(self, listed: Mapping[str, _Listed], now: float) -> tuple[dict[str, Member], dict[int, str]]:
        """Members with when each was last seen to change, and each shard's holder."""
        observed: dict[str, tuple[str, float]] = {}
        for name, lease in listed.items():
            previous = self._observed.get(name)
            observed[name] = previous if previous is not None and previous[0] == lease.version else (lease.version, now)
        self._observed = observed
        members: dict[str, Member] = {}
        holders: dict[int, str] = {}
        for name, lease in listed.items():
            if lease.holder is None:
                continue
            if name.startswith(lease_name("member", "")):
                members[lease.holder] = Member(seen=observed[name][1], shards=lease.shards)
            elif (suffix := name.removeprefix(lease_name("shard", ""))).isdigit():
                holders[int(suffix)] = lease.holder
        members[self.identity] = Member(seen=now, shards=self.shards)
        return members, holders

    def _forget_gone(self, members: Mapping[str, Member], listed: Mapping[str, _Listed], now: float) -> None:
        """Delete the member Leases of replicas gone for good (pods get new names: they would pile up)."""
        for holder in set(members) - live(self.identity, members, now):
            name = lease_name("member", holder)
            lease = listed.get(name)
            if lease is None:
                continue
            preconditions = client.V1Preconditions(resource_version=lease.version)
            try:
                self.leases.delete_namespaced_lease(
                    name,
                    self.namespace,
                    body=client.V1DeleteOptions(preconditions=preconditions),
                    _request_timeout=REQUEST_SECONDS,
                )
            except client.ApiException as error:
                if not is_status(error, 404, 409):  # another replica deleted it, or it came back to life
                    logger.warning("sharding: cannot delete %s: %s", name, error.reason)

    def _write_shard(self, shard: int, current: _Listed | None, *, holder: str | None) -> bool:
        """Take (``holder``) or release (None) a shard's Lease; False when another replica got there first."""
        name = lease_name("shard", str(shard))
        body = lease_body(name, "shard", holder=holder)
        if holder is not None:
            taken = micro_time()
            body["spec"] |= {"acquireTime": taken, "renewTime": taken}
        transitions = 0 if current is None else current.transitions + (holder not in (None, current.holder))
        body["spec"]["leaseTransitions"] = transitions
        try:
            if current is None:
                self.leases.create_namespaced_lease(self.namespace, body, _request_timeout=REQUEST_SECONDS)
            else:
                body["metadata"]["resourceVersion"] = current.version
                self.leases.replace_namespaced_lease(name, self.namespace, body, _request_timeout=REQUEST_SECONDS)
        except client.ApiException as error:
            if not is_status(error, 404, 409):
                logger.warning("sharding: cannot write %s: %s", name, error.reason)
            return False
        return True

    def _reconcile_only(self, shards: frozenset[int]) -> None:
        """Reconcile these shards from now on; the controllers catch up on those gained."""
        with self._lock:
            gained = shards - self._reconciling
            if shards == self._reconciling:
                return
            logger.info(
                "sharding: %s reconciles shards %s of %d (gained %s)",
                self.identity,
                sorted(shards) or "none",
                self.shards,
                sorted(gained) or "none",
            )
            self._reconciling = shards
            callbacks = list(self._callbacks)
        if gained:
            for callback in callbacks:
                callback(lambda namespace: shard_of(namespace, self.shards) in gained)


def _listed(item: Any) -> _Listed:
    spec = item.spec
    annotations = item.metadata.annotations or {}
    count = annotations.get(SHARDS_ANNOTATION, "")
    return _Listed(
        holder=(spec.holder_identity or None) if spec is not None else None,
        version=str(item.metadata.resource_version),
        transitions=int((spec.lease_transitions if spec is not None else None) or 0),
        shards=int(count) if count.isdigit() else 0,
    )


def lease_name(role: str, suffix: str) -> str:
    """``modelrollout-shard-3``, ``modelrollout-member-<identity>``: a DNS subdomain whatever the identity."""
    clean = re.sub(r"[^a-z0-9.-]+", "-", suffix.lower()).strip("-.")
    return f"{PREFIX}-{role}-{clean}"[:253] if suffix else f"{PREFIX}-{role}-"


def lease_body(name: str, role: str, *, holder: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {} if holder is None else {"holderIdentity": holder}
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "labels": {ROLE_LABEL: role, "app.kubernetes.io/managed-by": PREFIX}},
        "spec": spec,
    }


def micro_time() -> str:
    """Now as a Lease's MicroTime: always six fractional digits (``isoformat`` drops them at .000000)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def identity(settings: Settings) -> str:
    """The pod's name, or outside a pod the host name with a random suffix (two processes on one host differ)."""
    return settings.shard_identity or f"{socket.gethostname()}-{secrets.token_hex(3)}"


def join(settings: Settings, api: client.ApiClient) -> Membership:
    """This replica's membership, not started yet (the operator starts it before its watches)."""
    return Membership(client.CoordinationV1Api(api), settings.shard_namespace, identity(settings), settings.shards)
