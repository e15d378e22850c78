"""Delivering a drift alert: one JSON POST, with no retries of its own, off the reconcile threads.

Retrying is the controller's business (it backs off across ticks, with the state in the
monitor's status), so a slow or dead receiver costs one short timeout per attempt and never
holds up an evaluation. Only http and https URLs are accepted: the URL comes from a Secret a
user controls, and urllib would otherwise happily open ``file://`` paths in the operator's pod.

The URL is a secret (a Slack-style webhook carries its token in the path), so no message made
here contains it: errors name the target as ``scheme://host/…`` and say what went wrong in
fixed words (an HTTP status code and its standard phrase, an OS error's text), never the
receiver's answer, which would let a webhook pointed at an internal service reflect that
service's data into the monitor's status.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

USER_AGENT = "modelrollout-driftmonitor"
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")


class DeliveryError(Exception):
    """The receiver could not be reached, timed out, or answered with an error status (URL redacted)."""


def redact(url: str) -> str:
    """What may be said about a webhook URL: its scheme and host, nothing of user info, path or query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "<malformed URL>"
    if parts.scheme not in ("http", "https") or not _HOST.fullmatch(host):
        return "<malformed URL>"
    return f"{parts.scheme}://{host}/…"


def post_json(url: str, payload: Mapping[str, Any], *, timeout: float) -> int:
    """POST ``payload`` as JSON; returns the 2xx status, raises :class:`DeliveryError` for every failure."""
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise DeliveryError(f"webhook URL {redact(url)} contains control characters")
    target = redact(url)
    if target == "<malformed URL>":
        try:
            scheme = urlsplit(url).scheme
        except ValueError:
            scheme = ""
        if scheme not in ("http", "https"):
            raise DeliveryError("webhook URL must be http or https")
        raise DeliveryError("webhook URL has no valid host")
    body = json.dumps(payload, allow_nan=False).encode()
    try:
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
    except urllib.error.HTTPError as error:
        error.close()
        raise DeliveryError(f"webhook {target} answered {error.code} {_phrase(error.code)}") from None
    except urllib.error.URLError as error:
        raise DeliveryError(f"webhook {target} unreachable: {_cause(error.reason, timeout)}") from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        # Timeouts, resets, TLS failures, malformed answers, and URLs urllib refuses (InvalidURL is a ValueError).
        raise DeliveryError(f"webhook {target} unreachable: {_cause(error, timeout)}") from None
    return status


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "(non-standard status)"


def _cause(error: object, timeout: float) -> str:
    """Fixed words for why a connection failed; an exception's own text may quote the URL."""
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout:g}s"
    if isinstance(error, OSError) and error.strerror:
        return str(error.strerror)
    return type(error).__name__


@dataclass(frozen=True, slots=True)
class Delivered:
    """A POST that succeeded."""

    status: int


@dataclass(frozen=True, slots=True)
class Failed:
    """A POST that failed, with the redacted reason."""

    message: str


Outcome = Delivered | Failed
InFlight = object()
"""A POST still running on the delivery pool."""


class Dispatcher:
    """Webhook POSTs on their own small thread pool, so receivers that never answer hold these threads (each
    for at most the timeout) and never the operator's reconcile threads.

    ``submit`` starts one POST per key (a monitor and what it sends); ``outcome`` says, at a later tick,
    whether it is still running or how it ended, once. With ``workers=0`` the POST runs inline, in the
    caller's thread (tests drive a monitor tick by tick and want the outcome of that tick).
    """

    def __init__(self, *, timeout: float, workers: int = 4, max_pending: int = 64) -> None:
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="webhook") if workers else None
        self._max_pending = max_pending
        self._running: dict[tuple[str, ...], Future[int] | Outcome] = {}
        self._lock = threading.Lock()

    def submit(self, key: tuple[str, ...], url: str, payload: Mapping[str, Any]) -> None:
        with self._lock:
            if key in self._running:
                return
            if self._pool is None:
                self._running[key] = _outcome(lambda: post_json(url, payload, timeout=self._timeout))
            elif sum(isinstance(v, Future) for v in self._running.values()) >= self._max_pending:
                self._running[key] = Failed("too many webhook deliveries in flight; retried later")
            else:
                self._running[key] = self._pool.submit(post_json, url, payload, timeout=self._timeout)

    def outcome(self, key: tuple[str, ...]) -> Outcome | object | None:
        """None when nothing was submitted for ``key``; :data:`InFlight` while it runs; else its outcome (once)."""
        with self._lock:
            running = self._running.get(key)
            if running is None:
                return None
            if isinstance(running, Future):
                if not running.done():
                    return InFlight
                running = _outcome(running.result)
            del self._running[key]
            return running

    def forget(self, namespace: str, name: str) -> None:
        """Drop what a deleted monitor left (a running POST finishes on its own)."""
        with self._lock:
            for key in [k for k in self._running if k[:2] == (namespace, name)]:
                del self._running[key]


def _outcome(call: Any) -> Outcome:
    try:
        return Delivered(int(call()))
    except DeliveryError as error:
        return Failed(str(error))
    except Exception as error:  # a bug here must not take the URL into a log or status
        return Failed(f"webhook delivery failed: {type(error).__name__}")
