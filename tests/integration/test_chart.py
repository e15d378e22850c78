"""The Helm chart: lints, renders, and renders the same operator as the kustomize manifests.

Why: two install paths drift apart quietly (a permission added to one, a
security setting to the other). These tests render the chart with the pinned
Helm (cached by hack/tools/helm.sh; they fail, never skip, when it is missing)
and compare it with manifests/base. The Prometheus rules are checked with
promtool (Debian's prometheus package, installed by .ci/run): syntax, and unit
tests that each alert fires on the series it is about.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.tools.cache import require_tool

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelrollout"
BASE = REPO / "manifests" / "base"
RULES = CHART / "files" / "prometheus-rules.yaml"
KUBE_VERSION = "v1.31.0"
"""Helm built with `go install` defaults to Kubernetes v1.20 for rendering; the chart needs >= 1.27."""

MONITORING_CRDS = [
    "--api-versions",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "--api-versions",
    "monitoring.coreos.com/v1/PrometheusRule",
]
"""What a cluster with the Prometheus Operator serves; without them the chart refuses monitoring objects."""
ALL_FEATURES = [
    "--set",
    "serviceMonitor.enabled=true",
    "--set",
    "modelServerMonitor.enabled=true",
    "--set",
    "prometheusRule.enabled=true",
    "--set",
    "prometheusRule.additionalAlertLabels.team=ml",
    *MONITORING_CRDS,
]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_tool("helm")
    result = subprocess.run([str(binary), *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def render(*extra: str, release: str = "modelrollout") -> list[dict[str, Any]]:
    output = helm(
        "template", release, str(CHART), "--namespace", "modelrollout-system", "--kube-version", KUBE_VERSION, *extra
    ).stdout
    return [d for d in yaml.safe_load_all(output) if d]


def base_objects() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return [d for name in kustomization["resources"] for d in yaml.safe_load_all((BASE / name).read_text()) if d]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def only(objects: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [o for o in by_kind(objects, kind) if o["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"expected one {kind} named *{suffix}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def normalised_rules(role: dict[str, Any]) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    """Rules as sorted tuples, so order within a rule or of rules does not matter, content does."""
    return sorted(
        (tuple(sorted(r["apiGroups"])), tuple(sorted(r["resources"])), tuple(sorted(r["verbs"]))) for r in role["rules"]
    )


# --- lint and render ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [[], ["--set", "watchNamespaces={team-a,team-b}"], ["--set", "peering.enabled=false,replicaCount=1"]],
    ids=["defaults", "namespaced", "standalone"],
)
def test_helm_lint(values: list[str]) -> None:
    """(`helm lint` cannot be told which APIs a cluster serves, so the monitoring objects are rendered below.)"""
    result = helm("lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION, *values)
    assert "0 chart(s) failed" in result.stdout


def test_helm_template_renders_every_object() -> None:
    kinds = sorted(o["kind"] for o in render(*ALL_FEATURES))
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "PrometheusRule",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
            "ServiceMonitor",
        ]
    )


def failure(*extra: str) -> str:
    binary = require_tool("helm")
    result = subprocess.run(
        [str(binary), "template", "x", str(CHART), "--kube-version", KUBE_VERSION, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0, "the chart should have refused these values"
    return result.stderr


def test_chart_refuses_several_replicas_without_peering() -> None:
    assert "needs peering.enabled" in failure("--set", "peering.enabled=false")


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("serviceMonitor.enabled", "ServiceMonitor"),
        ("modelServerMonitor.enabled", "ServiceMonitor"),
        ("prometheusRule.enabled", "PrometheusRule"),
    ],
)
def test_monitoring_objects_need_the_prometheus_operator(value: str, kind: str) -> None:
    """A clear message instead of Helm's "no matches for kind" (tests/integration/test_install.py: real server)."""
    message = failure("--set", f"{value}=true")
    assert f"{value}=true needs the Prometheus Operator's {kind} CRD" in message
    assert "model-servers-scrape.yaml" in message


