"""A generated suite of hostile specs for the three kinds: malformed templates, names derived objects cannot
use, oversized strings and lists, numbers that overflow what they derive, queries that read another
namespace or do not parse, references to what does not exist.

Each case must be either refused by the API server at apply, or, once accepted, reported by the operator
in a condition (or the status message) whose reason or message contains one of ``expect`` -- and no tick of
the operator may raise (tests/integration/test_hostile_specs.py). The cases are generated here, not stored:
three of them are 300 KiB specs. ``python -m tests.hostile`` prints the count per kind.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

API_VERSION = "modelrollout.dev/v1alpha1"
Doc = dict[str, Any]
OTHER_NAMESPACE = "mr-hostile-victim"
"""The namespace a query tries to read; it need not exist."""


@dataclass(frozen=True)
class HostileCase:
    name: str
    kind: str
    document: Doc
    expect: tuple[str, ...]
    """Words one of which the operator's condition must say, if the API server accepts the case."""


def _model_deployment(name: str) -> Doc:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "returns", "version": "1", "uri": "s3://models/returns/1"},
            "template": {
                "metadata": {"labels": {"app": "returns"}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "ghcr.io/modelrollout/model-server:0.1.0",
                            "ports": [{"containerPort": 8080, "name": "http"}],
                        }
                    ]
                },
            },
        },
    }


def _drift_monitor(name: str) -> Doc:
    return {
        "apiVersion": API_VERSION,
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {
            "targetRef": "returns",
            "reference": {"configMapRef": {"name": "returns-reference", "key": "reference.json"}},
        },
    }


def _experiment(name: str) -> Doc:
    return {
        "apiVersion": API_VERSION,
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "champion": {"name": "champion", "modelDeployment": "returns-a"},
            "challengers": [{"name": "challenger", "modelDeployment": "returns-b"}],
            "trafficRouting": {"router": "gatewayAPI", "gatewayAPI": {"httpRoute": "returns"}},
            "primaryMetric": {
                "name": "conversion",
                "kind": "proportion",
                "successQuery": 'sum(increase(conversions_total{arm="{{arm}}"}[{{elapsed}}]))',
                "totalQuery": 'sum(increase(requests_total{arm="{{arm}}"}[{{elapsed}}]))',
                "baseline": 0.1,
                "minimumDetectableEffect": 0.05,
            },
        },
    }


def _set(document: Doc, path: str, value: Any) -> Doc:
    """A copy of ``document`` with ``value`` at a dotted path (``[n]`` indexes lists; ``None`` deletes)."""
    result = copy.deepcopy(document)
    node: Any = result
    parts = path.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        key: Any = int(part) if part.isdigit() else part
        if isinstance(node, dict) and key not in node:
            node[key] = {}
        node = node[key]
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return result


CONTAINER = "spec.template.spec.containers[0]"
JOB_POD = "spec.smokeTest.jobTemplate.spec.template.spec"
SMOKE_JOB: Doc = {
    "spec": {
        "template": {
            "spec": {"restartPolicy": "Never", "containers": [{"name": "check", "image": "busybox:1.36"}]},
        }
    }
}
INVALID = "is invalid"
"""How the API server words a refused derived object (a Deployment or Job the operator created)."""
QUANTITY = "quantities must match"
"""How it words a resource quantity it cannot decode (a 400, before validation)."""


