"""The registry of our custom resource kinds: one place that names them all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelrollout import GROUP
from modelrollout.api import driftmonitor, experiment, modeldeployment
from modelrollout.api.base import ApiModel, StatusModel


@dataclass(frozen=True, slots=True)
class Kind:
    """What the CRD generator and the handlers need to know about a kind."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[ApiModel]
    status: type[StatusModel]
    printer_columns: tuple[dict[str, Any], ...]
    description: str
    name_rules: tuple[dict[str, str], ...] = ()
    """CEL rules on ``metadata.name`` (derived object names must be valid), checked at the schema's root."""

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


MODEL_DEPLOYMENT = Kind(
    kind=modeldeployment.KIND,
    plural=modeldeployment.PLURAL,
    short_names=("mdep",),
    spec=modeldeployment.ModelDeploymentSpec,
    status=modeldeployment.ModelDeploymentStatus,
    printer_columns=tuple(modeldeployment.PRINTER_COLUMNS),
    description="A model version served by a pod template, rolled out as a canary gated on smoke tests and "
    "Prometheus guardrails, with automatic rollback to the stable revision.",
    name_rules=modeldeployment.NAME_RULES,
)

DRIFT_MONITOR = Kind(
    kind=driftmonitor.KIND,
    plural=driftmonitor.PLURAL,
    short_names=("dmon",),
    spec=driftmonitor.DriftMonitorSpec,
    status=driftmonitor.DriftMonitorStatus,
    printer_columns=tuple(driftmonitor.PRINTER_COLUMNS),
    description="Compares a ModelDeployment's live feature, prediction and performance distributions from "
    "Prometheus with its training reference, and alerts or acts on drift.",
)

EXPERIMENT = Kind(
    kind=experiment.KIND,
    plural=experiment.PLURAL,
    short_names=("mexp",),
    spec=experiment.ExperimentSpec,
    status=experiment.ExperimentStatus,
    printer_columns=tuple(experiment.PRINTER_COLUMNS),
    description="An A/B or shadow test of a champion model against challengers, with sample-size planning, "
    "always-valid sequential statistics, SRM checks and a decision.",
)

ALL_KINDS: tuple[Kind, ...] = (MODEL_DEPLOYMENT, DRIFT_MONITOR, EXPERIMENT)
CATEGORY = "modelrollout"
