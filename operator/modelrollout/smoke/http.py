"""The one HTTP call the checks make, behind a function type so tests can swap it."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    elapsed_seconds: float


class HttpClient(Protocol):
    def __call__(self, method: str, url: str, *, body: bytes | None = None, timeout: float) -> HttpResponse:
        """Answer any HTTP status as a response; raise ``OSError`` when no answer arrives."""
        ...


# No proxies: the target is a cluster Service or a loopback port, never something a proxy should see.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def urllib_client(method: str, url: str, *, body: bytes | None = None, timeout: float) -> HttpResponse:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    started = time.perf_counter()
    try:
        with _opener.open(request, timeout=timeout) as response:
            payload = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        payload = error.read()
        status = error.code
    return HttpResponse(status=status, body=payload, elapsed_seconds=time.perf_counter() - started)
