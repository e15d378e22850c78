"""The checks themselves: loads, inference, output_shape, output_range, expected, latency.

They run in the order of ``CHECK_NAMES``, and a check whose premise failed is
skipped rather than failed, so the first failure is the root cause the
operator reports.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import cycle, islice
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from modelrollout.smoke.config import GoldenInputs, SmokeConfig
from modelrollout.smoke.http import HttpClient, HttpResponse, urllib_client
from modelrollout.smoke.report import CheckResult, SmokeReport

CHECK_NAMES = ("loads", "inference", "output_shape", "output_range", "expected", "latency")

Prediction = float | list[float]


@dataclass(frozen=True)
class _Target:
    base_url: str
    config: SmokeConfig
    client: HttpClient

    def call(self, method: str, path: str, body: bytes | None = None) -> HttpResponse:
        return self.client(method, self.base_url + path, body=body, timeout=self.config.request_timeout_seconds)


def run_checks(
    url: str,
    config: SmokeConfig,
    *,
    client: HttpClient = urllib_client,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SmokeReport:
    """Run every check against the model server at ``url`` (scheme, host, port, optional path prefix)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    target = _Target(base_url=url.rstrip("/"), config=config, client=client)

    results = [check_loads(target, clock, sleep)]
    if results[0].failed:
        return SmokeReport(url, (*results, *_skip(CHECK_NAMES[1:], "not run: the model did not load")))
    golden = config.golden
    if golden is None:
        return SmokeReport(url, (*results, *_skip(CHECK_NAMES[1:], "not run: no golden inputs given")))

    inference, predictions = check_inference(target, golden)
    results.append(inference)
    if predictions is None:
        return SmokeReport(url, (*results, *_skip(CHECK_NAMES[2:], "not run: inference failed")))
    results.append(check_output_shape(predictions, len(golden.instances), config.expect_shape))
    results.append(check_output_range(predictions, config.min_value, config.max_value))
    results.append(check_expected(predictions, golden))
    results.append(check_latency(target, golden))
    return SmokeReport(url, tuple(results))


def _skip(names: Sequence[str], reason: str) -> list[CheckResult]:
    return [CheckResult(name=name, passed=False, skipped=True, reason=reason) for name in names]


def _snippet(body: bytes, limit: int = 200) -> str:
    return body[:limit].decode(errors="replace").strip()


def check_loads(target: _Target, clock: Callable[[], float], sleep: Callable[[float], None]) -> CheckResult:
    """Poll the health endpoint until it answers 200: models often take a while to load."""
    config = target.config
    started = clock()
    deadline = started + config.load_timeout_seconds
    attempts, last = 0, "no attempt"
    while True:
        attempts += 1
        try:
            response = target.call("GET", config.health_path)
        except OSError as error:
            last = f"no answer ({error})"
        else:
            if response.status == 200:
                elapsed = round(clock() - started, 3)
                return CheckResult(
                    "loads",
                    True,
                    f"{config.health_path} answered 200",
                    {"attempts": attempts, "elapsedSeconds": elapsed},
                )
            last = f"HTTP {response.status} {_snippet(response.body)}"
        if clock() + config.poll_interval_seconds > deadline:
            break
        sleep(config.poll_interval_seconds)
    reason = (
        f"{config.health_path} did not answer 200 within {config.load_timeout_seconds:g}s "
        f"({attempts} attempts); last: {last}"
    )
    measured: dict[str, Any] = {"attempts": attempts, "elapsedSeconds": round(clock() - started, 3), "last": last}
    return CheckResult("loads", False, reason, measured)


def check_inference(target: _Target, golden: GoldenInputs) -> tuple[CheckResult, list[Prediction] | None]:
    """Golden inputs must predict with HTTP 200 and finite numbers (and match expectations if given)."""
    path = target.config.predict_path
    try:
        response = target.call("POST", path, golden.payload())
    except OSError as error:
        return CheckResult("inference", False, f"POST {path} got no answer: {error}"), None
    measured: dict[str, Any] = {"status": response.status, "elapsedMs": round(response.elapsed_seconds * 1000, 3)}
    if response.status != 200:
        reason = f"POST {path} answered HTTP {response.status}: {_snippet(response.body)}"
        return CheckResult("inference", False, reason, measured), None
    try:
        raw = json.loads(response.body)
    except ValueError as error:
        return CheckResult("inference", False, f"POST {path} answered non-JSON: {error}", measured), None
    raw_predictions = raw.get("predictions") if isinstance(raw, dict) else None
    if not isinstance(raw_predictions, list):
        return CheckResult("inference", False, 'response has no "predictions" list', measured), None

    predictions: list[Prediction] = []
    for index, item in enumerate(raw_predictions):
        value = _as_prediction(item)
        if value is None:
            reason = f"prediction {index} is not a number or list of numbers: {item!r}"
            return CheckResult("inference", False, reason, measured), None
        bad = [v for v in _flat([value]) if not math.isfinite(v)]
        if bad:
            reason = f"prediction {index} is {bad[0]} for a golden input"
            return CheckResult("inference", False, reason, measured), None
        predictions.append(value)
    measured["predictions"] = len(predictions)

    return CheckResult("inference", True, f"{len(predictions)} golden predictions are finite", measured), predictions