def _template_cases() -> Iterator[tuple[str, str, Any, tuple[str, ...]]]:
    """(name, path, value, expect) for spec.template; the expectations matter only when the API server accepts."""
    yield "template-empty", "spec.template", {}, ("spec",)
    yield "template-not-an-object", "spec.template", "pod", ("spec",)
    yield "template-no-spec", "spec.template.spec", None, ("spec",)
    yield "containers-empty", "spec.template.spec.containers", [], ("containers",)
    yield "containers-string", "spec.template.spec.containers", "server", ("containers",)
    yield "containers-map", "spec.template.spec.containers", {"name": "server"}, ("containers",)
    yield "containers-list-of-strings", "spec.template.spec.containers", ["server"], ("containers",)
    yield (
        "unknown-field-containerz",
        "spec.template.spec",
        {"containerz": [{"name": "s", "image": "i"}]},
        ("containers",),
    )
    yield "container-no-image", f"{CONTAINER}.image", None, ("image",)
    yield "container-empty-image", f"{CONTAINER}.image", "", ("image",)
    yield "container-image-with-space", f"{CONTAINER}.image", "bad image", ("image",)
    yield "container-no-name", f"{CONTAINER}.name", None, ("name",)
    yield "container-name-upper", f"{CONTAINER}.name", "Server", ("name",)
    yield "container-name-underscore", f"{CONTAINER}.name", "model_server", ("name",)
    yield "container-name-64", f"{CONTAINER}.name", "s" * 64, ("name",)
    yield "container-port-string", f"{CONTAINER}.ports[0].containerPort", "abc", ("containerPort",)
    yield "container-port-zero", f"{CONTAINER}.ports[0].containerPort", 0, ("containerPort",)
    yield "container-port-huge", f"{CONTAINER}.ports[0].containerPort", 70000, ("containerPort",)
    yield "container-port-float", f"{CONTAINER}.ports[0].containerPort", 80.5, ("containerPort",)
    yield "container-ports-map", f"{CONTAINER}.ports", {"http": 8080}, ("ports",)
    yield "container-port-protocol", f"{CONTAINER}.ports[0].protocol", "HTTP", ("protocol", INVALID)
    yield "env-nested-map", f"{CONTAINER}.env", {"A": {"B": "C"}}, ("env",)
    yield "env-list-of-maps-of-maps", f"{CONTAINER}.env", [{"name": {"x": 1}}], ("env",)
    yield "env-no-name", f"{CONTAINER}.env", [{"value": "x"}], ("name",)
    yield "env-empty-name", f"{CONTAINER}.env", [{"name": "", "value": "x"}], ("name",)
    yield "env-invalid-name", f"{CONTAINER}.env", [{"name": "1=BAD", "value": "x"}], ("env", INVALID)
    yield "env-value-number", f"{CONTAINER}.env", [{"name": "A", "value": 1}], ("value",)
    yield "args-string", f"{CONTAINER}.args", "--serve", ("args",)
    yield "args-nested", f"{CONTAINER}.args", [["--serve"]], ("args",)
    yield "command-map", f"{CONTAINER}.command", {"run": "x"}, ("command",)
    yield "resources-cpu-word", f"{CONTAINER}.resources", {"requests": {"cpu": "lots"}}, ("cpu", INVALID, QUANTITY)
    yield "resources-cpu-negative", f"{CONTAINER}.resources", {"requests": {"cpu": "-1"}}, ("cpu", INVALID, QUANTITY)
    yield (
        "resources-limits-below-requests",
        f"{CONTAINER}.resources",
        {
            "requests": {"memory": "2Gi"},
            "limits": {"memory": "1Gi"},
        },
        ("memory", INVALID),
    )
    yield "resources-string", f"{CONTAINER}.resources", "big", ("resources",)
    yield "image-pull-policy", f"{CONTAINER}.imagePullPolicy", "Sometimes", ("imagePullPolicy", INVALID)
    yield (
        "probe-two-handlers",
        f"{CONTAINER}.readinessProbe",
        {
            "httpGet": {"path": "/healthz", "port": 8080},
            "tcpSocket": {"port": 8080},
        },
        ("readinessProbe", INVALID),
    )
    yield (
        "probe-port-word",
        f"{CONTAINER}.readinessProbe",
        {"httpGet": {"path": "/h", "port": "no such"}},
        (
            "port",
            INVALID,
        ),
    )
    yield "probe-period-string", f"{CONTAINER}.readinessProbe", {"periodSeconds": "often"}, ("periodSeconds",)
    yield (
        "volume-mount-missing-volume",
        f"{CONTAINER}.volumeMounts",
        [{"name": "data", "mountPath": "/data"}],
        (
            "volumeMounts",
            INVALID,
        ),
    )
    yield "volume-mount-no-path", f"{CONTAINER}.volumeMounts", [{"name": "data"}], ("mountPath",)
    yield "security-context-string", f"{CONTAINER}.securityContext", "privileged", ("securityContext",)
    yield "run-as-user-string", f"{CONTAINER}.securityContext", {"runAsUser": "root"}, ("runAsUser",)
    yield "restart-policy-never", "spec.template.spec.restartPolicy", "Never", ("restartPolicy", INVALID)
    yield "restart-policy-word", "spec.template.spec.restartPolicy", "Sometimes", ("restartPolicy", INVALID)
    yield "node-selector-list", "spec.template.spec.nodeSelector", ["a"], ("nodeSelector",)
    yield "tolerations-map", "spec.template.spec.tolerations", {"key": "a"}, ("tolerations",)
    yield "host-network-string", "spec.template.spec.hostNetwork", "yes", ("hostNetwork",)
    yield (
        "service-account-invalid",
        "spec.template.spec.serviceAccountName",
        "Bad_Name",
        (
            "serviceAccountName",
            INVALID,
        ),
    )
    yield "volumes-string", "spec.template.spec.volumes", "data", ("volumes",)
    yield "volume-no-name", "spec.template.spec.volumes", [{"emptyDir": {}}], ("name",)
    yield (
        "duplicate-container-names",
        "spec.template.spec.containers",
        [
            {"name": "server", "image": "a"},
            {"name": "server", "image": "b"},
        ],
        ("Duplicate value", INVALID),
    )
    yield "init-container-no-image", "spec.template.spec.initContainers", [{"name": "init"}], ("image",)
    yield "label-key-invalid", "spec.template.metadata.labels", {"bad key!": "x"}, ("labels",)
    yield "label-key-too-long", "spec.template.metadata.labels", {"a" * 64: "x"}, ("labels",)
    yield "label-value-invalid", "spec.template.metadata.labels", {"app": "has space"}, ("labels",)
    yield "label-value-too-long", "spec.template.metadata.labels", {"app": "v" * 64}, ("labels",)
    yield "label-value-number", "spec.template.metadata.labels", {"app": 5}, ("labels",)
    yield "labels-list", "spec.template.metadata.labels", ["app"], ("labels",)
    yield "annotations-number", "spec.template.metadata.annotations", {"a": 1}, ("annotations",)
    yield "metadata-string", "spec.template.metadata", "meta", ("metadata",)


