"""Deterministic, consistent assignment of a key (a user id) to an arm.

The same key must land in the same arm on every replica, in every language a
client or router is written in, and with no shared state. The algorithm is
therefore spelled out exactly, so that it can be reimplemented bit for bit:

1. ``digest = SHA-256(UTF-8(salt + ":" + key))``.
2. ``x = (first 8 bytes of digest as an unsigned big-endian 64-bit integer) >> 11``,
   a 53-bit integer.
3. ``u = x / 2**53`` as an IEEE-754 double: exact, uniform on [0, 1).
4. Running double sums of the weights in arm order, ``c_i = w_0 + ... + w_i``
   (added left to right), and ``total = c_last``.
5. The arm is the first ``i`` with ``u * total < c_i`` (one correctly rounded
   IEEE multiplication; arms with weight 0 are never chosen). Should rounding
   leave no such ``i``, the last arm with a positive weight is chosen.

Weights need not sum to 1 (``[90, 10]`` and ``[0.9, 0.1]`` agree up to the last
bit of rounding). Use a different salt per experiment, so that assignments of
different experiments are independent; keep the salt when weights change, so
that only users near the moved boundary switch arms.

Test vectors (``salt``, ``key``, ``weights`` -> ``u``, arm), checked against an
independent JavaScript implementation of the steps above::

    ("exp-checkout", "user-1", [50, 50])     -> u = 0.13214253014860122, arm 0
    ("exp-checkout", "user-4", [50, 50])     -> u = 0.7066919152839242,  arm 1
    ("exp-checkout", "user-5", [90, 10])     -> u = 0.5336279067687638,  arm 0
    ("ranker-v2", "carol", [1, 1, 1])        -> u = 0.7230253567813913,  arm 2
    ("ranker-v2", "zoë", [0, 3, 1])          -> u = 0.9747070397675582,  arm 2  (key is U+00EB)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

_MANTISSA_BITS = 53


def unit_hash(key: str, salt: str) -> float:
    """The uniform number in [0, 1) that ``key`` maps to under ``salt`` (steps 1 to 3)."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    top = int.from_bytes(digest[:8], "big") >> (64 - _MANTISSA_BITS)
    return top / float(1 << _MANTISSA_BITS)


def assign_arm(key: str, weights: Sequence[float], salt: str) -> int:
    """Index of the arm that ``key`` is assigned to under ``weights`` and ``salt`` (steps 4 and 5)."""
    if not weights:
        raise ValueError("no arms to assign to")
    if any(not 0 <= weight < math.inf for weight in weights):
        raise ValueError(f"weights must be finite non-negative numbers, got {list(weights)}")
    cumulative: list[float] = []
    running = 0.0
    for weight in weights:
        running += weight
        cumulative.append(running)
    if running <= 0:
        raise ValueError("at least one arm needs a positive weight")
    point = unit_hash(key, salt) * running
    for arm, bound in enumerate(cumulative):
        if point < bound:
            return arm
    return max(arm for arm, weight in enumerate(weights) if weight > 0)