def check_output_shape(predictions: Sequence[Prediction], instances: int, expect_shape: int | None) -> CheckResult:
    """One prediction per instance, each a scalar (or a list of ``expect_shape`` numbers)."""
    width = expect_shape or 1
    measured: dict[str, Any] = {"instances": instances, "predictions": len(predictions), "expectedWidth": width}
    if len(predictions) != instances:
        return CheckResult("output_shape", False, f"{len(predictions)} predictions for {instances} instances", measured)
    for index, prediction in enumerate(predictions):
        actual = len(prediction) if isinstance(prediction, list) else 1
        if actual != width or (width > 1 and not isinstance(prediction, list)):
            reason = f"prediction {index} has width {actual}, expected {width}"
            return CheckResult("output_shape", False, reason, measured)
    return CheckResult("output_shape", True, f"{instances} predictions of width {width}", measured)


def check_output_range(predictions: Sequence[Prediction], low: float | None, high: float | None) -> CheckResult:
    if low is None and high is None:
        return CheckResult("output_range", False, "no range configured", skipped=True)
    values = np.array(_flat(predictions))
    lower = -math.inf if low is None else low
    upper = math.inf if high is None else high
    outside = np.flatnonzero((values < lower) | (values > upper))
    measured = {"min": float(values.min()), "max": float(values.max()), "outside": int(outside.size)}
    bounds = f"[{lower:g}, {upper:g}]"
    if outside.size:
        first = int(outside[0])
        reason = f"{outside.size} of {values.size} predictions outside {bounds}, e.g. {values[first]:.6g} at {first}"
        return CheckResult("output_range", False, reason, measured)
    return CheckResult("output_range", True, f"all {values.size} predictions within {bounds}", measured)


def check_expected(predictions: Sequence[Prediction], golden: GoldenInputs) -> CheckResult:
    """Golden predictions match the recorded ones: catches a wrong artifact that still answers sanely."""
    if golden.expected is None:
        return CheckResult("expected", False, "no expected predictions in the golden inputs", skipped=True)
    if len(predictions) != len(golden.expected) or not _all_scalar(predictions):
        reason = f"cannot compare {len(predictions)} predictions with {len(golden.expected)} expected scalars"
        return CheckResult("expected", False, reason)
    actual = np.array(_flat(predictions))
    deviation = np.abs(actual - np.array(golden.expected))
    worst = int(np.argmax(deviation))
    measured = {"maxDeviation": float(deviation[worst]), "tolerance": golden.tolerance}
    if deviation[worst] > golden.tolerance:
        reason = (
            f"prediction {worst} is {actual[worst]:.6g}, expected {golden.expected[worst]:.6g} "
            f"(tolerance {golden.tolerance:g})"
        )
        return CheckResult("expected", False, reason, measured)
    return CheckResult("expected", True, f"{actual.size} predictions within {golden.tolerance:g}", measured)


def check_latency(target: _Target, golden: GoldenInputs) -> CheckResult:
    """Time single-instance requests, as online callers send them; every one must also succeed."""
    config = target.config
    durations: list[float] = []
    errors: list[str] = []
    for instance in islice(cycle(golden.instances), config.latency_requests):
        started = time.perf_counter()
        try:
            response = target.call("POST", config.predict_path, golden.payload((instance,)))
        except OSError as error:
            durations.append(time.perf_counter() - started)
            errors.append(f"no answer ({error})")
            continue
        durations.append(response.elapsed_seconds)
        if response.status != 200:
            errors.append(f"HTTP {response.status}")
    millis = np.array(durations) * 1000.0
    p = config.latency_percentile
    percentile = float(np.percentile(millis, p))
    measured = {
        "requests": len(durations),
        "errors": len(errors),
        f"p{p:g}Ms": round(percentile, 3),
        "p50Ms": round(float(np.percentile(millis, 50)), 3),
        "maxMs": round(float(millis.max()), 3),
        "budgetMs": config.latency_budget_ms,
    }
    if errors:
        reason = f"{len(errors)} of {len(durations)} timed requests failed, first: {errors[0]}"
        return CheckResult("latency", False, reason, measured)
    if config.latency_budget_ms is None:
        return CheckResult("latency", True, f"p{p:g} {percentile:.1f} ms (no budget set)", measured)
    if percentile > config.latency_budget_ms:
        reason = f"p{p:g} {percentile:.1f} ms over budget {config.latency_budget_ms:g} ms ({len(durations)} requests)"
        return CheckResult("latency", False, reason, measured)
    return CheckResult("latency", True, f"p{p:g} {percentile:.1f} ms within {config.latency_budget_ms:g} ms", measured)


def _as_prediction(item: Any) -> Prediction | None:
    if _is_number(item):
        return float(item)
    if isinstance(item, list) and item and all(_is_number(value) for value in item):
        return [float(value) for value in item]
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _flat(predictions: Sequence[Prediction]) -> list[float]:
    return [value for p in predictions for value in (p if isinstance(p, list) else [p])]


def _all_scalar(predictions: Sequence[Prediction]) -> bool:
    return not any(isinstance(p, list) for p in predictions)
