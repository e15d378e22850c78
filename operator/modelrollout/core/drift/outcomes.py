"""What an evaluation attempt can end in, apart from an :class:`~.evaluation.Evaluation`.

:class:`Failure` is why there is no evaluation this time (read by :mod:`.planning` and the
engine); :class:`Decision` is what every step of the state machine hands back, whether it was an
evaluation (:mod:`.machine`) or the outcome of a delivery (:mod:`.alerts`). They live here so
those modules return the same types without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelrollout.api.driftmonitor import DriftMonitorStatus
from modelrollout.core.decisions import Event


@dataclass(frozen=True, slots=True)
class Failure:
    """Why there is no evaluation this time; ``reason`` becomes the Ready condition's reason."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The status after one step, and the Events it calls for (published after the status is written)."""

    status: DriftMonitorStatus
    events: tuple[Event, ...] = ()
