"""Derived objects the API server accepts: Job names within 63 characters, smoke pods admitted under the
restricted Pod Security standard, and a 409 on a stale read re-applied at once instead of failing the tick."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from modelrollout.api.modeldeployment import NAME_MAX_LENGTH, RevisionRef
from modelrollout.core.revisions import RevisionContent
from modelrollout.kube import builders, naming
from modelrollout.kube.converge import CONFLICT_RETRIES, SPEC_HASH, ConvergeError, Converger
from modelrollout.kube.owned import Owned
from tests.unit.core.sim import make_spec

REF = RevisionRef(number=1, version_id="1-01234567", hash="0123456789", model_version="1")


@pytest.mark.parametrize("name", ["m", "a" * 30, "a" * NAME_MAX_LENGTH, "ab-" * 18 + "ab"])
@pytest.mark.parametrize("attempt", [1, 12, 123456])
def test_smoke_job_names_fit_a_label_value_and_stay_distinct(name: str, attempt: int) -> None:
    names = {naming.smoke_job_name(name, REF.hash, attempt, kind) for kind in ("builtin", "custom")}
    assert len(names) == 2
    for job in names:
        assert len(job) <= 63
        assert job[0].isalnum()
        assert job[-1].isalnum()
    other = "z" + name[1:]
    assert naming.smoke_job_name(other, REF.hash, 1, "x") != naming.smoke_job_name(name, REF.hash, 1, "x")


def test_the_builtin_smoke_pod_meets_the_restricted_pod_security_standard() -> None:
    spec = make_spec(smokeTest={"builtin": {}})
    parent = builders.Parent(name="m", namespace="ns", uid="u")
    (job,) = builders.smoke_jobs(parent, spec, REF, attempt=1, operator_image="img")
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["runAsNonRoot"] is True
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


class FakeApps:
    """AppsV1Api's Deployment calls, refusing the first ``conflicts`` replaces with 409 as a stale read would."""

    def __init__(self, live: dict[str, Any], conflicts: int) -> None:
        self.live = live
        self.conflicts = conflicts
        self.replaced: list[dict[str, Any]] = []
        self.reads = 0
        self.api_client = client.ApiClient()

    def replace_namespaced_deployment(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        if self.conflicts > 0:
            self.conflicts -= 1
            error = client.ApiException(status=409, reason="Conflict")
            error.body = json.dumps({"message": f'Operation cannot be fulfilled on deployments.apps "{name}"'})
            raise error
        self.replaced.append(body)

    def read_namespaced_deployment(self, name: str, namespace: str) -> dict[str, Any]:
        self.reads += 1
        return self.live


def converger_with(apps: FakeApps, existing: dict[str, Any]) -> tuple[Converger, dict[str, Any]]:
    spec = make_spec()
    parent = builders.Parent(name="m", namespace="ns", uid="u")
    manifest = builders.deployment(parent, REF, RevisionContent.of(spec), replicas=2, role="stable")
    converger = Converger(
        client.ApiClient(), parent, spec, Owned(deployments={manifest["metadata"]["name"]: existing}), operator_image=""
    )
    converger._apps = apps  # type: ignore[assignment]
    return converger, manifest


def stale_deployment(resource_version: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "m-0123456789", "resourceVersion": resource_version, "annotations": {SPEC_HASH: "old"}},
        "spec": {"replicas": 5, "template": {"spec": {"containers": []}}},
    }


def test_a_conflict_is_re_read_and_re_applied_within_the_call() -> None:
    apps = FakeApps(stale_deployment("2"), conflicts=1)
    converger, manifest = converger_with(apps, stale_deployment("1"))
    converger._ensure_deployment(manifest, own_replicas=True)
    assert apps.reads == 1
    (sent,) = apps.replaced
    assert sent["metadata"]["resourceVersion"] == "2"
    assert sent["spec"]["template"] == manifest["spec"]["template"]
    assert sent["metadata"]["annotations"][SPEC_HASH] == manifest["metadata"]["annotations"][SPEC_HASH]


def test_conflicts_that_keep_coming_become_an_error_naming_the_deployment() -> None:
    apps = FakeApps(stale_deployment("2"), conflicts=CONFLICT_RETRIES)
    converger, manifest = converger_with(apps, stale_deployment("1"))
    with pytest.raises(ConvergeError, match="updating Deployment m-0123456789: 409 Conflict") as raised:
        converger._ensure_deployment(manifest, own_replicas=True)
    assert raised.value.condition_reason == "ApiError"
