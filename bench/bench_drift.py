"""One DriftMonitor evaluation with many features: Prometheus query time and compute time, apart.

A synthetic exporter on loopback publishes the metric contract's families for ``--features``
numeric features (one histogram family on shared reference edges, the four data-quality
counters, the prediction histogram), the local Prometheus (``hack/localprom``) scrapes it, and
the controller's own code plans, renders and runs the queries (one per family) and then
evaluates the answers. Without a reachable Prometheus the answers are synthesised and only the
compute time is measured (the output says so).

    .venv/bin/python bench/bench_drift.py --features 200 --repeat 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server  # noqa: E402
from prometheus_client.utils import floatToGoString  # noqa: E402

from modelrollout.api.driftmonitor import DriftMonitorSpec, DriftMonitorStatus  # noqa: E402
from modelrollout.core import drift  # noqa: E402
from modelrollout.metrics.prometheus import PrometheusSettings, PrometheusSource  # noqa: E402
from modelrollout.metrics.source import QueryError, Sample  # noqa: E402
from modelrollout.metrics.templates import render  # noqa: E402
from modelrollout.references import Reference  # noqa: E402

EDGES = [float(x) for x in np.round(np.linspace(-2.5, 2.5, 11), 6)]
NAMESPACE = "bench"


def reference(features: int) -> Reference:
    rng = np.random.default_rng(0)
    trained = np.histogram(rng.normal(size=100_000).clip(-2.49, 2.5), bins=EDGES)[0].tolist()
    numeric = {"type": "numeric", "edges": EDGES, "counts": trained, "mean": 0, "std": 1, "min": -2.49, "max": 2.5}
    return Reference.model_validate(
        {
            "features": [{"name": f"f{i:03d}"} | numeric for i in range(features)],
            "prediction": {"name": "prediction"} | numeric,
        }
    )


def monitor() -> DriftMonitorSpec:
    return DriftMonitorSpec.model_validate(
        {
            "targetRef": "bench",
            "reference": {"inline": {}},
            "window": "1m",
            "methods": [{"name": "psi"}, {"name": "ks"}],
        }
    )


class Exporter:
    """Observes standard-normal values (feature 0 shifted) into the contract's families until stopped."""

    def __init__(self, features: int) -> None:
        self.registry = CollectorRegistry()
        self.values = Histogram("model_feature_value", "x", ["feature"], buckets=EDGES, registry=self.registry)
        self.prediction = Histogram("model_prediction_value", "x", buckets=EDGES, registry=self.registry)
        self.counters = {
            kind: Counter(f"model_feature_{kind}", "x", ["feature"], registry=self.registry)
            for kind in ("observations", "missing", "out_of_range", "outliers")
        }
        self.names = [f"f{i:03d}" for i in range(features)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> int:
        server, _ = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self._server = server
        self._thread.start()
        return int(server.server_port)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._server.shutdown()
        self._server.server_close()

    def _run(self) -> None:
        rng = np.random.default_rng(1)
        while not self._stop.is_set():
            for index, name in enumerate(self.names):
                values = rng.normal(loc=1.0 if index == 0 else 0.0, size=20)
                child = self.values.labels(name)
                for value in values:
                    child.observe(float(value))
                self.counters["observations"].labels(name).inc(20)
                self.counters["out_of_range"].labels(name).inc(int(np.sum(np.abs(values) > 2.5)))
                self.counters["missing"].labels(name)
                self.counters["outliers"].labels(name)
            for value in rng.normal(size=20):
                self.prediction.observe(float(value))
            self._stop.wait(0.1)


def synthetic_answers(features: int) -> dict[drift.QueryName, list[Sample]]:
    """What Prometheus would answer, when there is none to ask."""
    rng = np.random.default_rng(2)
    les = [floatToGoString(e) for e in EDGES] + ["+Inf"]  # type: ignore[no-untyped-call]

    def buckets(extra: dict[str, str], loc: float) -> list[Sample]:
        counts = np.histogram(rng.normal(loc=loc, size=5000), bins=[-np.inf, *EDGES, np.inf])[0]
        return [Sample(extra | {"le": le}, float(c)) for le, c in zip(les, np.cumsum(counts), strict=True)]

    answers: dict[drift.QueryName, list[Sample]] = {
        "numeric": [s for i in range(features) for s in buckets({"feature": f"f{i:03d}"}, 1.0 if i == 0 else 0.0)],
        "prediction": buckets({}, 0.0),
    }
    quality: tuple[drift.QueryName, ...] = ("observations", "missing", "outOfRange", "outliers")
    for name in quality:
        answers[name] = [
            Sample({"feature": f"f{i:03d}"}, 5000.0 if name == "observations" else 0.0) for i in range(features)
        ]
    return answers


def timed(repeat: int, action: Callable[[], Any]) -> list[float]:
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


def summary(label: str, durations: Sequence[float]) -> str:
    ordered = sorted(durations)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{label:<34} median {statistics.median(ordered):8.2f} ms   p95 {p95:8.2f} ms   (n={len(ordered)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--prometheus", default=None, help="Prometheus URL (default: the local one of hack/localprom)")
    args = parser.parse_args()

    ref, spec = reference(args.features), monitor()
    queries = drift.plan_queries(spec, ref, namespace=NAMESPACE, revision=None)
    print(f"features: {args.features} numeric + prediction; methods psi, ks; {len(queries)} queries (one per family):")
    for query in queries:
        print(f"  {render(query.template, query.variables)}")

    answers, measured = _from_prometheus(args, queries)
    if answers is None:
        answers = synthetic_answers(args.features)
    status = DriftMonitorStatus()
    now = datetime.now(UTC)

    result = drift.evaluate(spec, ref, answers)
    print(f"result: state {result.state}, drifted {result.drifted}, samples of f001 {result.features[1].samples}")
    print(measured or "prometheus: not reachable, answers synthesised; query time NOT measured")
    print(summary("compute: evaluate (stats + align)", timed(args.repeat, lambda: drift.evaluate(spec, ref, answers))))
    print(
        summary(
            "compute: evaluate + decide",
            timed(
                args.repeat,
                lambda: drift.decide(spec, status, drift.evaluate(spec, ref, answers), now=now, generation=1),
            ),
        )
    )
    text = ref.model_dump_json(by_alias=True)
    print(summary("reference parse (cached per text)", timed(args.repeat, lambda: drift.parse_reference(text))))
    return 0


def _from_prometheus(
    args: argparse.Namespace, queries: list[drift.DriftQuery]
) -> tuple[dict[drift.QueryName, list[Sample]] | None, str | None]:
    url = args.prometheus
    target_file: Path | None = None
    if url is None:
        try:
            from hack.localprom import prom  # noqa: PLC0415 - only when benchmarking against the local stack
        except ImportError:
            return None, None
        settings = prom.Settings.from_env()
        url = settings.prometheus_url
        targets_dir: Path | None = prom.TARGETS_DIR
    else:
        targets_dir = None
    source = PrometheusSource(PrometheusSettings(url=url, timeout=10))
    try:
        source.query_vector("vector(1)")
    except QueryError:
        source.close()
        return None, None
    exporter = Exporter(args.features)
    port = exporter.start()
    try:
        if targets_dir is not None:
            target_file = targets_dir / f"bench-drift-{uuid.uuid4().hex[:6]}.json"
            labels = {"job": "bench-drift", "namespace": NAMESPACE}
            target_file.write_text(f'[{{"targets": ["127.0.0.1:{port}"], "labels": {json.dumps(labels)}}}]')
        else:
            print(f"add 127.0.0.1:{port} (namespace={NAMESPACE}) as a scrape target of {url}")
        deadline = time.monotonic() + 60
        rendered = [(q.name, render(q.template, q.variables)) for q in queries]
        while time.monotonic() < deadline:
            time.sleep(2)
            if len(source.query_vector(rendered[0][1])) >= args.features * (len(EDGES) + 1):
                break
        time.sleep(3)  # a few more scrapes in the window

        def ask() -> dict[drift.QueryName, list[Sample]]:
            return {name: source.query_vector(promql) for name, promql in rendered}

        answers = ask()
        durations = timed(args.repeat, ask)
        per_family = {name: timed(max(3, args.repeat // 3), _asker(source, promql)) for name, promql in rendered}
        lines = [summary(f"prometheus: all {len(rendered)} queries", durations)]
        lines += [summary(f"  {name} ({len(answers[name])} series)", d) for name, d in per_family.items()]
        return answers, "\n".join(lines)
    finally:
        if target_file is not None:
            target_file.unlink(missing_ok=True)
        exporter.stop()
        source.close()


def _asker(source: PrometheusSource, promql: str) -> Callable[[], list[Sample]]:
    return lambda: source.query_vector(promql)


if __name__ == "__main__":
    raise SystemExit(main())
