"""The DriftMonitor's pure decisions: queries, bucket alignment, verdicts, conditions, alerts and actions.

Answers are built the way Prometheus returns them for the sample model server: cumulative
``le`` buckets labelled with prometheus-client's rendering of the reference edges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from prometheus_client.utils import floatToGoString

from modelrollout.api.conditions import find_condition
from modelrollout.api.driftmonitor import DriftMonitorSpec, DriftMonitorStatus
from modelrollout.core import drift
from modelrollout.metrics.source import Sample
from modelrollout.metrics.templates import render
from modelrollout.references import Reference
from modelrollout.stats.histograms import HistogramError

T0 = datetime(2025, 1, 1, tzinfo=UTC)
EDGES = [-0.05, -0.02, -0.01, 0.0, 0.01, 0.02, 0.05]
TRAINED = [500, 1500, 3000, 3000, 1500, 500]
PREDICTION_EDGES = [-1e-05, 0.1, 0.2, 0.5]

REFERENCE = Reference.model_validate(
    {
        "features": [
            {"name": n, "type": "numeric", "edges": EDGES, "counts": TRAINED, "mean": 0, "std": 0.02}
            | {"min": -0.049, "max": 0.05}
            for n in ("a", "b", "c")
        ]
        + [{"name": "sector", "type": "categorical", "categories": ["energy", "tech"], "counts": [4000, 6000]}],
        "prediction": {
            "name": "prediction",
            "edges": PREDICTION_EDGES,
            "counts": [100, 300, 600],
            "mean": 0.2,
            "std": 0.1,
            "min": 0,
            "max": 0.5,
        },
        "performance": {"baselineDirectionalAccuracy": 0.78, "baselineMeanAbsError": 0.01},
    }
)


def spec(**changes: Any) -> DriftMonitorSpec:
    base: dict[str, Any] = {"targetRef": "returns", "reference": {"inline": {}}, "window": "1h", "minSamples": 200}
    return DriftMonitorSpec.model_validate(base | changes)


def buckets(feature: str | None, per_bin: Sequence[float], edges: Sequence[float] = EDGES) -> list[Sample]:
    """Cumulative buckets of one series from counts on the open-ended edges (below e0, the bins, above eB)."""
    assert len(per_bin) == len(edges) + 1
    labels = [floatToGoString(e) for e in edges] + ["+Inf"]  # type: ignore[no-untyped-call]
    cumulative = np.cumsum(per_bin)
    extra = {"feature": feature} if feature is not None else {}
    return [Sample({**extra, "le": le}, float(c)) for le, c in zip(labels, cumulative, strict=True)]


def like_training(scale: float = 0.1) -> list[float]:
    return [0.0, *(c * scale for c in TRAINED), 0.0]


def shifted(scale: float = 0.1) -> list[float]:
    """Training mass moved two bins up: clearly drifted."""
    return [0.0, 0.0, 0.0, *(c * scale for c in TRAINED[:4]), (TRAINED[4] + TRAINED[5]) * scale]


def answers(
    per_feature: Mapping[str, Sequence[float]] | None = None,
    *,
    sector: Mapping[str, float] | None = None,
    prediction: Sequence[float] = (0, 10, 30, 60, 0),
    quality: Mapping[str, Mapping[str, float]] | None = None,
    performance: Mapping[str, float] | None = None,
) -> dict[drift.QueryName, list[Sample]]:
    per_feature = per_feature if per_feature is not None else {n: like_training() for n in "abc"}
    result: dict[drift.QueryName, list[Sample]] = {
        "numeric": [s for name, counts in per_feature.items() for s in buckets(name, counts)],
        "categorical": [
            Sample({"feature": "sector", "category": c}, v)
            for c, v in (sector or {"energy": 400.0, "tech": 600.0}).items()
        ],
        "prediction": buckets(None, [x * 10 for x in prediction], PREDICTION_EDGES),
    }
    observed = {name: 1000.0 for name in ("a", "b", "c", "sector")}
    counters = {"observations": observed, "missing": {}, "outOfRange": {}, "outliers": {}} | dict(quality or {})
    for name, values in counters.items():
        result[name] = [Sample({"feature": f}, v) for f, v in values.items()]  # type: ignore[index]
    perf = {"feedback": 1000.0, "directionCorrect": 780.0, "absErrorSum": 10.0, "absErrorCount": 1000.0}
    for name, value in (perf | dict(performance or {})).items():
        result[name] = [Sample({}, value)]  # type: ignore[index]
    return result


def evaluated(
    monitor: DriftMonitorSpec, data: Mapping[drift.QueryName, Sequence[Sample]] | None = None
) -> drift.Evaluation:
    return drift.evaluate(monitor, REFERENCE, data if data is not None else answers())


# --- queries ------------------------------------------------------------------------------------------------------


def rendered(queries: list[drift.DriftQuery]) -> dict[str, str]:
    return {q.name: render(q.template, q.variables) for q in queries}


def test_one_query_per_metric_family_grouped_by_feature_and_bucket() -> None:
    queries = rendered(drift.plan_queries(spec(), REFERENCE, namespace="ml", revision="5d8f"))
    selector = '{namespace="ml", revision="5d8f"}'
    assert queries == {
        "numeric": f"sum by (feature, le) (increase(model_feature_value_bucket{selector}[1h]))",
        "categorical": f"sum by (feature, category) (increase(model_feature_category_total{selector}[1h]))",
        "prediction": f"sum by (le) (increase(model_prediction_value_bucket{selector}[1h]))",
        "observations": f"sum by (feature) (increase(model_feature_observations_total{selector}[1h]))",
        "missing": f"sum by (feature) (increase(model_feature_missing_total{selector}[1h]))",
        "outOfRange": f"sum by (feature) (increase(model_feature_out_of_range_total{selector}[1h]))",
        "outliers": f"sum by (feature) (increase(model_feature_outliers_total{selector}[1h]))",
    }


def test_all_revisions_drop_the_revision_matcher_and_extra_matchers_are_added() -> None:
    monitor = spec(series={"revision": "all", "matchers": {"job": "model-server", "model": "m"}}, dataQuality=None)
    queries = rendered(drift.plan_queries(monitor, REFERENCE, namespace="ml", revision=None))
    assert queries["numeric"] == (
        'sum by (feature, le) (increase(model_feature_value_bucket{namespace="ml", job="model-server", model="m"}[1h]))'
    )
    assert set(queries) == {"numeric", "categorical", "prediction"}


def test_performance_adds_four_totals() -> None:
    monitor = spec(performance={}, prediction=False, dataQuality=None)
    queries = rendered(drift.plan_queries(monitor, REFERENCE, namespace="ml", revision="r"))
    assert queries["feedback"] == 'sum (increase(model_feedback_total{namespace="ml", revision="r"}[1h]))'
    assert queries["absErrorCount"] == 'sum (increase(model_abs_error_count{namespace="ml", revision="r"}[1h]))'
    assert "prediction" not in queries


def test_label_values_cannot_inject_promql() -> None:
    monitor = spec(series={"matchers": {"job": 'x"} or vector(1) #'}})
    query = rendered(drift.plan_queries(monitor, REFERENCE, namespace="ml", revision="r"))["numeric"]
    assert 'job="x\\"} or vector(1) #"' in query


def test_only_families_of_watched_features_are_queried() -> None:
    monitor = spec(features=["a"], prediction=False, dataQuality=None)
    assert [q.name for q in drift.plan_queries(monitor, REFERENCE, namespace="ml", revision="r")] == ["numeric"]


# --- bucket conversion ----------------------------------------------------------------------------------------------


def open_edges(edges: Sequence[float] = EDGES) -> np.ndarray[Any, Any]:
    return np.array([-np.inf, *edges, np.inf])


def pairs(samples: list[Sample]) -> list[tuple[str, float]]:
    return [(s.labels["le"], s.value) for s in samples]


def test_cumulative_buckets_become_per_bin_counts_on_the_reference_edges() -> None:
    counts = [3, 10, 20, 30, 25, 15, 5, 7]
    samples = buckets("a", counts)
    np.random.default_rng(0).shuffle(samples)  # Prometheus returns series in no particular order
    assert drift.live_counts(pairs(samples), open_edges()).tolist() == counts


def test_go_style_le_labels_snap_onto_the_reference_edges() -> None:
    edges = [-3.252495e-05, 0.0063113939999999997, 0.1]
    samples = [("-3.252495e-05", 1.0), ("0.006311394", 4.0), ("0.1", 6.0), ("+Inf", 6.0)]
    assert drift.live_counts(samples, open_edges(edges)).tolist() == [1, 3, 2, 0]


def test_float_noise_from_increase_is_tolerated() -> None:
    samples = [("-0.05", 0.0), ("-0.02", 50.0000001), ("-0.01", 50.0), *pairs(buckets("a", like_training()))[3:]]
    counts = drift.live_counts(samples, open_edges())
    assert counts[1] == pytest.approx(50.0000001)
    assert counts[2] == 0


def test_finer_server_buckets_merge_onto_the_reference_edges() -> None:
    finer = sorted({*EDGES, 0.005, 0.015})
    samples = pairs(buckets("a", [0, 1, 2, 3, 4, 5, 6, 7, 8, 0], finer))
    assert drift.live_counts(samples, open_edges()).tolist() == [0, 1, 2, 3, 4 + 5, 6 + 7, 8, 0]


def test_buckets_on_other_edges_are_refused() -> None:
    with pytest.raises(HistogramError):
        drift.live_counts([("0.5", 1.0), ("+Inf", 2.0)], open_edges())


def test_a_missing_inf_bucket_is_refused() -> None:
    with pytest.raises(HistogramError, match="Inf"):
        drift.live_counts(pairs(buckets("a", like_training()))[:-1], open_edges())


# --- verdicts -------------------------------------------------------------------------------------------------------


def test_traffic_like_training_is_no_drift() -> None:
    result = evaluated(spec())
    assert result.state == "NoDrift"
    assert [f.verdict for f in result.features] == ["NoDrift"] * 4
    assert result.features[0].samples == 1000
    assert set(result.features[0].scores) == {"psi", "ks"}
    assert result.prediction is not None
    assert result.prediction.verdict == "NoDrift"


def test_one_shifted_feature_drifts_alone() -> None:
    result = evaluated(spec(), answers({"a": like_training(), "b": shifted(), "c": like_training()}))
    assert result.state == "Drift"
    assert result.drifted == ["b"]
    b = result.features[1]
    assert b.scores["psi"] > 0.2
    assert b.p_values["ks"] < 1e-6


def test_too_few_observations_is_insufficient_data_never_no_drift() -> None:
    few = {n: like_training(0.01) for n in "abc"}
    result = evaluated(spec(), answers(few, sector={"energy": 40, "tech": 60}, prediction=(0, 1, 3, 6, 0)))
    assert result.state == "InsufficientData"
    assert result.features[0].verdict == "InsufficientData"
    assert result.features[0].message == "100 observations in 1h, minSamples is 200"


def test_a_feature_without_series_is_insufficient_data() -> None:
    result = evaluated(spec(), answers({"a": like_training(), "b": like_training()}))
    c = result.features[2]
    assert (c.verdict, c.samples) == ("InsufficientData", 0)
    assert result.state == "InsufficientData"


def test_mismatched_buckets_are_reported_on_the_feature() -> None:
    data = answers()
    data["numeric"] = [s for s in data["numeric"] if s.labels["feature"] != "a"]
    data["numeric"] += [Sample({"feature": "a", "le": "0.5"}, 1.0), Sample({"feature": "a", "le": "+Inf"}, 2.0)]
    a = evaluated(spec(), data).features[0]
    assert a.verdict == "InsufficientData"
    assert a.message is not None
    assert a.message.startswith("buckets do not match the reference's edges")


def test_a_new_category_is_drift() -> None:
    result = evaluated(spec(), answers(sector={"energy": 400, "tech": 300, "__other__": 300}))
    assert result.drifted == ["sector"]
    assert "ks" not in result.features[3].scores  # not applicable to categories


def test_spec_thresholds_apply_per_method() -> None:
    # PSI 0.006 over 10,000 observations stands out of noise (at 1,000 it would not, and a
    # threshold of 0.001 would give InsufficientData, not Drift).
    mild = [0.0, *(c * 1.0 for c in [400, 1400, 3000, 3000, 1600, 600]), 0.0]
    data = answers({"a": mild, "b": like_training(), "c": like_training()})
    assert evaluated(spec(), data).features[0].verdict == "NoDrift"
    strict = spec(methods=[{"name": "psi", "threshold": 0.001}])
    assert evaluated(strict, data).features[0].verdict == "Drift"


def test_thresholds_map_onto_the_stats_package() -> None:
    thresholds = drift.thresholds_of(
        spec(
            methods=[
                {"name": "psi", "warning": 0.05, "threshold": 0.3},
                {"name": "ks", "pValue": 0.01, "threshold": 0.2},
                {"name": "chiSquare", "threshold": 0.15},
            ],
            minSamples=50,
        )
    )
    assert (thresholds.psi_warning, thresholds.psi_drift) == (0.05, 0.3)
    assert (thresholds.ks_alpha, thresholds.ks_min_statistic) == (0.01, 0.2)
    assert thresholds.chi_square_min_cramers_v == 0.15
    assert thresholds.chi_square_alpha is None  # unset: its share of spec.alpha
    assert thresholds.min_samples == 50


def test_data_quality_from_the_counters() -> None:
    data = answers(quality={"missing": {"a": 100.0}, "outOfRange": {"b": 30.0}})
    quality = {q.name: q for q in evaluated(spec(), data).quality}
    assert quality["a"].missing_rate == pytest.approx(0.1)
    assert quality["a"].degraded
    assert quality["b"].out_of_range_rate == pytest.approx(0.03)
    assert not quality["b"].degraded  # 5 % allowed
    assert not quality["c"].degraded


def test_performance_against_the_reference_baseline() -> None:
    monitor = spec(performance={"minFeedback": 100})
    fine = evaluated(monitor).performance
    assert fine is not None
    assert (fine.directional_accuracy, fine.mean_abs_error, fine.degraded) == (0.78, 0.01, False)
    worse = evaluated(monitor, answers(performance={"directionCorrect": 700.0})).performance
    assert worse is not None
    assert worse.degraded
    assert worse.message == "directional accuracy 0.700 < 0.730 (baseline 0.780)"
    result = evaluated(monitor, answers(performance={"absErrorSum": 13.0}))
    assert result.state == "Drift"
    assert result.fingerprint == ("performance",)


def test_performance_waits_for_enough_feedback_and_the_spec_baseline_wins() -> None:
    monitor = spec(performance={"minFeedback": 5000})
    assert evaluated(monitor).performance.message == "1000 of 5000 labelled predictions in 1h"  # type: ignore[union-attr]
    monitor = spec(performance={"baselineDirectionalAccuracy": 0.9})
    assert evaluated(monitor).performance.degraded  # type: ignore[union-attr]


# --- decisions: conditions, history, failures -----------------------------------------------------------------------


def conditions(status: DriftMonitorStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_conditions_after_a_quiet_evaluation() -> None:
    decision = drift.decide(spec(), DriftMonitorStatus(), evaluated(spec()), now=T0, generation=1, revision="r")
    status = decision.status
    assert status.state == "NoDrift"
    assert status.last_evaluation_time == status.last_attempt_time == T0
    assert status.revision == "r"
    assert conditions(status) == {
        "Drifted": ("False", "NoDrift"),
        "InsufficientData": ("False", "EnoughSamples"),
        "DataQualityDegraded": ("False", "WithinLimits"),
        "PerformanceDegraded": ("False", "NotMonitored"),
        "Ready": ("True", "Evaluated"),
    }
    assert decision.events == ()
    assert len(status.history) == 1


def test_drift_conditions_name_the_features_and_scores() -> None:
    data = answers({"a": shifted(), "b": like_training(), "c": like_training()})
    status = drift.decide(spec(), DriftMonitorStatus(), evaluated(spec(), data), now=T0, generation=1).status
    drifted = find_condition(status.conditions, "Drifted")
    assert drifted is not None
    assert (drifted.status, drifted.reason) == ("True", "FeaturesDrifted")
    assert drifted.message.startswith("drift in a (psi ")
    assert status.drifted_features == ["a"]
    assert status.history[0].drifted == ["a"]
    assert status.history[0].max_psi == pytest.approx(status.features[0].scores["psi"])


def test_a_failure_keeps_the_last_results_and_says_why_once() -> None:
    data = answers({"a": shifted(), "b": like_training(), "c": like_training()})
    good = drift.decide(spec(), DriftMonitorStatus(), evaluated(spec(), data), now=T0, generation=1).status
    down = drift.Failure("PrometheusUnavailable", "numeric: Prometheus at http://x is unreachable")
    first = drift.decide(spec(), good, down, now=T0 + timedelta(minutes=1), generation=1)
    second = drift.decide(spec(), first.status, down, now=T0 + timedelta(minutes=2), generation=1)
    status = second.status
    assert [e.reason for e in first.events] == ["PrometheusUnavailable"]
    assert second.events == ()
    assert status.state == "Error"
    assert conditions(status)["Ready"] == ("False", "PrometheusUnavailable")
    assert conditions(status)["Drifted"] == ("True", "FeaturesDrifted")
    assert status.features == good.features
    assert status.last_evaluation_time == T0
    assert status.last_attempt_time == T0 + timedelta(minutes=2)
    assert status.alert == good.alert
    assert [h.state for h in status.history] == ["Error", "Error", "Drift"]


def test_history_is_bounded_newest_first() -> None:
    monitor = spec(historyLimit=3)
    status = DriftMonitorStatus()
    for minute in range(5):
        status = drift.decide(
            monitor, status, evaluated(monitor), now=T0 + timedelta(minutes=minute), generation=1
        ).status
    assert [h.time.minute for h in status.history] == [4, 3, 2]


@pytest.mark.parametrize(
    ("last_attempt", "generation", "due"),
    [
        (None, 1, True),
        (T0, 1, False),
        (T0 - timedelta(seconds=59), 1, False),
        (T0 - timedelta(minutes=1), 1, True),
        (T0, 2, True),
    ],
)
def test_evaluation_is_due_an_interval_after_the_last_attempt_or_after_a_spec_change(
    last_attempt: datetime | None, generation: int, due: bool
) -> None:
    status = DriftMonitorStatus(observed_generation=1, last_attempt_time=last_attempt)
    assert drift.evaluation_due(spec(interval="1m"), status, generation, T0) is due


def test_reference_errors_and_the_revision_to_watch() -> None:
    invalid = drift.parse_reference('{"features": []')
    assert isinstance(invalid, drift.Failure)
    assert invalid.reason == "ReferenceInvalid"
    empty = drift.parse_reference({"features": []})
    assert isinstance(empty, drift.Failure)
    assert "features" in empty.message
    target = {"stableRevision": {"hash": "aaa"}, "currentRevision": {"hash": "bbb"}}
    assert drift.revision_label(spec(), target) == "aaa"
    assert drift.revision_label(spec(series={"revision": "current"}), target) == "bbb"
    assert drift.revision_label(spec(series={"revision": "all"}), {}) is None
    unknown = drift.revision_label(spec(), {})
    assert isinstance(unknown, drift.Failure)
    assert unknown.reason == "RevisionUnknown"


# --- alerts ---------------------------------------------------------------------------------------------------------

WEBHOOK = {"webhook": {"urlSecretRef": {"name": "hook", "key": "url"}}, "remindAfter": "1h"}
QUIET = answers()
DRIFT_A = answers({"a": shifted(), "b": like_training(), "c": like_training()})
DRIFT_AB = answers({"a": shifted(), "b": shifted(), "c": like_training()})
LOW = answers({n: like_training(0.01) for n in "abc"}, sector={"energy": 40, "tech": 60}, prediction=(0, 1, 3, 6, 0))


class Monitor:
    """Runs evaluations minute by minute, delivering (or failing) pending alerts like the engine."""

    def __init__(self, monitor: DriftMonitorSpec) -> None:
        self.spec = monitor
        self.status = DriftMonitorStatus()
        self.now = T0
        self.sent: list[str] = []
        self.events: list[str] = []
        self.webhook_up = True

    def evaluate(self, data: Mapping[drift.QueryName, Sequence[Sample]], minutes: float = 1) -> None:
        self.now += timedelta(minutes=minutes)
        decision = drift.decide(self.spec, self.status, evaluated(self.spec, data), now=self.now, generation=1)
        self.status = decision.status
        self.events += [e.reason for e in decision.events]
        if drift.delivery_due(self.status, self.now):
            payload = drift.alert_payload("ml", "mon", self.spec, self.status)
            if self.webhook_up:
                self.sent.append(payload["modelrollout"]["kind"])
                self.status = drift.alert_delivered(self.status, self.now)
            else:
                self.status = drift.alert_failed(self.status, "connection refused", self.now)


def test_one_alert_per_transition_and_one_resolution() -> None:
    monitor = Monitor(spec(alerting=WEBHOOK))
    for data in (QUIET, DRIFT_A, DRIFT_A, DRIFT_A, QUIET, QUIET):
        monitor.evaluate(data)
    assert monitor.sent == ["Firing", "Resolved"]
    assert monitor.events == ["DriftDetected", "DriftResolved"]
    assert not monitor.status.alert.firing


def test_a_change_of_drifted_features_is_a_new_alert() -> None:
    monitor = Monitor(spec(alerting=WEBHOOK))
    for data in (DRIFT_A, DRIFT_AB, DRIFT_AB):
        monitor.evaluate(data)
    assert monitor.sent == ["Firing", "Firing"]
    assert monitor.status.alert.fingerprint == "a,b"
    assert monitor.events == ["DriftDetected", "DriftChanged"]


def test_reminder_after_remind_after_while_drift_persists() -> None:
    monitor = Monitor(spec(alerting=WEBHOOK))
    monitor.evaluate(DRIFT_A)
    for _ in range(4):
        monitor.evaluate(DRIFT_A, minutes=20)
    assert monitor.sent == ["Firing", "Reminder"]


def test_too_little_data_does_not_resolve_an_open_alert() -> None:
    monitor = Monitor(spec(alerting=WEBHOOK))
    for data in (DRIFT_A, LOW, LOW):
        monitor.evaluate(data)
    assert monitor.status.alert.firing
    assert monitor.sent == ["Firing"]


def test_without_a_webhook_only_events_are_emitted() -> None:
    monitor = Monitor(spec())
    for data in (DRIFT_A, QUIET):
        monitor.evaluate(data)
    assert monitor.sent == []
    assert monitor.events == ["DriftDetected", "DriftResolved"]


def test_failed_deliveries_back_off_exponentially_without_blocking_evaluation() -> None:
    monitor = Monitor(spec(alerting=WEBHOOK, interval="10s"))
    monitor.webhook_up = False
    monitor.evaluate(DRIFT_A)
    alert = monitor.status.alert
    assert (alert.pending, alert.failures, alert.last_error) == ("Firing", 1, "connection refused")
    assert alert.next_attempt_at == monitor.now + timedelta(seconds=10)
    waits = []
    for _ in range(4):
        monitor.now = monitor.status.alert.next_attempt_at  # type: ignore[assignment]
        before = monitor.now
        monitor.status = drift.alert_failed(monitor.status, "still down", monitor.now)
        waits.append((monitor.status.alert.next_attempt_at - before).total_seconds())  # type: ignore[operator]
    assert waits == [20, 40, 80, 160]
    assert not drift.delivery_due(monitor.status, monitor.now)
    monitor.webhook_up = True
    monitor.evaluate(DRIFT_A, minutes=10)
    assert monitor.sent == ["Firing"]
    assert monitor.status.alert.failures == 0


def test_drift_that_clears_before_its_alert_went_out_sends_nothing() -> None:
    monitor = Monitor(spec(alerting=WEBHOOK))
    monitor.webhook_up = False
    monitor.evaluate(DRIFT_A)
    monitor.webhook_up = True
    monitor.evaluate(QUIET, minutes=0)
    assert monitor.status.alert.pending is None
    assert monitor.sent == []


def test_the_payload_is_slack_compatible_and_machine_readable() -> None:
    monitor = Monitor(spec(alerting=WEBHOOK))
    monitor.evaluate(DRIFT_A)
    monitor.status = monitor.status.model_copy(
        update={"alert": monitor.status.alert.model_copy(update={"pending": "Firing"})}
    )
    payload = drift.alert_payload("ml", "mon", monitor.spec, monitor.status)
    assert payload["text"].startswith(":warning: Drift detected on ModelDeployment returns (DriftMonitor ml/mon): ")
    assert payload["blocks"][0]["text"]["text"] == payload["text"]
    machine = payload["modelrollout"]
    assert machine["driftedFeatures"] == ["a"]
    assert set(machine["scores"]["a"]) == {"psi", "ks"}
    assert (machine["monitor"], machine["namespace"], machine["fingerprint"]) == ("mon", "ml", "a")


# --- actions --------------------------------------------------------------------------------------------------------


def test_an_action_is_requested_once_per_drift_episode() -> None:
    monitor = Monitor(spec(action="Rollback"))
    monitor.evaluate(DRIFT_A)
    action = drift.action_pending(monitor.status, monitor.now)
    assert action is not None
    assert (action.name, action.state) == ("Rollback", "Pending")
    done = drift.action_done(monitor.status, target="returns", now=monitor.now)
    monitor.status = done.status
    assert [e.reason for e in done.events] == ["RollbackRequested"]
    assert monitor.status.action_taken is not None
    assert "returns" in monitor.status.action_taken
    for data in (DRIFT_A, DRIFT_AB):
        monitor.evaluate(data)
    assert drift.action_pending(monitor.status, monitor.now) is None
    monitor.evaluate(QUIET)
    monitor.evaluate(DRIFT_A)
    again = drift.action_pending(monitor.status, monitor.now)
    assert again is not None
    assert again.id != action.id


def test_a_failed_action_is_retried_unless_the_target_is_gone() -> None:
    monitor = Monitor(spec(action="Pause"))
    monitor.evaluate(DRIFT_A)
    retry = drift.action_failed(monitor.status, "500 boom", permanent=False)
    assert drift.action_pending(retry.status, monitor.now) is not None
    gone = drift.action_failed(monitor.status, "404 Not Found", permanent=True)
    assert drift.action_pending(gone.status, monitor.now) is None
    assert [e.reason for e in gone.events] == ["ActionFailed"]


def test_no_action_when_the_spec_says_none() -> None:
    monitor = Monitor(spec())
    monitor.evaluate(DRIFT_A)
    assert monitor.status.action is None
