"""Status patches name the fields that became unset, or the API server would keep them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from modelrollout.engine.writing import merge_patch
from tests.support.kubernetes import apply_merge_patch

# Status is dumped without None values, so documents never hold null themselves.
values = st.recursive(
    st.integers() | st.text(max_size=3),
    lambda inner: st.dictionaries(st.text(max_size=2), inner, max_size=3) | st.lists(inner, max_size=2),
    max_leaves=8,
)
documents = st.dictionaries(st.text(max_size=2), values, max_size=4)


def test_an_unset_field_is_patched_to_null() -> None:
    old = {
        "phase": "Progressing",
        "stepStartedAt": "2026-11-25T12:00:00Z",
        "analysis": {"verdict": "Pass", "passes": 2},
    }
    new = {"phase": "Healthy", "analysis": {"passes": 2}}
    assert merge_patch(old, new) == {"phase": "Healthy", "stepStartedAt": None, "analysis": {"verdict": None}}


def test_no_change_is_an_empty_patch() -> None:
    assert merge_patch({"a": {"b": [1]}}, {"a": {"b": [1]}}) == {}


@given(documents, documents)
def test_applying_the_patch_gives_the_new_document(old: dict, new: dict) -> None:
    assert apply_merge_patch(old, merge_patch(old, new)) == new
