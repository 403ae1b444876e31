"""Contract v2 against a second, deliberately naive reading of it.

The engine keeps running sums, spreads intervals per minute and finds repeats
with an index across partitions; the reference here does the dumbest thing the
contract's words allow: it cuts each agent's day into intervals and clips them
to each window, with no minute buckets, and compares every pair of a customer's
offers. Both read the same streams -- random ones made
by hypothesis (repeated states, queue-list changes, events stamped ahead of a
fixed clock) and the simulator's center -- and must agree for every scope and
window.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_app.tools.simulator.run import generate_events
from tables.definitions import Definitions
from tables.engine import Replayer
from tables.entities import Config
from tables.events import decode, to_us
from tables.snapshot import format_ts

T0 = 1_795_000_020  # an epoch second, not on a minute: buckets are cut mid-second too
STATES = ("available", "busy", "wrap_up", "paused", "offline")
WINDOWS = {"5m": 5, "15m": 15, "1h": 60}


def window_range(clock_s: float, minutes: int) -> tuple[float, float]:
    last = int(clock_s // 60)
    return (last - minutes + 1) * 60, clock_s  # never after the clock


def reference_agent_time(events: list[dict[str, Any]], clock_s: float
                         ) -> dict[tuple[str, str], dict[str, float]]:
    """(scope, window) -> state -> seconds, from the intervals alone, no buckets
    (events valid and in order)."""
    by_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_agent[e["agent_id"]].append(e)
    out: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for aid, evs in by_agent.items():
        timeline: list[tuple[float, str, tuple[str, ...]]] = []
        queues: tuple[str, ...] = ()
        for e in evs:
            if e.get("queues") is not None:
                queues = tuple(sorted(set(e["queues"])))
            timeline.append((e["t"], e["state"], queues))
        for i, (start, state, qs) in enumerate(timeline):
            end = timeline[i + 1][0] if i + 1 < len(timeline) else clock_s
            if state == "offline":
                continue
            for name, minutes in WINDOWS.items():
                lo, hi = window_range(clock_s, minutes)
                # the interval's part in the window, in whole milliseconds (exact)
                ms = max(0, round(min(end, hi) * 1000) - round(max(start, lo) * 1000))
                if ms <= 0:
                    continue
                secs = ms / 1000
                for scope in ("all", f"agent:{aid}", *(f"queue:{q}" for q in qs)):
                    out[(scope, name)][state] += secs
    return out


def agent_stream(draw: Any) -> list[dict[str, Any]]:
    agents = draw(st.lists(st.sampled_from(["ann", "bob", "cy"]), min_size=1, max_size=25))
    events, t = [], float(T0)
    for i, aid in enumerate(agents):
        t += draw(st.floats(min_value=0.5, max_value=400.0))
        e: dict[str, Any] = {"event_id": f"e{i}", "type": "agent_state", "agent_id": aid,
                             "state": draw(st.sampled_from(STATES)), "t": round(t, 3)}
        if draw(st.booleans()):
            e["queues"] = draw(st.lists(st.sampled_from(["billing", "tech", "sales"]),
                                        max_size=3))
        events.append(e)
    return events


def feed(events: list[dict[str, Any]], at_s: float | None) -> dict[str, Any]:
    cfg = Config(windows=tuple(WINDOWS))
    rep = Replayer(cfg, None if at_s is None else int(at_s * 1_000_000))
    for e in events:
        body = {k: v for k, v in e.items() if k != "t"}
        body["ts"] = format_ts(int(round(e["t"] * 1000)) * 1000)
        assert rep.feed(json.dumps(body).encode()) is None, body
    return rep.snapshot()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_time_in_states_equals_the_intervals_clipped_to_each_window(data: st.DataObject) -> None:
    events = agent_stream(data.draw)
    ahead = data.draw(st.sampled_from([None, -200.0, 0.0, 30.0]))
    last = events[-1]["t"]
    # with a fixed clock, the last events may be ahead of it (within the skew)
    at = None if ahead is None else last + ahead
    snap = feed(events, at)
    clock = last if at is None else at
    want = reference_agent_time([e for e in events if e["t"] <= clock + 300], clock)
    rows = {(r["scope"], r["window"]): r for r in snap["rows"]}
    for (scope, window), per in want.items():
        r = rows.get((scope, window))
        total = sum(per.values())
        if total < 1e-3:
            continue
        assert r is not None, (scope, window, per)
        for state in ("available", "busy", "wrap_up", "paused"):
            assert abs(r[f"{state}_seconds"] - per.get(state, 0.0)) < 1e-3, (scope, window, r)
        assert abs(r["staffed_seconds"] - total) < 1e-3
    for (scope, window), r in rows.items():
        if window != "now" and r["staffed_seconds"] and (scope, window) not in want:
            assert r["staffed_seconds"] < 1e-3, (scope, window, r["staffed_seconds"])


def reference_repeats(offers: list[tuple[str, float, str, str]], window_s: float,
                      clock_s: float, minutes: int) -> dict[str, int]:
    """scope -> repeat contacts whose offer is in the window: every pair compared."""
    lo, _ = window_range(clock_s, minutes)
    out: dict[str, int] = defaultdict(int)
    for cust, t, queue, channel in offers:
        if not lo <= t < (int(clock_s // 60) + 1) * 60:
            continue
        if any(c == cust and t - window_s <= t2 < t for c, t2, _, _ in offers):
            for scope in ("all", f"queue:{queue}", f"channel:{channel}"):
                out[scope] += 1
    return out


def test_repeats_and_thresholds_of_the_simulated_center() -> None:
    lines = list(generate_events(rate=3, duration=3 * 3600, seed=21, start_epoch=T0,
                                 bad_share=0.0))
    defs = Definitions(repeat_window_us=1800 * 1_000_000)
    rep = Replayer(Config(windows=("5m", "15m", "1h", "24h"), defs=defs))
    offers, answered = [], []
    offered: dict[str, tuple[float, str, str]] = {}
    for line in lines:
        verdict = rep.feed(line)
        ev = decode(line)
        if verdict is None and not isinstance(ev, str):
            t = to_us(ev.ts) / 1e6
            if ev.__class__.__name__ == "ContactOffered":
                offered[ev.contact_id] = (t, ev.queue, ev.channel)
                if ev.customer_id is not None:
                    offers.append((ev.customer_id, t, ev.queue, ev.channel))
            elif ev.__class__.__name__ == "ContactAnswered":
                t0, q, ch = offered[ev.contact_id]
                answered.append((t, t - t0, q, ch))
    snap = rep.snapshot()
    clock = max(to_us(e.ts) / 1e6 for e in map(decode, lines) if not isinstance(e, str))
    rows = {(r["scope"], r["window"]): r for r in snap["rows"]}
    assert sum(1 for _ in offers) > 100
    for name, minutes in (("1h", 60), ("24h", 1440)):
        want = reference_repeats(offers, 1800, clock, minutes)
        assert want["all"] > 0
        for scope, n in want.items():
            assert rows[(scope, name)]["repeat_contacts"] == n, (scope, name)
        lo, _ = window_range(clock, minutes)
        within = sum(1 for t, w, _, _ in answered if t >= lo and w <= 20)
        got = rows[("all", name)]
        handled = got["contacts_answered"] + got["contacts_abandoned"]
        assert abs(got["service_level"] - within / handled) < 1e-9
