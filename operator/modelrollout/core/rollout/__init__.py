"""The ModelDeployment kind's pure core: its state machine, the values it works on, and when it is due.

A package so that each part reads on its own: :mod:`.machine` (the life cycle,
top-down), :mod:`.values` (what goes in and comes out), :mod:`.status`
(conditions and the readers of a status) and :mod:`.scheduling` (whether a
tick is worth taking). The engine, the converger and the tests import from
here only.
"""

from modelrollout.core.rollout.machine import decide
from modelrollout.core.rollout.scheduling import analysis_due, guardrails_due, waits_for_ready_pods, work_due
from modelrollout.core.rollout.values import Decision, Desired, Observations, SmokeObservation, acts_first

__all__ = [
    "Decision",
    "Desired",
    "Observations",
    "SmokeObservation",
    "acts_first",
    "analysis_due",
    "decide",
    "guardrails_due",
    "waits_for_ready_pods",
    "work_due",
]
