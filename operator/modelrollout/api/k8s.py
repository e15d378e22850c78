"""Kubernetes' own schemas of the templates a spec embeds, so the API server judges them at apply time.

Generated from the OpenAPI definitions of the pinned Kubernetes release by
``hack/tools/k8s_schemas.py`` (trimmed to a structural schema, without descriptions or defaults)
and committed as ``k8s_schemas.json`` beside this module.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

_DATA: dict[str, Any] = json.loads(resources.files(__package__).joinpath("k8s_schemas.json").read_text())

POD_TEMPLATE_SPEC: dict[str, Any] = _DATA["podTemplateSpec"]
"""core/v1 PodTemplateSpec."""
JOB_TEMPLATE_SPEC: dict[str, Any] = _DATA["jobTemplateSpec"]
"""batch/v1 JobTemplateSpec."""
