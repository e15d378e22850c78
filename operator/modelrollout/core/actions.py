"""One-off user actions, carried by annotations and consumed exactly once.

``kubectl modelrollout promote`` (or an Argo CD resource action) sets two
annotations: the action and a fresh id. The operator applies an action whose id
differs from ``status.lastActionId`` and records the id in the same status
write, so a restart or a duplicate event never applies it twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

ACTION_ANNOTATION = "modelrollout.dev/action"
ACTION_ID_ANNOTATION = "modelrollout.dev/action-id"

ActionName = Literal["promote", "promote-full", "abort", "retry"]
ACTION_NAMES: tuple[str, ...] = get_args(ActionName)


@dataclass(frozen=True, slots=True)
class UserAction:
    name: ActionName
    id: str


@dataclass(frozen=True, slots=True)
class InvalidAction:
    """An annotation that names no known action: reported once, then ignored."""

    value: str
    id: str


def pending_action(annotations: Mapping[str, str], last_action_id: str | None) -> UserAction | InvalidAction | None:
    """The action the annotations ask for, unless it was already consumed."""
    value = annotations.get(ACTION_ANNOTATION)
    if value is None:
        return None
    action_id = annotations.get(ACTION_ID_ANNOTATION) or value
    if action_id == last_action_id:
        return None
    if value not in ACTION_NAMES:
        return InvalidAction(value=value, id=action_id)
    name: ActionName = value  # type: ignore[assignment]
    return UserAction(name=name, id=action_id)
