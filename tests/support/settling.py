"""Waiting for a resource's status to say something, and showing that status when it never does.

Scenarios wait on status (a ModelDeployment promoted, a DriftMonitor alerting, an Experiment concluded)
far more than on anything else. A plain :func:`~tests.support.waiting.wait_for` that times out says only
"timed out" and the last value of the predicate (``False``); what a reader of the failure needs is the
resource as it stood. :func:`settle` is that wait, with the caller saying how to show the resource.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tests.support.waiting import wait_for

S = TypeVar("S")

DEFAULT_INTERVAL = 0.2
"""As :func:`~tests.support.waiting.wait_for`'s own default."""


def settle(
    read: Callable[[], S],
    predicate: Callable[[S], object],
    timeout: float,
    message: str,
    *,
    explain: Callable[[], str],
    interval: float = DEFAULT_INTERVAL,
) -> None:
    """Poll ``predicate(read())`` until it holds; on timeout fail with ``message`` and ``explain()``.

    ``explain`` is called only on a timeout and reads the resource afresh, so the failure shows it as it is
    then (not as the last poll saw it). The wait's own traceback is dropped: the explanation says more.
    """
    try:
        wait_for(lambda: predicate(read()), timeout, interval=interval, message=message)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{explain()}") from None
