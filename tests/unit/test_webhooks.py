"""The webhook adapter against a real HTTP server on loopback: delivery, error statuses, timeouts, schemes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from modelrollout.engine.webhooks import Delivered, DeliveryError, Dispatcher, Failed, InFlight, post_json, redact
from tests.support.waiting import pace, wait_for


class Receiver(HTTPServer):
    status = 200
    delay = 0.0
    received: list[tuple[dict[str, str], Any]]


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append((dict(self.headers), body))
        pace(self.server.delay)  # a slow receiver
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


TOKEN = "T0KEN-s3cr3t-b7c1"


def url(server: Receiver) -> str:
    return f"http://127.0.0.1:{server.server_port}/hooks/{TOKEN}"


def test_delivers_the_payload_as_json(receiver: Receiver) -> None:
    payload = {"text": "drift", "modelrollout": {"driftedFeatures": ["a"]}}
    assert post_json(url(receiver), payload, timeout=2) == 200
    headers, body = receiver.received[0]
    assert body == payload
    assert headers["Content-Type"] == "application/json"


def test_an_error_status_is_a_delivery_error_with_the_code_and_its_standard_phrase_only(receiver: Receiver) -> None:
    """The receiver's answer is never copied: a webhook pointed at an internal service would reflect it."""
    receiver.status = 404
    with pytest.raises(DeliveryError, match="answered 404 Not Found") as raised:
        post_json(url(receiver), {"text": "x"}, timeout=2)
    assert "channel_not_found" not in str(raised.value)
    assert TOKEN not in str(raised.value)


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


HOSTILE_URLS = [
    f"http://example.invalid/hooks/{TOKEN}\r\nX-Injected: 1",
    f"http://example.invalid/hooks/{TOKEN}\x00",
    f"http://exa mple.invalid/{TOKEN}",
    f"http://[::1/{TOKEN}",
    f"http://user:{TOKEN}@127.0.0.1:1/hooks",
    f"http://127.0.0.1:99999/{TOKEN}",
    f"http://127.0.0.1:notaport/{TOKEN}",
    f"https://\u2603.invalid/{TOKEN}",
    f"http:///{TOKEN}",
    f"http://{TOKEN}.invalid/hooks",
    f"javascript:{TOKEN}",
    f" http://127.0.0.1:1/{TOKEN}",
    f"http://127.0.0.1:1/{TOKEN}?q=\x7f",
]


@pytest.mark.parametrize("bad", HOSTILE_URLS)
def test_every_malformed_url_is_a_delivery_error_that_does_not_quote_the_secret(bad: str) -> None:
    """Control characters, bad hosts and ports, user info: one DeliveryError each, never the URL's path or token
    (a host is named only when it is a plain one, and a token-like host is the URL's own business)."""
    with pytest.raises(DeliveryError) as raised:
        post_json(bad, {"text": "x"}, timeout=0.5)
    message = str(raised.value)
    assert "/hooks" not in message
    if not bad.startswith(f"http://{TOKEN}"):
        assert TOKEN not in message, message


def test_redaction_keeps_only_scheme_and_host() -> None:
    assert redact(f"https://hooks.slack.com/services/{TOKEN}?x=1") == "https://hooks.slack.com/…"
    assert redact(f"https://u:{TOKEN}@hooks.example/x") == "https://hooks.example/…"
    assert redact("https://bad host/x") == "<malformed URL>"


def test_a_receiver_that_never_answers_holds_a_delivery_thread_not_the_caller(receiver: Receiver) -> None:
    receiver.delay = 2.0
    dispatcher = Dispatcher(timeout=0.5, workers=2)
    started = time.monotonic()
    for index in range(5):
        dispatcher.submit(("ns", f"m{index}", "Firing"), url(receiver), {"text": "x"})
    assert time.monotonic() - started < 0.2, "submitting never waits for a receiver"
    assert dispatcher.outcome(("ns", "m0", "Firing")) is InFlight
    assert dispatcher.outcome(("ns", "other", "Firing")) is None
    outcomes: dict[int, object] = {}

    def every_outcome() -> dict[int, object] | None:
        for index in range(5):
            found = dispatcher.outcome(("ns", f"m{index}", "Firing"))
            if found is not None and found is not InFlight:
                outcomes[index] = found
        return outcomes if len(outcomes) == 5 else None

    wait_for(every_outcome, 10, interval=0.05, message="an outcome for each of the 5 deliveries")
    assert all(isinstance(o, Failed) and "timed out" in o.message for o in outcomes.values()), outcomes
    assert len(outcomes) == 5
    assert all(TOKEN not in o.message for o in outcomes.values() if isinstance(o, Failed))


def test_the_inline_dispatcher_has_the_outcome_at_once(receiver: Receiver) -> None:
    dispatcher = Dispatcher(timeout=2, workers=0)
    dispatcher.submit(("ns", "m", "Firing"), url(receiver), {"text": "x"})
    assert dispatcher.outcome(("ns", "m", "Firing")) == Delivered(200)
    assert dispatcher.outcome(("ns", "m", "Firing")) is None, "an outcome is handed out once"


def test_too_many_deliveries_in_flight_fail_fast(receiver: Receiver) -> None:
    receiver.delay = 1.0
    dispatcher = Dispatcher(timeout=2, workers=1, max_pending=1)
    dispatcher.submit(("ns", "a", "Firing"), url(receiver), {"text": "x"})
    dispatcher.submit(("ns", "b", "Firing"), url(receiver), {"text": "x"})
    refused = dispatcher.outcome(("ns", "b", "Firing"))
    assert isinstance(refused, Failed)
    assert "too many" in refused.message
