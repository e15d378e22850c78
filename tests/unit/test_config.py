"""Operator settings from MODELROLLOUT_* variables: the Prometheus connection as the chart sets it."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from modelrollout.config import SOURCE, Settings, SettingsError, Variable
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
        ({"MODELROLLOUT_WATCH_SECONDS": "0"}, "WATCH_SECONDS must be 1 or more"),
        (
            {"MODELROLLOUT_PROMETHEUS_PASSWORD_FILE": "/nonexistent/password", "MODELROLLOUT_PROMETHEUS_USERNAME": "a"},
            "PASSWORD_FILE",
        ),
    ],
)
def test_a_bad_setting_stops_start_up_with_its_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_each_setting_names_its_variable_once() -> None:
    """The variables the chart and docs/install.md use; a renamed field must not rename its variable."""
    named = {f.name: f.metadata[SOURCE].name for f in fields(Settings) if isinstance(f.metadata[SOURCE], Variable)}
    assert named == {
        "prometheus_url": "PROMETHEUS_URL",
        "prometheus_timeout": "PROMETHEUS_TIMEOUT",
        "metrics_port": "METRICS_PORT",
        "tick_seconds": "TICK_SECONDS",
        "resync_seconds": "RESYNC_SECONDS",
        "watch_seconds": "WATCH_SECONDS",
        "workers": "WORKERS",
        "operator_image": "OPERATOR_IMAGE",
        "operator_image_set": "OPERATOR_IMAGE",
        "namespaces": "NAMESPACES",
        "peering": "PEERING_NAME",
        "webhook_timeout": "WEBHOOK_TIMEOUT",
        "peering_lifetime": "PEERING_LIFETIME",
        "liveness_endpoint": "LIVENESS",
        "cross_namespace_queries": "CROSS_NAMESPACE_QUERIES",
        "shards": "SHARDS",
        "shard_identity": "SHARD_IDENTITY",
        "shard_namespace": "SHARD_NAMESPACE",
    }
    assert {f.name for f in fields(Settings)} - set(named) == {"prometheus_auth"}


def test_unset_and_empty_variables_leave_the_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    empty = {f"MODELROLLOUT_{name}": "" for name in ("PROMETHEUS_URL", "TICK_SECONDS", "METRICS_PORT", "PEERING_NAME")}
    assert Settings.from_env(empty) == Settings()


def test_variables_are_parsed_into_typed_values() -> None:
    settings = Settings.from_env(
        {
            "MODELROLLOUT_PROMETHEUS_TIMEOUT": "2.5",
            "MODELROLLOUT_METRICS_PORT": "0",
            "MODELROLLOUT_PEERING_LIFETIME": "20",
            "MODELROLLOUT_NAMESPACES": " team-a, ,team-b,",
            "MODELROLLOUT_PEERING_NAME": "modelrollout",
            "MODELROLLOUT_CROSS_NAMESPACE_QUERIES": " Yes ",
        }
    )
    assert (settings.prometheus_timeout, settings.metrics_port, settings.peering_lifetime) == (2.5, 0, 20)
    assert settings.namespaces == ("team-a", "team-b")
    assert settings.peering == "modelrollout"
    assert settings.cross_namespace_queries
    assert not Settings.from_env({"MODELROLLOUT_CROSS_NAMESPACE_QUERIES": "on"}).cross_namespace_queries


def test_an_empty_liveness_variable_turns_the_probe_off() -> None:
    assert Settings.from_env({}).liveness_endpoint == Settings().liveness_endpoint
    assert Settings.from_env({"MODELROLLOUT_LIVENESS": ""}).liveness_endpoint is None
    assert Settings.from_env({"MODELROLLOUT_LIVENESS": "http://0.0.0.0:9/z"}).liveness_endpoint == "http://0.0.0.0:9/z"


def test_the_image_counts_as_set_only_when_given() -> None:
    assert not Settings.from_env({"MODELROLLOUT_OPERATOR_IMAGE": ""}).operator_image_set
    given = Settings.from_env({"MODELROLLOUT_OPERATOR_IMAGE": "registry.local/modelrollout:2"})
    assert (given.operator_image, given.operator_image_set) == ("registry.local/modelrollout:2", True)


@pytest.mark.parametrize(("name", "text"), [("TICK_SECONDS", "fast"), ("METRICS_PORT", "80.5")])
def test_a_number_that_is_not_one_is_refused(name: str, text: str) -> None:
    with pytest.raises(ValueError, match=repr(text)):
        Settings.from_env({f"MODELROLLOUT_{name}": text})


def test_sharding_reads_the_pods_name_and_namespace() -> None:
    """In a pod the downward API's POD_NAME and POD_NAMESPACE name the replica and where its Leases live."""
    assert (Settings().shards, Settings().shard_identity, Settings().shard_namespace) == (
        0,
        None,
        "modelrollout-system",
    )
    laptop = Settings.from_env({"MODELROLLOUT_SHARDS": "4", "MODELROLLOUT_SHARD_NAMESPACE": "ops"})
    assert (laptop.shards, laptop.shard_identity, laptop.shard_namespace) == (4, None, "ops")
    pod = Settings.from_env(
        {
            "MODELROLLOUT_SHARDS": "2",
            "MODELROLLOUT_SHARD_NAMESPACE": "ops",
            "POD_NAME": "modelrollout-7c9f-x2",
            "POD_NAMESPACE": "modelrollout-system",
        }
    )
    assert (pod.shard_identity, pod.shard_namespace) == ("modelrollout-7c9f-x2", "modelrollout-system")


def test_sharding_and_peering_exclude_each_other() -> None:
    with pytest.raises(SettingsError, match="unset the peering name"):
        Settings.from_env({"MODELROLLOUT_SHARDS": "2", "MODELROLLOUT_PEERING_NAME": "modelrollout"})
    assert Settings.from_env({"MODELROLLOUT_SHARDS": "2", "MODELROLLOUT_PEERING_NAME": ""}).shards == 2
    with pytest.raises(ValueError, match="0 or more"):
        Settings.from_env({"MODELROLLOUT_SHARDS": "-1"})
