"""A transition's Events survive an operator killed with SIGKILL, and appear exactly once.

The operator is brought to the state right after a status write that records Events and before they
are posted: an admission policy makes the API server refuse (403) every Event of the outbox in the
namespace (a ResourceQuota cannot: Events are exempt from quota), the rollout goes on, and status holds
the pending Events when the operator is killed. One of them is then created by
hand, as if it had been posted just before the kill (the clear of the outbox not yet written). The
restarted operator must post the others and not the one already there. Then a second revision rolls
out while the operator is killed at seeded random moments, and every Event number the status has
handed out must exist exactly once.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from e2e.harness.scenario import Namespace, model_deployment
from e2e.harness.traffic import Traffic
from hack.localcluster.harness import LocalCluster
from hack.localprom.harness import LocalPrometheus
from modelrollout.engine.writing import SEQUENCE_ANNOTATION, event_name
from tests.integration.isolated import exactly_once
from tests.support.operators import OwnOperator, own_operator
from tests.support.rollouts import is_stable_on, router_weights
from tests.support.waiting import pace, wait_for

pytestmark = pytest.mark.integration
NAME = "returns"
PREFIX = "mroutbox-"
"""Outside ``mr-*``, the pattern other sessions' test operators watch: only this test's operator acts here."""
SEED = 12
KILLS = 10
"""SIGKILLs during the second rollout (fewer when it finishes first)."""


@pytest.fixture
def setting(cluster: LocalCluster, prometheus: LocalPrometheus, crds: None) -> Iterator[OwnOperator]:
    # The admission policy and its binding are cluster-scoped: lifted whatever point the test reached.
    with own_operator(cluster, prometheus, PREFIX, before_cleanup=_lift_policy) as own:
        yield own


def test_events_pending_at_a_kill_are_posted_exactly_once_after_the_restart(
    setting: OwnOperator,
) -> None:
    ns, operator, kubelet = setting
    admission = client.AdmissionregistrationV1Api(ns.api)
    admission.create_validating_admission_policy(refuse_outbox_events(ns.name))
    admission.create_validating_admission_policy_binding(
        {
            "metadata": {"name": ns.name},
            "spec": {
                "policyName": ns.name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns.name}}},
            },
        }
    )
    probe = outbox_event(
        ns, "probe", {"uid": "probe", "apiVersion": "v1", "kind": "ConfigMap"}, number=1, reason="Probe", message=""
    )
    wait_for(lambda: not _admitted(ns, probe), 30, message="the admission policy in force")
    operator.start()
    ns.create(model_deployment(NAME, "1.0.0"))
    wait_for(lambda: ns.status(NAME).get("phase") == "Healthy", 120, message="v1 healthy")
    pending = ns.status(NAME)["pendingEvents"]
    assert [p["reason"] for p in pending][-1] == "RolloutCompleted", "every Event refused, so all still pending"
    operator.kill()  # the state right after the status write: Events recorded, none posted

    _lift_policy(ns)
    live = ns.get(NAME)
    first = pending[0]
    posted_before_the_kill = outbox_event(
        ns, NAME, live, number=first["sequence"], reason=first["reason"], message=first["message"], type_=first["type"]
    )
    # The policy is gone once the API server's cache says so: retry the first post until admitted.
    wait_for(lambda: _create(ns, posted_before_the_kill), 30, message="the admission policy lifted")

    operator.start()
    wait_for(lambda: not ns.status(NAME).get("pendingEvents"), 60, message="the outbox emptied")
    by_number = exactly_once(ns, NAME)
    assert [by_number[p["sequence"]] for p in pending] == [p["reason"] for p in pending]
    assert list(by_number.values()).count("RolloutCompleted") == 1

    # A rollout with the operator killed at random moments: no Event lost, none doubled.
    rng = random.Random(SEED)
    kills = 0
    with Traffic(lambda: router_weights(kubelet, NAME), rate=40.0):
        ns.update_spec(NAME, model_deployment(NAME, "2.0.0")["spec"])
        deadline = time.monotonic() + 300
        while not is_stable_on(ns.status(NAME), "2.0.0") and kills < KILLS and time.monotonic() < deadline:
            pace(rng.uniform(2.0, 8.0))  # the moment of the next crash, not a wait for a condition
            if is_stable_on(ns.status(NAME), "2.0.0"):
                break
            operator.kill()
            kills += 1
            operator.start()
        wait_for(lambda: is_stable_on(ns.status(NAME), "2.0.0"), 120, message="v2 stable")
    wait_for(lambda: not ns.status(NAME).get("pendingEvents"), 60, message="the outbox emptied")
    by_number = exactly_once(ns, NAME)
    reasons = Counter(by_number.values())
    print(f"{kills} kills, {len(by_number)} numbered Events, {dict(reasons)}")
    assert kills >= 3
    assert reasons["StepStarted"] == 4, "four steps, none repeated or skipped"
    assert reasons["RolloutCompleted"] == 2
    assert reasons["RevisionCreated"] == 2


def _lift_policy(ns: Namespace) -> None:
    admission = client.AdmissionregistrationV1Api(ns.api)
    for delete in (admission.delete_validating_admission_policy_binding, admission.delete_validating_admission_policy):
        try:
            delete(ns.name)
        except client.ApiException as error:
            if error.status != 404:
                raise


def refuse_outbox_events(name: str) -> dict[str, Any]:
    """An admission policy refusing, as Forbidden, every Event that carries an outbox number."""
    return {
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["events"]}
                ]
            },
            "validations": [
                {
                    "expression": f"!has(object.metadata.annotations) || !('{SEQUENCE_ANNOTATION}' in "
                    "object.metadata.annotations)",
                    "reason": "Forbidden",
                    "message": "Events are refused in this namespace (the outbox test)",
                }
            ],
        },
    }


def outbox_event(
    ns: Namespace, name: str, live: dict[str, Any], *, number: int, reason: str, message: str, type_: str = "Normal"
) -> dict[str, Any]:
    """The Event the operator posts for outbox entry ``number`` (the same name, so the same object)."""
    uid = live["metadata"]["uid"] if "metadata" in live else live["uid"]
    return {
        "metadata": {"name": event_name(name, uid, number), "annotations": {SEQUENCE_ANNOTATION: str(number)}},
        "involvedObject": {
            "apiVersion": live["apiVersion"],
            "kind": live["kind"],
            "name": name,
            "namespace": ns.name,
            "uid": uid,
        },
        "type": type_,
        "reason": reason,
        "message": message,
    }


def _create(ns: Namespace, event: dict[str, Any]) -> bool:
    try:
        ns.core.create_namespaced_event(ns.name, event)
    except client.ApiException as error:
        if error.status == 403:
            return False
        raise
    return True


def _admitted(ns: Namespace, probe: dict[str, Any]) -> bool:
    """Whether the API server admits an outbox Event now (the probe is deleted again)."""
    if not _create(ns, probe):
        return False
    ns.core.delete_namespaced_event(probe["metadata"]["name"], ns.name)
    return True
