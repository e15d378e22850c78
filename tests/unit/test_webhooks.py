"""The webhook adapter against a real HTTP server on loopback: delivery, error statuses, timeouts, schemes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from modelrollout.engine.webhooks import DeliveryError, post_json


class Receiver(HTTPServer):
    status = 200
    delay = 0.0
    received: list[tuple[dict[str, str], Any]]


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append((dict(self.headers), body))
        time.sleep(self.server.delay)
        self.send_response(self.server.status)
        self.end_headers()
        self.wfile.write(b"channel_not_found" if self.server.status >= 400 else b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), Handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def url(server: Receiver) -> str:
    return f"http://127.0.0.1:{server.server_port}/hooks/drift"


def test_delivers_the_payload_as_json(receiver: Receiver) -> None:
    payload = {"text": "drift", "modelrollout": {"driftedFeatures": ["a"]}}
    assert post_json(url(receiver), payload, timeout=2) == 200
    headers, body = receiver.received[0]
    assert body == payload
    assert headers["Content-Type"] == "application/json"


def test_an_error_status_is_a_delivery_error_with_the_answer(receiver: Receiver) -> None:
    receiver.status = 404
    with pytest.raises(DeliveryError, match="404 Not Found: channel_not_found"):
        post_json(url(receiver), {"text": "x"}, timeout=2)


def test_a_slow_receiver_times_out(receiver: Receiver) -> None:
    receiver.delay = 1.0
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="unreachable"):
        post_json(url(receiver), {"text": "x"}, timeout=0.2)
    assert time.monotonic() - started < 0.9


def test_a_closed_port_is_unreachable() -> None:
    server = HTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_port
    server.server_close()
    with pytest.raises(DeliveryError, match="unreachable"):
        post_json(f"http://127.0.0.1:{port}/", {"text": "x"}, timeout=1)


@pytest.mark.parametrize("bad", ["file:///etc/passwd", "ftp://example.com/x", "127.0.0.1:9/x"])
def test_only_http_urls_are_accepted(bad: str) -> None:
    with pytest.raises(DeliveryError, match="must be http or https"):
        post_json(bad, {"text": "x"}, timeout=1)