def _job_template_cases() -> Iterator[tuple[str, Any, tuple[str, ...]]]:
    """(name, jobTemplate, expect)."""
    pod = SMOKE_JOB["spec"]["template"]["spec"]
    yield "job-empty", {}, ("spec",)
    yield "job-string", "job", ("jobTemplate",)
    yield "job-no-template", {"spec": {}}, ("template",)
    yield "job-template-empty", {"spec": {"template": {}}}, ("spec",)
    yield "job-containers-empty", _set(SMOKE_JOB, "spec.template.spec.containers", []), ("containers",)
    yield "job-containers-string", _set(SMOKE_JOB, "spec.template.spec.containers", "check"), ("containers",)
    yield "job-container-no-image", _set(SMOKE_JOB, "spec.template.spec.containers[0].image", None), ("image",)
    yield "job-env-nested", _set(SMOKE_JOB, "spec.template.spec.containers[0].env", {"A": {"B": 1}}), ("env",)
    yield (
        "job-restart-always",
        _set(SMOKE_JOB, "spec.template.spec.restartPolicy", "Always"),
        (
            "restartPolicy",
            INVALID,
        ),
    )
    yield "job-backoff-string", _set(SMOKE_JOB, "spec.backoffLimit", "many"), ("backoffLimit",)
    yield "job-parallelism-negative", _set(SMOKE_JOB, "spec.parallelism", -1), ("parallelism", INVALID)
    yield "job-completions-string", _set(SMOKE_JOB, "spec.completions", "all"), ("completions",)
    yield "job-unknown-field", _set(SMOKE_JOB, "spec.templatez", {"spec": pod}), ("template",)
    yield "job-label-value-invalid", _set(SMOKE_JOB, "spec.template.metadata", {"labels": {"a": "b c"}}), ("labels",)
    yield (
        "job-port-string",
        _set(SMOKE_JOB, "spec.template.spec.containers[0].ports", [{"containerPort": "x"}]),
        ("containerPort",),
    )
    yield (
        "job-duplicate-containers",
        _set(SMOKE_JOB, "spec.template.spec.containers", [{"name": "c", "image": "a"}, {"name": "c", "image": "b"}]),
        ("Duplicate value", INVALID),
    )
    yield (
        "job-volume-mount-missing",
        _set(SMOKE_JOB, "spec.template.spec.containers[0].volumeMounts", [{"name": "x", "mountPath": "/x"}]),
        ("volumeMounts", INVALID),
    )
    yield (
        "job-cpu-word",
        _set(SMOKE_JOB, "spec.template.spec.containers[0].resources", {"limits": {"cpu": "x"}}),
        ("cpu", INVALID, QUANTITY),
    )
    yield "job-selector-string", _set(SMOKE_JOB, "spec.selector", "app=x"), ("selector",)
    yield "job-completion-mode", _set(SMOKE_JOB, "spec.completionMode", "Sometimes"), ("completionMode", INVALID)


