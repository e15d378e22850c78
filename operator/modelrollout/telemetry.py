"""The operator's own Prometheus metrics: what it decided, so dashboards and alerts need no log parsing."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

ROLLOUT_PHASES = ("Pending", "SmokeTesting", "Progressing", "Paused", "Healthy", "Degraded", "Failed")

rollout_phase = Gauge(
    "modelrollout_rollout_phase",
    "1 for the phase a ModelDeployment is in, 0 for the others",
    ["namespace", "name", "phase"],
)
canary_weight = Gauge("modelrollout_canary_weight", "Percent of traffic on the canary revision", ["namespace", "name"])
analysis_verdict = Gauge(
    "modelrollout_analysis_verdict",
    "Last guardrail verdict per metric: 1 pass, 0 fail, -1 waiting for evidence, -2 no data",
    ["namespace", "name", "metric"],
)
analysis_value = Gauge(
    "modelrollout_analysis_value",
    "Last guardrail value per metric and revision role",
    ["namespace", "name", "metric", "role"],
)
rollbacks_total = Counter(
    "modelrollout_rollbacks_total", "Automatic and manual rollbacks of canaries", ["namespace", "name", "reason"]
)
reconcile_seconds = Histogram(
    "modelrollout_reconcile_duration_seconds",
    "Time of one reconciliation, observation to convergence",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
workqueue_depth = Gauge(
    "modelrollout_workqueue_depth",
    "Resources waiting in a controller's work queue (delayed ones not counted)",
    ["kind"],
)
workqueue_adds_total = Counter(
    "modelrollout_workqueue_adds_total", "Keys added to a controller's work queue, before de-duplication", ["kind"]
)
kube_requests_total = Counter(
    "modelrollout_kube_requests_total",
    "Kubernetes API requests the operator sent: the controllers' client (kubernetes) and kopf's (kopf); "
    "a watch counts once, as verb WATCH",
    ["client", "verb"],
)
drift_detected = Gauge("modelrollout_drift_detected", "1 while a DriftMonitor reports drift", ["namespace", "monitor"])
drift_score = Gauge(
    "modelrollout_drift_score", "Last drift score per feature and method", ["namespace", "monitor", "feature", "method"]
)
data_quality_rate = Gauge(
    "modelrollout_data_quality_rate", "Last data-quality rate per feature", ["namespace", "monitor", "feature", "kind"]
)
experiment_samples = Gauge(
    "modelrollout_experiment_samples", "Observations per arm", ["namespace", "experiment", "arm"]
)
experiment_estimate = Gauge(
    "modelrollout_experiment_estimate", "Primary metric estimate per arm", ["namespace", "experiment", "arm"]
)
experiment_p_value = Gauge(
    "modelrollout_experiment_p_value", "Corrected p-value of each challenger", ["namespace", "experiment", "arm"]
)
experiment_srm_p_value = Gauge(
    "modelrollout_experiment_srm_p_value", "Sample ratio mismatch p-value", ["namespace", "experiment"]
)
experiment_decision = Gauge(
    "modelrollout_experiment_decision",
    "1 for the experiment's decision, once reached",
    ["namespace", "experiment", "outcome"],
)


def serve(port: int) -> None:
    """Expose the metrics; port 0 turns the endpoint off (tests running several operators)."""
    if port:
        start_http_server(port)


def record_rollout(namespace: str, name: str, phase: str, weight: int) -> None:
    for candidate in ROLLOUT_PHASES:
        rollout_phase.labels(namespace, name, candidate).set(1 if candidate == phase else 0)
    canary_weight.labels(namespace, name).set(weight)


def forget_rollout(namespace: str, name: str) -> None:
    """Drop every series of a deleted ModelDeployment, so dashboards and alerts stop showing it.

    The guardrail series are labelled by metric names taken from the spec, which is gone by
    now: they are removed by the resource's labels, whatever metrics it had.
    """
    resource = {"namespace": namespace, "name": name}
    for gauge in (rollout_phase, canary_weight, analysis_verdict, analysis_value):
        gauge.remove_by_labels(resource)
