"""The generated hostile-spec suite (tests/hostile.py) against the real API server and a real operator process.

Every case is applied for real. The API server refuses most (schemas, CEL); each one it accepts must be
reported by the operator in a condition (or the status message) that names the problem, and no tick of the
operator may raise (kopf logs "failed with an exception" when one does). The cases share three namespaces,
one per kind, so the operator reconciles all of them at once and the suite takes about a minute.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from e2e.dataplane import DEFAULT_REFERENCE
from e2e.harness.operator import OperatorProcess
from tests.hostile import HostileCase, generate
from tests.integration.cleanup import delete_namespaces
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration
GROUP, VERSION = "modelrollout.dev", "v1alpha1"
PLURALS = {"ModelDeployment": "modeldeployments", "DriftMonitor": "driftmonitors", "Experiment": "experiments"}
CASES = generate()
REPORT_TIMEOUT = 150.0
"""How long the operator has to report every accepted case (it reconciles them all concurrently)."""


@pytest.fixture(scope="module")
def operator_prometheus_url() -> str:
    """No hostile case needs an answer from Prometheus (queries are judged before they are sent)."""
    return "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def operator(cluster: Any, operator_prometheus_url: str, crds: None) -> Iterator[OperatorProcess]:
    """An operator of the suite's namespaces only, so its log speaks of the hostile cases alone."""
    with OperatorProcess(cluster.kubeconfig, operator_prometheus_url, namespaces="mrhostile-*") as process:
        yield process
        print(process.logs()[-20000:])


@pytest.fixture(scope="module")
def namespaces(cluster: Any, operator: OperatorProcess) -> Iterator[dict[str, str]]:
    api = cluster.api_client()
    core = client.CoreV1Api(api)
    suffix = uuid.uuid4().hex[:6]
    names = {kind: f"mrhostile-{PLURALS[kind][:3]}-{suffix}" for kind in PLURALS}
    for name in names.values():
        core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(
        names["DriftMonitor"],
        {"metadata": {"name": "returns-reference"}, "data": {"reference.json": DEFAULT_REFERENCE.read_text()}},
    )
    try:
        yield names
    finally:
        delete_namespaces(api, names.values())  # while the operator still runs


def _apply(api: client.ApiClient, namespace: str, case: HostileCase) -> str | None:
    """Create the case's object; the API server's refusal, or None when it accepted it."""
    try:
        # As kubectl applies (strict field validation): an unknown field is refused, not silently dropped.
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[case.kind], case.document, field_validation="Strict"
        )
    except client.ApiException as error:
        if error.status in (400, 422):
            return str(error.body)
        raise
    return None


def _reported(status: dict[str, Any], expect: tuple[str, ...]) -> str | None:
    """The condition (or status message) that names the problem, if one does."""
    said = [
        (str(c.get("type")), f"{c.get('reason')}: {c.get('message') or ''}") for c in status.get("conditions") or []
    ]
    said.append(("message", status.get("message") or ""))
    said.append(("smokeTest", (status.get("smokeTest") or {}).get("reason") or ""))
    return next((f"{where}: {text}" for where, text in said if any(word in text for word in expect)), None)


def test_every_hostile_spec_is_refused_at_apply_or_reported_by_a_condition_and_no_tick_raises(
    cluster: Any, operator: OperatorProcess, namespaces: dict[str, str]
) -> None:
    api = cluster.api_client()
    assert len(CASES) >= 200
    refused: dict[str, str] = {}
    accepted: dict[str, HostileCase] = {}
    for case in CASES:
        refusal = _apply(api, namespaces[case.kind], case)
        if refusal is None:
            accepted[case.name] = case
        else:
            refused[case.name] = refusal

    objects = client.CustomObjectsApi(api)
    reports: dict[str, str] = {}

    def all_reported() -> bool:
        for kind, namespace in namespaces.items():
            listed = objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind])["items"]
            statuses = {item["metadata"]["name"]: item.get("status") or {} for item in listed}
            for case in accepted.values():
                if case.kind == kind and case.name not in reports:
                    found = _reported(statuses.get(case.document["metadata"]["name"], {}), case.expect)
                    if found is not None:
                        reports[case.name] = found
        return len(reports) == len(accepted)

    # What is still unreported by then is asserted on below, with the reports that did come.
    with contextlib.suppress(AssertionError):
        wait_for(all_reported, REPORT_TIMEOUT, interval=2, message="a report of every accepted spec")

    log = operator.logs()
    raised = [line for line in log.splitlines() if "failed with an exception" in line]
    by_kind = Counter(case.kind for case in CASES)
    accepted_by_kind = Counter(case.kind for case in accepted.values())
    print(
        f"\nhostile specs: {len(CASES)} ({dict(by_kind)}); refused at apply: {len(refused)}; accepted and "
        f"reported: {len(reports)} of {len(accepted)} ({dict(accepted_by_kind)}); ticks that raised: {len(raised)}"
    )
    for name, text in sorted(reports.items()):
        print(f"  {name}: {text[:160]}")
    unreported = sorted(set(accepted) - set(reports))
    assert not unreported, f"accepted but never reported: {unreported}"
    assert not raised, "\n".join(raised[:20])
