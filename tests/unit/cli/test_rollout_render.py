"""What ``status`` and ``history`` print for each phase, from hand-written resources (no cluster)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from modelrollout.cli._render import clock, history_text, history_view, render_status, status_view

NOW = datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)
V1 = {"number": 1, "versionId": "1-aaaaaaaa", "hash": "aaaaaaaaaa", "modelVersion": "1.0.0"}
V2 = {"number": 2, "versionId": "2-bbbbbbbb", "hash": "bbbbbbbbbb", "modelVersion": "2.0.0"}
STEPS = [
    {"weight": 5, "pause": {"duration": "30s"}},
    {"weight": 25, "pause": {"duration": "1m"}},
    {"weight": 50, "pause": {"duration": "2m"}},
    {"weight": 100, "pause": {"duration": "30s"}},
]


def resource(status: dict[str, Any], *, steps: list[dict[str, Any]] = STEPS, paused: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": "returns", "namespace": "models", "generation": 4},
        "spec": {
            "model": {"name": "next-day-returns", "version": "2.0.0", "uri": "s3://m/2"},
            "template": {},
            "strategy": {"canary": {"steps": copy.deepcopy(steps)}},
            "paused": paused,
        },
        "status": {"observedGeneration": 4, **status},
    }


def canary(**status: Any) -> dict[str, Any]:
    return {"currentRevision": V2, "stableRevision": V1, **status}


def condition(type_: str, value: str, reason: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": value, "reason": reason, "message": message, "lastTransitionTime": "x"}


def test_smoke_testing_shows_no_step_started_and_the_smoke_state() -> None:
    status = canary(
        phase="SmokeTesting",
        message="smoke tests of revision 2-bbbbbbbb (attempt 1) are running",
        smokeTest={"state": "Running", "attempt": 1, "jobs": ["returns-smoke-bbbbbbbbbb-1-builtin"]},
    )
    text = render_status(resource(status), NOW)
    assert text.splitlines()[:6] == [
        "Name:        returns (namespace models)",
        "Model:       next-day-returns 2.0.0",
        "Current:     2-bbbbbbbb (model 2.0.0)",
        "Stable:      1-aaaaaaaa (model 1.0.0)",
        "Phase:       SmokeTesting — smoke tests of revision 2-bbbbbbbb (attempt 1) are running",
        "Steps:       [5 ·] [25 ·] [50 ·] [100 ·]   canary weight 0%",
    ]
    assert "Smoke test:  Running (attempt 1)" in text
    assert "Analysis:    none yet" in text


def test_progressing_mid_step_shows_elapsed_over_the_pause_and_the_analysis_table() -> None:
    status = canary(
        phase="Progressing",
        message="step 3: 50% of traffic on the canary",
        canaryWeight=50,
        currentStepIndex=2,
        stepStartedAt="2026-05-01T09:58:48Z",
        smokeTest={"state": "Passed", "attempt": 1},
        analysis={
            "verdict": "Pass",
            "lastRunAt": "2026-05-01T09:59:55Z",
            "metrics": [
                {
                    "name": "error-rate",
                    "verdict": "Pass",
                    "value": 0.0123,
                    "stableValue": 0.0119,
                    "limit": "increase <= 0.02",
                    "pValue": 0.41,
                    "interval": [-0.004, 0.0051],
                },
                {"name": "latency-p99", "verdict": "Pass", "value": 0.21, "limit": "<= 0.5"},
            ],
        },
        conditions=[
            condition("Available", "True", "StableServing", "revision 1-aaaaaaaa serves"),
            condition("Degraded", "False", "AsExpected"),
            condition("Progressing", "True", "Progressing", "step 3: 50% of traffic on the canary"),
        ],
    )
    text = render_status(resource(status), NOW)
    assert "Steps:       [5 ✓] [25 ✓] [50 ▶ 1m12s/2m] [100 ·]   canary weight 50%" in text
    assert "Smoke test:  Passed (attempt 1)" in text
    assert "Analysis:    Pass, 5s ago" in text
    table = text[text.index("  METRIC") :].splitlines()[:3]
    assert table == [
        "  METRIC       VERDICT  CANARY  STABLE  LIMIT             P-VALUE / INTERVAL",
        "  error-rate   Pass     0.0123  0.0119  increase <= 0.02  p=0.41 [-0.004, 0.0051]",
        "  latency-p99  Pass     0.21    -       <= 0.5            -",
    ]
    assert "  ✓  Available    True   StableServing  revision 1-aaaaaaaa serves" in text
    assert "  ✓  Degraded     False  AsExpected" in text
    assert "  ·  Progressing  True   Progressing    step 3: 50% of traffic on the canary" in text


def test_a_step_waiting_for_the_router_says_so() -> None:
    status = canary(phase="Progressing", canaryWeight=5, currentStepIndex=0)
    assert "[5 ▶ routing] [25 ·]" in render_status(resource(status), NOW)


def test_a_manual_gate_asks_for_promote() -> None:
    steps = [{"weight": 5, "pause": {"duration": "30s"}}, {"weight": 50, "pause": {}}, {"weight": 100}]
    status = canary(
        phase="Paused",
        message="step 2 at 50% waits for promote",
        canaryWeight=50,
        currentStepIndex=1,
        stepStartedAt="2026-05-01T09:00:00Z",
        conditions=[condition("Paused", "True", "Paused")],
    )
    text = render_status(resource(status, steps=steps), NOW)
    assert "Phase:       Paused — step 2 at 50% waits for promote" in text
    assert "Steps:       [5 ✓] [50 ⏸ promote?] [100 ·]   canary weight 50%" in text
    view = status_view(resource(status, steps=steps), NOW)
    assert [s["state"] for s in view["steps"]] == ["done", "gate", "pending"]
    assert view["steps"][1]["pauseSeconds"] is None


def test_spec_paused_holds_the_current_step() -> None:
    status = canary(phase="Paused", message="paused at 25% (spec.paused)", canaryWeight=25, currentStepIndex=1)
    text = render_status(resource(status, paused=True), NOW)
    assert "[5 ✓] [25 ⏸ paused] [50 ·] [100 ·]" in text


def test_degraded_shows_the_failed_step_and_why_each_metric_failed() -> None:
    status = canary(
        phase="Degraded",
        message="revision 2-bbbbbbbb rolled back: 2 failed analyses in a row: error-rate: canary worse",
        aborted=True,
        canaryWeight=0,
        currentStepIndex=1,
        stepStartedAt="2026-05-01T09:59:00Z",
        analysis={
            "verdict": "Fail",
            "lastRunAt": "2026-05-01T09:59:58Z",
            "consecutiveFailures": 2,
            "metrics": [
                {
                    "name": "error-rate",
                    "verdict": "Fail",
                    "value": 0.61,
                    "stableValue": 0.01,
                    "limit": "increase <= 0.02",
                    "pValue": 0.0001,
                    "interval": [0.55, 0.65],
                    "message": "the canary's failure rate is higher by more than 0.02",
                },
                {"name": "latency-p99", "verdict": "Inconclusive", "message": "no samples"},
            ],
        },
        conditions=[
            condition("Degraded", "True", "RolledBack", "revision 2-bbbbbbbb rolled back"),
            condition("AnalysisPassing", "False", "AnalysisFail"),
        ],
    )
    text = render_status(resource(status), NOW)
    assert "Steps:       [5 ✓] [25 ✗] [50 ·] [100 ·]   canary weight 0%" in text
    assert "Analysis:    Fail, 2s ago (2 failed in a row)" in text
    lines = text.splitlines()
    error_rate = next(i for i, line in enumerate(lines) if line.startswith("  error-rate"))
    assert lines[error_rate].split() == [
        "error-rate",
        "Fail",
        "0.61",
        "0.01",
        "increase",
        "<=",
        "0.02",
        "p=0.0001",
        "[0.55,",
        "0.65]",
    ]
    assert lines[error_rate + 1] == "    ↳ the canary's failure rate is higher by more than 0.02"
    assert lines[error_rate + 3] == "    ↳ no samples"
    assert "  ✗  Degraded         True   RolledBack    revision 2-bbbbbbbb rolled back" in text
    assert "  ✗  AnalysisPassing  False  AnalysisFail" in text


def test_failed_smoke_tests_show_the_reason() -> None:
    status = canary(
        phase="Failed",
        aborted=True,
        smokeTest={"state": "Failed", "attempt": 2, "reason": "output_range: 3 predictions above 1"},
    )
    text = render_status(resource(status), NOW)
    assert "Smoke test:  Failed (attempt 2): output_range: 3 predictions above 1" in text
    assert "[5 ·] [25 ·] [50 ·] [100 ·]" in text


def test_healthy_has_no_canary() -> None:
    status = {
        "phase": "Healthy",
        "message": "revision 2-bbbbbbbb (model 2.0.0) is stable",
        "currentRevision": V2,
        "stableRevision": V2,
    }
    text = render_status(resource(status), NOW)
    assert "Phase:       Healthy — revision 2-bbbbbbbb (model 2.0.0) is stable" in text
    assert "Steps:       no canary in progress: all traffic on 2-bbbbbbbb" in text
    assert "Smoke test" not in text
    assert status_view(resource(status), NOW)["steps"] == []


def test_a_resource_the_operator_has_not_seen() -> None:
    fresh = resource({})
    del fresh["status"]
    text = render_status(fresh, NOW)
    assert "Phase:       Pending — the operator has not reported on this resource yet" in text
    assert "(the operator has not acted on the latest spec yet)" in text
    assert "Current:     none" in text


def test_the_json_view_carries_the_numbers() -> None:
    status = canary(phase="Progressing", canaryWeight=25, currentStepIndex=1, stepStartedAt="2026-05-01T09:59:30Z")
    view = status_view(resource(status), NOW)
    assert view["currentRevision"]["versionId"] == "2-bbbbbbbb"
    assert view["steps"][1] == {"weight": 25, "state": "active", "pauseSeconds": 60, "elapsedSeconds": 30.0}
    assert view["upToDate"] is True


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (45.9, "45s"), (72, "1m12s"), (120, "2m"), (3900, "1h5m"), (7200, "2h")]
)
def test_clock(seconds: float, text: str) -> None:
    assert clock(seconds) == text


# --- history ----------------------------------------------------------------------------------------------------


def revision(number: int, content_hash: str, version: str, **lineage: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"returns-{content_hash}",
            "labels": {"modelrollout.dev/model-deployment": "returns", "modelrollout.dev/revision": content_hash},
            "creationTimestamp": "2026-05-01T08:00:00Z",
        },
        "revision": number,
        "data": {
            "model": {
                "name": "next-day-returns",
                "version": version,
                "uri": f"s3://models/returns/{version}",
                "digest": f"sha256:{content_hash * 2}",
                "lineage": lineage,
            },
            "template": {},
            "port": 8080,
        },
    }


def three_versions() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    v3 = {"number": 3, "versionId": "3-cccccccc", "hash": "cccccccccc", "modelVersion": "3.0.0"}
    history = [
        {"number": 3, "versionId": "3-cccccccc", "modelVersion": "3.0.0", "createdAt": "2026-05-01T09:30:00Z"},
        {"number": 2, "versionId": "2-bbbbbbbb", "modelVersion": "2.0.0", "createdAt": "2026-05-01T09:00:00Z"},
        {"number": 1, "versionId": "1-aaaaaaaa", "modelVersion": "1.0.0", "createdAt": "2026-05-01T08:00:00Z"},
    ]
    history[0]["outcome"] = "Degraded"
    history[0]["reason"] = "2 failed analyses in a row: error-rate"
    history[1]["outcome"] = "Stable"
    history[2]["outcome"] = "Superseded"
    md = resource({"currentRevision": v3, "stableRevision": V2, "aborted": True, "history": history})
    revisions = [
        revision(3, "cccccccccc", "3.0.0", data="s3://d/2026-05", code="c3", params={"depth": "8"}),
        revision(1, "aaaaaaaaaa", "1.0.0", data="s3://d/2026-03", code="c1", metrics={"auc": 0.81234}),
        revision(2, "bbbbbbbbbb", "2.0.0", data="s3://d/2026-04", code="c2", params={"depth": "6", "eta": "0.1"}),
    ]
    return md, revisions


def test_history_joins_revisions_and_outcomes_sorted_by_number() -> None:
    rows = history_view(*three_versions())
    assert [(r["number"], r["versionId"], r["outcome"], r["serving"]) for r in rows] == [
        (1, "1-aaaaaaaa", "Superseded", None),
        (2, "2-bbbbbbbb", "Stable", "stable"),
        (3, "3-cccccccc", "Degraded", None),
    ]
    assert rows[1]["lineage"] == {
        "data": "s3://d/2026-04",
        "code": "c2",
        "params": {"depth": "6", "eta": "0.1"},
        "metrics": {},
    }
    assert rows[0]["createdAt"] == "2026-05-01T08:00:00Z"
    assert rows[2]["digest"] == "sha256:cccccccccccccccccccc"


def test_history_text_lists_each_revision_with_its_lineage() -> None:
    assert history_text(history_view(*three_versions())).splitlines() == [
        "REVISION  VERSION ID  MODEL  CREATED              OUTCOME     SERVING",
        "1         1-aaaaaaaa  1.0.0  2026-05-01 08:00:00  Superseded",
        "    artifact s3://models/returns/1.0.0",
        "    digest   sha256:aaaaaaaaaaaaaaaaaaaa",
        "    data     s3://d/2026-03",
        "    code     c1",
        "    metrics  auc=0.8123",
        "2         2-bbbbbbbb  2.0.0  2026-05-01 09:00:00  Stable      stable",
        "    artifact s3://models/returns/2.0.0",
        "    digest   sha256:bbbbbbbbbbbbbbbbbbbb",
        "    data     s3://d/2026-04",
        "    code     c2",
        "    params   depth=6, eta=0.1",
        "3         3-cccccccc  3.0.0  2026-05-01 09:30:00  Degraded",
        "    artifact s3://models/returns/3.0.0",
        "    digest   sha256:cccccccccccccccccccc",
        "    data     s3://d/2026-05",
        "    code     c3",
        "    params   depth=8",
        "    reason   2 failed analyses in a row: error-rate",
    ]


def test_a_canary_in_progress_is_marked_as_such() -> None:
    md, revisions = three_versions()
    md["status"]["history"][0]["outcome"] = "Pending"
    md["status"]["aborted"] = False
    assert [r["serving"] for r in history_view(md, revisions)] == [None, "stable", "canary"]
    md["status"]["aborted"] = True
    assert [r["serving"] for r in history_view(md, revisions)] == [None, "stable", None]


def test_history_of_a_revision_pruned_from_status_falls_back_to_the_revision_itself() -> None:
    md, revisions = three_versions()
    md["status"]["history"] = []
    rows = history_view(md, revisions)
    assert rows[0]["outcome"] is None
    assert rows[0]["createdAt"] == "2026-05-01T08:00:00Z"
    assert "1-aaaaaaaa  1.0.0  2026-05-01 08:00:00  -" in history_text(rows)


def test_no_revisions() -> None:
    assert history_text(history_view(resource({}), [])) == "no revisions yet"
