"""What ``status`` and ``history`` show, computed from plain resource dicts.

Everything here is a pure function of the ModelDeployment (and its
ControllerRevisions) as the API returns them, plus the current time, so the
output of every phase is tested from hand-written dicts without a cluster.
A *view* is the JSON-able summary (``--format json``); the text renderers
only lay a view out, so both formats always say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from modelrollout.api.base import duration_seconds
from modelrollout.core.revisions import version_id
from modelrollout.kube import naming

Resource = Mapping[str, Any]
View = dict[str, Any]

DEFAULT_STEPS: tuple[Resource, ...] = tuple({"weight": w, "pause": {"duration": "30s"}} for w in (5, 25, 50, 100))
"""The CRD's default steps, for a resource read before the API server applied defaults (never, in practice)."""

STEP_MARKS = {"done": "✓", "active": "▶", "gate": "⏸", "held": "⏸", "failed": "✗", "pending": "·"}
HEALTHY_WHEN = {
    "Available": "True",
    "Degraded": "False",
    "SmokeTestPassed": "True",
    "AnalysisPassing": "True",
    "ConfigurationValid": "True",
    "RouterReady": "True",
    "InvalidSpec": "False",
}
"""The status a condition has when all is well; the others (Progressing, Paused) only inform."""


# --- status -----------------------------------------------------------------------------------------------------


def status_view(resource: Resource, now: datetime) -> View:
    """The rollout at a glance: which revisions serve, where the canary is, and why it is there."""
    metadata = resource.get("metadata") or {}
    spec = resource.get("spec") or {}
    status = resource.get("status") or {}
    model = spec.get("model") or {}
    current, stable = status.get("currentRevision"), status.get("stableRevision")
    return {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "model": {"name": model.get("name"), "version": model.get("version")},
        "currentRevision": _revision_view(current),
        "stableRevision": _revision_view(stable),
        "phase": status.get("phase", "Pending"),
        "message": status.get("message") or _missing_status_message(status),
        "paused": bool(spec.get("paused")),
        "upToDate": status.get("observedGeneration") == metadata.get("generation"),
        "canaryWeight": int(status.get("canaryWeight") or 0),
        "steps": _steps_view(spec, status, now),
        "smokeTest": _smoke_view(status.get("smokeTest")),
        "analysis": _analysis_view(status.get("analysis") or {}, now),
        "conditions": [
            {key: condition.get(key) for key in ("type", "status", "reason", "message")}
            for condition in status.get("conditions") or []
        ],
    }


def render_status(resource: Resource, now: datetime) -> str:
    return status_text(status_view(resource, now))


def status_text(view: View) -> str:
    lines = [
        _field("Name", f"{view['name']}" + (f" (namespace {view['namespace']})" if view["namespace"] else "")),
        _field("Model", f"{view['model']['name']} {view['model']['version']}"),
        _field("Current", _revision_text(view["currentRevision"])),
        _field("Stable", _revision_text(view["stableRevision"])),
        _field("Phase", f"{view['phase']} — {view['message']}" if view["message"] else view["phase"]),
    ]
    if not view["upToDate"]:
        lines.append(_field("", "(the operator has not acted on the latest spec yet)"))
    lines.append(_field("Steps", _steps_text(view)))
    if view["smokeTest"] is not None:
        lines.append(_field("Smoke test", _smoke_text(view["smokeTest"])))
    lines.extend(_analysis_lines(view["analysis"]))
    lines.extend(_condition_lines(view["conditions"]))
    return "\n".join(lines)


def _missing_status_message(status: Resource) -> str | None:
    return None if status else "the operator has not reported on this resource yet"


def _revision_view(ref: Resource | None) -> View | None:
    if not ref:
        return None
    return {key: ref.get(key) for key in ("number", "versionId", "hash", "modelVersion")}


def _revision_text(ref: View | None) -> str:
    return "none" if ref is None else f"{ref['versionId']} (model {ref['modelVersion']})"


def is_canary(status: Resource) -> bool:
    """The same test the operator makes: a current revision that is not the stable one."""
    current: Resource = status.get("currentRevision") or {}
    stable: Resource = status.get("stableRevision") or {}
    return bool(current) and (not stable or current.get("hash") != stable.get("hash"))


def _steps_view(spec: Resource, status: Resource, now: datetime) -> list[View]:
    """One entry per canary step; empty when no canary is in progress (all traffic on stable)."""
    if not is_canary(status):
        return []
    steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or DEFAULT_STEPS
    index = status.get("currentStepIndex")
    aborted = bool(status.get("aborted"))
    started = _timestamp(status.get("stepStartedAt"))
    views = []
    for position, step in enumerate(steps):
        pause = (step.get("pause") or {}).get("duration")
        view: View = {
            "weight": step.get("weight"),
            "state": "pending",
            "pauseSeconds": duration_seconds(pause) if pause else None,
            "elapsedSeconds": None,
        }
        if index is not None and position < index:
            view["state"] = "done"
        elif index is not None and position == index:
            view["state"] = _active_state(spec, pause, aborted=aborted, started=started is not None)
            if started is not None and not aborted:
                view["elapsedSeconds"] = max(0.0, (now - started).total_seconds())
        views.append(view)
    return views


