"""Small HTTP helpers for loopback targets only."""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

# Loopback only, so no proxy may ever be involved.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def require_loopback(url: str) -> str:
    """``url`` unchanged if it names a loopback host; the data plane never leaves the machine."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if urlsplit(url).scheme != "http" or not loopback:
        raise ValueError(f"only http://127.0.0.1-style loopback URLs are allowed, got {url!r}")
    return url.rstrip("/")


def request_json(method: str, url: str, payload: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
    body = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        require_loopback(url), data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def get_text(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with _opener.open(require_loopback(url), timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