def _model_deployment_cases() -> Iterator[HostileCase]:
    for name, path, value, expect in _template_cases():
        yield HostileCase(f"md-{name}", "ModelDeployment", _set(_model_deployment("h"), path, value), expect)
    for name, job, expect in _job_template_cases():
        document = _set(_model_deployment("h"), "spec.smokeTest", {"jobTemplate": job, "timeout": "2m"})
        yield HostileCase(f"md-smoke-{name}", "ModelDeployment", document, expect)
    for name, value in (
        ("name-63", "m" * 63),
        ("name-57", "m" * 57),
        ("name-200", "m" * 200),
        ("name-dot", "my.model.v2"),
        ("name-leading-digit", "1model"),
        ("name-trailing-dash-ish", "model-"),
        ("name-253", "a" * 253),
    ):
        document = _model_deployment("h")
        document["metadata"]["name"] = value
        yield HostileCase(f"md-{name}", "ModelDeployment", document, ("metadata.name",))
    big = "x" * (300 * 1024)
    field_cases: list[tuple[str, str, Any, tuple[str, ...]]] = [
        ("uri-300k", "spec.model.uri", "s3://" + big, ("uri",)),
        ("uri-empty", "spec.model.uri", "", ("uri",)),
        ("version-200", "spec.model.version", "v" * 200, ("version",)),
        ("model-name-300", "spec.model.name", "n" * 300, ("name",)),
        ("framework-long", "spec.model.framework", "f" * 64, ("framework",)),
        ("digest-bad", "spec.model.digest", "md5:zz", ("digest",)),
        ("lineage-data-long", "spec.model.lineage.data", "d" * 3000, ("data",)),
        ("lineage-code-long", "spec.model.lineage.code", "c" * 300, ("code",)),
        ("lineage-params-many", "spec.model.lineage.params", {f"p{i}": "1" for i in range(65)}, ("params",)),
        ("lineage-param-long", "spec.model.lineage.params", {"p": "v" * 2000}, ("params",)),
        ("lineage-param-key-long", "spec.model.lineage.params", {"k" * 200: "v"}, ("lineage",)),
        ("lineage-metrics-string", "spec.model.lineage.metrics", {"auc": "high"}, ("metrics",)),
        ("lineage-metrics-many", "spec.model.lineage.metrics", {f"m{i}": 1.0 for i in range(65)}, ("metrics",)),
        ("replicas-zero", "spec.replicas", 0, ("replicas",)),
        ("replicas-negative", "spec.replicas", -1, ("replicas",)),
        ("replicas-huge", "spec.replicas", 10**12, ("replicas",)),
        ("replicas-string", "spec.replicas", "two", ("replicas",)),
        ("port-zero", "spec.port", 0, ("port",)),
        ("port-huge", "spec.port", 70000, ("port",)),
        ("port-name", "spec.port", "http", ("port",)),
        ("steps-empty", "spec.strategy", {"canary": {"steps": []}}, ("steps",)),
        ("steps-weight-zero", "spec.strategy", {"canary": {"steps": [{"weight": 0}]}}, ("weight",)),
        ("steps-weight-101", "spec.strategy", {"canary": {"steps": [{"weight": 101}]}}, ("weight",)),
        ("steps-decreasing", "spec.strategy", {"canary": {"steps": [{"weight": 50}, {"weight": 5}]}}, ("weights",)),
        ("steps-21", "spec.strategy", {"canary": {"steps": [{"weight": i} for i in range(1, 22)]}}, ("steps",)),
        (
            "pause-bad-duration",
            "spec.strategy",
            {"canary": {"steps": [{"weight": 5, "pause": {"duration": "5x"}}]}},
            ("duration",),
        ),
        (
            "pause-negative",
            "spec.strategy",
            {"canary": {"steps": [{"weight": 5, "pause": {"duration": "-1s"}}]}},
            ("duration",),
        ),
        ("interval-bad", "spec.analysis", {"interval": "soon"}, ("interval",)),
        ("window-empty", "spec.analysis", {"window": ""}, ("window",)),
        ("failure-limit-zero", "spec.analysis", {"failureLimit": 0}, ("failureLimit",)),
        ("revision-history-zero", "spec.revisionHistoryLimit", 0, ("revisionHistoryLimit",)),
        ("router-unknown", "spec.trafficRouting", {"router": "nginx"}, ("router",)),
        ("router-gateway-no-route", "spec.trafficRouting", {"router": "gatewayAPI"}, ("gatewayAPI",)),
        (
            "router-gateway-bad-route",
            "spec.trafficRouting",
            {"router": "gatewayAPI", "gatewayAPI": {"httpRoute": "A_B"}},
            ("httpRoute",),
        ),
        ("router-istio-no-vs", "spec.trafficRouting", {"router": "istio"}, ("istio",)),
        ("paused-string", "spec.paused", "yes", ("paused",)),
        ("smoke-empty", "spec.smokeTest", {}, ("smokeTest",)),
        ("smoke-timeout-bad", "spec.smokeTest", {"builtin": {}, "timeout": "forever"}, ("timeout",)),
        ("smoke-predict-path-relative", "spec.smokeTest", {"builtin": {"predictPath": "predict"}}, ("predictPath",)),
        ("smoke-health-path-space", "spec.smokeTest", {"builtin": {"healthPath": "/a b"}}, ("healthPath",)),
        ("smoke-image-empty", "spec.smokeTest", {"builtin": {"image": ""}}, ("image",)),
        ("smoke-shape-zero", "spec.smokeTest", {"builtin": {"expectedShape": 0}}, ("expectedShape",)),
        (
            "smoke-range-inverted",
            "spec.smokeTest",
            {"builtin": {"outputRange": {"min": 1, "max": 0}}},
            ("outputRange",),
        ),
        (
            "smoke-golden-key-bad",
            "spec.smokeTest",
            {"builtin": {"goldenInputs": {"name": "golden", "key": "a/b"}}},
            ("key",),
        ),
        (
            "smoke-golden-missing",
            "spec.smokeTest",
            {"builtin": {"goldenInputs": {"name": "no-such-golden", "key": "inputs.json"}}},
            ("no-such-golden",),
        ),
        ("spec-unknown-field", "spec.modelz", {"name": "x"}, ("modelz", "model")),
        ("spec-no-model", "spec.model", None, ("model",)),
        ("spec-no-template", "spec.template", None, ("template",)),
    ]
    for name, path, value, expect in field_cases:
        yield HostileCase(f"md-{name}", "ModelDeployment", _set(_model_deployment("h"), path, value), expect)
    query_cases: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
        (
            "guardrail-other-namespace",
            {"name": "leak", "query": f'sum(model_requests_total{{namespace="{OTHER_NAMESPACE}"}})', "max": 1},
            (OTHER_NAMESPACE,),
        ),
        (
            "guardrail-regex-namespace",
            {"name": "leak", "query": 'sum(model_requests_total{namespace=~".+"})', "max": 1},
            ("namespace=~",),
        ),
        (
            "guardrail-not-namespace",
            {"name": "leak", "query": 'sum(model_requests_total{namespace!="x"})', "max": 1},
            ("namespace!=",),
        ),
        ("guardrail-info", {"name": "leak", "query": "sum(info(up))", "max": 1}, ("info()",)),
        (
            "guardrail-does-not-parse",
            {"name": "broken", "query": "sum(rate(x[5m]", "max": 1},
            ("broken", "parse", "unclosed"),
        ),
        (
            "guardrail-unknown-placeholder",
            {"name": "tpl", "query": 'x{revision="{{rev}}"}', "max": 1},
            ("placeholder",),
        ),
        (
            "guardrail-unbalanced-placeholder",
            {"name": "tpl", "query": 'x{revision="{{revision"}', "max": 1},
            ("placeholder",),
        ),
        ("guardrail-no-limit", {"name": "nolimit", "query": "up"}, ("max, min or relativeToStable",)),
        (
            "guardrail-both",
            {"name": "both", "query": "up", "max": 1, "proportion": {"errorsQuery": "a", "totalQuery": "b"}},
            ("exactly one",),
        ),
        ("guardrail-name-bad", {"name": "bad name", "query": "up", "max": 1}, ("name",)),
        ("guardrail-min-above-max", {"name": "mm", "query": "up", "max": 1, "min": 2}, ("min",)),
        (
            "guardrail-ratio-negative",
            {"name": "rel", "query": "up", "relativeToStable": {"maxRatio": -1}},
            ("maxRatio",),
        ),
        ("guardrail-query-300k", {"name": "big", "query": "up + " * 60000 + "up", "max": 1}, ("query", "Too long")),
    ]
    for name, metric, expect in query_cases:
        document = _set(_model_deployment("h"), "spec.analysis", {"metrics": [metric]})
        yield HostileCase(f"md-{name}", "ModelDeployment", document, expect)
    breaker = {"name": "cb", "query": f'sum(errors_total{{namespace="{OTHER_NAMESPACE}"}})', "max": 1}
    yield HostileCase(
        "md-circuit-breaker-other-namespace",
        "ModelDeployment",
        _set(_model_deployment("h"), "spec.circuitBreaker", [breaker]),
        (OTHER_NAMESPACE,),
    )
    yield HostileCase(
        "md-circuit-breaker-17",
        "ModelDeployment",
        _set(_model_deployment("h"), "spec.circuitBreaker", [dict(breaker, name=f"cb{i}") for i in range(17)]),
        ("circuitBreaker",),
    )


