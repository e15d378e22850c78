"""What one evaluation asks Prometheus, and the inputs it is planned from.

The engine reads the reference (:func:`parse_reference`) and the target's revision
(:func:`revision_label`), then runs the queries of :func:`plan_queries`: one per metric family,
each grouped by feature, so 200 features cost as many queries as one. Every value the spec or the
cluster supplies is a template variable the engine escapes when it renders the query.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from modelrollout.api.driftmonitor import DriftMonitorSpec
from modelrollout.core.drift.outcomes import Failure
from modelrollout.references import Reference
from modelrollout.stats.drift import DriftThresholds

# --- series names of docs/metrics-contract.md that the spec does not rename ---------------------------------------

FEEDBACK_TOTAL = "model_feedback_total"
DIRECTION_CORRECT_TOTAL = "model_direction_correct_total"
ABS_ERROR = "model_abs_error"

QueryName = Literal[
    "numeric",
    "categorical",
    "prediction",
    "observations",
    "missing",
    "outOfRange",
    "outliers",
    "feedback",
    "directionCorrect",
    "absErrorSum",
    "absErrorCount",
]
QUALITY_COUNTERS: dict[QueryName, str] = {
    "observations": "observations",
    "missing": "missing",
    "outOfRange": "out_of_range",
    "outliers": "outliers",
}
"""The data-quality queries and their counters (``<qualityPrefix>_<counter>_total``, by feature)."""
PERFORMANCE_SERIES: dict[QueryName, str] = {
    "feedback": FEEDBACK_TOTAL,
    "directionCorrect": DIRECTION_CORRECT_TOTAL,
    "absErrorSum": ABS_ERROR + "_sum",
    "absErrorCount": ABS_ERROR + "_count",
}
"""The performance queries and their series (summed over every label)."""


class Series(Protocol):
    """One series of an instant vector (``modelrollout.metrics.Sample`` is one)."""

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def value(self) -> float: ...


Answers = Mapping[QueryName, Sequence[Series]]


@dataclass(frozen=True, slots=True)
class DriftQuery:
    """A PromQL template and its variables; the engine renders it (escaping every value) and runs it."""

    name: QueryName
    template: str
    variables: Mapping[str, str]


def parse_reference(source: str | bytes | Mapping[str, Any]) -> Reference | Failure:
    """The reference, or ReferenceInvalid with pydantic's account of what is wrong (first three errors)."""
    try:
        if isinstance(source, Mapping):
            return Reference.model_validate(dict(source))
        return Reference.model_validate_json(source)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in e['loc']) or 'reference'}: {e['msg']}" for e in error.errors()[:3]
        ]
        more = f" (and {error.error_count() - 3} more)" if error.error_count() > 3 else ""
        return Failure("ReferenceInvalid", "; ".join(problems) + more)


def revision_label(spec: DriftMonitorSpec, target_status: Mapping[str, Any]) -> str | Failure | None:
    """The revision label value whose traffic is judged; None means every revision ("all")."""
    if spec.series.revision == "all":
        return None
    field = "stableRevision" if spec.series.revision == "stable" else "currentRevision"
    revision = target_status.get(field)
    if not isinstance(revision, Mapping) or not revision.get("hash"):
        return Failure(
            "RevisionUnknown",
            f"ModelDeployment {spec.target_ref} has no status.{field} yet, so its {spec.series.revision} "
            "revision's traffic cannot be selected",
        )
    return str(revision["hash"])


def watched_features(spec: DriftMonitorSpec, reference: Reference) -> list[str]:
    """The spec's features in its order, or every feature of the reference."""
    return list(spec.features) if spec.features else [f.name for f in reference.features]


def plan_queries(
    spec: DriftMonitorSpec, reference: Reference, *, namespace: str, revision: str | None
) -> list[DriftQuery]:
    """One query per metric family, each grouped by feature (and bucket or category).

    A family with nothing to judge is not queried: no categorical features, no prediction
    histogram in the reference, data quality or performance turned off.
    """
    selector, variables = _selector(spec, namespace, revision)
    variables["window"] = spec.window
    series = spec.series
    watched = set(watched_features(spec, reference))
    kinds = {f.type for f in reference.features if f.name in watched}

    def increase(name: QueryName, by: str, family: str, suffix: str) -> DriftQuery:
        aggregate = f"sum by ({by})" if by else "sum"
        template = f"{aggregate} (increase({{{{family}}}}{suffix}{selector}[{{{{window}}}}]))"
        return DriftQuery(name, template, {**variables, "family": family})

    queries: list[DriftQuery] = []
    if "numeric" in kinds:
        queries.append(increase("numeric", "feature, le", series.feature_histogram, "_bucket"))
    if "categorical" in kinds:
        queries.append(increase("categorical", "feature, category", series.feature_categories, ""))
    if spec.prediction and reference.prediction is not None:
        queries.append(increase("prediction", "le", series.prediction_histogram, "_bucket"))
    if spec.data_quality is not None:
        for name, counter in QUALITY_COUNTERS.items():
            queries.append(increase(name, "feature", series.quality_prefix, f"_{counter}_total"))
    if spec.performance is not None:
        for name, metric in PERFORMANCE_SERIES.items():
            queries.append(increase(name, "", metric, ""))
    return queries


def _selector(spec: DriftMonitorSpec, namespace: str, revision: str | None) -> tuple[str, dict[str, str]]:
    """Label matchers as a template: names stand outside quotes (render() lets only identifiers through)."""
    matchers = ['namespace="{{namespace}}"']
    variables = {"namespace": namespace}
    if revision is not None:
        matchers.append('revision="{{revision}}"')
        variables["revision"] = revision
    for index, (label, value) in enumerate(sorted(spec.series.matchers.items())):
        matchers.append(f'{{{{label_{index}}}}}="{{{{value_{index}}}}}"')
        variables[f"label_{index}"] = label
        variables[f"value_{index}"] = value
    return "{" + ", ".join(matchers) + "}", variables


def thresholds_of(spec: DriftMonitorSpec) -> DriftThresholds:
    """The stats package's thresholds with the spec's overrides; unset values keep the documented defaults.

    ``alpha`` is the whole evaluation's budget; :func:`~.evaluation.evaluate` splits it across the distributions.
    """
    changes: dict[str, float] = {"min_samples": float(spec.min_samples), "alpha": spec.alpha}
    for method in spec.methods:
        threshold, warning, p_value = method.threshold, method.warning, method.p_value
        if method.name == "psi":
            changes |= _set(psi_drift=threshold, psi_warning=warning)
        elif method.name == "ks":
            changes |= _set(ks_min_statistic=threshold, ks_alpha=p_value)
        elif method.name == "jensenShannon":
            changes |= _set(jensen_shannon_drift=threshold, jensen_shannon_warning=warning)
        elif method.name == "chiSquare":
            changes |= _set(chi_square_min_cramers_v=threshold, chi_square_alpha=p_value)
        elif method.name == "wasserstein":
            changes |= _set(wasserstein_drift_sd=threshold, wasserstein_warning_sd=warning)
        else:
            changes |= _set(hellinger_drift=threshold, hellinger_warning=warning)
    return dataclasses.replace(DriftThresholds(), **changes)


def _set(**values: float | None) -> dict[str, float]:
    return {name: value for name, value in values.items() if value is not None}
