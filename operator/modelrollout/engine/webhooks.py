"""Delivering a drift alert: one JSON POST, with no retries of its own.

Retrying is the controller's business (it backs off across ticks, with the state in the
monitor's status), so a slow or dead receiver costs one short timeout per attempt and never
holds up an evaluation. Only http and https URLs are accepted: the URL comes from a Secret a
user controls, and urllib would otherwise happily open ``file://`` paths in the operator's pod.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

USER_AGENT = "modelrollout-driftmonitor"


class DeliveryError(Exception):
    """The receiver could not be reached, timed out, or answered with an error status."""


def post_json(url: str, payload: Mapping[str, Any], *, timeout: float) -> int:
    """POST ``payload`` as JSON; returns the 2xx status, raises :class:`DeliveryError` otherwise."""
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise DeliveryError(f"webhook URL must be http or https, not {scheme or 'schemeless'!r}")
    body = json.dumps(payload, allow_nan=False).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
    except urllib.error.HTTPError as error:
        with error:
            detail = error.read(200).decode("utf-8", "replace").strip()
        raise DeliveryError(f"webhook answered {error.code} {error.reason}: {detail}".rstrip(": ")) from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryError(f"webhook unreachable: {reason}") from None
    return status
