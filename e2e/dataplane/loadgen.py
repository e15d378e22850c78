"""A bounded, rate-limited load generator that plays the gateway for local model servers.

Traffic is split by ``weights()``, re-read as it runs so a rollout moving the
router's weights moves the traffic. Features come from the synthetic market
the sample model was trained on, and every answered prediction is followed by
``/feedback`` with the return that market then realises, so accuracy metrics
are real and a worse model measurably loses.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

# Importing e2e.dataplane first puts the sample server's package on sys.path.
from e2e.dataplane._http import require_loopback
from model_server.model import NUMERIC_FEATURES
from model_server.world import Batch, realised_returns, sample_batch
from tests.support.waiting import pace

Weights = Callable[[], Mapping[str, float]]
"""Backend URL -> weight, in arm order (insertion order is kept); weights need not sum to one."""
UserHash = Callable[[str], float]
"""User id -> a point in [0, 1), e.g. ``functools.partial(modelrollout.stats.hashing.unit_hash, salt=...)``."""
Mirror = Callable[[], str | None]


@dataclass(frozen=True)
class LoadConfig:
    requests: int = 200
    """Upper bound on /predict requests to the weighted backends."""
    rate_per_second: float = 100.0
    max_seconds: float = 30.0
    """Wall-clock bound; whichever of ``requests`` and ``max_seconds`` comes first stops the run."""
    batch_size: int = 1
    concurrency: int = 4
    users: int = 500
    """Distinct user ids drawn uniformly per request (sent as ``X-User-Id``)."""
    feedback: bool = True
    shift: Mapping[str, float] = field(default_factory=dict)
    """Feature -> additive shift of what clients send: drift on the client side."""
    missing_rate: float = 0.0
    """Probability that a numeric feature is left out of an instance."""
    nan_rate: float = 0.0
    """Probability that a numeric feature is sent as NaN."""
    seed: int = 0
    refresh_seconds: float = 0.5
    """How often ``weights()`` and the mirror are re-read."""
    timeout_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.requests < 0 or self.rate_per_second <= 0 or self.max_seconds <= 0:
            raise ValueError("requests must be >= 0, rate and max_seconds positive")
        if self.batch_size < 1 or self.concurrency < 1 or self.users < 1:
            raise ValueError("batch_size, concurrency and users must be at least 1")
        if not (0 <= self.missing_rate <= 1 and 0 <= self.nan_rate <= 1):
            raise ValueError("missing_rate and nan_rate are probabilities")


@dataclass
class BackendStats:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    instances: int = 0
    feedback_items: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.requests - self.statuses[200]


@dataclass
class LoadReport:
    by_backend: dict[str, BackendStats] = field(default_factory=dict)
    mirrored: Counter[str] = field(default_factory=Counter)
    """Mirror URL -> copies it answered (answers themselves discarded)."""
    mirror_errors: int = 0
    backends_by_user: dict[str, set[str]] = field(default_factory=dict)
    elapsed_seconds: float = 0.0
    stopped_by: str = "count"

    @property
    def sent(self) -> int:
        return sum(stats.requests for stats in self.by_backend.values())

    def shares(self) -> dict[str, float]:
        total = self.sent or 1
        return {url: stats.requests / total for url, stats in self.by_backend.items()}


class _Routes:
    """The current routing, re-read at most every ``refresh_seconds`` and checked to stay on loopback."""

    def __init__(self, weights: Weights, mirror: Mirror | None, refresh_seconds: float) -> None:
        self._weights, self._mirror, self._refresh = weights, mirror, refresh_seconds
        self._lock = threading.Lock()
        self._read_at = -float("inf")
        self.backends: list[str] = []
        self.cumulative = np.zeros(0)
        self.mirror: str | None = None

    def current(self) -> tuple[list[str], np.ndarray[Any, np.dtype[np.float64]], str | None]:
        with self._lock:
            if time.monotonic() - self._read_at >= self._refresh:
                weights = {require_loopback(url): float(w) for url, w in self._weights().items() if w > 0}
                if not weights:
                    raise ValueError("weights() routes traffic nowhere")
                self.backends = list(weights)
                self.cumulative = np.cumsum(list(weights.values()))
                mirror = self._mirror() if self._mirror else None
                self.mirror = require_loopback(mirror) if mirror else None
                self._read_at = time.monotonic()
            return self.backends, self.cumulative, self.mirror


class _Connections:
    """One keep-alive connection per backend per thread, all closed together at the end of a run."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[http.client.HTTPConnection] = []

    def _connection(self, netloc: str) -> http.client.HTTPConnection:
        pool: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        if netloc not in pool:
            pool[netloc] = http.client.HTTPConnection(netloc, timeout=self._timeout)
            with self._lock:
                self._opened.append(pool[netloc])
        return pool[netloc]

    def post(self, url: str, path: str, payload: Any, headers: Mapping[str, str]) -> tuple[int, Any]:
        netloc = urlsplit(url).netloc
        body = json.dumps(payload).encode()
        for attempt in range(2):
            connection = self._connection(netloc)
            try:
                connection.request("POST", path, body, {"Content-Type": "application/json", **headers})
                response = connection.getresponse()
                data = response.read()
                return response.status, json.loads(data) if data else None
            except (OSError, http.client.HTTPException):
                # A kept-alive connection the server dropped: retry once on a fresh one.
                connection.close()
                del self._local.pool[netloc]
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close_all(self) -> None:
        with self._lock:
            for connection in self._opened:
                connection.close()
            self._opened.clear()


