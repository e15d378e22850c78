"""PNG plots for the demo report: traffic weight and guardrail values over time, one figure per rollout."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from e2e.timeline import Sample


def plot_rollout(samples: Sequence[Sample], since: float, path: Path, title: str) -> None:
    import matplotlib  # noqa: PLC0415 - the demo extra; nothing else needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - after choosing the headless backend

    window = [s for s in samples if s.t >= since]
    if not window:
        return
    t = [s.t - since for s in window]
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    top.step(t, [s.weight for s in window], where="post", color="tab:blue")
    top.set_ylabel("canary weight (%)")
    top.set_ylim(-5, 105)
    top.set_title(title)
    for t_change, previous, sample in zip(t[1:], window, window[1:], strict=False):
        if sample.phase != previous.phase:
            top.axvline(t_change, color="grey", linestyle=":", linewidth=0.8)
            top.annotate(sample.phase, (t_change, 95), fontsize=8, rotation=90, va="top")
    names = sorted({name for s in window for name in s.metrics})
    for name in names:
        points = [(x, s.metrics[name]) for x, s in zip(t, window, strict=True) if name in s.metrics]
        if points:
            bottom.plot([p[0] for p in points], [p[1] for p in points], label=name)
    bottom.set_xlabel("seconds")
    bottom.set_ylabel("canary guardrail value")
    if names:
        bottom.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
