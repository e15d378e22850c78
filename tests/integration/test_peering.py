"""Two operator replicas with kopf peering: only one acts, and the other acts within 30 s of its death.

The replicas run with the shipped peering lifetime and watch only this test's namespaces (``mrha-*``),
so no other session's operator can act in their place. The takeover is measured from the SIGKILL to the
standby's first analysis (status ``analysis.lastRunAt``), apart from the time the rest of the rollout takes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client import ApiException

from e2e.harness.kubelet import LocalKubelet
from e2e.harness.operator import OperatorProcess
from e2e.harness.scenario import Namespace, model_deployment
from e2e.harness.traffic import Traffic
from tests.integration.cleanup import delete_namespaces
from tests.integration.isolated import own_namespace
from tests.support.rollouts import is_stable_on, router_weights
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration
NAME = "returns"
PEERING = "modelrollout"
PREFIX = "mrha-"
"""Outside ``mr-*``, which other sessions' test operators watch: only this test's replicas act here."""
TAKEOVER_SECONDS = 30
"""The standby acts within this long after the active replica's death (issue 12)."""


@pytest.fixture
def ns(cluster: Any) -> Iterator[Namespace]:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "crds/")
    # The peering CRD; the operator creates its ClusterKopfPeering itself at start-up (kube/bootstrap.py).
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "manifests/base/kopf-peering.yaml")
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/clusterkopfpeerings.kopf.dev")
    with own_namespace(cluster.api_client(), PREFIX) as created:
        yield created
        cluster.kubectl("delete", "clusterkopfpeering", peering_name(created), "--ignore-not-found")


def peering_name(ns: Namespace) -> str:
    """One peering object per test, so concurrent sessions on a shared cluster do not pause each other."""
    return f"{PEERING}-{ns.name}"


def peers(ns: Namespace) -> dict[str, Any]:
    """The peers announced so far; none until the first replica has created the object."""
    try:
        found = ns.objects.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering_name(ns))
    except ApiException as error:
        if error.status == 404:
            return {}
        raise
    return dict(found.get("status") or {})


def test_two_replicas_roll_out_once_and_survive_the_loss_of_the_active_one(
    cluster: Any, prometheus: Any, ns: Namespace
) -> None:
    replicas = {
        peer: OperatorProcess(
            cluster.kubeconfig,
            prometheus.url,
            peering=peering_name(ns),
            namespaces=f"{PREFIX}*",
            extra_env={"POD_ID": peer},  # the shipped peering lifetime: what an install gets
        ).start()
        for peer in ("replica-a", "replica-b")
    }
    try:
        with (
            LocalKubelet(cluster.api_client(), prometheus, ns.name) as kubelet,
            Traffic(lambda: router_weights(kubelet, NAME), rate=40.0),
        ):
            registered = wait_for(lambda: len(p := peers(ns)) >= 2 and p, 60, message="both replicas as peers")
            # kopf lets the peer of the highest priority act and pauses the others.
            active = max(registered, key=lambda peer: int(registered[peer].get("priority", 0)))
            standby = next(peer for peer in replicas if peer != active)
            ns.create(model_deployment(NAME, "1.0.0"))
            wait_for(lambda: ns.status(NAME).get("phase") == "Healthy", 90, message="v1 healthy")
            ns.update_spec(NAME, model_deployment(NAME, "2.0.0")["spec"])
            wait_for(lambda: ns.status(NAME).get("canaryWeight") == 25, 90, message="25%")
            replicas[active].kill()
            killed = datetime.now(UTC)
            survivor = replicas[standby].process
            assert survivor is not None
            assert survivor.poll() is None
            # The standby acts: an analysis of its own (the step's guardrails run every second).
            wait_for(lambda: _last_analysis(ns) > killed, TAKEOVER_SECONDS, message="the standby acts")
            print(f"takeover after {(_last_analysis(ns) - killed).total_seconds():.1f}s")
            wait_for(
                lambda: is_stable_on(ns.status(NAME), "2.0.0"),
                150,
                message="the surviving replica finishes the rollout",
            )
            print(f"rollout finished {(datetime.now(UTC) - killed).total_seconds():.1f}s after the kill")
            wait_for(lambda: ns.event_reasons(NAME).count("RolloutCompleted") == 2, 15, message="events")
            reasons = ns.event_reasons(NAME)
            assert reasons.count("StepStarted") == 4, "one replica acted at a time: no step twice"
            assert reasons.count("RevisionCreated") == 2
    finally:
        if all(r.process is None or r.process.poll() is not None for r in replicas.values()):
            replicas["replica-a"].start()
        delete_namespaces(cluster.api_client(), [ns.name])  # while a replica still runs to let go of its objects
        for replica in replicas.values():
            replica.stop()


def _last_analysis(ns: Namespace) -> datetime:
    stamp = (ns.status(NAME).get("analysis") or {}).get("lastRunAt")
    return datetime.fromisoformat(stamp) if stamp else datetime.min.replace(tzinfo=UTC)