def _instances(batch: Batch, config: LoadConfig, rng: np.random.Generator) -> list[dict[str, Any]]:
    rows = batch.instances()
    for row in rows:
        for name in NUMERIC_FEATURES:
            value = row[name]
            if isinstance(value, float) and name in config.shift:
                row[name] = value + config.shift[name]
            draw = rng.random()
            if draw < config.missing_rate:
                del row[name]
            elif draw < config.missing_rate + config.nan_rate:
                row[name] = float("nan")
    return rows


def run_load(
    weights: Weights,
    config: LoadConfig,
    *,
    user_hash: UserHash | None = None,
    mirror: str | Mirror | None = None,
) -> LoadReport:
    """Send ``config.requests`` /predict requests at ``config.rate_per_second``, then stop.

    Without ``user_hash`` each request picks a backend at random by weight;
    with it, a user's hash picks the backend, as a gateway's consistent
    hashing would: backends are arms in the order ``weights()`` lists them.
    A ``mirror`` gets a copy of each request, answer discarded.
    """
    routes = _Routes(weights, (lambda: mirror) if isinstance(mirror, str) else mirror, config.refresh_seconds)
    routes.current()  # fail fast on bad routing, before any thread starts
    connections = _Connections(config.timeout_seconds)
    report = LoadReport()
    lock = threading.Lock()
    next_index = iter(range(config.requests))
    started = time.monotonic()
    deadline = started + config.max_seconds
    seeds = np.random.SeedSequence(config.seed).spawn(config.concurrency)
    mirror_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="loadgen-mirror")

    def send_mirror(url: str, payload: Any, headers: Mapping[str, str]) -> None:
        try:
            status, _ = connections.post(url, "/predict", payload, headers)
        except (OSError, http.client.HTTPException):
            status = 0
        with lock:
            if status == 200:
                report.mirrored[url] += 1
            else:
                report.mirror_errors += 1

    failures: list[BaseException] = []

    def worker(seed: np.random.SeedSequence) -> None:
        try:
            work(np.random.default_rng(seed))
        except BaseException as error:  # re-raised in the caller's thread after the join
            failures.append(error)

    def work(rng: np.random.Generator) -> None:
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            due = started + index / config.rate_per_second
            if due >= deadline:
                with lock:
                    report.stopped_by = "time"
                return
            pace(due - time.monotonic())  # the request schedule: a steady rate, not a wait
            send_one(rng)

    def send_one(rng: np.random.Generator) -> None:
        backends, cumulative, mirror_url = routes.current()
        user = f"user-{rng.integers(config.users)}"
        point = (user_hash(user) if user_hash else rng.random()) * cumulative[-1]
        # The first backend whose running weight sum exceeds the point: modelrollout.stats.hashing's rule,
        # so a user lands where the operator's own assignment puts them.
        backend = backends[min(int(np.searchsorted(cumulative, point, side="right")), len(backends) - 1)]
        batch = sample_batch(rng, config.batch_size)
        payload = {"instances": _instances(batch, config, rng)}
        headers = {"X-User-Id": user}
        if mirror_url:
            mirror_pool.submit(send_mirror, mirror_url, payload, headers)
        began = time.perf_counter()
        try:
            status, answer = connections.post(backend, "/predict", payload, headers)
        except (OSError, http.client.HTTPException):
            status, answer = 0, None
        latency = time.perf_counter() - began
        fed = 0
        if status == 200 and config.feedback:
            fed = _post_feedback(connections, backend, answer, realised_returns(rng, batch))
        with lock:
            stats = report.by_backend.setdefault(backend, BackendStats())
            stats.requests += 1
            stats.statuses[status] += 1
            stats.latencies.append(latency)
            stats.instances += len(batch)
            stats.feedback_items += fed
            if user_hash:
                report.backends_by_user.setdefault(user, set()).add(backend)

    threads = [threading.Thread(target=worker, args=(seed,), name=f"loadgen-{i}") for i, seed in enumerate(seeds)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    mirror_pool.shutdown(wait=True)
    connections.close_all()
    if failures:
        raise failures[0]
    report.elapsed_seconds = time.monotonic() - started
    return report


def _post_feedback(connections: _Connections, backend: str, answer: Any, actuals: np.ndarray[Any, Any]) -> int:
    """Realised returns for the finite predictions of one answer; NaN predictions cannot be scored."""
    predictions = answer.get("predictions", []) if isinstance(answer, dict) else []
    items = [
        {"prediction": float(p), "actual": float(a)}
        for p, a in zip(predictions, actuals, strict=False)
        if isinstance(p, int | float) and np.isfinite(p)
    ]
    if not items:
        return 0
    try:
        status, _ = connections.post(backend, "/feedback", {"items": items}, {})
    except (OSError, http.client.HTTPException):
        return 0
    return len(items) if status == 200 else 0
