"""An Experiment's report from its spec and status: the design, per-arm numbers, tests and the decision.

Everything comes from the resource itself, so the report shows exactly what
the operator decided on; nothing is recomputed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from modelrollout.api.experiment import ArmResult, ExperimentSpec, ExperimentStatus
from modelrollout.report.svg import Point, effect_plot

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 60em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.Promote { color: #1a7f37; } .KeepChampion, .Inconclusive { color: #9a6700; } .Invalid { color: #cf222e; }
"""


def text_report(name: str, namespace: str, spec: ExperimentSpec, status: ExperimentStatus) -> str:
    lines = [f"Experiment {namespace}/{name}: {status.phase}" + (f" - {status.message}" if status.message else "")]
    lines += ["", "Design", *_indent(_design_lines(spec, status)), "", "Arms"]
    lines += _indent(_table(_ARM_HEADER, [_arm_row(arm) for arm in status.arms]) or ["no numbers yet"])
    guardrails = [(arm.name, g) for arm in status.arms for g in arm.guardrails]
    if guardrails:
        lines += ["", "Guardrails"]
        rows = [
            [arm, g.name, _num(g.value), _num(g.champion_value), g.limit or "", _breach(g.breached, g.message)]
            for arm, g in guardrails
        ]
        lines += _indent(_table(["arm", "guardrail", "value", "champion", "limit", "state"], rows))
    if status.secondary:
        lines += ["", f"Secondary metrics ({spec.correction}-corrected)"]
        rows = [
            [
                s.metric,
                s.arm,
                _num(s.difference),
                _interval(s.interval),
                _p(s.p_value),
                "yes" if s.significant else "no",
            ]
            for s in status.secondary
        ]
        lines += _indent(_table(["metric", "arm", "difference", "interval", "p", "significant"], rows))
    srm = (
        "not checked"
        if status.srm_p_value is None
        else f"p = {status.srm_p_value:.3g} (mismatch below {spec.srm_p_value:g})"
    )
    lines += ["", f"Sample ratio mismatch: {srm}", "", "Decision"]
    decision = status.decision
    if decision is None:
        lines.append("  none yet")
    else:
        winner = f" {decision.winner}" if decision.winner else ""
        lines.append(f"  {decision.outcome}{winner} at {decision.decided_at.isoformat()}")
        lines.append(f"  reason: {decision.reason}")
        if decision.recommendation:
            lines.append(f"  recommendation: {decision.recommendation}")
        if decision.promoted:
            lines.append(f"  promoted: the rollout through {spec.champion.model_deployment} was started")
    if status.conditions:
        lines += ["", "Conditions"]
        lines += _indent(
            [f"{c.type}={c.status} ({c.reason}){': ' + c.message if c.message else ''}" for c in status.conditions]
        )
    return "\n".join(lines) + "\n"


