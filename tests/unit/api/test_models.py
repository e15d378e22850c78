"""The API models accept the examples and reject bad input with a message that names the field."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from modelrollout.api.base import duration_seconds, format_duration
from modelrollout.api.conditions import set_condition
from modelrollout.api.modeldeployment import CanaryStrategy, ModelDeploymentSpec
from tests.cases import kind_of, load_examples, load_invalid

EXAMPLES = load_examples()
INVALID = load_invalid()


@pytest.mark.parametrize(("name", "document"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_examples_parse(name: str, document: dict) -> None:
    kind_of(document).spec.model_validate(document["spec"])


OPERATOR_SIDE = [c for c in INVALID if not c.apiserver_only]


@pytest.mark.parametrize("case", OPERATOR_SIDE, ids=[c.name for c in OPERATOR_SIDE])
def test_invalid_input_is_rejected_with_a_clear_message(case) -> None:
    with pytest.raises(ValidationError) as error:
        case.kind.spec.model_validate(case.document["spec"])
    assert case.expected in str(error.value)


def test_defaults_are_the_documented_rollout() -> None:
    spec = ModelDeploymentSpec.model_validate({"model": {"name": "m", "version": "1", "uri": "s3://m"}, "template": {}})
    assert [s.weight for s in spec.strategy.canary.steps] == [5, 25, 50, 100]
    assert spec.analysis.on_no_data == "Rollback"
    assert spec.analysis.on_step_timeout == "Hold"
    assert spec.traffic_routing.router == "replicas"


def test_wire_form_round_trips() -> None:
    _, document = next((n, d) for n, d in EXAMPLES if d["kind"] == "ModelDeployment")
    spec = ModelDeploymentSpec.model_validate(document["spec"])
    assert ModelDeploymentSpec.model_validate(spec.to_wire()) == spec


@given(st.lists(st.integers(min_value=-5, max_value=110), min_size=1, max_size=8))
def test_step_rule_accepts_exactly_strictly_increasing_weights_within_1_to_100(weights: list[int]) -> None:
    valid = all(1 <= w <= 100 for w in weights) and all(a < b for a, b in itertools.pairwise(weights))
    try:
        CanaryStrategy.model_validate({"steps": [{"weight": w} for w in weights]})
    except ValidationError:
        assert not valid
    else:
        assert valid


@given(st.integers(min_value=1, max_value=10**7))
def test_format_duration_round_trips(seconds: int) -> None:
    assert duration_seconds(format_duration(seconds)) == seconds


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("1h30m", 5400), ("7d", 604800), ("250ms", 0.25)])
def test_duration_seconds(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


def test_set_condition_keeps_transition_time_when_status_is_unchanged() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    conditions = set_condition([], "Available", "True", reason="Stable", message="", now=t0)
    later = set_condition(conditions, "Available", "True", reason="StillStable", message="x", now=t0 + timedelta(1))
    assert later[0].last_transition_time == t0
    assert later[0].reason == "StillStable"
    flipped = set_condition(later, "Available", "False", reason="Down", message="", now=t0 + timedelta(2))
    assert flipped[0].last_transition_time == t0 + timedelta(2)
