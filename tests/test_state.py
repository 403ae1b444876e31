"""Lifecycle, duplicate and clock rules (contract sections 4-5) through tables.engine.Replayer."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from tables.engine import Replayer
from tables.events import parse_ts, to_us
from tables.state import DUPLICATE, Config

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
T0_US = to_us(T0)
DAY = 86_400
UE, OOO, LATE, FUT = "unknown_entity", "out_of_order", "too_late", "future_ts"

Ev = dict[str, Any]


def iso(sec: float) -> str:
    return (T0 + dt.timedelta(seconds=sec)).isoformat().replace("+00:00", "Z")


def ev(etype: str, sec: float, eid: str | None = None, **fields: Any) -> Ev:
    out: Ev = {"type": etype, "ts": iso(sec), **{k: v for k, v in fields.items() if v is not None}}
    if eid is not None:
        out["event_id"] = eid
    return out


def off(cid: str, s: float, q: str = "billing", ch: str = "voice", eid: str | None = None) -> Ev:
    return ev("contact_offered", s, eid, contact_id=cid, queue=q, channel=ch)


def ans(cid: str, s: float, agent: str = "a1", eid: str | None = None) -> Ev:
    return ev("contact_answered", s, eid, contact_id=cid, agent_id=agent)


def aba(cid: str, s: float, eid: str | None = None) -> Ev:
    return ev("contact_abandoned", s, eid, contact_id=cid)


def clo(cid: str, s: float, agent: str | None = None, eid: str | None = None) -> Ev:
    return ev("contact_closed", s, eid, contact_id=cid, agent_id=agent)


def opn(tid: str, s: float, q: str = "billing", ch: str = "email") -> Ev:
    return ev("ticket_opened", s, None, ticket_id=tid, queue=q, channel=ch)


def rep(tid: str, s: float, agent: str = "a1") -> Ev:
    return ev("ticket_replied", s, None, ticket_id=tid, agent_id=agent)


def res(tid: str, s: float, contacts: int = 1, agent: str | None = None) -> Ev:
    return ev("ticket_resolved", s, None, ticket_id=tid, contacts=contacts, agent_id=agent)


def reo(tid: str, s: float) -> Ev:
    return ev("ticket_reopened", s, None, ticket_id=tid)


def run(events: list[Ev], at: float | None = None, cfg: Config | None = None,
        ) -> tuple[Replayer, list[str | None]]:
    at_us = None if at is None else T0_US + round(at * 1_000_000)
    r = Replayer(cfg or Config(), at_us=at_us)
    out = []
    for i, e in enumerate(events):
        e = {"event_id": f"auto-{i}", **e}
        out.append(r.feed(json.dumps(e).encode()))
    return r, out


def row(snap: dict[str, Any], scope: str, window: str) -> dict[str, Any]:
    found = [r for r in snap["rows"] if r["scope"] == scope and r["window"] == window]
    assert len(found) == 1, (scope, window, [(r["scope"], r["window"]) for r in snap["rows"]])
    return found[0]


# --- table: what each event of a short stream returns ----------------------------------------
LIFECYCLE: list[tuple[str, list[Ev], list[str | None]]] = [
    ("normal contact", [off("c", 0), ans("c", 5), clo("c", 60)], [None, None, None]),
    ("normal abandon", [off("c", 0), aba("c", 5)], [None, None]),
    ("answered twice", [off("c", 0), ans("c", 5), ans("c", 6)], [None, None, UE]),
    ("abandoned after answered", [off("c", 0), ans("c", 5), aba("c", 6)], [None, None, UE]),
    ("answered after abandoned", [off("c", 0), aba("c", 5), ans("c", 6)], [None, None, UE]),
    ("abandoned twice", [off("c", 0), aba("c", 5), aba("c", 6)], [None, None, UE]),
    ("closed twice", [off("c", 0), ans("c", 5), clo("c", 9), clo("c", 10)],
     [None, None, None, UE]),
    ("closed before answered", [off("c", 0), clo("c", 5)], [None, UE]),
    ("closed after abandoned", [off("c", 0), aba("c", 5), clo("c", 6)], [None, None, UE]),
    ("normal ticket", [opn("t", 0), rep("t", 5), res("t", 9)], [None, None, None]),
    ("reply on resolved", [opn("t", 0), res("t", 5), rep("t", 6)], [None, None, UE]),
    ("resolve on resolved", [opn("t", 0), res("t", 5), res("t", 6)], [None, None, UE]),
    ("reopen an open ticket", [opn("t", 0), reo("t", 5)], [None, UE]),
    ("reopen twice", [opn("t", 0), res("t", 5), reo("t", 6), reo("t", 7)],
     [None, None, None, UE]),
    ("resolve, reopen, reply, resolve", [opn("t", 0), res("t", 5), reo("t", 6), rep("t", 7),
                                         res("t", 8)], [None] * 5),
    ("never offered", [ans("x", 1), aba("x", 2), clo("x", 3)], [UE, UE, UE]),
    ("never opened", [rep("x", 1), res("x", 2), reo("x", 3)], [UE, UE, UE]),
    ("a ticket id is not a contact", [opn("t", 0), ans("t", 1)], [None, UE]),
    # out_of_order: earlier than the previous event of the same entity
    ("answered before offered", [off("c", 10), ans("c", 5)], [None, OOO]),
    ("abandoned before offered", [off("c", 10), aba("c", 5)], [None, OOO]),
    ("closed before answered ts", [off("c", 0), ans("c", 10), clo("c", 9)], [None, None, OOO]),
    ("reply before opened", [opn("t", 10), rep("t", 5)], [None, OOO]),
    ("resolve before last reply", [opn("t", 0), rep("t", 10), res("t", 9)], [None, None, OOO]),
    ("reopen before resolved", [opn("t", 0), res("t", 10), reo("t", 9)], [None, None, OOO]),
    ("same ts is in order", [off("c", 10), ans("c", 10), clo("c", 10)], [None, None, None]),
    ("entity unchanged after out_of_order", [off("c", 10), ans("c", 5), ans("c", 20)],
     [None, OOO, None]),
    # out_of_order is only named once the lifecycle check passed
    ("answered twice, earlier", [off("c", 10), ans("c", 20), ans("c", 5)], [None, None, UE]),
    ("closed while waiting, earlier", [off("c", 10), clo("c", 5)], [None, UE]),
    ("reopen open ticket, earlier", [opn("t", 10), reo("t", 5)], [None, UE]),
    ("never offered, any ts", [ans("x", -50)], [UE]),
    # duplicates
    ("redelivered answer", [off("c", 0), ans("c", 5, eid="A"), ans("c", 5, eid="A")],
     [None, None, DUPLICATE]),
    ("redelivered offer", [off("c", 0, eid="O"), off("c", 0, eid="O")], [None, DUPLICATE]),
    ("redelivered rejected event", [ans("x", 5, eid="R"), ans("x", 5, eid="R")],
     [UE, DUPLICATE]),
    ("same id, other content", [off("c", 0, eid="O"), off("d", 3, eid="O")], [None, DUPLICATE]),
    ("same id, out of order copy", [off("c", 9, eid="O"), off("c", 3, eid="O")],
     [None, DUPLICATE]),
    # clock: too_late relative to the clock before the event (clock = largest ts so far)
    ("too late", [off("c", DAY + 60), off("d", 59)], [None, LATE]),
    ("exactly at the retention edge", [off("c", DAY + 60), off("d", 60)], [None, None]),
    ("first event can't be late", [off("d", -10 * DAY), off("c", 0), off("e", -10 * DAY)],
     [None, None, LATE]),
    ("too_late beats duplicate", [off("c", 0, eid="O"), off("z", DAY + 1), off("c", 0, eid="O")],
     [None, None, LATE]),
    ("too_late beats unknown_entity", [off("z", DAY + 1), ans("x", 0)], [None, LATE]),
    ("a rejected lifecycle event moves the clock", [ans("x", DAY + 60), off("d", 59)], [UE, LATE]),
    ("no future_ts without --at", [off("c", 0), off("d", 365 * DAY), off("e", 10)],
     [None, None, LATE]),
]


@pytest.mark.parametrize(("events", "want"), [c[1:] for c in LIFECYCLE],
                         ids=[c[0] for c in LIFECYCLE])
def test_lifecycle_and_clock(events: list[Ev], want: list[str | None]) -> None:
    r, got = run(events)
    assert got == want
    bad = [w for w in want if w not in (None, DUPLICATE)]
    assert sum(r.state.rejected.values()) == len(bad)
    assert r.state.duplicates == want.count(DUPLICATE)


def test_schema_rejection_does_not_move_the_clock() -> None:
    late_but_bad = off("c", DAY + 100) | {"channel": "fax"}
    _, got = run([off("c", 0), late_but_bad, off("d", 1)])
    assert got == [None, "schema", None]


# --- fixed clock (--at): future_ts -------------------------------------------------------------
FIXED: list[tuple[str, list[Ev], list[str | None]]] = [
    ("skew edge is accepted", [off("c", 300)], [None]),  # at + 300 s == at + skew
    ("past the skew", [off("c", 300.001)], [FUT]),
    ("far future", [off("c", 365 * DAY)], [FUT]),
    ("too late against the fixed clock", [off("c", -DAY - 1)], [LATE]),
    ("retention edge", [off("c", -DAY)], [None]),
    ("future_ts beats duplicate", [off("c", 0, eid="O"), off("c", 400, eid="O")], [None, FUT]),
    ("future_ts beats unknown_entity", [ans("x", 400)], [FUT]),
    ("clock never moves", [off("c", 200), off("d", 250), off("e", 301)], [None, None, FUT]),
]


@pytest.mark.parametrize(("events", "want"), [c[1:] for c in FIXED], ids=[c[0] for c in FIXED])
def test_fixed_clock(events: list[Ev], want: list[str | None]) -> None:
    r, got = run(events, at=0)
    assert got == want
    assert r.clock.now == T0_US


# --- measurements that depend on the lifecycle --------------------------------------------------
def test_survey_response_without_sent_is_counted() -> None:
    resp = ev("survey_response", 10, None, survey_id="s9", kind="csat", score=5,
              queue="billing", channel="voice")
    r, got = run([resp])
    assert got == [None]
    snap = r.snapshot()
    assert row(snap, "all", "24h")["csat_responses"] == 1
    assert row(snap, "all", "24h")["csat"] == 1.0  # 1 good of 1
    assert row(snap, "all", "24h")["survey_response_rate"] is None  # 0 sent


def test_first_reply_counted_once_in_a_tickets_life() -> None:
    r, got = run([opn("t", 0), rep("t", 60, "a1"), rep("t", 90, "a1"), res("t", 120),
                  reo("t", 180), rep("t", 240, "a2")])
    assert got == [None] * 6
    snap = r.snapshot()
    assert row(snap, "all", "24h")["first_reply_seconds"] == 60.0  # 60 - 0, once
    assert row(snap, "agent:a1", "24h")["first_reply_seconds"] == 60.0
    assert not [x for x in snap["rows"] if x["scope"] == "agent:a2"]  # its reply isn't measured


def test_resolution_from_the_original_opening_after_reopen() -> None:
    r, _ = run([opn("t", 0), res("t", 100), reo("t", 200), res("t", 500)])
    all24 = row(r.snapshot(), "all", "24h")
    assert all24["tickets_resolved"] == 2
    assert all24["tickets_reopened"] == 1
    assert all24["tickets_opened"] == 1
    assert all24["resolution_seconds"] == 300.0  # (100 + 500) / 2, both from t=0


def test_resolver_is_the_agent_only_when_given() -> None:
    r, _ = run([opn("t", 0), rep("t", 10, "a1"), res("t", 100, contacts=1),
                opn("u", 0), res("u", 50, contacts=1, agent="a3")])
    snap = r.snapshot()
    assert row(snap, "agent:a1", "24h")["tickets_resolved"] == 0  # the replier isn't the resolver
    assert row(snap, "agent:a3", "24h")["tickets_resolved"] == 1
    assert row(snap, "agent:a3", "24h")["resolution_seconds"] == 50.0
    assert row(snap, "agent:a3", "24h")["fcr_rate"] == 1.0
    assert row(snap, "all", "24h")["tickets_resolved"] == 2


def test_closed_agent_falls_back_to_the_answering_agent() -> None:
    r, _ = run([off("c", 0), ans("c", 10, "a1"), clo("c", 70),  # no agent: a1's, 60 s
                off("d", 0), ans("d", 10, "a1"), clo("d", 130, agent="a2")])  # a2's, 120 s
    snap = r.snapshot()
    assert row(snap, "agent:a1", "24h")["aht_seconds"] == 60.0
    assert row(snap, "agent:a2", "24h")["aht_seconds"] == 120.0
    assert row(snap, "all", "24h")["aht_seconds"] == 90.0  # (60 + 120) / 2


def test_snapshot_rejected_and_duplicates() -> None:
    r, _ = run([off("c", 0, eid="O"), off("c", 0, eid="O"), off("c", 0, eid="O"),
                ans("x", 1), ans("c", -1), off("z", -2 * DAY)])
    bad = [b"not json", b'{"event_id": "e", "type": "nope", "ts": "2026-11-22T10:00:00Z"}']
    for raw in bad:
        r.feed(raw)
    snap = r.snapshot()
    assert snap["duplicates"] == 2
    assert snap["rejected"] == {"invalid_json": 1, "out_of_order": 1, "too_late": 1,
                                "unknown_entity": 1, "unknown_type": 1}


# --- expiry ------------------------------------------------------------------------------------
def test_expire_forgets_finished_entities_and_their_ids() -> None:
    r, _ = run([off("c", 0), ans("c", 10), clo("c", 20), off("w", 30), aba("w", 40),
                opn("t", 0), res("t", 50), opn("o", 0)])
    st = r.state
    contacts, tickets = st.contacts.contacts, st.tickets.tickets
    assert (len(contacts), len(tickets), len(st.seen)) == (2, 2, 8)
    # A later event moves the clock past finish + retention (+ a minute for the tick).
    r2_events = [ev("survey_sent", DAY + 120, "S", survey_id="s", kind="nps", queue="billing",
                    channel="voice")]
    for e in r2_events:
        assert r.feed(json.dumps(e).encode()) is None
    assert len(contacts) == 0
    assert list(tickets) == ["o"]  # the open ticket stays (open TTL is 7 days)
    assert list(st.seen) == ["S"]
    # Forgotten means never seen: a late close for c is unknown_entity, not a duplicate.
    assert r.feed(json.dumps(clo("c", DAY + 130) | {"event_id": "new"}).encode()) == UE


def test_memory_stays_bounded_over_three_days() -> None:
    r = Replayer(Config())
    sizes: list[tuple[int, int, int]] = []
    n = 0
    for minute in range(3 * 1440):
        s = minute * 60
        cid, tid = f"c{minute}", f"t{minute}"
        batch = [off(cid, s), ans(cid, s + 10, f"a{minute % 7}"), clo(cid, s + 40),
                 opn(tid, s + 1), res(tid, s + 50)]
        if minute % 3 == 0:
            batch.append(off(f"w{minute}", s + 2))  # abandoned a minute later
        if minute % 3 == 1:
            batch.append(aba(f"w{minute - 1}", s + 2))
        for e in batch:
            n += 1
            assert r.feed(json.dumps({"event_id": f"e{n}", **e}).encode()) is None
        if minute % 1440 == 1439:
            sizes.append((len(r.state.contacts.contacts), len(r.state.seen), len(r.rollup.minutes)))
    # After day 1 nothing grows: ~1 day of contacts (1440 + 480), ids (5 * 1440 + 2 * 480).
    for contacts, seen, minutes in sizes:
        assert contacts <= 1440 + 480 + 5
        assert seen <= 5 * 1440 + 2 * 480 + 10
        assert minutes <= 1440 + 2
    assert len(r.state.tickets.tickets) <= 1440 + 5
    assert len(r.state.contacts.finished) + len(r.state.tickets.finished) <= 1440 * 2 + 480 + 10
    assert sizes[2][0] <= sizes[1][0] + 2 and sizes[2][1] <= sizes[1][1] + 10


# --- extreme but parseable timestamps ----------------------------------------------------------
@pytest.mark.parametrize(
    "ts", ["1969-12-31T23:59:59.500Z", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
           "9999-12-31T23:59:59-01:00"])
def test_extreme_timestamps_never_break_the_snapshot(ts: str) -> None:
    r = Replayer(Config())
    reason = r.feed(json.dumps(off("c", 0) | {"event_id": "e", "ts": ts}).encode())
    snap = r.snapshot()  # must not raise: "never stops the processor"
    if reason is None:
        as_of = parse_ts(snap["as_of"])  # as_of is ISO-8601 and names the clock
        assert as_of is not None, f"as_of {snap['as_of']!r} is not ISO-8601"
        assert to_us(as_of) == r.clock.now
    else:
        assert reason == "schema"
