"""What every kind's decision is made of: Events to publish and a typed draft of the next status.

Each kind's state machine works on a :class:`Draft`: it starts from the
status read this tick, collects changes, conditions and Events, and ends as
that kind's ``Decision``. The engine writes the status first and publishes
the Events after, so an Event never tells of a state the status does not hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, Self, TypeVar

from modelrollout.api.conditions import Condition, ConditionStatus, set_condition

EventType = Literal["Normal", "Warning"]
CONDITION_MESSAGE_LIMIT = 1000
"""Condition messages are cut here: a status is read by people and by ``kubectl``, not archived."""


@dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes Event about the resource, published after its status is written."""

    type: EventType
    reason: str
    message: str


class Status(Protocol):
    """The part of a kind's status model a draft needs: its conditions and a pydantic copy."""

    @property
    def conditions(self) -> list[Condition]: ...

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self: ...


StatusT = TypeVar("StatusT", bound=Status)


@dataclass(slots=True)
class Draft(Generic[StatusT]):
    """The status being built this tick, plus the Events it will publish."""

    status: StatusT
    now: datetime
    generation: int
    events: list[Event] = field(default_factory=list)

    def update(self, **changes: object) -> None:
        self.status = self.status.model_copy(update=changes)

    def emit(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def condition(self, type_: str, value: ConditionStatus, reason: str, message: str = "") -> None:
        conditions = set_condition(
            self.status.conditions,
            type_,
            value,
            reason=reason,
            message=message[:CONDITION_MESSAGE_LIMIT],
            now=self.now,
            generation=self.generation,
        )
        self.update(conditions=conditions)
