"""Tenant isolation through Prometheus: a resource's queries see only its own namespace's series.

Two namespaces' model servers expose the same metric with different values, scraped by a real Prometheus
with the ``namespace`` label a ServiceMonitor would give. A guardrail in namespace B summing the metric
reads B's value alone; one that names namespace A gets an answer saying it may not, and no query reaches
Prometheus; an operator that allows cross-namespace queries reads A.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from hack.localcluster import procs
from hack.localprom.harness import LocalPrometheus
from modelrollout.core.queries import Missing, QueryKey, QueryRequest
from modelrollout.engine.querying import answer_all
from modelrollout.metrics import PrometheusSettings, PrometheusSource
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration
METRIC = "modelrollout_it_scoped_requests_total"


@dataclass(frozen=True)
class Tenants:
    a: str
    b: str
    values: dict[str, float]


@pytest.fixture(scope="module")
def tenants(prometheus: LocalPrometheus) -> Iterator[Tenants]:
    suffix = uuid.uuid4().hex[:6]
    found = Tenants(a=f"team-a-{suffix}", b=f"team-b-{suffix}", values={})
    job = f"it-scoping-{suffix}"
    servers = []
    for namespace, value in ((found.a, 1000.0), (found.b, 7.0)):
        registry = CollectorRegistry()
        Gauge(METRIC, "Requests of a fake model server.", registry=registry).set(value)
        port = procs.free_ports([namespace])[namespace]
        servers.append(start_http_server(port, addr="127.0.0.1", registry=registry)[0])
        prometheus.add_target(job, f"127.0.0.1:{port}", {"namespace": namespace})
        prometheus.wait_for_target(job, f"127.0.0.1:{port}")
        found.values[namespace] = value
    try:
        with contextlib.closing(PrometheusSource(PrometheusSettings(url=prometheus.url))) as source:
            wait_for(lambda: len(source.query_vector(f'{METRIC}{{job="{job}"}}')) >= 2, 20, message="both series")
        yield found
    finally:
        for server in servers:
            prometheus.remove_target(job, f"127.0.0.1:{server.server_port}")
            server.shutdown()
            server.server_close()


class Recording(PrometheusSource):
    """The real source, remembering what it sent."""

    def __init__(self, settings: PrometheusSettings) -> None:
        super().__init__(settings)
        self.sent: list[str] = []

    def query_scalar(self, promql: str) -> float:
        self.sent.append(promql)
        return super().query_scalar(promql)


def ask(prometheus: LocalPrometheus, namespace: str, template: str, *, cross: bool = False) -> tuple[object, list[str]]:
    source = Recording(PrometheusSettings(url=prometheus.url))
    try:
        key = QueryKey("guardrail", "canary")
        variables = {"namespace": namespace, "revision": "r", "window": "1m"}
        answers = answer_all(source, [QueryRequest(key, template, variables)], cross_namespace=cross)
        return answers[key], source.sent
    finally:
        source.close()


def test_a_query_without_a_namespace_reads_only_its_own(prometheus: LocalPrometheus, tenants: Tenants) -> None:
    answer, sent = ask(prometheus, tenants.b, f"sum({METRIC})")
    assert answer == tenants.values[tenants.b], "namespace A's series must not be summed into B's answer"
    assert sent == [f'sum({METRIC}{{namespace="{tenants.b}"}})']


def test_a_query_naming_another_namespace_is_refused_and_never_sent(
    prometheus: LocalPrometheus, tenants: Tenants
) -> None:
    answer, sent = ask(prometheus, tenants.b, f'sum({METRIC}{{namespace="{tenants.a}"}})')
    assert isinstance(answer, Missing)
    assert f'namespace="{tenants.a}"' in answer.message
    assert f"own namespace ({tenants.b})" in answer.message
    assert sent == []


def test_a_regular_expression_over_namespaces_is_refused(prometheus: LocalPrometheus, tenants: Tenants) -> None:
    answer, sent = ask(prometheus, tenants.b, f'sum({METRIC}{{namespace=~"team-.*"}})')
    assert isinstance(answer, Missing)
    assert sent == []


def test_an_admin_can_allow_cross_namespace_queries(prometheus: LocalPrometheus, tenants: Tenants) -> None:
    answer, _ = ask(prometheus, tenants.b, f'sum({METRIC}{{namespace="{tenants.a}"}})', cross=True)
    assert answer == tenants.values[tenants.a]
