"""The KPI aggregate of one (bucket, scope): initialize / merge / subtract, and the
helpers the KPI formulas of :mod:`tables.kpis` read it with.

An aggregate is a flat list: integer counters, integer microsecond sums, and
two quantile sketches. A list, not an object, because the hot path touches it
once per event and list indexing is the cheapest thing Python does.

Everything in it is a sum, so ``merge`` is associative and commutative (buckets
and partitions combine in any order) and ``subtract`` undoes a ``merge``
exactly (rolling windows and partition deltas rely on that).
"""

from __future__ import annotations

from typing import Any, Final

from tables import sketch

# --- layout ------------------------------------------------------------------------------------
# Final int literals: compiled, every ``cell[A.X]`` is an index known at build time.
OFFERED: Final = 0
ANSWERED: Final = 1
ABANDONED: Final = 2
WITHIN_SL: Final = 3
CLOSED: Final = 4
OPENED: Final = 5
RESOLVED: Final = 6
REOPENED: Final = 7
FIRST_REPLIES: Final = 8
FCR: Final = 9
SENT: Final = 10
CSAT_N: Final = 11
CSAT_GOOD: Final = 12
NPS_N: Final = 13
NPS_PRO: Final = 14
NPS_DET: Final = 15
CES_N: Final = 16
CES_SUM: Final = 17
WAIT_SUM: Final = 18
HANDLE_SUM: Final = 19
FIRST_REPLY_SUM: Final = 20
RESOLUTION_SUM: Final = 21
# v2: abandon time and short abandons (section 6.1)
SHORT_ABANDONED: Final = 22
ABANDON_SUM: Final = 23
# v2: repeat contacts (6.4): offers that carry a customer, and the repeats among them
OFFERED_CUST: Final = 24
REPEATS: Final = 25
# v2: time in agent states (6.2), integer microseconds
STAFFED_US: Final = 26
AVAILABLE_US: Final = 27
BUSY_US: Final = 28
WRAP_UP_US: Final = 29
PAUSED_US: Final = 30
# v2: ticket SLA policies (6.3): measured first replies / resolutions, and those in target
FR_SLA_N: Final = 31
FR_SLA_OK: Final = 32
RES_SLA_N: Final = 33
RES_SLA_OK: Final = 34
N_NUM: Final = 35
WAIT_SK: Final = 35
RES_SK: Final = 36
SIZE: Final = 37

#: Counters whose non-zero value means "this scope has a measurement" (section 7).
MEASURE_FIELDS: Final = (
    OFFERED,
    ANSWERED,
    ABANDONED,
    CLOSED,
    OPENED,
    RESOLVED,
    REOPENED,
    FIRST_REPLIES,
    SENT,
    CSAT_N,
    NPS_N,
    CES_N,
    SHORT_ABANDONED,
    STAFFED_US,
)

Agg = list[Any]
_US = 1_000_000


def initialize() -> Agg:
    agg: Agg = [0] * SIZE
    agg[WAIT_SK] = {}
    agg[RES_SK] = {}
    return agg


def merge(dst: Agg, src: Agg) -> None:
    # Cells are sparse (one event type touches two or three fields): skipping
    # zeros halves the cost of a roll-up. Indexing, not ``enumerate(src[:N_NUM])``:
    # compiled, the slice was a list copy per call.
    for i in range(N_NUM):
        v = src[i]
        if v:
            dst[i] += v
    if src[WAIT_SK]:
        sketch.merge(dst[WAIT_SK], src[WAIT_SK])
    if src[RES_SK]:
        sketch.merge(dst[RES_SK], src[RES_SK])


def subtract(dst: Agg, src: Agg) -> None:
    for i in range(N_NUM):
        v = src[i]
        if v:
            dst[i] -= v
    if src[WAIT_SK]:
        sketch.subtract(dst[WAIT_SK], src[WAIT_SK])
    if src[RES_SK]:
        sketch.subtract(dst[RES_SK], src[RES_SK])


def add_delta(dst: Agg, src: Agg) -> None:
    """:func:`merge` of a difference of aggregates (counts may be negative)."""
    for i in range(N_NUM):
        v = src[i]
        if v:
            dst[i] += v
    if src[WAIT_SK]:
        sketch.add_signed(dst[WAIT_SK], src[WAIT_SK])
    if src[RES_SK]:
        sketch.add_signed(dst[RES_SK], src[RES_SK])


def copy(agg: Agg) -> Agg:
    out = agg[:N_NUM] + [dict(agg[WAIT_SK]), dict(agg[RES_SK])]
    return out


def has_measurement(agg: Agg) -> bool:
    return any(agg[i] for i in MEASURE_FIELDS)


def is_zero(agg: Agg) -> bool:
    return not any(agg[:N_NUM]) and not agg[WAIT_SK] and not agg[RES_SK]


def ratio(num: float, den: float) -> float | None:
    """num / den, or None (the contract's null) when there is nothing to divide by."""
    return num / den if den else None


def mean_s(sum_us: int, n: int) -> float | None:
    """Mean of ``n`` durations summed in integer microseconds, in seconds."""
    return sum_us / n / _US if n else None


def quantile(bins: sketch.Bins, q: float) -> float | None:
    return sketch.quantile(bins, q) if bins else None


def to_wire(agg: Agg) -> list[Any]:
    """JSON-able form (sketch keys as strings) for changelogs and Redis."""
    return agg[:N_NUM] + [
        {str(k): v for k, v in agg[WAIT_SK].items()},
        {str(k): v for k, v in agg[RES_SK].items()},
    ]


def from_wire(data: list[Any]) -> Agg:
    return list(data[:N_NUM]) + [
        {int(k): v for k, v in data[WAIT_SK].items()},
        {int(k): v for k, v in data[RES_SK].items()},
    ]
