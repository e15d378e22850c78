"""MetricSource over Prometheus' HTTP API, through prometheus-api-client's PrometheusConnect.

No retries here, and a short timeout: a guardrail evaluation that waits on a slow Prometheus
holds up the rollout, and retrying hides an outage the controller must count (its
consecutive-error limit decides when missing data stops a rollout, as in Argo Rollouts).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from modelrollout.metrics.source import QueryError, Sample, single_value

DEFAULT_TIMEOUT_SECONDS = 5.0

_CLIENT_ERROR = re.compile(r"HTTP Status Code (\d+) \((b(?:'.*'|\".*\"))\)", re.DOTALL)


@dataclass(frozen=True)
class PrometheusSettings:
    """How to reach Prometheus; filled from the operator's configuration."""

    url: str
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    """Seconds a request may take, connecting and reading, before it counts as failed."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra request headers (a tenant header for Cortex or Mimir, say)."""
    bearer_token: str | None = None
    """Sent as ``Authorization: Bearer``."""
    bearer_token_file: Path | None = None
    """Read on every request, so a rotated (projected service account) token is picked up."""
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    """User name and password for HTTP basic auth (Prometheus' own ``--web.config.file``, a proxy)."""
    ca_file: Path | None = None
    """CA bundle that signed Prometheus' certificate; the system's when unset."""
    client_cert: tuple[Path, Path] | None = None
    """Certificate and key for mutual TLS."""
    insecure_skip_verify: bool = False
    """Do not verify Prometheus' certificate (never in production)."""


class PrometheusSource:
    """Instant queries against one Prometheus."""

    def __init__(self, settings: PrometheusSettings) -> None:
        self.settings = settings
        self._session = requests.Session()
        self._session.verify = str(settings.ca_file) if settings.ca_file else not settings.insecure_skip_verify
        if settings.client_cert:
            self._session.cert = (str(settings.client_cert[0]), str(settings.client_cert[1]))
        if settings.basic_auth:
            self._session.auth = settings.basic_auth
        self._client = PrometheusConnect(
            url=settings.url.rstrip("/"),
            session=self._session,
            auth=settings.basic_auth,
            # read=False re-raises a read timeout as such instead of wrapping it as a connection error.
            retry=Retry(total=0, read=False, raise_on_status=False),
            timeout=settings.timeout,
        )

    def close(self) -> None:
        """Release the connection pool."""
        self._session.close()

    def query_scalar(self, promql: str) -> float:
        return single_value(promql, self._query(promql))

    def query_vector(self, promql: str) -> list[Sample]:
        return self._query(promql)

    def validate(self, promql: str) -> str | None:
        """Ask ``/api/v1/parse_query``; where the server lacks it (404), run the query and read a 400 bad_data."""
        try:
            response = self._session.get(
                f"{self._client.url}/api/v1/parse_query",
                params={"query": promql},
                headers=self._headers(),
                timeout=self.settings.timeout,
                # Explicitly: requests lets REQUESTS_CA_BUNDLE override a session's CA bundle.
                verify=self._session.verify,
            )
        except requests.RequestException as error:
            raise QueryError(promql, _unreachable(self.settings, error)) from error
        if response.status_code == 200:
            return None
        if response.status_code != 404:
            refused = _RefusedError(promql, response.status_code, response.text)
            if refused.status == 400:
                return refused.error
            raise refused
        try:
            self._query(promql)
        except _RefusedError as refused:
            if refused.status == 400 and refused.error_type == "bad_data":
                return refused.error
            if refused.status != 422:  # 422: it parsed, and failed while running
                raise
        return None

    def _query(self, promql: str) -> list[Sample]:
        self._client.headers = self._headers()
        try:
            result = self._client.custom_query(promql)
        except PrometheusApiClientException as error:
            raise _refusal(promql, str(error)) from error
        except ValueError as error:  # requests' JSONDecodeError is also a RequestException: first
            message = f"Prometheus answered something that is not its JSON API: {error}"
            raise QueryError(promql, message, status=200) from error
        except requests.RequestException as error:
            raise QueryError(promql, _unreachable(self.settings, error)) from error
        return _samples(promql, result)

    def _headers(self) -> dict[str, str]:
        headers = dict(self.settings.headers)
        token = self.settings.bearer_token
        if self.settings.bearer_token_file is not None:
            token = self.settings.bearer_token_file.read_text().strip()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers


def _samples(promql: str, result: Any) -> list[Sample]:
    """Samples from the ``data.result`` of an instant query (vector or scalar; PrometheusConnect drops resultType)."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return [Sample({}, _float(promql, result[1]))]  # a scalar: [time, "value"]
    if not isinstance(result, list):
        raise QueryError(promql, f"unexpected result shape: {result!r:.200}", status=200)
    samples = []
    for series in result:
        if not isinstance(series, dict) or "value" not in series:
            raise QueryError(promql, "the query returned a range vector; instant queries need an instant vector", 200)
        samples.append(Sample(series.get("metric", {}), _float(promql, series["value"][1])))
    return samples


def _float(promql: str, text: Any) -> float:
    try:
        return float(text)  # Prometheus spells them "NaN", "+Inf", "-Inf": float() reads all three
    except (TypeError, ValueError) as error:
        raise QueryError(promql, f"the query returned {text!r}, not a number", status=200) from error


class _RefusedError(QueryError):
    """Prometheus (or a proxy in front of it) answered with an error status."""

    def __init__(self, promql: str, status: int, body: str) -> None:
        self.error_type = ""
        self.error = body.strip()[:500] or "(empty body)"
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and "error" in parsed:
            self.error_type, self.error = str(parsed.get("errorType", "")), str(parsed["error"])
        kind = f" {self.error_type}" if self.error_type else ""
        super().__init__(promql, f"Prometheus answered {status}{kind}: {self.error}", status)


def _refusal(promql: str, text: str) -> QueryError:
    """The error in a PrometheusApiClientException, which carries the status and the body's bytes repr."""
    match = _CLIENT_ERROR.fullmatch(text)
    if match is None:
        status = re.match(r"HTTP Status Code (\d+)", text)
        return QueryError(promql, text, int(status.group(1)) if status else None)
    try:
        body = ast.literal_eval(match.group(2)).decode("utf-8", "replace")
    except (ValueError, SyntaxError):
        return QueryError(promql, text, int(match.group(1)))
    return _RefusedError(promql, int(match.group(1)), body)


def _unreachable(settings: PrometheusSettings, error: requests.RequestException) -> str:
    if isinstance(error, requests.Timeout):
        return f"Prometheus at {settings.url} did not answer within {settings.timeout:g}s"
    return f"Prometheus at {settings.url} is unreachable: {type(error).__name__}: {error}"