def _drift_monitor_cases() -> Iterator[HostileCase]:
    cases: list[tuple[str, str, Any, tuple[str, ...]]] = [
        ("target-missing", "spec.targetRef", "no-such-model", ("no-such-model",)),
        ("target-invalid", "spec.targetRef", "Bad_Target", ("targetRef",)),
        ("target-empty", "spec.targetRef", "", ("targetRef",)),
        (
            "reference-missing-configmap",
            "spec.reference",
            {"configMapRef": {"name": "no-such-ref", "key": "r.json"}},
            ("no-such-ref",),
        ),
        (
            "reference-both",
            "spec.reference",
            {"configMapRef": {"name": "a", "key": "b"}, "inline": {}},
            ("exactly one",),
        ),
        ("reference-none", "spec.reference", {}, ("exactly one",)),
        (
            "reference-inline-garbage",
            "spec.reference",
            {"inline": {"features": "not a list"}},
            ("Reference", "reference"),
        ),
        ("reference-inline-empty", "spec.reference", {"inline": {}}, ("Reference", "reference")),
        ("reference-key-bad", "spec.reference", {"configMapRef": {"name": "a", "key": "../etc"}}, ("key",)),
        ("interval-bad", "spec.interval", "1x", ("interval",)),
        ("window-bad", "spec.window", "forever", ("window",)),
        ("methods-empty", "spec.methods", [], ("methods",)),
        ("methods-unknown", "spec.methods", [{"name": "magic"}], ("name",)),
        ("methods-seven", "spec.methods", [{"name": "psi"}] * 7, ("methods",)),
        ("method-threshold-negative", "spec.methods", [{"name": "psi", "threshold": -1}], ("threshold",)),
        ("method-warning-above", "spec.methods", [{"name": "psi", "threshold": 0.1, "warning": 0.5}], ("warning",)),
        ("method-p-value-one", "spec.methods", [{"name": "ks", "pValue": 1}], ("pValue",)),
        ("features-too-many", "spec.features", [f"f{i}" for i in range(2001)], ("features",)),
        ("feature-name-long", "spec.features", ["f" * 300], ("features",)),
        ("feature-name-empty", "spec.features", [""], ("features",)),
        ("features-string", "spec.features", "age", ("features",)),
        ("min-samples-zero", "spec.minSamples", 0, ("minSamples",)),
        ("history-limit-huge", "spec.historyLimit", 201, ("historyLimit",)),
        ("action-unknown", "spec.action", "Delete", ("action",)),
        ("series-histogram-braces", "spec.series", {"featureHistogram": 'x{a="b"}'}, ("featureHistogram",)),
        ("series-prefix-space", "spec.series", {"qualityPrefix": "a b"}, ("qualityPrefix",)),
        ("series-matcher-key-bad", "spec.series", {"matchers": {"bad-key": "x"}}, ("matchers",)),
        ("series-matchers-many", "spec.series", {"matchers": {f"k{i}": "v" for i in range(17)}}, ("matchers",)),
        ("series-matcher-value-long", "spec.series", {"matchers": {"job": "j" * 2000}}, ("matchers",)),
        ("series-revision-bad", "spec.series", {"revision": "newest"}, ("revision",)),
        ("performance-drop-two", "spec.performance", {"maxAccuracyDrop": 2}, ("maxAccuracyDrop",)),
        ("performance-ratio-half", "spec.performance", {"maxErrorIncreaseRatio": 0.5}, ("maxErrorIncreaseRatio",)),
        ("quality-rate-two", "spec.dataQuality", {"maxMissingRate": 2}, ("maxMissingRate",)),
        ("webhook-no-secret", "spec.alerting", {"webhook": {"urlSecretRef": {"key": "url"}}}, ("name",)),
        ("webhook-key-bad", "spec.alerting", {"webhook": {"urlSecretRef": {"name": "s", "key": "a b"}}}, ("key",)),
        ("remind-bad", "spec.alerting", {"remindAfter": "later"}, ("remindAfter",)),
        ("spec-unknown-field", "spec.targetRefs", ["a"], ("targetRefs", "targetRef")),
    ]
    for name, path, value, expect in cases:
        yield HostileCase(f"dm-{name}", "DriftMonitor", _set(_drift_monitor("h"), path, value), expect)
    for name, value in (("name-underscore", "drift_monitor"), ("name-upper", "Drift"), ("name-300", "d" * 300)):
        document = _drift_monitor("h")
        document["metadata"]["name"] = value
        yield HostileCase(f"dm-{name}", "DriftMonitor", document, ("metadata.name", "name"))


