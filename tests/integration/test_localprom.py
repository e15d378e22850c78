"""Proof that the local Prometheus scrapes our own exporters and that alerts reach a webhook.

This is the path the operator's analysis gates and the tests' data plane use: a process on a
loopback port exposes metrics labelled by revision, Prometheus scrapes it through file-based
service discovery, a PromQL query reads it back, and an alert rule travels through
Alertmanager to a receiver.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from hack.localcluster import procs
from hack.localprom.harness import LocalPrometheus
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


@dataclass
class Exporter:
    """A metrics endpoint on a free loopback port, as a sample model server would expose."""

    job: str
    host_port: str
    gauge: Gauge


@pytest.fixture
def exporter(prometheus: LocalPrometheus) -> Iterator[Exporter]:
    registry = CollectorRegistry()
    gauge = Gauge("modelrollout_it_queue_depth", "Queue depth of a fake model server.", ["model"], registry=registry)
    port = procs.free_ports(["exporter"])["exporter"]
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    job = f"it-{uuid.uuid4().hex[:6]}"
    host_port = f"127.0.0.1:{port}"
    prometheus.add_target(job, host_port, {"revision": "canary", "role": "canary"})
    try:
        yield Exporter(job=job, host_port=host_port, gauge=gauge)
    finally:
        prometheus.remove_target(job, host_port)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_scrapes_a_local_exporter_and_answers_promql(prometheus: LocalPrometheus, exporter: Exporter) -> None:
    exporter.gauge.labels(model="iris").set(42)
    prometheus.wait_for_target(exporter.job, exporter.host_port)
    query = f'modelrollout_it_queue_depth{{job="{exporter.job}"}}'
    result = wait_for(lambda: prometheus.client().custom_query(query=query), 30, message="the scraped sample")
    assert len(result) == 1
    assert result[0]["metric"]["revision"] == "canary"
    assert result[0]["metric"]["model"] == "iris"
    assert float(result[0]["value"][1]) == 42.0


def test_alert_rule_fires_and_reaches_the_webhook(prometheus: LocalPrometheus, exporter: Exporter) -> None:
    alertname = f"ModelrolloutIT{uuid.uuid4().hex[:6]}"
    exporter.gauge.labels(model="iris").set(500)
    prometheus.add_rules(
        alertname,
        f"""
groups:
- name: {alertname}
  rules:
  - alert: {alertname}
    expr: modelrollout_it_queue_depth{{job="{exporter.job}"}} > 100
    for: 0s
    labels:
      severity: test
    annotations:
      summary: queue too deep on {{{{ $labels.revision }}}}
""",
    )
    try:
        received = wait_for(
            lambda: [a for a in prometheus.alerts_received() if a["labels"].get("alertname") == alertname],
            30,
            message="the alert at the webhook receiver",
        )
    finally:
        prometheus.remove_rules(alertname)
    assert received[0]["status"] == "firing"
    assert received[0]["labels"]["revision"] == "canary"
    assert received[0]["annotations"]["summary"] == "queue too deep on canary"
