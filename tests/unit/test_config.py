"""Operator settings from MODELROLLOUT_* variables: the Prometheus connection as the chart sets it."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelrollout.config import Settings, SettingsError
from modelrollout.engine.operator import prometheus_settings


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    auth = settings.prometheus_auth
    assert (auth.bearer_token, auth.username, auth.ca_file, dict(auth.headers)) == (None, None, None, {})
    assert not auth.insecure_skip_verify
    assert not settings.operator_image_set
    built = prometheus_settings(settings)
    assert (built.basic_auth, built.client_cert, built.bearer_token_file) == (None, None, None)


def test_every_connection_setting_reaches_the_metric_source(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    settings = Settings.from_env(
        {
            "MODELROLLOUT_PROMETHEUS_URL": "https://mimir.example/prometheus",
            "MODELROLLOUT_PROMETHEUS_HEADERS": '{"X-Scope-OrgID": "team-a"}',
            "MODELROLLOUT_PROMETHEUS_BEARER_TOKEN_FILE": "/var/run/secrets/tokens/prometheus",
            "MODELROLLOUT_PROMETHEUS_USERNAME": "ops",
            "MODELROLLOUT_PROMETHEUS_PASSWORD_FILE": str(password),
            "MODELROLLOUT_PROMETHEUS_CA_FILE": "/etc/ca.crt",
            "MODELROLLOUT_PROMETHEUS_CERT_FILE": "/etc/tls.crt",
            "MODELROLLOUT_PROMETHEUS_KEY_FILE": "/etc/tls.key",
            "MODELROLLOUT_PROMETHEUS_INSECURE_SKIP_VERIFY": "true",
            "MODELROLLOUT_OPERATOR_IMAGE": "registry.local/modelrollout:1",
        }
    )
    built = prometheus_settings(settings)
    assert built.url == "https://mimir.example/prometheus"
    assert dict(built.headers) == {"X-Scope-OrgID": "team-a"}
    assert built.bearer_token_file == Path("/var/run/secrets/tokens/prometheus")
    assert built.basic_auth == ("ops", "s3cret")
    assert built.ca_file == Path("/etc/ca.crt")
    assert built.client_cert == (Path("/etc/tls.crt"), Path("/etc/tls.key"))
    assert built.insecure_skip_verify
    assert settings.operator_image_set
    assert "s3cret" not in repr(settings), "secrets stay out of logs and tracebacks"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODELROLLOUT_PROMETHEUS_HEADERS": "X-Scope-OrgID: a"}, "not a JSON object"),
        ({"MODELROLLOUT_PROMETHEUS_HEADERS": '{"X": 1}'}, "JSON object of strings"),
        ({"MODELROLLOUT_PROMETHEUS_USERNAME": "ops"}, "go together"),
        ({"MODELROLLOUT_PROMETHEUS_CERT_FILE": "/c"}, "PROMETHEUS_KEY_FILE go together"),
        ({"MODELROLLOUT_PROMETHEUS_INSECURE_SKIP_VERIFY": "yes"}, "must be true or false"),
        (
            {"MODELROLLOUT_PROMETHEUS_PASSWORD_FILE": "/nonexistent/password", "MODELROLLOUT_PROMETHEUS_USERNAME": "a"},
            "PASSWORD_FILE",
        ),
    ],
)
def test_a_bad_setting_stops_start_up_with_its_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
