#!/usr/bin/env python3
"""A tiny Alertmanager webhook receiver that keeps what it receives, for tests to read.

Why: proving that an alert rule really fires end to end (Prometheus evaluates the rule,
Alertmanager routes it, a receiver gets it) needs something listening at the receiver URL.
Tests start one in-process with ``AlertReceiver().start()`` and read ``alerts()``; running
this file starts one in the foreground and prints each notification (handy by hand).
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 19094
DEFAULT_PATH = "/alerts"


class AlertReceiver:
    """Receives Alertmanager webhook notifications on loopback and stores them in memory."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        path: str = DEFAULT_PATH,
        on_notification: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """``port=0`` picks a free port (read ``.port``/``.url`` after ``start()``)."""
        self.host = host
        self.port = port
        self.path = path
        self._lock = threading.Lock()
        self._notifications: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._on_notification = on_notification

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    def _record(self, payload: dict[str, Any]) -> None:
        with self._lock:
            self._notifications.append(payload)
        if self._on_notification is not None:
            self._on_notification(payload)

    def notifications(self) -> list[dict[str, Any]]:
        """Every webhook payload received, oldest first (Alertmanager's v4 webhook format)."""
        with self._lock:
            return list(self._notifications)

    def alerts(self) -> list[dict[str, Any]]:
        """The individual alerts of all notifications (each has labels, status, startsAt...)."""
        return [alert for payload in self.notifications() for alert in payload.get("alerts", [])]

    def clear(self) -> None:
        """Forget what was received so far."""
        with self._lock:
            self._notifications.clear()

    def start(self) -> AlertReceiver:
        """Listen in a daemon thread; raises OSError if the port is taken."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != receiver.path:
                    self.send_error(404)
                    return
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    payload = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self.send_error(400, "body is not JSON")
                    return
                receiver._record(payload)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests read notifications(), not stderr."""

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="alert-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> AlertReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args()

    def show(payload: dict[str, Any]) -> None:
        for alert in payload.get("alerts", []):
            print(alert.get("status"), json.dumps(alert.get("labels", {}), sort_keys=True), flush=True)

    receiver = AlertReceiver(port=args.port, on_notification=show)
    receiver.start()
    print(f"listening on {receiver.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":
    main()
