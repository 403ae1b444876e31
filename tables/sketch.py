"""A mergeable, subtractable relative-error quantile sketch.

The index mapping is DDSketch's (``ddsketch.mapping.LogarithmicMapping``):
value ``x > 0`` falls in bin ``k = ceil(log_gamma(x))`` and the bin is read back
as a value within ``RELATIVE_ACCURACY`` of every ``x`` it holds. The bins are a
plain ``{key: count}`` dict so sketches can be *subtracted* as well as merged:
a rolling window adds the minute that enters it and subtracts the one that
leaves it, and a changed partition aggregate is applied as new minus old.

Error guarantee (tested in ``tests/test_sketch.py``): for any multiset of
non-negative values and any ``q`` in [0, 1], :func:`quantile` returns ``v'``
with ``|v' - v| <= RELATIVE_ACCURACY * v``, where ``v`` is the exact lower
quantile, the element of rank ``floor(q * (n - 1))`` in sorted order (the
same rank rule as DDSketch). Zero is kept exactly in its own bin.
"""

from __future__ import annotations

import math
from typing import Final

from ddsketch.mapping import LogarithmicMapping

RELATIVE_ACCURACY: Final = 0.01
_MAPPING: Final = LogarithmicMapping(RELATIVE_ACCURACY)
#: Values at or below the smallest the mapping can index are counted as exactly zero
#: (waits of 0 s are common); everything above keeps the relative-error guarantee.
_MIN_VALUE: Final = _MAPPING.min_possible
ZERO_KEY: Final = -(2**62)

Bins = dict[int, int]
# The mapping's own key formula (LogarithmicMapping.key: ceil(log2(x) * multiplier)
# + offset) with its constants, so the hot path makes no call into Python code;
# tests/test_sketch.py checks it against _MAPPING.key.
_MULTIPLIER: Final[float] = _MAPPING._multiplier
_OFFSET: Final[float] = _MAPPING._offset


def key_of(value: float) -> int:
    return int(math.ceil(math.log(value, 2) * _MULTIPLIER) + _OFFSET)


def add(bins: Bins, value: float) -> None:
    k = key_of(value) if value > _MIN_VALUE else ZERO_KEY
    bins[k] = bins.get(k, 0) + 1


def merge(dst: Bins, src: Bins) -> None:
    for k, c in src.items():
        dst[k] = dst.get(k, 0) + c


def add_signed(dst: Bins, src: Bins) -> None:
    """:func:`merge` for counts that may be negative (a delta): a bin that reaches 0 goes,
    so an empty sketch stays ``{}``."""
    for k, c in src.items():
        left = dst.get(k, 0) + c
        if left:
            dst[k] = left
        else:
            dst.pop(k, None)


def subtract(dst: Bins, src: Bins) -> None:
    for k, c in src.items():
        left = dst.get(k, 0) - c
        if left:
            dst[k] = left
        else:
            dst.pop(k, None)


def count(bins: Bins) -> int:
    return sum(bins.values())


def quantile(bins: Bins, q: float) -> float | None:
    """Lower quantile (rank ``floor(q*(n-1))``) within the relative accuracy; None if empty."""
    n = count(bins)
    if n <= 0:
        return None
    rank = q * (n - 1)
    running = 0
    for k in sorted(bins):
        running += bins[k]
        if running > rank:
            return 0.0 if k == ZERO_KEY else float(_MAPPING.value(k))
    k = max(bins)
    return 0.0 if k == ZERO_KEY else float(_MAPPING.value(k))
