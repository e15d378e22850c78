"""HTTP endpoints of the sample model server."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from model_server.faults import Faults
from model_server.metrics import ModelMetrics
from model_server.model import CATEGORICAL_FEATURES, NUMERIC_FEATURES, OUTPUT_SCALE, FloatArray, predict
from model_server.reference import ServingReference

MAX_BODY_BYTES = 8 * 1024 * 1024


class BadRequestError(ValueError):
    """The client sent something the endpoint cannot take (answered 400)."""


@dataclass
class ServerState:
    name: str
    version: str
    revision: str
    reference: ServingReference
    metrics: ModelMetrics
    faults: Faults
    admin: bool = True
    loaded: threading.Event = field(default_factory=threading.Event)
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    rng_lock: threading.Lock = field(default_factory=threading.Lock)
    faults_lock: threading.Lock = field(default_factory=threading.Lock)

    def identity(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "revision": self.revision}

    def health(self) -> str:
        if self.faults.fail_load:
            return "failed"
        return "ok" if self.loaded.is_set() else "loading"

    def set_faults(self, changes: dict[str, Any]) -> Faults:
        with self.faults_lock:
            self.faults = self.faults.updated(changes)
            return self.faults

    def random(self, size: int) -> FloatArray:
        with self.rng_lock:
            return self.rng.random(size)

    def normal(self, size: int) -> FloatArray:
        with self.rng_lock:
            return self.rng.standard_normal(size)


class ModelHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: ServerState) -> None:
        super().__init__(address, ModelRequestHandler)
        self.state = state


class ModelRequestHandler(BaseHTTPRequestHandler):
    # Keep-alive lets the load generator reuse connections instead of paying a handshake per request.
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle on, each answer would wait for a delayed ACK.
    disable_nagle_algorithm = True
    server: ModelHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Access logs would drown the test output; metrics carry the same information."""

    @property
    def state(self) -> ServerState:
        return self.server.state

    def do_GET(self) -> None:
        if self.path == "/healthz":
            status = self.state.health()
            self._send_json(200 if status == "ok" else 503, {"status": status})
        elif self.path == "/metrics":
            self._send(200, generate_latest(self.state.metrics.registry), CONTENT_TYPE_LATEST)
        elif self.path == "/model":
            self._send_json(200, self.state.identity())
        elif self.path == "/admin/fault" and self.state.admin:
            self._send_json(200, self.state.faults.as_dict())
        else:
            self._send_json(404, {"error": f"no such endpoint: {self.path}"})

    def do_POST(self) -> None:
        if self.path == "/predict":
            self._predict()
            return
        routes = {"/feedback": self._feedback, "/admin/fault": self._set_faults}
        route = routes.get(self.path)
        if route is None or (self.path == "/admin/fault" and not self.state.admin):
            self.close_connection = True  # the unread body must not be taken for the next request
            self._send_json(404, {"error": f"no such endpoint: {self.path}"})
            return
        try:
            code, payload = route(self._read_json())
        except BadRequestError as error:
            code, payload = 400, {"error": str(error)}
        self._send_json(code, payload)

    def do_DELETE(self) -> None:
        if self.path == "/admin/fault" and self.state.admin:
            with self.state.faults_lock:
                self.state.faults = Faults()
            self._send_json(200, self.state.faults.as_dict())
        else:
            self._send_json(404, {"error": f"no such endpoint: {self.path}"})

    def _predict(self) -> None:
        started = time.perf_counter()
        try:
            document = self._read_json()
            code, payload = self._answer_predict(document)
        except BadRequestError as error:
            code, payload = 400, {"error": str(error)}
        # Counted before the answer is written: a client that has its answer must find it in /metrics.
        self.state.metrics.requests.labels(code=str(code)).inc()
        self.state.metrics.duration.observe(time.perf_counter() - started)
        self._send_json(code, payload)

    def _answer_predict(self, document: Any) -> tuple[int, dict[str, Any]]:
        faults = self.state.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000.0)
        if self.state.health() != "ok":
            return 503, {"error": f"model is {self.state.health()}"}
        instances = document.get("instances") if isinstance(document, dict) else None
        if not isinstance(instances, list) or not all(isinstance(row, dict) for row in instances):
            raise BadRequestError('expected {"instances": [{feature: value, ...}, ...]}')
        if faults.error_rate and self.state.random(1)[0] < faults.error_rate:
            return 500, {"error": "injected fault: error_rate"}

        numeric = {name: _numeric_column(instances, name) for name in self._numeric_names()}
        for name, amount in faults.shift.items():
            if name in numeric:
                numeric[name] = numeric[name] + amount
        categorical = {name: _categorical_column(instances, name) for name in self._categorical_names()}
        self.state.metrics.record_inputs(numeric, categorical)

        predictions = predict(numeric, categorical["sector"])
        if faults.degrade:
            predictions = predictions + faults.degrade * OUTPUT_SCALE * self.state.normal(predictions.size)
        if faults.out_of_range:
            predictions = predictions + np.where(predictions >= 0, 2.0, -2.0)
        if faults.nan_output:
            predictions = np.full_like(predictions, np.nan)
        self.state.metrics.record_predictions(predictions)
        return 200, {"predictions": predictions.tolist(), "model": self.state.identity()}

    def _feedback(self, document: Any) -> tuple[int, dict[str, Any]]:
        items = document.get("items") if isinstance(document, dict) else None
        if not isinstance(items, list):
            raise BadRequestError('expected {"items": [{"prediction": p, "actual": a}, ...]}')
        try:
            pairs = np.array([[item["prediction"], item["actual"]] for item in items], dtype=float)
        except (KeyError, TypeError, ValueError) as error:
            raise BadRequestError(f"every item needs numeric prediction and actual: {error}") from error
        pairs = pairs.reshape(-1, 2)
        if not np.all(np.isfinite(pairs)):
            raise BadRequestError("predictions and actuals must be finite")
        self.state.metrics.record_feedback(pairs[:, 0], pairs[:, 1])
        return 200, {"accepted": len(items)}

    def _set_faults(self, document: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(document, dict):
            raise BadRequestError("expected a JSON object of faults")
        try:
            faults = self.state.set_faults(document)
        except ValueError as error:
            raise BadRequestError(str(error)) from error
        return 200, faults.as_dict()

    def _numeric_names(self) -> list[str]:
        return list(dict.fromkeys([*NUMERIC_FEATURES, *(spec.name for spec in self.state.reference.numeric)]))

    def _categorical_names(self) -> list[str]:
        names = [*CATEGORICAL_FEATURES, *(spec.name for spec in self.state.reference.categorical)]
        return list(dict.fromkeys(names))

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise BadRequestError(f"body larger than {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length) if length else b""

    def _read_json(self) -> Any:
        try:
            return json.loads(self._read_body() or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise BadRequestError(f"body is not JSON: {error}") from error

    def _send_json(self, code: int, payload: Any) -> None:
        # allow_nan: a nan_output fault must reach the client as the NaN a broken model would emit.
        self._send(code, json.dumps(payload, allow_nan=True).encode(), "application/json")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _numeric_column(instances: list[dict[str, Any]], name: str) -> FloatArray:
    """Values of one numeric feature; missing, null, non-numeric and non-finite become NaN."""
    values = [row.get(name) for row in instances]
    numbers = [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan for v in values]
    column = np.array(numbers, dtype=float)
    column[~np.isfinite(column)] = np.nan
    return column


def _categorical_column(instances: list[dict[str, Any]], name: str) -> list[str | None]:
    return [value if isinstance(value := row.get(name), str) and value else None for row in instances]
