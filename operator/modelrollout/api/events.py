"""The Events outbox: Events recorded in status in the same write as the transition that caused them.

An Event posted after the status write is lost when the operator dies between the two; one posted
before it can be posted twice. Recording it in status with the transition, posting it under a name
derived from the resource and its sequence number (a repost is refused as AlreadyExists), and then
clearing it makes every transition's Event appear exactly once across crashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from modelrollout.api.base import StatusModel

OUTBOX_FIELD = "pendingEvents"
"""The status field that holds the outbox."""
OUTBOX_LIMIT = 16
"""Pending Events kept at most; only a long refusal to post (quota, RBAC) fills it, and the oldest go first."""


class PendingEvent(StatusModel):
    """An Event recorded with a transition and not yet known to be posted."""

    sequence: int = Field(ge=1)
    """The resource's Event number (1, 2, ...): with its uid, the posted Event's name."""
    type: Literal["Normal", "Warning"]
    """Normal or Warning."""
    reason: str = Field(min_length=1, max_length=128)
    """The Event's reason."""
    message: str = Field(default="", max_length=1024)
    """The Event's message."""
    time: datetime
    """When the transition was decided."""


def outbox_fields(remaining: Sequence[PendingEvent]) -> dict[str, Any]:
    """The status fields that leave only ``remaining`` in the outbox, as a merge patch writes them."""
    return {OUTBOX_FIELD: [pending.model_dump(mode="json", by_alias=True) for pending in remaining]}
