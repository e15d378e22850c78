"""Experiments: champion against challengers, decided by the numbers of :mod:`modelrollout.stats`.

One concept per module, each depending only on those before it:
:mod:`.planning` (which queries a look needs, and when), :mod:`.sizing` (the
sample-size design and expected duration), :mod:`.readings` (answers into
arms' numbers), :mod:`.comparisons` (each challenger against the champion),
:mod:`.evidence` (what one look finds) and :mod:`.machine` (the state machine
and the Experiment's life cycle). The package exports what the engine and
the tests use.
"""

from modelrollout.core.experiment.evidence import SRM_LOOKS
from modelrollout.core.experiment.machine import TERMINAL, Decision, Observations, Traffic, decide, promoted
from modelrollout.core.experiment.planning import RATE, Target, analysis_due, design_due, plan_analysis, plan_design
from modelrollout.core.experiment.sizing import SEQUENTIAL_METHOD, design, shares

__all__ = [
    "RATE",
    "SEQUENTIAL_METHOD",
    "SRM_LOOKS",
    "TERMINAL",
    "Decision",
    "Observations",
    "Target",
    "Traffic",
    "analysis_due",
    "decide",
    "design",
    "design_due",
    "plan_analysis",
    "plan_design",
    "promoted",
    "shares",
]
