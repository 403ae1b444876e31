"""Properties of aggregates and rolling windows (tables/aggregate.py, tables/rollup.py)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tables import aggregate as A
from tables import sketch
from tables.events import decode, to_us
from tables.kpis import bucketed_row
from tables.rollup import Rollup
from tables.state import CellKey, Cells, Config, PartitionState
from tables.windows import MINUTE_US

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
T0_US = to_us(T0)
QUEUES, CHANNELS, AGENTS = ("q1", "q2"), ("voice", "chat", "email"), ("a1", "a2", "a3")


# --- (a) merge order and grouping ---------------------------------------------------------------
def _iso(us: int) -> str:
    return (T0 + dt.timedelta(microseconds=us)).isoformat().replace("+00:00", "Z")


@st.composite
def valid_streams(draw: st.DrawFn) -> list[tuple[int, dict[str, Any]]]:
    """Random entities whose events are each valid: (offset us, event) in any interleaving."""
    out: list[tuple[int, dict[str, Any]]] = []
    secs = st.integers(0, 900 * 10**6)
    for i in range(draw(st.integers(1, 12))):
        t = draw(secs)
        q, ch, ag = (draw(st.sampled_from(x)) for x in (QUEUES, CHANNELS, AGENTS))
        kind = draw(st.sampled_from(["contact", "ticket", "survey"]))
        if kind == "contact":
            cid = f"c{i}"
            out.append((t, {"type": "contact_offered", "contact_id": cid, "queue": q,
                            "channel": ch}))
            t2 = t + draw(secs)
            fate = draw(st.sampled_from(["answered", "closed", "abandoned", "waiting"]))
            if fate in ("answered", "closed"):
                out.append((t2, {"type": "contact_answered", "contact_id": cid, "agent_id": ag}))
            if fate == "closed":
                out.append((t2 + draw(secs), {"type": "contact_closed", "contact_id": cid}))
            if fate == "abandoned":
                out.append((t2, {"type": "contact_abandoned", "contact_id": cid}))
        elif kind == "ticket":
            tid = f"t{i}"
            out.append((t, {"type": "ticket_opened", "ticket_id": tid, "queue": q,
                            "channel": ch}))
            t2 = t + draw(secs)
            out.append((t2, {"type": "ticket_replied", "ticket_id": tid, "agent_id": ag}))
            if draw(st.booleans()):
                out.append((t2 + draw(secs), {"type": "ticket_resolved", "ticket_id": tid,
                                              "contacts": draw(st.integers(1, 3)),
                                              "agent_id": draw(st.sampled_from([ag, None]))}))
        else:
            k, score = draw(st.sampled_from([("csat", 5), ("csat", 2), ("nps", 10), ("nps", 7),
                                             ("nps", 0), ("ces", 6)]))
            base = {"survey_id": f"s{i}", "kind": k, "queue": q, "channel": ch}
            out.append((t, {"type": "survey_sent", **base}))
            if draw(st.booleans()):
                out.append((t + draw(secs), {"type": "survey_response", "score": score,
                                             "agent_id": ag, **base}))
    return sorted(out, key=lambda p: p[0])


def cells_from_stream(stream: list[tuple[int, dict[str, Any]]]) -> list[A.Agg]:
    state = PartitionState(Config())
    clock = T0_US
    for n, (off, body) in enumerate(stream):
        ev = decode(json.dumps({"event_id": f"e{n}", "ts": _iso(off), **body}).encode())
        assert not isinstance(ev, str), (ev, body)
        ts = T0_US + off
        clock = max(clock, ts)
        assert state.apply(ev, ts, clock) is None, body
    return [agg for per_min in state.take_cells().values() for agg in per_min.values()]


def merged(aggs: list[A.Agg]) -> A.Agg:
    out = A.initialize()
    for agg in aggs:
        A.merge(out, agg)
    return out


@SETTINGS
@given(valid_streams(), st.data())
def test_merge_in_any_order_and_grouping(stream: list[Any], data: st.DataObject) -> None:
    aggs = cells_from_stream(stream)
    straight = merged(aggs)
    order = data.draw(st.permutations(range(len(aggs))))
    cuts = sorted(data.draw(st.sets(st.integers(0, len(aggs)), max_size=4)))
    bounds = [0, *cuts, len(aggs)]
    groups = [merged([aggs[i] for i in order[a:b]]) for a, b in zip(bounds, bounds[1:],
                                                                     strict=False)]
    regrouped = merged(groups[::-1])
    assert bucketed_row(regrouped, "all") == bucketed_row(straight, "all")
    assert regrouped == straight
    # and every measurement of the stream is in the total
    assert straight[A.OFFERED] == sum(1 for _, b in stream if b["type"] == "contact_offered")
    assert straight[A.SENT] == sum(1 for _, b in stream if b["type"] == "survey_sent")


# --- cells given directly ---------------------------------------------------------------------
CFG = Config(windows=("2m", "5m", "10m"))
KEYS: tuple[CellKey, ...] = (("q1", "voice", "", ""), ("q1", "chat", "a1", ""),
                             ("q2", "voice", "a2", ""),
                             ("q2", "email", "", "prod"))
M0 = T0_US // MINUTE_US
#: (minute offset from the arrival clock, key index, counters, waits, resolutions)
CellSpec = tuple[int, int, tuple[int, ...], tuple[float, ...], tuple[float, ...]]

cell_specs = st.tuples(
    st.integers(-14, 3),  # late (older than the 10m window, too) ... ahead of the clock
    st.integers(0, len(KEYS) - 1),
    st.lists(st.integers(0, 4), min_size=A.N_NUM, max_size=A.N_NUM).map(tuple),
    st.lists(st.integers(0, 300_000).map(lambda ms: ms / 1000), max_size=3).map(tuple),
    st.lists(st.integers(1, 90_000), max_size=2).map(lambda xs: tuple(float(x) for x in xs)),
)


def agg_of(spec: CellSpec) -> A.Agg:
    agg = A.initialize()
    agg[: A.N_NUM] = list(spec[2])
    for w in spec[3]:
        sketch.add(agg[A.WAIT_SK], w)
    for r in spec[4]:
        sketch.add(agg[A.RES_SK], r)
    return agg


def cells_of(placed: list[tuple[int, CellSpec]]) -> Cells:
    """(absolute minute, spec) -> fresh Cells (a new dict every call: add_cells consumes it)."""
    out: Cells = {}
    for minute, spec in placed:
        per = out.setdefault(minute, {})
        key = KEYS[spec[1]]
        if key in per:
            A.merge(per[key], agg_of(spec))
        else:
            per[key] = agg_of(spec)
    return out


def view(r: Rollup, clock_us: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, scopes in r.windows(clock_us).items():
        out[name] = {
            s: (bucketed_row(agg, "all"), agg[: A.N_NUM], agg[A.WAIT_SK], agg[A.RES_SK])
            for s, agg in scopes.items() if not A.is_zero(agg)
        }
    return out


steps = st.lists(
    st.tuples(st.sampled_from([0, 1, 1, 1, 2, 12]),  # minutes the clock moves (12 > 10m)
              st.integers(0, 59),  # second within the minute
              st.lists(cell_specs, max_size=4),
              st.booleans()),  # look at the windows (True) or only expire (False)
    min_size=1, max_size=25,
)


@SETTINGS
@given(steps)
def test_incremental_windows_equal_a_fresh_rollup(plan: list[Any]) -> None:
    inc = Rollup(CFG)
    everything: list[tuple[int, CellSpec]] = []
    minute = M0
    clock = M0 * MINUTE_US
    for advance, sec, specs, look in plan:
        minute += advance
        clock = minute * MINUTE_US + sec * 1_000_000
        placed = [(minute + s[0], s) for s in specs]
        everything += placed
        inc.add_cells(cells_of(placed))
        if look:
            inc.windows(clock)
        else:
            inc.expire(clock)
    fresh = Rollup(CFG)
    fresh.add_cells(cells_of(everything))
    assert view(inc, clock) == view(fresh, clock)


@SETTINGS
@given(st.lists(cell_specs, max_size=6), st.lists(cell_specs, min_size=1, max_size=4),
       st.integers(0, 12), st.integers(0, 12), st.booleans())
def test_add_then_subtract_restores_windows(
    base: list[CellSpec], extra: list[CellSpec], mid: int, end: int, started: bool,
) -> None:
    base_cells = [(M0 + s[0], s) for s in base]
    extra_cells = [(M0 + s[0], s) for s in extra]
    clock0 = M0 * MINUTE_US + 30_000_000
    r1, r2 = Rollup(CFG), Rollup(CFG)
    r1.add_cells(cells_of(base_cells))
    r2.add_cells(cells_of(base_cells))
    if started:  # the running sums exist (live) or not yet (replay start-up)
        before = view(r1, clock0)
        r1.add_cells(cells_of(extra_cells), +1)
        r1.add_cells(cells_of(extra_cells), -1)
        assert view(r1, clock0) == before
    r1.add_cells(cells_of(extra_cells), +1)
    if mid:
        r1.windows(clock0 + mid * MINUTE_US)
    r1.add_cells(cells_of(extra_cells), -1)
    clock_end = clock0 + (mid + end) * MINUTE_US
    assert view(r1, clock_end) == view(r2, clock_end)


def test_window_minutes_and_late_cells() -> None:
    # Hand-made: one offered contact per minute M0-12 .. M0+2, clock at M0 (+30 s).
    r = Rollup(CFG)
    r.windows(M0 * MINUTE_US + 30_000_000)
    for m in range(-12, 3):
        agg = A.initialize()
        agg[A.OFFERED] = 1
        r.add_cells({M0 + m: {KEYS[0]: agg}})
    w = r.windows(M0 * MINUTE_US + 30_000_000)
    # 2m covers M0-1, M0; 5m M0-4 .. M0; 10m M0-9 .. M0; ahead-of-clock minutes wait
    assert {n: w[n]["all"][A.OFFERED] for n in w} == {"2m": 2, "5m": 5, "10m": 10}
    w = r.windows((M0 + 2) * MINUTE_US)  # M0+1, M0+2 enter; M0-9, M0-8 leave the 10m
    assert {n: w[n]["all"][A.OFFERED] for n in w} == {"2m": 2, "5m": 5, "10m": 10}
    assert w["10m"]["queue:q1"][A.OFFERED] == 10


replace_steps = st.lists(
    st.tuples(st.sampled_from([0, 0, 1, 2, 12]),  # minutes the clock moves
              st.integers(0, 1),  # partition
              st.integers(-2, 0),  # the rewritten minute, from the clock's
              # (cell, which spec it now holds; None: the cell is gone)
              st.lists(st.tuples(st.integers(0, len(KEYS) - 1),
                                 st.none() | st.integers(0, 5)), max_size=4),
              st.sampled_from([False, False, False, True])),  # a tombstone instead
    min_size=1, max_size=25,
)


@SETTINGS
@given(replace_steps, st.lists(cell_specs, min_size=1, max_size=6))
def test_replaced_minutes_equal_a_fresh_rollup(plan: list[Any], specs: list[CellSpec]) -> None:
    """The view's path: a partition rewrites whole minutes (absolute cells), most of them
    unchanged from its previous write; only the changed cells move the windows, and the
    result equals a roll-up built afresh from the last write of every (partition, minute)."""
    inc = Rollup(CFG)
    last: dict[tuple[int, int], dict[CellKey, CellSpec]] = {}
    minute = M0
    inc.windows(minute * MINUTE_US)
    for advance, part, rel, edits, drop in plan:
        minute += advance
        target = minute + rel
        if drop:
            last.pop((part, target), None)
            inc.replace(part, target, None)
        else:
            cells = dict(last.get((part, target), {}))
            for key_i, spec_i in edits:
                if spec_i is None:
                    cells.pop(KEYS[key_i], None)
                else:
                    cells[KEYS[key_i]] = specs[spec_i % len(specs)]
            last[(part, target)] = cells
            inc.replace(part, target, {k: agg_of(s) for k, s in cells.items()})
        inc.windows(minute * MINUTE_US + 30_000_000)
    clock = minute * MINUTE_US + 30_000_000
    fresh = Rollup(CFG)
    for (part, target), cells in last.items():
        if target > minute - CFG.largest_window:
            fresh.replace(part, target, {k: agg_of(s) for k, s in cells.items()})
    assert view(inc, clock) == view(fresh, clock)


def test_clock_minute_changes_unread_before_a_rebuild_are_not_counted_twice() -> None:
    # Changes to the clock's minute wait in one delta until the windows are read; a
    # clock that jumps past every window rebuilds from the minutes, which hold them.
    r = Rollup(CFG)
    r.windows(M0 * MINUTE_US)
    agg = A.initialize()
    agg[A.OFFERED] = 1
    r.replace(0, M0, {KEYS[0]: agg})
    r.expire((M0 + 12) * MINUTE_US)  # no read in between
    two = A.initialize()
    two[A.OFFERED] = 2
    r.replace(0, M0 + 12, {KEYS[0]: two})
    w = r.windows((M0 + 12) * MINUTE_US + 1)
    assert {n: w[n]["all"][A.OFFERED] for n in w} == {"2m": 2, "5m": 2, "10m": 2}
    r.replace(0, M0 + 12, None)
    assert all(not scopes for scopes in r.windows((M0 + 20) * MINUTE_US).values())
