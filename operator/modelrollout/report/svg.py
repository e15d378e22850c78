"""An effect-over-time plot as inline SVG: no external assets, no scripts, just elements.

The estimate is a line, the interval (the confidence sequence, for sequential
experiments) a shaded band, and zero a dashed rule, so "the band left zero" is
visible at a glance. Unbounded ends of the interval (before the first valid
look) are clipped to the plot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 20, 36


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    estimate: float
    low: float | None
    high: float | None


def effect_plot(points: Sequence[Point], *, title: str, reference: float | None = None) -> str:
    """An SVG element: estimate line, interval band, zero rule and, when given, a ``reference`` rule (the MDE)."""
    label = escape(title)
    if not points:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="60" role="img" aria-label="{label}">'
            f'<text x="8" y="30">{label}: no looks yet</text></svg>'
        )
    start = points[0].at
    times = [(p.at - start).total_seconds() for p in points]
    values = [p.estimate for p in points] + [0.0] + ([reference] if reference is not None else [])
    values += [v for p in points for v in (p.low, p.high) if v is not None and math.isfinite(v)]
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or max(abs(high), 1e-3) * 0.5
    low, high = low - pad, high + pad
    span = max(times[-1], 1e-9)

    def x(t: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (t / span if len(points) > 1 else 0.5)

    def y(v: float | None, unbounded: float) -> float:
        value = unbounded if v is None or not math.isfinite(v) else min(max(v, low), high)
        return TOP + (HEIGHT - TOP - BOTTOM) * (high - value) / (high - low)

    band = [(x(t), y(p.high, high)) for t, p in zip(times, points, strict=True)]
    band += [(x(t), y(p.low, low)) for t, p in reversed(list(zip(times, points, strict=True)))]
    line = [(x(t), y(p.estimate, 0.0)) for t, p in zip(times, points, strict=True)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{label}" font-family="sans-serif" font-size="11">',
        f"<title>{label}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" '
        'fill="#fafafa" stroke="#ccc"/>',
        f'<polygon class="interval" points="{_points(band)}" fill="#9ecae1" fill-opacity="0.6"/>',
        _rule(y(0.0, 0.0), "#444", "zero"),
    ]
    if reference is not None:
        parts.append(_rule(y(reference, reference), "#d95f02", f"MDE {reference:+.4g}"))
    parts.append(f'<polyline class="estimate" points="{_points(line)}" fill="none" stroke="#08519c" stroke-width="2"/>')
    for value in (high, (high + low) / 2, low):
        parts.append(f'<text x="{LEFT - 4}" y="{y(value, value) + 4:.1f}" text-anchor="end">{value:+.3g}</text>')
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 12}">{escape(start.isoformat())}</text>')
    parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" text-anchor="end">+{_span(span)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _rule(at: float, colour: str, text: str) -> str:
    return (
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{at:.1f}" y2="{at:.1f}" stroke="{colour}" stroke-dasharray="4 3"/>'
        f'<text x="{WIDTH - RIGHT - 4}" y="{at - 3:.1f}" text-anchor="end" fill="{colour}">{escape(text)}</text>'
    )


def _points(pairs: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{px:.1f},{py:.1f}" for px, py in pairs)


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