def _experiment_cases() -> Iterator[HostileCase]:
    metric = "spec.primaryMetric"
    cases: list[tuple[str, str, Any, tuple[str, ...]]] = [
        ("mde-1e-9", f"{metric}.minimumDetectableEffect", 1e-9, ("minimumDetectableEffect",)),
        ("mde-zero", f"{metric}.minimumDetectableEffect", 0, ("minimumDetectableEffect",)),
        ("mde-huge", f"{metric}.minimumDetectableEffect", 1e6, ("minimumDetectableEffect",)),
        ("baseline-zero", f"{metric}.baseline", 0, ("baseline",)),
        ("baseline-above-one", f"{metric}.baseline", 1.5, ("baseline",)),
        ("baseline-tiny-mde-tiny", f"{metric}.baseline", 1e-12, ("minimumDetectableEffect", "baseline")),
        ("baseline-huge", f"{metric}.baseline", 1e300, ("baseline",)),
        (
            "mean-without-sums",
            metric,
            {"name": "m", "kind": "mean", "totalQuery": "x", "baseline": 1, "minimumDetectableEffect": 0.1},
            ("sumQuery",),
        ),
        (
            "mean-without-std",
            metric,
            {
                "name": "m",
                "kind": "mean",
                "totalQuery": "x",
                "sumQuery": "s",
                "sumSquaresQuery": "q",
                "baseline": 1,
                "minimumDetectableEffect": 0.1,
            },
            ("baselineStd",),
        ),
        (
            "mean-mde-below-std",
            metric,
            {
                "name": "m",
                "kind": "mean",
                "totalQuery": "x",
                "sumQuery": "s",
                "sumSquaresQuery": "q",
                "baseline": 1,
                "baselineStd": 1e9,
                "minimumDetectableEffect": 0.0001,
            },
            ("minimumDetectableEffect",),
        ),
        ("metric-kind-unknown", f"{metric}.kind", "median", ("kind",)),
        ("metric-query-300k", f"{metric}.successQuery", "up + " * 60000 + "up", ("successQuery",)),
        ("metric-name-bad", f"{metric}.name", "a b", ("name",)),
        ("alpha-zero", "spec.alpha", 0, ("alpha",)),
        ("alpha-1e-9", "spec.alpha", 1e-9, ("alpha",)),
        ("alpha-half", "spec.alpha", 0.5, ("alpha",)),
        ("power-one", "spec.power", 1, ("power",)),
        ("power-0.99999999", "spec.power", 0.99999999, ("power",)),
        ("power-half", "spec.power", 0.5, ("power",)),
        ("srm-zero", "spec.srmPValue", 0, ("srmPValue",)),
        ("min-samples-zero", "spec.minSamples", 0, ("minSamples",)),
        ("window-bad", "spec.window", "a while", ("window",)),
        ("max-duration-bad", "spec.maxDuration", "7days", ("maxDuration",)),
        ("mode-unknown", "spec.mode", "Canary", ("mode",)),
        ("router-replicas", "spec.trafficRouting", {"router": "replicas"}, ("router",)),
        ("router-gateway-missing", "spec.trafficRouting", {"router": "gatewayAPI"}, ("gatewayAPI",)),
        ("challengers-empty", "spec.challengers", [], ("challengers",)),
        (
            "challengers-nine",
            "spec.challengers",
            [{"name": f"c{i}", "modelDeployment": f"m{i}"} for i in range(9)],
            ("challengers",),
        ),
        (
            "challenger-same-name",
            "spec.challengers",
            [{"name": "champion", "modelDeployment": "returns-b"}],
            ("unique",),
        ),
        (
            "challenger-same-deployment",
            "spec.challengers",
            [{"name": "b", "modelDeployment": "returns-a"}],
            ("own ModelDeployment",),
        ),
        (
            "challenger-weight-zero",
            "spec.challengers",
            [{"name": "b", "modelDeployment": "m", "weight": 0}],
            ("positive weight",),
        ),
        (
            "challenger-weight-101",
            "spec.challengers",
            [{"name": "b", "modelDeployment": "m", "weight": 101}],
            ("weight",),
        ),
        ("challenger-name-upper", "spec.challengers", [{"name": "B", "modelDeployment": "m"}], ("name",)),
        (
            "challenger-deployment-dot-upper",
            "spec.challengers",
            [{"name": "b", "modelDeployment": "M.x"}],
            ("modelDeployment",),
        ),
        ("shadow-two", "spec", None, ()),
        ("assignment-header-space", "spec.assignment", {"header": "x user"}, ("header",)),
        ("assignment-arm-header-colon", "spec.assignment", {"armHeader": "x:arm"}, ("armHeader",)),
        ("assignment-salt-long", "spec.assignment", {"salt": "s" * 300}, ("salt",)),
        ("guardrail-no-limit", "spec.guardrails", [{"name": "g", "query": "up"}], ("guardrail needs",)),
        ("guardrail-query-empty", "spec.guardrails", [{"name": "g", "query": "", "max": 1}], ("query",)),
        (
            "guardrails-17",
            "spec.guardrails",
            [{"name": f"g{i}", "query": "up", "max": 1} for i in range(17)],
            ("guardrails",),
        ),
        (
            "secondary-17",
            "spec.secondaryMetrics",
            [{"name": f"s{i}", "kind": "proportion", "successQuery": "a", "totalQuery": "b"} for i in range(17)],
            ("secondaryMetrics",),
        ),
        ("traffic-rate-query-empty", "spec.trafficRateQuery", "", ("trafficRateQuery",)),
        ("arms-missing", "spec.challengers", [{"name": "b", "modelDeployment": "no-such-model"}], ("no-such-model",)),
        ("spec-unknown-field", "spec.champions", [], ("champions", "champion")),
    ]
    for name, path, value, expect in cases:
        if name == "shadow-two":
            document = _experiment("h")
            document["spec"]["mode"] = "Shadow"
            document["spec"]["challengers"].append({"name": "c2", "modelDeployment": "returns-c"})
            yield HostileCase("exp-shadow-two-challengers", "Experiment", document, ("shadow",))
            continue
        yield HostileCase(f"exp-{name}", "Experiment", _set(_experiment("h"), path, value), expect)
    for name, value in (("name-space", "ab test"), ("name-300", "e" * 300)):
        document = _experiment("h")
        document["metadata"]["name"] = value
        yield HostileCase(f"exp-{name}", "Experiment", document, ("metadata.name", "name"))


GENERATORS: tuple[Callable[[], Iterator[HostileCase]], ...] = (
    _model_deployment_cases,
    _drift_monitor_cases,
    _experiment_cases,
)


def generate() -> list[HostileCase]:
    """Every case, named uniquely; object names are the case's index (the name cases keep their own)."""
    cases: list[HostileCase] = []
    for generator in GENERATORS:
        cases.extend(generator())
    numbered = []
    for index, case in enumerate(cases):
        document = copy.deepcopy(case.document)
        if document["metadata"]["name"] == "h":
            document["metadata"]["name"] = f"h{index:03d}"
        numbered.append(HostileCase(case.name, case.kind, document, case.expect))
    names = [c.name for c in numbered]
    assert len(names) == len(set(names)), "case names must be unique"
    return numbered


if __name__ == "__main__":
    counts = Counter(case.kind for case in generate())
    print(", ".join(f"{kind}: {count}" for kind, count in sorted(counts.items())), f"(total {sum(counts.values())})")
