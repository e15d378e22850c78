"""Kubernetes-style conditions, kept in status and set by pure functions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from modelrollout.api.base import StatusModel

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """The latest observation of one aspect of the resource (metav1.Condition)."""

    type: str = Field(min_length=1, max_length=316)
    """The aspect, in CamelCase: Available, Progressing, Degraded, ..."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str = Field(min_length=1, max_length=1024)
    """A CamelCase word a program can match on."""
    message: str = ""
    """A sentence for people: what happened and, when it is bad, what to do."""
    last_transition_time: datetime
    """When status last changed; unchanged when only reason or message change."""
    observed_generation: int | None = None
    """The spec generation this condition was computed from."""


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    *,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    """Return a list with one condition set, keeping its transition time when status is unchanged.

    An unchanged condition returns the very same list, so setting the same
    conditions on every tick allocates nothing.
    """
    result: list[Condition] = []
    found = False
    for condition in conditions:
        if condition.type != type_:
            result.append(condition)
            continue
        found = True
        if (condition.status, condition.reason, condition.message, condition.observed_generation) == (
            status,
            reason,
            message,
            generation,
        ):
            return conditions
        since = condition.last_transition_time if condition.status == status else now
        result.append(_condition(type_, status, reason=reason, message=message, since=since, generation=generation))
    if not found:
        result.append(_condition(type_, status, reason=reason, message=message, since=now, generation=generation))
    return result


def _condition(
    type_: str, status: ConditionStatus, *, reason: str, message: str, since: datetime, generation: int | None
) -> Condition:
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )


def find_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
