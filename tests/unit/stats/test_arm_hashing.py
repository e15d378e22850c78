"""Consistent hashing of keys to arms: test vectors, uniformity, stability."""

import hashlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from modelrollout.stats.hashing import assign_arm, unit_hash

# The same five vectors as the module docstring; an independent JavaScript implementation agrees.
VECTORS = [
    ("exp-checkout", "user-1", [50, 50], 0.13214253014860122, 0),
    ("exp-checkout", "user-4", [50, 50], 0.7066919152839242, 1),
    ("exp-checkout", "user-5", [90, 10], 0.5336279067687638, 0),
    ("ranker-v2", "carol", [1, 1, 1], 0.7230253567813913, 2),
    ("ranker-v2", "zo\u00eb", [0, 3, 1], 0.9747070397675582, 2),
]


@pytest.mark.parametrize(("salt", "key", "weights", "unit", "arm"), VECTORS)
def test_published_vectors(salt: str, key: str, weights: list[float], unit: float, arm: int) -> None:
    assert unit_hash(key, salt) == unit
    assert assign_arm(key, weights, salt) == arm


def test_unit_hash_follows_the_documented_steps() -> None:
    digest = hashlib.sha256(b"s:k").hexdigest()
    assert unit_hash("k", "s") == (int(digest[:16], 16) >> 11) / 2**53


def test_assignment_is_uniform_over_arms() -> None:
    arms = [assign_arm(f"user-{i}", [70, 20, 10], "uniformity") for i in range(60_000)]
    counts = np.bincount(arms, minlength=3)
    assert stats.chisquare(counts, f_exp=[42_000, 12_000, 6_000]).pvalue > 0.001


def test_growing_an_arm_only_moves_keys_into_it() -> None:
    keys = [f"user-{i}" for i in range(5000)]
    before = [assign_arm(k, [10, 90], "ramp") for k in keys]
    after = [assign_arm(k, [25, 75], "ramp") for k in keys]
    assert all(b == a for b, a in zip(before, after, strict=True) if b == 0)


def test_zero_weights_and_empty_arms_are_refused() -> None:
    with pytest.raises(ValueError, match="positive weight"):
        assign_arm("k", [0, 0], "s")
    with pytest.raises(ValueError, match="no arms"):
        assign_arm("k", [], "s")
    with pytest.raises(ValueError, match="finite non-negative"):
        assign_arm("k", [1, float("inf")], "s")


@given(st.text(), st.text(), st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=6))
def test_assignment_is_deterministic_and_never_picks_a_zero_weight(key: str, salt: str, weights: list[float]) -> None:
    if sum(weights) <= 0:
        return
    arm = assign_arm(key, weights, salt)
    assert arm == assign_arm(key, weights, salt)
    assert weights[arm] > 0
    assert 0.0 <= unit_hash(key, salt) < 1.0