def _active_state(spec: Resource, pause: str | None, *, aborted: bool, started: bool) -> str:
    if aborted:
        return "failed"
    if spec.get("paused"):
        return "held"
    if pause is None and started:
        return "gate"
    return "active"


def _steps_text(view: View) -> str:
    steps = view["steps"]
    if not steps:
        stable = view["stableRevision"]
        return "no canary in progress" + (f": all traffic on {stable['versionId']}" if stable else "")
    return " ".join(_step_text(step) for step in steps) + f"   canary weight {view['canaryWeight']}%"


def _step_text(step: View) -> str:
    mark = STEP_MARKS[step["state"]]
    text = f"{step['weight']} {mark}"
    if step["state"] == "gate":
        text += " promote?"
    elif step["state"] == "held":
        text += " paused"
    elif step["state"] == "active":
        if step["elapsedSeconds"] is None:
            text += " routing"
        else:
            total = "manual" if step["pauseSeconds"] is None else clock(step["pauseSeconds"])
            text += f" {clock(step['elapsedSeconds'])}/{total}"
    return f"[{text}]"


def _smoke_view(smoke: Resource | None) -> View | None:
    if not smoke:
        return None
    return {
        "state": smoke.get("state", "Pending"),
        "attempt": smoke.get("attempt", 1),
        "jobs": list(smoke.get("jobs") or []),
        "reason": smoke.get("reason"),
    }


def _smoke_text(smoke: View) -> str:
    text = f"{smoke['state']} (attempt {smoke['attempt']})"
    return f"{text}: {smoke['reason']}" if smoke["reason"] else text


def _analysis_view(analysis: Resource, now: datetime) -> View:
    last = _timestamp(analysis.get("lastRunAt"))
    return {
        "verdict": analysis.get("verdict"),
        "secondsAgo": None if last is None else max(0.0, (now - last).total_seconds()),
        "consecutiveFailures": int(analysis.get("consecutiveFailures") or 0),
        "consecutiveNoData": int(analysis.get("consecutiveNoData") or 0),
        "neededSamples": analysis.get("neededSamples"),
        "etaSeconds": analysis.get("etaSeconds"),
        "canaryRequestRate": analysis.get("canaryRequestRate"),
        "metrics": [
            {
                key: metric.get(key)
                for key in ("name", "verdict", "value", "stableValue", "limit", "pValue", "interval", "message")
            }
            for metric in analysis.get("metrics") or []
        ],
    }


def _analysis_lines(analysis: View) -> list[str]:
    if analysis["verdict"] is None and not analysis["metrics"]:
        return [_field("Analysis", "none yet")]
    summary = analysis["verdict"] or "not run in this step yet"
    if analysis["secondsAgo"] is not None:
        summary += f", {clock(analysis['secondsAgo'])} ago"
    streaks = [
        f"{count} {word} in a row"
        for count, word in (
            (analysis["consecutiveFailures"], "failed"),
            (analysis["consecutiveNoData"], "without data"),
        )
        if count
    ]
    if streaks:
        summary += f" ({', '.join(streaks)})"
    lines = [_field("Analysis", summary)]
    if analysis["neededSamples"] is not None:
        lines.append(_field("To decide", _eta_text(analysis)))
    if analysis["metrics"]:
        rows = [("METRIC", "VERDICT", "CANARY", "STABLE", "LIMIT", "P-VALUE / INTERVAL")]
        notes: dict[int, str] = {}
        for metric in analysis["metrics"]:
            rows.append(
                (
                    metric["name"],
                    metric["verdict"],
                    number(metric["value"]),
                    number(metric["stableValue"]),
                    metric["limit"] or "-",
                    _evidence(metric["pValue"], metric["interval"]),
                )
            )
            if metric["message"] and metric["verdict"] != "Pass":
                notes[len(rows) - 1] = metric["message"]
        for position, line in enumerate(table(rows)):
            lines.append(f"  {line}")
            if position in notes:
                lines.append(f"    ↳ {notes[position]}")
    return lines


def _eta_text(analysis: View) -> str:
    """What a step still needs, e.g. "about 1,800 more canary requests: about 6m at 5 req/s"."""
    text = f"about {float(analysis['neededSamples']):,.0f} more canary requests"
    eta, rate = analysis["etaSeconds"], analysis["canaryRequestRate"]
    if eta is not None and rate:
        text += f": about {clock(float(eta))} at {float(rate):.3g} req/s"
    return text


