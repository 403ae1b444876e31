"""The quantile sketch's stated guarantee (tables/sketch.py docstring), merge and subtract."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables import sketch
from tables.sketch import RELATIVE_ACCURACY

QS = (0.0, 0.5, 0.9, 0.95, 0.99, 1.0)


def build(values: list[float]) -> sketch.Bins:
    bins: sketch.Bins = {}
    for v in values:
        sketch.add(bins, v)
    return bins


def exact_lower(values: list[float], q: float) -> float:
    return sorted(values)[math.floor(q * (len(values) - 1))]


def check_guarantee(values: list[float], qs: tuple[float, ...] = QS) -> None:
    bins = build(values)
    assert sketch.count(bins) == len(values)
    for q in qs:
        want = exact_lower(values, q)
        got = sketch.quantile(bins, q)
        assert got is not None
        # |v' - v| <= alpha * v, with a hair of float slack on the comparison itself
        assert abs(got - want) <= RELATIVE_ACCURACY * want * (1 + 1e-12), (q, want, got)


def _rng(seed: int) -> random.Random:
    return random.Random(seed)


DISTRIBUTIONS: dict[str, list[float]] = {
    "uniform 0-600": [_rng(1).uniform(0, 600) for _ in range(20_000)],
    "exponential mean 30": [_rng(2).expovariate(1 / 30) for _ in range(20_000)],
    "lognormal heavy tail": [_rng(3).lognormvariate(3, 2.5) for _ in range(20_000)],
    "constant": [42.0] * 5_000,
    "constant integer-valued": [20.0] * 3,
    "with zeros": [0.0] * 3_000 + [_rng(4).uniform(0, 50) for _ in range(7_000)],
    "all zeros": [0.0] * 100,
    "single value": [17.25],
    "microsecond-scale": [_rng(5).uniform(1e-6, 1e-3) for _ in range(10_000)],
    "1..10^6": [float(i) for i in range(1, 1_000_001)],
    "mixed magnitudes": [10.0 ** _rng(6).uniform(-6, 7) for _ in range(20_000)],
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_error_guarantee(name: str) -> None:
    check_guarantee(DISTRIBUTIONS[name])


def test_error_guarantee_below_a_nanosecond() -> None:
    # The docstring promises the bound for *any* non-negative values; sub-nanosecond
    # values (<= 1e-9) are currently read back as exactly 0.
    check_guarantee([1e-12 * (1 + i) for i in range(1000)])


def test_known_quantiles_of_one_to_hundred() -> None:
    bins = build([float(i) for i in range(1, 101)])
    # ranks floor(q * 99): q=0 -> 1, 0.5 -> 50 (rank 49), 0.9 -> 90 (rank 89), 1 -> 100
    for q, v in ((0.0, 1), (0.5, 50), (0.9, 90), (0.99, 99), (1.0, 100)):
        got = sketch.quantile(bins, q)
        assert got is not None and abs(got - v) <= 0.01 * v


def test_empty_sketch_has_no_quantile() -> None:
    assert sketch.quantile({}, 0.5) is None
    assert sketch.count({}) == 0


def test_zero_is_exact() -> None:
    bins = build([0.0, 0.0, 5.0])
    assert sketch.quantile(bins, 0.5) == 0.0  # rank floor(0.5 * 2) = 1 -> 0.0
    assert sketch.quantile(bins, 0.0) == 0.0


# --- merge and subtract ---------------------------------------------------------------------
A = DISTRIBUTIONS["exponential mean 30"][:3000]
B = DISTRIBUTIONS["with zeros"][:3000]
C = DISTRIBUTIONS["lognormal heavy tail"][:3000]


def test_merge_equals_sketch_of_union() -> None:
    merged = build(A)
    sketch.merge(merged, build(B))
    sketch.merge(merged, build(C))
    assert merged == build(A + B + C)
    other_order = build(C)
    sketch.merge(other_order, build(A))
    sketch.merge(other_order, build(B))
    assert other_order == merged


def test_subtract_undoes_merge_exactly() -> None:
    base = build(A)
    before = dict(base)
    sketch.merge(base, build(B))
    assert base != before
    sketch.subtract(base, build(B))
    assert base == before  # same keys and counts, no zero-count leftovers
    sketch.subtract(base, build(A))
    assert base == {}
    assert sketch.quantile(base, 0.5) is None


def test_subtract_leaves_the_other_part() -> None:
    both = build(A + C)
    sketch.subtract(both, build(C))
    assert both == build(A)
    check_guarantee(A)


# --- property -----------------------------------------------------------------------------
# Durations as the engine makes them: microsecond resolution, zero allowed, up to ~11.5 days.
durations = st.integers(0, 10**12).map(lambda us: us / 1e6)


@settings(max_examples=200, deadline=None)
@given(st.lists(durations, min_size=1, max_size=300),
       st.lists(st.floats(0, 1), min_size=1, max_size=5))
def test_guarantee_property(values: list[float], qs: list[float]) -> None:
    check_guarantee(values, QS + tuple(qs))


@settings(max_examples=200, deadline=None)
@given(st.lists(durations, max_size=100), st.lists(durations, max_size=100))
def test_merge_subtract_property(xs: list[float], ys: list[float]) -> None:
    merged = build(xs)
    sketch.merge(merged, build(ys))
    assert merged == build(xs + ys)
    sketch.subtract(merged, build(ys))
    assert merged == build(xs)


@settings(max_examples=2000)
@given(st.floats(min_value=1e-300, max_value=1e300, allow_nan=False))
def test_the_inlined_key_is_the_ddsketch_mapping_key(value: float) -> None:
    from ddsketch.mapping import LogarithmicMapping

    assert sketch.key_of(value) == LogarithmicMapping(RELATIVE_ACCURACY).key(value)


def test_the_inlined_key_on_bin_edges_and_typical_waits() -> None:
    from ddsketch.mapping import LogarithmicMapping

    mapping = LogarithmicMapping(RELATIVE_ACCURACY)
    values = [mapping.value(k) * f for k in range(-200, 800) for f in (0.99, 1.0, 1.0101)]
    values += [n / 1e6 for n in range(1, 2_000_000, 997)]  # microsecond-exact seconds
    assert [sketch.key_of(v) for v in values] == [mapping.key(v) for v in values]
