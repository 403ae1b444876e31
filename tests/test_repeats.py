"""The repeat index (tables.repeats) against the contract's reading, recomputed from
scratch: after any sequence of partition-minute replacements (new minutes, offers
appended, minutes rewritten or gone), the counts equal the pairwise definition."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from tables.repeats import Offer, RepeatIndex
from tables.windows import MINUTE_US

W = 30 * MINUTE_US


def pairwise(offers: list[Offer]) -> Counter[tuple[int, str, str]]:
    """(minute, queue, channel) -> repeats: B is a repeat when some offer A of the same
    customer has B.ts - W <= A.ts < B.ts."""
    out: Counter[tuple[int, str, str]] = Counter()
    for cust, ts, q, ch in offers:
        if any(c == cust and ts - W <= a < ts for c, a, _, _ in offers):
            out[(ts // MINUTE_US, q, ch)] += 1
    return out


def counts(idx: RepeatIndex) -> Counter[tuple[int, str, str]]:
    return Counter({(m, q, ch): n for m, per in idx.counts.items() for (q, ch), n in per.items()})


offer = st.tuples(
    st.sampled_from(["c1", "c2", "c3"]),
    st.integers(0, 90).map(lambda s: s * 30 * 1_000_000),  # 45 minutes in 30 s steps
    st.sampled_from(["billing", "tech"]),
    st.sampled_from(["voice", "chat"]),
)
# one step: which partition, and the offers it now has (grouped by minute below)
step = st.tuples(st.integers(0, 2), st.lists(offer, max_size=8), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(step, min_size=1, max_size=12))
def test_counts_equal_the_pairwise_reading(steps: list[tuple[int, list[Offer], bool]]) -> None:
    idx = RepeatIndex(W)
    held: dict[tuple[int, int], list[Offer]] = {}
    for partition, offers, append in steps:
        by_minute: dict[int, list[Offer]] = {}
        for o in offers:
            by_minute.setdefault(o[1] // MINUTE_US, []).append(o)
        for minute, new in by_minute.items():
            key = (partition, minute)
            # appended to what the minute had (the replay's usual case) or a rewrite
            value = held.get(key, []) + new if append else new
            held[key] = value
            idx.replace(partition, minute, value)
        if not offers and held:  # a minute gone
            key = sorted(held)[0]
            del held[key]
            idx.replace(key[0], key[1], None)
        everything = [o for v in held.values() for o in v]
        assert counts(idx) == pairwise(everything)
    for key in list(held):
        idx.replace(key[0], key[1], None)
    assert idx.counts == {} and idx.customers == {}
