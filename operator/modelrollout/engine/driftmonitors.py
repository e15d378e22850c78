"""Handlers of the driftmonitor controller (registered at start-up)."""

from __future__ import annotations

from modelrollout.engine.context import Context


def register(context: Context) -> None:
    """No handlers yet: this controller lands in its own change."""
    del context
