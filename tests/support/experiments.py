"""The PromQL an Experiment's objective reads in tests: one arm's observations since the experiment began.

An experiment's objective compares counts of the two arms (correct directions over feedback received),
and its statistics assume those counts are observations. ``increase()`` extrapolates to the ends of its
range, so its counts are estimates; the difference of the counter's largest and smallest values over the
experiment's time is what was observed, no more. The scenarios of ``tests/integration`` and ``e2e`` (and
the demo) all ask for it the same way.
"""

from __future__ import annotations

from typing import Any

ARM_SELECTOR = 'namespace="{{namespace}}", revision="{{revision}}"'
"""One arm's series: the operator fills ``{{namespace}}`` and ``{{revision}}`` per arm."""


def since_start(counter: str) -> str:
    """Observations of ``counter`` for one arm since the experiment started, without extrapolation."""
    series = f"{counter}{{{ARM_SELECTOR}}}[{{{{elapsed}}}}]"
    return f"sum(max_over_time({series}) - min_over_time({series}))"


def directional_accuracy(minimum_detectable_effect: float = 0.1) -> dict[str, Any]:
    """The objective the scenarios test on: the share of predictions whose direction the feedback confirmed.

    A baseline of 0.7 is what the test model servers answer; ``minimum_detectable_effect`` sets how many
    observations the design asks for (the demo asks for a smaller effect, so it runs longer).
    """
    return {
        "name": "directional-accuracy",
        "kind": "proportion",
        "successQuery": since_start("model_direction_correct_total"),
        "totalQuery": since_start("model_feedback_total"),
        "baseline": 0.7,
        "minimumDetectableEffect": minimum_detectable_effect,
    }