def test_no_peering_object_is_rendered() -> None:
    """The operator creates its ClusterKopfPeering at start-up; its CRD is in crds/, owned by no release."""
    for extra in ([], ["--set", "watchNamespaces={team-a}"]):
        objects = render(*extra)
        assert not [o for o in objects if o["kind"] in {"ClusterKopfPeering", "KopfPeering"}]
        assert not by_kind(objects, "CustomResourceDefinition")
    peering_crd = yaml.safe_load((CHART / "crds" / "clusterkopfpeerings.kopf.dev.yaml").read_text())
    assert peering_crd["spec"]["names"]["kind"] == "ClusterKopfPeering"


def test_namespaced_install_has_no_cluster_wide_namespaced_rights() -> None:
    objects = render("--set", "watchNamespaces={team-a,team-b}")
    container = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--all-namespaces" not in container["args"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELROLLOUT_NAMESPACES"] == "team-a,team-b"
    # Namespaces missing at install are created (kept on uninstall); `helm template` cannot look, so both.
    namespaces = by_kind(objects, "Namespace")
    assert sorted(n["metadata"]["name"] for n in namespaces) == ["team-a", "team-b"]
    assert all(n["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for n in namespaces)


def test_operator_service_monitor_honours_labels() -> None:
    """The operator's series carry the model's `namespace`; without honorLabels it becomes exported_namespace."""
    monitor = only(render(*ALL_FEATURES), "ServiceMonitor", "modelrollout")
    assert [e["honorLabels"] for e in monitor["spec"]["endpoints"]] == [True]


def test_model_server_monitor_uses_the_plain_scrape_config() -> None:
    """One relabelling for both: the ServiceMonitor's is the plain scrape config's, in camelCase."""
    monitor = only(render(*ALL_FEATURES), "ServiceMonitor", "-model-servers")
    plain = yaml.safe_load((CHART / "files" / "model-servers-scrape.yaml").read_text())["scrape_configs"][0]
    camel = {"source_labels": "sourceLabels", "target_label": "targetLabel"}
    expected = [{camel.get(k, k): v for k, v in rule.items()} for rule in plain["relabel_configs"][1:]]
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["relabelings"] == expected
    assert endpoint["port"] == "http"
    assert plain["relabel_configs"][0]["source_labels"] == ["__meta_kubernetes_endpointslice_port_name"]
    assert "honorLabels" not in endpoint, "a model server must not export namespace, model, revision or role"
    assert monitor["spec"]["selector"] == {
        "matchExpressions": [{"key": "modelrollout.dev/role", "operator": "In", "values": ["stable", "canary"]}]
    }


def test_prometheus_connection_values_become_settings() -> None:
    objects = render(
        "--set-json",
        'prometheus.headers={"X-Scope-OrgID":"team-a"}',
        "--set",
        "prometheus.bearerToken.secretName=prom-token",
        "--set",
        "prometheus.basicAuth.username=ops,prometheus.basicAuth.passwordSecretName=prom-pass",
        "--set",
        "prometheus.tls.caSecretName=prom-ca,prometheus.tls.clientCertSecretName=prom-client",
        "--set",
        "prometheus.tls.insecureSkipVerify=true",
    )
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["MODELROLLOUT_PROMETHEUS_HEADERS"]["value"] == '{"X-Scope-OrgID":"team-a"}'
    assert env["MODELROLLOUT_PROMETHEUS_BEARER_TOKEN_FILE"]["value"] == "/etc/modelrollout/prometheus/token/token"
    assert env["MODELROLLOUT_PROMETHEUS_USERNAME"]["value"] == "ops"
    assert env["MODELROLLOUT_PROMETHEUS_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "prom-pass", "key": "password"}
    }
    assert env["MODELROLLOUT_PROMETHEUS_CA_FILE"]["value"] == "/etc/modelrollout/prometheus/ca/ca.crt"
    assert env["MODELROLLOUT_PROMETHEUS_CERT_FILE"]["value"] == "/etc/modelrollout/prometheus/client/tls.crt"
    assert env["MODELROLLOUT_PROMETHEUS_INSECURE_SKIP_VERIFY"]["value"] == "true"
    volumes = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert volumes == {"prometheus-token": "prom-token", "prometheus-ca": "prom-ca", "prometheus-client": "prom-client"}
    mounts = {m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert {"prometheus-token", "prometheus-ca", "prometheus-client"} <= mounts


def test_dashboards_are_configmaps_for_the_grafana_sidecar() -> None:
    maps = by_kind(render(), "ConfigMap")
    files = sorted(p.name for p in (CHART / "dashboards").glob("*.json"))
    assert sorted(k for m in maps for k in m["data"]) == files
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        for text in config_map["data"].values():
            json.loads(text)


# --- the chart renders what kustomize installs ---------------------------------------------------


def test_rbac_rules_match_kustomize() -> None:
    """The same permissions whichever way the operator is installed (tests/unit/test_rbac.py: equal to the calls)."""
    rendered = render()
    base = base_objects()
    assert normalised_rules(only(rendered, "ClusterRole", "-operator")) == normalised_rules(
        only(base, "ClusterRole", "modelrollout-operator")
    )
    assert normalised_rules(only(rendered, "ClusterRole", "-secrets")) == normalised_rules(
        only(base, "ClusterRole", "-secrets")
    )
    for name in ("modelrollout-view", "modelrollout-edit"):
        chart_role, base_role = only(rendered, "ClusterRole", name), only(base, "ClusterRole", name)
        assert normalised_rules(chart_role) == normalised_rules(base_role)
        aggregation = {k: v for k, v in base_role["metadata"]["labels"].items() if k.startswith("rbac.")}
        assert aggregation.items() <= chart_role["metadata"]["labels"].items()


def test_operator_pod_matches_kustomize() -> None:
    """Container (image, args, env, probes, resources, security) and pod security are identical by default."""
    chart_pod = only(render(), "Deployment")["spec"]["template"]["spec"]
    base_pod = only(base_objects(), "Deployment")["spec"]["template"]["spec"]
    assert chart_pod["containers"] == base_pod["containers"]
    for field in ("securityContext", "volumes", "automountServiceAccountToken", "terminationGracePeriodSeconds"):
        assert chart_pod[field] == base_pod[field], field
    chart_deployment, base_deployment = only(render(), "Deployment"), only(base_objects(), "Deployment")
    assert chart_deployment["spec"]["replicas"] == base_deployment["spec"]["replicas"]
    assert chart_deployment["spec"]["strategy"] == base_deployment["spec"]["strategy"]


def test_peering_crd_matches_kustomize() -> None:
    base_peering = [o for o in by_kind(base_objects(), "CustomResourceDefinition") if o["spec"]["group"] == "kopf.dev"]
    chart_peering = yaml.safe_load((CHART / "crds" / "clusterkopfpeerings.kopf.dev.yaml").read_text())
    assert [o["spec"] for o in base_peering] == [chart_peering["spec"]]


def test_chart_crds_folder_holds_the_generated_crds() -> None:
    """crds/ is written by `make crds` (plus kopf's peering CRD); the chart ships the kustomize base's CRDs."""
    chart_crds = {
        p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml") if not p.name.endswith(".kopf.dev.yaml")
    }
    base_crds = {p.name: p.read_text() for p in (BASE / "crds").glob("*.yaml")}
    assert chart_crds == base_crds


# --- Prometheus rules -------------------------------------------------------------------------------


def test_prometheus_rule_embeds_the_rule_file() -> None:
    """The PrometheusRule is the plain rule file, plus the configured interval and alert labels."""
    rule = only(render(*ALL_FEATURES), "PrometheusRule")
    plain = yaml.safe_load(RULES.read_text())["groups"]
    rendered = rule["spec"]["groups"]
    assert [g["name"] for g in rendered] == [g["name"] for g in plain]
    for ours, theirs in zip(rendered, plain, strict=True):
        if ours["name"] == "modelrollout.model-quality":
            assert ours.pop("interval") == "5m"
        for got, plain_rule in zip(ours["rules"], theirs["rules"], strict=True):
            if "alert" in plain_rule:
                assert got["labels"] == {**plain_rule["labels"], "team": "ml"}
            assert {**got, "labels": plain_rule.get("labels")} == {
                **plain_rule,
                "labels": plain_rule.get("labels"),
            }


def test_rule_file_contents() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = {r.get("record") or r.get("alert"): r for g in groups for r in g["rules"]}
    for window in ("1d", "7d", "30d"):
        assert f"model:directional_accuracy:ratio_rate{window}" in rules
        assert f"model:mean_abs_error:ratio_rate{window}" in rules
    for quantile in ("p50", "p95", "p99"):
        assert f"model:request_duration_seconds:{quantile}_rate5m" in rules
    latency = rules["ModelLatencyP99High"]
    assert latency["for"] == "1m"
    assert latency["labels"]["severity"] == "warning"
    assert "0.5" in latency["expr"]
    assert {"ModelErrorRateHigh", "ModelDriftDetected", "ModelRolloutDegraded"} <= set(rules)


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: `apt-get install prometheus` (it ships promtool)")
    return path


def test_promtool_check_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


RULE_TESTS: dict[str, Any] = {
    "evaluation_interval": "1m",
    "tests": [
        {
            # A canary whose requests all take between 0.5 s and 1 s: p99 = 0.5 + 0.99 x 0.5 = 0.995 s.
            "interval": "1m",
            "input_series": [
                {
                    "series": 'model_request_duration_seconds_bucket{namespace="ns",model="m",revision="2-ab",'
                    f'role="canary",le="{le}"}}',
                    "values": values,
                }
                for le, values in (("0.1", "0x10"), ("0.5", "0x10"), ("1", "0+60x10"), ("+Inf", "0+60x10"))
            ],
            "alert_rule_test": [
                # `for: 1m`: pending at the first evaluation with a rate, firing one minute later.
                {"eval_time": "1m", "alertname": "ModelLatencyP99High", "exp_alerts": []},
                {
                    "eval_time": "3m",
                    "alertname": "ModelLatencyP99High",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "warning",
                                "namespace": "ns",
                                "model": "m",
                                "revision": "2-ab",
                                "role": "canary",
                            },
                            "exp_annotations": {
                                "summary": "p99 latency of m revision 2-ab is above 500 ms",
                                "description": "The p99 request latency of ns/m revision 2-ab (canary) has been "
                                "995ms for more than a minute.",
                            },
                        }
                    ],
                },
            ],
            "promql_expr_test": [
                {
                    "expr": "model:request_duration_seconds:p50_rate5m",
                    "eval_time": "5m",
                    "exp_samples": [
                        {
                            "labels": 'model:request_duration_seconds:p50_rate5m{namespace="ns",model="m",'
                            'revision="2-ab",role="canary"}',
                            "value": 0.75,
                        }
                    ],
                }
            ],
        },
        {
            # Half of the requests fail.
            "interval": "1m",
            "input_series": [
                {
                    "series": 'model_requests_total{namespace="ns",model="m",revision="1",role="stable",code="200"}',
                    "values": "0+10x10",
                },
                {
                    "series": 'model_requests_total{namespace="ns",model="m",revision="1",role="stable",code="500"}',
                    "values": "0+10x10",
                },
            ],
            "alert_rule_test": [
                {
                    "eval_time": "5m",
                    "alertname": "ModelErrorRateHigh",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "warning",
                                "namespace": "ns",
                                "model": "m",
                                "revision": "1",
                                "role": "stable",
                            },
                            "exp_annotations": {
                                "summary": "More than 5% of requests to m revision 1 fail",
                                "description": "50% of requests to ns/m revision 1 (stable) returned 5xx "
                                "over 5 minutes.",
                            },
                        }
                    ],
                }
            ],
            "promql_expr_test": [
                {
                    "expr": "model:request_errors:ratio_rate5m",
                    "eval_time": "5m",
                    "exp_samples": [
                        {
                            "labels": 'model:request_errors:ratio_rate5m{namespace="ns",model="m",revision="1",'
                            'role="stable"}',
                            "value": 0.5,
                        }
                    ],
                }
            ],
        },
        {
            # Quality from delayed labels: 60 of 100 feedbacks right per step, |error| sum 2 per step.
            "interval": "1h",
            "input_series": [
                {
                    "series": 'model_feedback_total{namespace="ns",model="m",revision="1",role="stable"}',
                    "values": "0+100x48",
                },
                {
                    "series": 'model_direction_correct_total{namespace="ns",model="m",revision="1",role="stable"}',
                    "values": "0+60x48",
                },
                {
                    "series": 'model_abs_error_sum{namespace="ns",model="m",revision="1",role="stable"}',
                    "values": "0+2x48",
                },
            ],
            "promql_expr_test": [
                {
                    "expr": "model:directional_accuracy:ratio_rate1d",
                    "eval_time": "30h",
                    "exp_samples": [
                        {
                            "labels": 'model:directional_accuracy:ratio_rate1d{namespace="ns",model="m",revision="1"}',
                            "value": 0.6,
                        }
                    ],
                },
                {
                    "expr": "model:mean_abs_error:ratio_rate1d",
                    "eval_time": "30h",
                    "exp_samples": [
                        {
                            "labels": 'model:mean_abs_error:ratio_rate1d{namespace="ns",model="m",revision="1"}',
                            "value": 0.02,
                        }
                    ],
                },
            ],
        },
        {
            # The operator's gauges, exported by the active replica only (the paused one exports nothing).
            "interval": "1m",
            "input_series": [
                {
                    "series": 'modelrollout_drift_detected{namespace="ns",monitor="returns-drift",instance="a:8000",'
                    'pod="op-1"}',
                    "values": "0 0 1 1 1",
                },
                {
                    "series": 'modelrollout_rollout_phase{namespace="ns",name="returns",phase="Degraded",'
                    'instance="a:8000",pod="op-1"}',
                    "values": "0 1 1 1 1",
                },
            ],
            "alert_rule_test": [
                {"eval_time": "1m", "alertname": "ModelDriftDetected", "exp_alerts": []},
                {
                    "eval_time": "2m",
                    "alertname": "ModelDriftDetected",
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "warning", "namespace": "ns", "monitor": "returns-drift"},
                            "exp_annotations": {
                                "summary": "DriftMonitor ns/returns-drift detected drift",
                                "description": "DriftMonitor ns/returns-drift reports drift: "
                                "`kubectl -n ns describe dmon returns-drift` lists the drifted features.",
                            },
                        }
                    ],
                },
                {
                    "eval_time": "1m",
                    "alertname": "ModelRolloutDegraded",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "warning",
                                "namespace": "ns",
                                "name": "returns",
                                "phase": "Degraded",
                            },
                            "exp_annotations": {
                                "summary": "ModelDeployment ns/returns is Degraded",
                                "description": "The rollout of ns/returns was rolled back: the canary failed its "
                                "guardrails. `kubectl -n ns describe mdep returns` says why; fix the model and retry, "
                                "or revert the spec in Git.",
                            },
                        }
                    ],
                },
            ],
        },
    ],
}


def test_promtool_rule_unit_tests(tmp_path: Path) -> None:
    """Each alert fires on the series it is about, and the recording rules compute what they say."""
    tests = {"rule_files": [str(RULES)], **RULE_TESTS}
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(
        [promtool(), "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
