"""Fixtures of the scenarios that run the operator as a process against the local cluster.

One operator per module (it watches only ``mr-*`` namespaces), a fresh namespace and local
kubelet per test. A module that needs the operator to reach Prometheus another way (through a
proxy it can cut) overrides ``operator_prometheus_url``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from e2e.harness.kubelet import LocalKubelet, kubelet_for
from e2e.harness.operator import OperatorProcess
from e2e.harness.scenario import Namespace, namespace


@pytest.fixture(scope="module")
def crds(cluster: Any) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "crds/")
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s", "-f", "crds/")


@pytest.fixture(scope="module")
def operator_prometheus_url(prometheus: Any) -> str:
    return str(prometheus.url)


SESSION_PREFIX = f"mr{uuid.uuid4().hex[:4]}-"
"""This test session's namespaces: its operator watches only these, never another session's on the same cluster."""


@pytest.fixture(scope="module")
def operator(cluster: Any, operator_prometheus_url: str, crds: None) -> Iterator[OperatorProcess]:
    with OperatorProcess(cluster.kubeconfig, operator_prometheus_url, namespaces=f"{SESSION_PREFIX}*") as process:
        yield process
        print(process.logs()[-20000:])


@pytest.fixture
def api(cluster: Any) -> Iterator[client.ApiClient]:
    """An administrator's client of the local cluster, closed after the test."""
    with cluster.api_client() as api_client:
        yield api_client


@pytest.fixture
def ns(cluster: Any, operator: OperatorProcess) -> Iterator[Namespace]:
    with namespace(cluster.api_client(), prefix=SESSION_PREFIX) as created:
        yield created


@pytest.fixture
def kubelet(cluster: Any, prometheus: Any, ns: Namespace) -> Iterator[LocalKubelet]:
    with kubelet_for(cluster.api_client(), prometheus, ns.name) as running:
        yield running