def html_report(name: str, namespace: str, spec: ExperimentSpec, status: ExperimentStatus) -> str:
    """A self-contained page: inline CSS and SVG, no scripts, no external assets."""
    title = escape(f"Experiment {namespace}/{name}")
    decision = status.decision
    verdict = "no decision yet"
    if decision is not None:
        winner = f" {decision.winner}" if decision.winner else ""
        outcome = escape(decision.outcome)
        verdict = f'<span class="{outcome}">{outcome}{escape(winner)}</span>: {escape(decision.reason)}'
        if decision.recommendation:
            verdict += f"<br>Recommendation: {escape(decision.recommendation)}"
    plots = []
    reference = status.design.minimum_effect if status.design else None
    for challenger in spec.challengers:
        points = [Point(p.at, p.estimate, p.low, p.high) for p in status.series if p.arm == challenger.name]
        plots.append(
            f"<h3>{escape(challenger.name)} - {escape(spec.champion.name)}</h3>"
            + effect_plot(
                points,
                title=f"{spec.primary_metric.name}: {challenger.name} minus {spec.champion.name}",
                reference=reference,
            )
        )
    srm = "not checked" if status.srm_p_value is None else f"p = {status.srm_p_value:.3g}"
    body = [
        f"<h1>{title}</h1>",
        f"<p>Phase <b>{escape(status.phase)}</b>{': ' + escape(status.message) if status.message else ''}</p>",
        f"<h2>Decision</h2><p>{verdict}</p>",
        "<h2>Design</h2><ul>" + "".join(f"<li>{escape(line)}</li>" for line in _design_lines(spec, status)) + "</ul>",
        "<h2>Arms</h2>" + _html_table(_ARM_HEADER, [_arm_row(arm) for arm in status.arms]),
        "<h2>Effect over time</h2>"
        f"<p>Estimate (line) and its {_interval_kind(spec)} (band); dashed: zero and the MDE.</p>",
        *plots,
        f"<h2>Sample ratio mismatch</h2><p>{escape(srm)}</p>",
    ]
    if status.secondary:
        rows = [
            [
                s.metric,
                s.arm,
                _num(s.difference),
                _interval(s.interval),
                _p(s.p_value),
                "yes" if s.significant else "no",
            ]
            for s in status.secondary
        ]
        body.append(
            "<h2>Secondary metrics</h2>"
            + _html_table(["metric", "arm", "difference", "interval", "p", "significant"], rows)
        )
    if status.conditions:
        rows = [[c.type, c.status, c.reason, c.message] for c in status.conditions]
        body.append("<h2>Conditions</h2>" + _html_table(["type", "status", "reason", "message"], rows))
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )


_ARM_HEADER = ["arm", "revision", "samples", "estimate", "difference", "interval", "relative", "p", "verdict"]


def _arm_row(arm: ArmResult) -> list[str]:
    relative = arm.relative_interval
    return [
        arm.name,
        arm.revision or "",
        str(arm.samples),
        _num(arm.estimate),
        _num(arm.difference, signed=True),
        _interval(arm.interval),
        f"[{relative[0]:+.1%}, {relative[1]:+.1%}]" if relative else "",
        _p(arm.p_value),
        arm.verdict or "",
    ]


def _design_lines(spec: ExperimentSpec, status: ExperimentStatus) -> list[str]:
    metric = spec.primary_metric
    lines = [
        f"primary metric {metric.name} ({metric.kind}, {'higher' if metric.higher_is_better else 'lower'} is better), "
        f"baseline {metric.baseline:g}, MDE {metric.minimum_detectable_effect:.1%} relative",
        f"mode {spec.mode}, alpha {spec.alpha:g}, power {spec.power:g}, "
        f"{'sequential (always valid)' if spec.sequential else 'fixed horizon'}",
    ]
    design = status.design
    if design is None:
        return [*lines, "not designed yet"]
    alpha = design.alpha_per_comparison or spec.alpha
    lines.append(f"{design.samples_per_arm} samples per arm ({design.method}, alpha {alpha:.3g} per challenger)")
    if design.arms:
        lines.append("per arm: " + ", ".join(f"{a.name} {a.samples} at {a.share:.0%}" for a in design.arms))
    if design.expected_duration_seconds is not None and design.traffic_rate is not None:
        lines.append(
            f"expected duration {design.expected_duration_seconds:.0f}s at {design.traffic_rate:.4g} observations/s"
        )
    else:
        lines.append("expected duration unknown (no traffic observed at design time)")
    lines.append(f"minDuration {spec.min_duration}, maxDuration {spec.max_duration}, {status.looks} looks")
    return lines


def _interval_kind(spec: ExperimentSpec) -> str:
    return "confidence sequence" if spec.sequential else "confidence interval (at the planned size)"


def _num(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _interval(interval: Sequence[float] | None) -> str:
    return f"[{interval[0]:+.4g}, {interval[1]:+.4g}]" if interval else ""


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _breach(breached: bool, message: str | None) -> str:
    return ("BREACHED" if breached else "ok") + (f": {message}" if message else "")


def _indent(lines: Sequence[str]) -> list[str]:
    return [f"  {line}" for line in lines]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    if not rows:
        return []
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