def _evidence(p_value: float | None, interval: Sequence[float] | None) -> str:
    parts = []
    if p_value is not None:
        parts.append(f"p={number(p_value)}")
    if interval:
        parts.append("[" + ", ".join(number(bound) for bound in interval) + "]")
    return " ".join(parts) or "-"


def _condition_lines(conditions: Sequence[View]) -> list[str]:
    if not conditions:
        return []
    rows = [
        (_condition_mark(c), str(c["type"]), str(c["status"]), str(c["reason"] or ""), str(c["message"] or ""))
        for c in conditions
    ]
    return ["Conditions:", *(f"  {line}" for line in table(rows))]


def _condition_mark(condition: View) -> str:
    """✓ healthy, ✗ a problem, ? unknown, · informational."""
    healthy = HEALTHY_WHEN.get(str(condition["type"]))
    if condition["status"] == "Unknown":
        return "?"
    if healthy is None:
        return "·"
    return "✓" if condition["status"] == healthy else "✗"


# --- history ----------------------------------------------------------------------------------------------------


def history_view(resource: Resource, revisions: Iterable[Resource]) -> list[View]:
    """Every kept revision, oldest first, with what became of it and where its model came from.

    The ControllerRevisions hold the frozen content (model, lineage, template);
    ``status.history`` holds the outcomes. They are joined on the revision number.
    """
    status = resource.get("status") or {}
    records = {record.get("number"): record for record in status.get("history") or []}
    current = (status.get("currentRevision") or {}).get("hash")
    stable = (status.get("stableRevision") or {}).get("hash")
    canary = None if status.get("aborted") else current
    rows = []
    for revision in sorted(revisions, key=lambda r: int(r.get("revision") or 0)):
        number_ = int(revision.get("revision") or 0)
        metadata = revision.get("metadata") or {}
        content_hash = (metadata.get("labels") or {}).get(naming.REVISION_LABEL, "")
        model = (revision.get("data") or {}).get("model") or {}
        lineage = model.get("lineage") or {}
        record = records.get(number_) or {}
        rows.append(
            {
                "number": number_,
                "versionId": version_id(number_, content_hash),
                "hash": content_hash,
                "modelVersion": model.get("version"),
                "uri": model.get("uri"),
                "digest": model.get("digest"),
                "createdAt": record.get("createdAt") or metadata.get("creationTimestamp"),
                "outcome": record.get("outcome"),
                "reason": record.get("reason"),
                "serving": _serving(content_hash, canary=canary, stable=stable),
                "lineage": {
                    "data": lineage.get("data"),
                    "code": lineage.get("code"),
                    "params": dict(lineage.get("params") or {}),
                    "metrics": dict(lineage.get("metrics") or {}),
                },
            }
        )
    return rows


def _serving(content_hash: str, *, canary: str | None, stable: str | None) -> str | None:
    """Which traffic the revision takes: an aborted canary takes none, though it is still current."""
    if content_hash == stable:
        return "stable"
    if content_hash == canary:
        return "canary"
    return None


def history_text(rows: Sequence[View]) -> str:
    if not rows:
        return "no revisions yet"
    header = ("REVISION", "VERSION ID", "MODEL", "CREATED", "OUTCOME", "SERVING")
    cells = [
        (
            str(row["number"]),
            row["versionId"],
            str(row["modelVersion"]),
            _short_time(row["createdAt"]),
            row["outcome"] or "-",
            row["serving"] or "",
        )
        for row in rows
    ]
    lines = table([header, *cells])
    out = [lines[0]]
    for row, line in zip(rows, lines[1:], strict=True):
        out.append(line)
        out.extend(f"    {label:<8} {value}" for label, value in _details(row))
    return "\n".join(out)


def _details(row: View) -> list[tuple[str, str]]:
    lineage = row["lineage"]
    details = [
        ("artifact", row["uri"]),
        ("digest", row["digest"]),
        ("data", lineage["data"]),
        ("code", lineage["code"]),
        ("params", _pairs(lineage["params"])),
        ("metrics", _pairs({k: number(v) for k, v in lineage["metrics"].items()})),
        ("reason", row["reason"]),
    ]
    return [(label, str(value)) for label, value in details if value]


def _pairs(values: Mapping[str, object]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(values.items()))


# --- formatting -------------------------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, without trailing blanks."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def clock(seconds: float) -> str:
    """A short human duration: 45s, 1m12s, 2m, 1h5m."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _field(label: str, value: str) -> str:
    return f"{label + ':' if label else '':<12} {value}"


def _timestamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _short_time(value: str | None) -> str:
    moment = _timestamp(value)
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")
