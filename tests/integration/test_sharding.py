"""Two operator replicas with 2 shards: they split a fleet, and a killed one's shard moves within 30 s (issue 15).

Two real ``modelrollout run`` processes (``MODELROLLOUT_SHARDS=2``, each its own ``POD_NAME``, their Leases in a
namespace of this test's own) watch only this run's namespaces (``mrshard<run>-*``, outside ``mr-*`` so no other
session's operator acts in them). The namespaces are picked so that the shards have as many each: an even split.

Who reconciled what is read from each process's own ``/metrics`` (a ModelDeployment's phase gauge is set by the
replica that reconciles it), and who holds a shard from its Lease. Then one replica is SIGKILLed: its shard's
Lease must name the survivor within 30 s, and a spec change in each namespace that moved still rolls out.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from e2e.harness.operator import OperatorProcess
from e2e.harness.scenario import Namespace, served_model
from modelrollout.engine.sharding import lease_name, shard_of
from modelrollout.kube.naming import MODEL_DEPLOYMENT_LABEL
from tests.integration.cleanup import delete_namespaces
from tests.support.rollouts import is_stable_on
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration
GROUP, VERSION, PLURAL = "modelrollout.dev", "v1alpha1", "modeldeployments"
SHARDS = 2
FLEET = int(os.environ.get("SHARDING_TEST_FLEET", "40"))
"""ModelDeployments in the fleet: 40 in the suite; ``SHARDING_TEST_FLEET=2000`` runs the issue's full size."""
PER_NAMESPACE = 10 if FLEET <= 40 else 100
NAMESPACES_PER_SHARD = max(1, FLEET // PER_NAMESPACE // SHARDS)
TAKEOVER_SECONDS = 30
QUICK_V2 = {
    "spec": {
        "model": {"version": "v2"},
        "strategy": {"canary": {"steps": [{"weight": w, "pause": {"duration": "2s"}} for w in (50, 100)]}},
    }
}
"""The change rolled out in the moved namespaces: two short steps (the defaults' four 30 s pauses alone take
two minutes, which says nothing about sharding)."""
"""A killed replica's shard is held by the survivor within this long (issue 15)."""
PHASE = re.compile(r"^modelrollout_rollout_phase\{([^}]*)\} 1\.0$")
LABEL = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class Replica:
    name: str
    process: OperatorProcess
    metrics_port: int

    def reconciled(self) -> set[tuple[str, str]]:
        """The ModelDeployments this process has recorded as Healthy (it reconciled them)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return set()
        phases = [dict(LABEL.findall(m[1])) for line in text.splitlines() if (m := PHASE.match(line))]
        return {(labels["namespace"], labels["name"]) for labels in phases if labels.get("phase") == "Healthy"}


def free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def balanced_namespaces(prefix: str) -> dict[int, list[str]]:
    """``NAMESPACES_PER_SHARD`` names in each shard (a hash of a few random names could put all in one)."""
    found: dict[int, list[str]] = {s: [] for s in range(SHARDS)}
    for index in itertools.count():
        name = f"{prefix}{index}"
        bucket = found[shard_of(name, SHARDS)]
        if len(bucket) < NAMESPACES_PER_SHARD:
            bucket.append(name)
        if all(len(names) == NAMESPACES_PER_SHARD for names in found.values()):
            return found
    raise AssertionError("unreachable")


@pytest.fixture
def api(cluster: Any) -> client.ApiClient:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "crds/")
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s", "-f", "crds/")
    return cluster.api_client()


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:5]


@pytest.fixture
def lease_namespace(api: client.ApiClient, run_id: str) -> Iterator[str]:
    """Where the replicas keep their Leases (their ``POD_NAMESPACE``); not one they watch."""
    name = f"mrleases{run_id}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def holders(api: client.ApiClient, namespace: str) -> dict[int, str]:
    """Each shard's holder, as its Lease names it."""
    found: dict[int, str] = {}
    for shard in range(SHARDS):
        with contextlib.suppress(client.ApiException):
            lease = client.CoordinationV1Api(api).read_namespaced_lease(lease_name("shard", str(shard)), namespace)
            if lease.spec.holder_identity:
                found[shard] = lease.spec.holder_identity
    return found


def split_between_replicas(api: client.ApiClient, namespace: str) -> dict[int, str] | None:
    """The shards' holders once every shard is held and no replica holds two."""
    found = holders(api, namespace)
    return found if len(found) == SHARDS and len(set(found.values())) == SHARDS else None


def healthy(objects: client.CustomObjectsApi, namespaces: list[str]) -> int:
    return sum(
        (item.get("status") or {}).get("phase") == "Healthy"
        for namespace in namespaces
        for item in objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    )


def deployments(api: client.ApiClient, namespace: str, name: str) -> set[str]:
    found = client.AppsV1Api(api).list_namespaced_deployment(
        namespace, label_selector=f"{MODEL_DEPLOYMENT_LABEL}={name}"
    )
    return {d.metadata.name for d in found.items}


def test_two_replicas_split_the_fleet_and_take_over_a_killed_ones_shard(
    cluster: Any, api: client.ApiClient, lease_namespace: str, run_id: str
) -> None:
    prefix = f"mrshard{run_id}-"
    by_shard = balanced_namespaces(prefix)
    namespaces = sorted(ns for names in by_shard.values() for ns in names)
    core, objects = client.CoreV1Api(api), client.CustomObjectsApi(api)
    for namespace in namespaces:
        core.create_namespace({"metadata": {"name": namespace}})
    replicas = {
        name: Replica(
            name,
            OperatorProcess(
                cluster.kubeconfig,
                "http://127.0.0.1:9",  # no guardrails: Prometheus is never asked
                namespaces=f"{prefix}*",
                extra_env={
                    "MODELROLLOUT_SHARDS": str(SHARDS),
                    "POD_NAME": name,
                    "POD_NAMESPACE": lease_namespace,
                    "MODELROLLOUT_METRICS_PORT": str(port),
                },
            ),
            port,
        )
        for name, port in (("shard-a", free_port()), ("shard-b", free_port()))
    }
    try:
        for replica in replicas.values():
            replica.process.start()
        split = wait_for(lambda: split_between_replicas(api, lease_namespace), 60, message="one shard each")
        fleet = [(ns, f"m{n}") for ns in namespaces for n in range(PER_NAMESPACE)]
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda item: objects.create_namespaced_custom_object(
                        GROUP, VERSION, item[0], PLURAL, served_model(item[1], "v1", model="shard")
                    ),
                    fleet,
                )
            )
        wait_for(
            lambda: healthy(objects, namespaces) == len(fleet),
            180 + len(fleet),
            interval=2,
            message="the fleet Healthy",
        )

        # Each replica reconciled exactly the ModelDeployments of the namespaces of the shard it holds.
        expected = {
            holder: {item for item in fleet if shard_of(item[0], SHARDS) == shard} for shard, holder in split.items()
        }
        for name, replica in replicas.items():
            wait_for(lambda r=replica: r.reconciled() >= expected[r.name], 30, message=f"{name}'s metrics")
            assert replica.reconciled() == expected[name], f"{name} reconciled outside its shard"
        print(f"split: { {name: len(items) for name, items in expected.items()} } of {len(fleet)}")
        assert sorted(len(items) for items in expected.values()) == [len(fleet) // 2] * 2

        victim, survivor = "shard-a", "shard-b"
        moved_shard = next(shard for shard, holder in split.items() if holder == victim)
        replicas[victim].process.kill()
        killed = time.monotonic()
        wait_for(
            lambda: holders(api, lease_namespace) == dict.fromkeys(range(SHARDS), survivor),
            TAKEOVER_SECONDS,
            interval=0.5,
            message=f"{survivor} holding every shard",
        )
        takeover = time.monotonic() - killed
        print(f"shard {moved_shard} moved to {survivor} {takeover:.1f}s after {victim} was killed")

        # The moved namespaces are reconciled by the survivor: a spec change in each rolls out.
        changed = [(namespace, "m0") for namespace in by_shard[moved_shard]]
        before = {item: deployments(api, *item) for item in changed}
        patched = time.monotonic()
        for namespace, name in changed:
            objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, QUICK_V2)
        for item in changed:
            wait_for(lambda i=item: deployments(api, *i) - before[i], 60, message=f"a canary Deployment for {item}")
        done = time.monotonic()
        print(f"{len(changed)} canaries in the moved namespaces {done - patched:.1f}s after their spec changes")
        for namespace, name in changed:
            wait_for(
                lambda ns=namespace, n=name: is_stable_on(
                    objects.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, n).get("status") or {}, "v2"
                ),
                180,
                message=f"{namespace}/{name} rolled out to v2",
            )
        for namespace, name in changed:
            reasons = wait_for(
                lambda ns=namespace, n=name: (
                    (r := Namespace(api, ns).event_reasons(n)).count("RolloutCompleted") == 2 and r
                ),
                15,
                message=f"{namespace}/{name}'s Events",
            )
            assert (reasons.count("StepStarted"), reasons.count("RevisionCreated")) == (2, 2), "nothing done twice"
        assert healthy(objects, namespaces) == len(fleet), "every other rollout still at rest and Healthy"
        survivor_log = replicas[survivor].process.logs()
        assert f"{survivor} reconciles shards [0, 1] of 2" in survivor_log, survivor_log[-5000:]
    finally:
        delete_namespaces(api, namespaces)  # while a replica still runs, to let go of its objects
        for replica in replicas.values():
            replica.process.stop()
            print(f"--- {replica.name}\n{replica.process.logs()[-8000:]}")
