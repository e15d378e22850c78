"""The operator reaches a Prometheus that demands TLS, a client certificate and basic auth.

A private Prometheus (hack/localprom/instance.py; the shared one is left alone) is started
with ``--web.config.file``: its own CA-signed certificate, RequireAndVerifyClientCert, and a
bcrypt-hashed user. The operator's settings are read from the environment exactly as in the
pod (MODELROLLOUT_PROMETHEUS_*, a password file as a mounted Secret would be), and the
metric source built from them must answer queries; each missing piece must fail with a
message saying what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.localprom.instance import PrivatePrometheus, private_prometheus
from modelrollout.config import Settings
from modelrollout.engine.operator import prometheus_settings
from modelrollout.metrics.prometheus import PrometheusSource
from modelrollout.metrics.source import QueryError

pytestmark = pytest.mark.integration

USER, PASSWORD = "modelrollout", "s3cret-Pa55"


@pytest.fixture(scope="module")
def secured() -> Iterator[PrivatePrometheus]:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [],
    }
    with private_prometheus(config, tls=True, require_client_cert=True, basic_auth=(USER, PASSWORD)) as prometheus:
        yield prometheus


def source(env: dict[str, str]) -> PrometheusSource:
    return PrometheusSource(prometheus_settings(Settings.from_env(env)))


def full_env(prometheus: PrivatePrometheus, tmp_path: Path) -> dict[str, str]:
    assert prometheus.tls is not None
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    return {
        "MODELROLLOUT_PROMETHEUS_URL": prometheus.url,
        "MODELROLLOUT_PROMETHEUS_TIMEOUT": "5",
        "MODELROLLOUT_PROMETHEUS_CA_FILE": str(prometheus.tls.ca),
        "MODELROLLOUT_PROMETHEUS_CERT_FILE": str(prometheus.tls.client[0]),
        "MODELROLLOUT_PROMETHEUS_KEY_FILE": str(prometheus.tls.client[1]),
        "MODELROLLOUT_PROMETHEUS_USERNAME": USER,
        "MODELROLLOUT_PROMETHEUS_PASSWORD_FILE": str(password_file),
        "MODELROLLOUT_PROMETHEUS_HEADERS": '{"X-Scope-OrgID": "team-a"}',
    }


def test_queries_pass_tls_client_certificate_and_basic_auth(secured: PrivatePrometheus, tmp_path: Path) -> None:
    metrics = source(full_env(secured, tmp_path))
    assert metrics.query_scalar("vector(42)") == 42.0
    assert metrics.validate("sum(rate(model_requests_total[5m]))") is None
    assert metrics.validate("sum(rate(model_requests_total[5m])") is not None  # a parse error, not a transport one


@pytest.mark.parametrize(
    ("dropped", "expected"),
    [
        ("MODELROLLOUT_PROMETHEUS_USERNAME", "401"),
        ("MODELROLLOUT_PROMETHEUS_CA_FILE", "CERTIFICATE_VERIFY_FAILED"),
        ("MODELROLLOUT_PROMETHEUS_CERT_FILE", "unreachable"),
    ],
    ids=["no-basic-auth", "no-ca", "no-client-cert"],
)
def test_each_missing_piece_is_refused_with_a_reason(
    secured: PrivatePrometheus, tmp_path: Path, dropped: str, expected: str
) -> None:
    env = full_env(secured, tmp_path)
    del env[dropped]
    if dropped == "MODELROLLOUT_PROMETHEUS_USERNAME":
        del env["MODELROLLOUT_PROMETHEUS_PASSWORD_FILE"]
    if dropped == "MODELROLLOUT_PROMETHEUS_CERT_FILE":
        del env["MODELROLLOUT_PROMETHEUS_KEY_FILE"]
    with pytest.raises(QueryError) as refused:
        source(env).query_scalar("vector(1)")
    assert expected in str(refused.value)
    assert PASSWORD not in str(refused.value)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # what the user asked for
def test_insecure_skip_verify_trusts_any_certificate(secured: PrivatePrometheus, tmp_path: Path) -> None:
    env = full_env(secured, tmp_path)
    del env["MODELROLLOUT_PROMETHEUS_CA_FILE"]
    env["MODELROLLOUT_PROMETHEUS_INSECURE_SKIP_VERIFY"] = "true"
    assert source(env).query_scalar("vector(7)") == 7.0
