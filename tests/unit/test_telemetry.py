"""The operator's own metrics: series of deleted resources go, API requests are counted by client and verb."""

from __future__ import annotations

from prometheus_client import REGISTRY

from modelrollout import telemetry
from modelrollout.kube.client import count_request


def series(metric: str, **labels: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == metric and labels.items() <= sample.labels.items()
    ]


def test_forget_rollout_drops_every_series_of_the_resource() -> None:
    telemetry.record_rollout("t-ns", "gone", "Progressing", 25)
    telemetry.analysis_verdict.labels("t-ns", "gone", "error-rate").set(1)
    telemetry.analysis_value.labels("t-ns", "gone", "latency-p99", "canary").set(0.2)
    telemetry.record_rollout("t-ns", "kept", "Healthy", 0)
    telemetry.analysis_verdict.labels("t-ns", "kept", "error-rate").set(1)
    telemetry.forget_rollout("t-ns", "gone")
    for metric in ("modelrollout_rollout_phase", "modelrollout_canary_weight", "modelrollout_analysis_verdict"):
        assert not series(metric, namespace="t-ns", name="gone"), metric
    assert not series("modelrollout_analysis_value", namespace="t-ns", name="gone")
    assert series("modelrollout_analysis_verdict", namespace="t-ns", name="kept")
    telemetry.forget_rollout("t-ns", "never-seen")  # no series: nothing to do, no error


def test_requests_are_counted_by_client_and_verb() -> None:
    def count(client: str, verb: str) -> float:
        return REGISTRY.get_sample_value("modelrollout_kube_requests_total", {"client": client, "verb": verb}) or 0.0

    before = count("kopf", "WATCH"), count("kopf", "GET"), count("kubernetes", "PATCH")
    count_request(
        "kopf", "GET", "https://k/apis/modelrollout.dev/v1alpha1/modeldeployments?watch=true&resourceVersion=1"
    )
    count_request("kopf", "get", "https://k/apis/kopf.dev/v1/clusterkopfpeerings/modelrollout")
    count_request("kubernetes", "patch", "https://k/apis/apps/v1/namespaces/a/deployments/b")
    after = count("kopf", "WATCH"), count("kopf", "GET"), count("kubernetes", "PATCH")
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]
