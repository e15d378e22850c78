"""PrometheusSource against a real Prometheus: numbers, series, no data, failures and parse errors.

Two revisions of a fake model server expose a gauge on loopback ports; Prometheus scrapes them
through file-based discovery, and the queries the controllers will send read them back.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from hack.localcluster import procs
from hack.localprom.harness import LocalPrometheus
from modelrollout.metrics import NoDataError, PrometheusSettings, PrometheusSource, QueryError, render
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

METRIC = "modelrollout_it_error_ratio"


@dataclass(frozen=True)
class Scraped:
    """The job both revisions are scraped under, and the values they expose."""

    job: str
    values: dict[str, float]


@pytest.fixture(scope="module")
def scraped(prometheus: LocalPrometheus) -> Iterator[Scraped]:
    job = f"it-source-{uuid.uuid4().hex[:6]}"
    values = {"stable": 0.01, "canary": 0.25}
    servers = []
    for revision, value in values.items():
        registry = CollectorRegistry()
        Gauge(METRIC, "Error ratio of a fake model server.", registry=registry).set(value)
        port = procs.free_ports([revision])[revision]
        servers.append(start_http_server(port, addr="127.0.0.1", registry=registry)[0])
        prometheus.add_target(job, f"127.0.0.1:{port}", {"revision": revision})
        prometheus.wait_for_target(job, f"127.0.0.1:{port}")
    try:
        with contextlib.closing(PrometheusSource(PrometheusSettings(url=prometheus.url))) as source:
            wait_for(
                lambda: len(source.query_vector(f'{METRIC}{{job="{job}"}}')) >= len(values),
                20,
                message=f"a sample of each of the {len(values)} series",
            )
        yield Scraped(job, values)
    finally:
        for server in servers:
            prometheus.remove_target(job, f"127.0.0.1:{server.server_port}")
            server.shutdown()
            server.server_close()


@pytest.fixture
def source(prometheus: LocalPrometheus) -> Iterator[PrometheusSource]:
    source = PrometheusSource(PrometheusSettings(url=prometheus.url, timeout=5))
    yield source
    source.close()


def test_scalar_from_a_rendered_template(source: PrometheusSource, scraped: Scraped) -> None:
    template = 'max({{metric}}{job="{{job}}", revision="{{revision}}"})'
    promql = render(template, {"metric": METRIC, "job": scraped.job, "revision": "canary"})
    assert source.query_scalar(promql) == pytest.approx(0.25)
    assert source.query_scalar("scalar(vector(3))") == 3.0


def test_vector_has_one_sample_per_revision(source: PrometheusSource, scraped: Scraped) -> None:
    samples = source.query_vector(f'{METRIC}{{job="{scraped.job}"}}')
    assert {s.labels["revision"]: s.value for s in samples} == pytest.approx(scraped.values)


def test_an_injection_attempt_matches_nothing(source: PrometheusSource, scraped: Scraped) -> None:
    promql = render('max({{m}}{revision="{{revision}}"})', {"m": METRIC, "revision": 'canary"} or vector(1) #'})
    with pytest.raises(NoDataError):
        source.query_scalar(promql)


@pytest.mark.parametrize(
    "promql",
    [
        'max(modelrollout_it_no_such_metric{revision="canary"})',
        "sum(modelrollout_it_no_such_metric) / sum(modelrollout_it_no_such_metric)",
        "vector(0) / vector(0)",
    ],
)
def test_no_data(source: PrometheusSource, scraped: Scraped, promql: str) -> None:
    with pytest.raises(NoDataError):
        source.query_scalar(promql)


def test_two_series_for_a_scalar_is_an_error(source: PrometheusSource, scraped: Scraped) -> None:
    with pytest.raises(QueryError, match="expected one series, got 2"):
        source.query_scalar(f'{METRIC}{{job="{scraped.job}"}}')


def test_a_query_prometheus_refuses_carries_its_error(source: PrometheusSource) -> None:
    with pytest.raises(QueryError, match="bad_data") as caught:
        source.query_scalar("sum(rate(up[5m])")
    assert "parse error" in caught.value.message


def test_unreachable_prometheus() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    source = PrometheusSource(PrometheusSettings(url=f"http://127.0.0.1:{closed_port}", timeout=2))
    started = time.monotonic()
    with pytest.raises(QueryError, match="unreachable"):
        source.query_scalar("up")
    assert time.monotonic() - started < 2, "no retries"
    with pytest.raises(QueryError):
        source.validate("up")
    source.close()


def test_validate(source: PrometheusSource) -> None:
    assert source.validate(f'sum(rate({METRIC}{{revision="canary"}}[1m]))') is None
    error = source.validate("sum(rate(up[5m])")
    assert error is not None
    assert "parse error" in error
    assert source.validate("rate(up[5x])") is not None
