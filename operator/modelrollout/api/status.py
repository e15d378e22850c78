"""What every kind's status holds, so one reconciler and one status writer serve all three kinds."""

from __future__ import annotations

from pydantic import Field

from modelrollout.api.base import StatusModel
from modelrollout.api.conditions import Condition
from modelrollout.api.events import OUTBOX_LIMIT, PendingEvent


class ResourceStatus(StatusModel):
    """The generation acted on, the conditions, and the Events outbox (``api/events.py``).

    Each kind re-declares ``observed_generation`` and ``conditions`` to document its own.
    """

    observed_generation: int | None = None
    """The spec generation last acted on."""
    conditions: list[Condition] = Field(default_factory=list)
    """The resource's conditions."""
    events_recorded: int = Field(default=0, ge=0)
    """How many Events the operator has recorded for this resource (the last one's sequence number)."""
    pending_events: list[PendingEvent] = Field(default_factory=list, max_length=OUTBOX_LIMIT)
    """Events recorded with a transition and not yet posted (an outbox: a restarted operator posts them
    first, under names that make a second post a no-op)."""
