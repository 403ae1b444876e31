"""KPI formulas (contract section 6) and snapshot rows (section 7), hand-computed."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from tables.engine import Replayer
from tables.events import to_us
from tables.kpis import BUCKETED_NAMES as KPI_FIELDS
from tables.state import Config

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)  # every test's 10:00:00
DAY = 86_400
Ev = dict[str, Any]


def iso(sec: float) -> str:
    return (T0 + dt.timedelta(seconds=sec)).isoformat().replace("+00:00", "Z")


def ev(etype: str, sec: float, **fields: Any) -> Ev:
    return {"type": etype, "ts": iso(sec), **{k: v for k, v in fields.items() if v is not None}}


def off(cid: str, s: float, q: str = "billing", ch: str = "voice") -> Ev:
    return ev("contact_offered", s, contact_id=cid, queue=q, channel=ch)


def ans(cid: str, s: float, agent: str = "a1") -> Ev:
    return ev("contact_answered", s, contact_id=cid, agent_id=agent)


def aba(cid: str, s: float) -> Ev:
    return ev("contact_abandoned", s, contact_id=cid)


def clo(cid: str, s: float, agent: str | None = None) -> Ev:
    return ev("contact_closed", s, contact_id=cid, agent_id=agent)


def opn(tid: str, s: float, q: str = "billing", ch: str = "email") -> Ev:
    return ev("ticket_opened", s, ticket_id=tid, queue=q, channel=ch)


def rep(tid: str, s: float, agent: str = "a1") -> Ev:
    return ev("ticket_replied", s, ticket_id=tid, agent_id=agent)


def res(tid: str, s: float, contacts: int = 1, agent: str | None = None) -> Ev:
    return ev("ticket_resolved", s, ticket_id=tid, contacts=contacts, agent_id=agent)


def reo(tid: str, s: float) -> Ev:
    return ev("ticket_reopened", s, ticket_id=tid)


def sent(sid: str, s: float, kind: str = "csat", q: str = "billing", agent: str | None = None,
         ) -> Ev:
    return ev("survey_sent", s, survey_id=sid, kind=kind, queue=q, channel="voice", agent_id=agent)


def resp(sid: str, s: float, kind: str, score: int, q: str = "billing",
         agent: str | None = None) -> Ev:
    return ev("survey_response", s, survey_id=sid, kind=kind, score=score, queue=q,
              channel="voice", agent_id=agent)


def snap_of(events: list[Ev], at: float | None = None) -> dict[str, Any]:
    r = Replayer(Config(), at_us=None if at is None else to_us(T0) + round(at * 1e6))
    for i, e in enumerate(events):
        assert r.feed(json.dumps({"event_id": f"e{i}", **e}).encode()) is None, e
    return r.snapshot()


def row(snap: dict[str, Any], scope: str, window: str = "24h") -> dict[str, Any]:
    found = [r for r in snap["rows"] if (r["scope"], r["window"]) == (scope, window)]
    assert len(found) == 1, (scope, window, [(r["scope"], r["window"]) for r in snap["rows"]])
    return found[0]


def near(got: float | None, want: float, rel: float = 0.01) -> bool:
    return got is not None and abs(got - want) <= rel * want


# --- contacts ---------------------------------------------------------------------------------
def test_contact_kpis() -> None:
    events = []
    for i in range(1, 22):  # c1..c21 offered at 0 s, answered after i s: waits 1..21
        events += [off(f"c{i}", 0), ans(f"c{i}", i)]
    events += [off("x", 0), aba("x", 30), off("w", 100)]  # one abandoned, one still waiting
    events += [clo("c1", 61), clo("c2", 122)]  # handle 61-1 = 60 s, 122-2 = 120 s
    r = row(snap_of(events, at=270), "all", "5m")  # 10:04:30: 5m = 10:00..10:04
    assert (r["contacts_offered"], r["contacts_answered"], r["contacts_abandoned"]) == (23, 21, 1)
    assert r["abandonment_rate"] == pytest.approx(1 / 22)  # 1 / (21 + 1)
    assert r["asa_seconds"] == pytest.approx(11.0)  # (1 + ... + 21) / 21 = 231 / 21
    assert r["service_level"] == pytest.approx(20 / 22)  # waits 1..20 within 20 s / (21 + 1)
    # exact lower quantiles of 1..21 (n = 21): rank floor(q * 20)
    assert near(r["wait_p50_seconds"], 11)  # rank 10
    assert near(r["wait_p90_seconds"], 19)  # rank 18
    assert near(r["wait_p95_seconds"], 20)  # rank 19
    assert r["aht_seconds"] == pytest.approx(90.0)  # (60 + 120) / 2


def test_service_level_threshold_is_inclusive() -> None:
    events = [off("a", 0), ans("a", 20), off("b", 0), ans("b", 20.001)]
    r = row(snap_of(events, at=60), "all", "5m")
    assert r["service_level"] == 0.5  # wait 20.000 counts, 20.001 doesn't: 1 / 2
    assert r["abandonment_rate"] == 0.0  # 0 / 2, not null


def test_each_measurement_lands_in_the_bucket_of_its_completing_event() -> None:
    events = [off("c", 0), ans("c", 10), clo("c", 360)]  # closed 10:06:00, handle 350 s
    s = snap_of(events, at=390)  # 10:06:30: 5m = 10:02..10:06
    five, fifteen = row(s, "all", "5m"), row(s, "all", "15m")
    assert (five["contacts_answered"], five["asa_seconds"], five["aht_seconds"]) == (0, None, 350.0)
    assert (fifteen["contacts_answered"], fifteen["asa_seconds"]) == (1, 10.0)


# --- tickets ----------------------------------------------------------------------------------
def test_ticket_kpis() -> None:
    events = [
        opn("t1", 0), rep("t1", 60), rep("t1", 120), res("t1", 600, contacts=1, agent="a1"),
        opn("t2", 0), rep("t2", 180, "a2"), res("t2", 1200, contacts=3),
        opn("t3", 300), res("t3", 400, contacts=2), reo("t3", 500),
        opn("t4", 700),
    ]
    s = snap_of(events, at=1500)
    r = row(s, "all", "1h")
    assert (r["tickets_opened"], r["tickets_resolved"], r["tickets_reopened"]) == (4, 3, 1)
    assert r["first_reply_seconds"] == pytest.approx(120.0)  # (60 + 180) / 2; 2nd reply ignored
    assert r["resolution_seconds"] == pytest.approx(1900 / 3)  # (600 + 1200 + 100) / 3
    assert near(r["resolution_p90_seconds"], 600)  # sorted 100, 600, 1200: rank floor(0.9*2) = 1
    assert r["fcr_rate"] == pytest.approx(1 / 3)  # only t1 took 1 contact
    assert row(s, "all", "now")["open_tickets"] == 2  # t3 (reopened) and t4


# --- surveys ----------------------------------------------------------------------------------
def test_survey_kpis() -> None:
    events = [sent(f"s{i}", i) for i in range(26)]  # 26 sent
    scores = [("csat", 5), ("csat", 4), ("csat", 3), ("csat", 1),
              ("nps", 10), ("nps", 9), ("nps", 8), ("nps", 7), ("nps", 6), ("nps", 0),
              ("ces", 7), ("ces", 6), ("ces", 2)]
    events += [resp(f"s{i}", 30 + i, k, v) for i, (k, v) in enumerate(scores)]
    r = row(snap_of(events), "all", "5m")
    assert r["surveys_sent"] == 26
    assert (r["csat_responses"], r["csat"]) == (4, 0.5)  # 5 and 4 are good: 2 / 4
    assert (r["nps_responses"], r["nps"]) == (6, 0.0)  # (2 promoters - 2 detractors) / 6 * 100
    assert (r["ces_responses"], r["ces"]) == (3, 5.0)  # (7 + 6 + 2) / 3
    assert r["survey_response_rate"] == 0.5  # (4 + 6 + 3) / 26


@pytest.mark.parametrize(
    ("scores", "nps"),
    [([0, 6], -100.0), ([9, 10], 100.0), ([7, 8], 0.0),
     ([9, 10, 10, 0], 50.0),  # (3 - 1) / 4 * 100
     ([9, 7, 6], 0.0)],  # (1 - 1) / 3 * 100
)
def test_nps(scores: list[int], nps: float) -> None:
    r = row(snap_of([resp(f"s{i}", i, "nps", v) for i, v in enumerate(scores)]), "all")
    assert r["nps"] == pytest.approx(nps)
    assert r["nps_responses"] == len(scores)


@pytest.mark.parametrize(("score", "csat"), [(4, 1.0), (3, 0.0), (5, 1.0), (1, 0.0)])
def test_csat_good_is_four_or_more(score: int, csat: float) -> None:
    assert row(snap_of([resp("s", 0, "csat", score)]), "all")["csat"] == csat


# --- nulls and zeros --------------------------------------------------------------------------
def test_zero_denominators_are_null_and_counts_zero() -> None:
    r = row(snap_of([sent("s1", 0)]), "all", "5m")
    assert set(r) == {"scope", "window", *KPI_FIELDS}
    nulls = {k for k, v in r.items() if v is None}
    assert nulls == {
        "abandonment_rate", "asa_seconds", "wait_p50_seconds", "wait_p90_seconds",
        "wait_p95_seconds", "service_level", "aht_seconds", "first_reply_seconds",
        "resolution_seconds", "resolution_p90_seconds", "fcr_rate", "csat", "nps", "ces",
        # v2: nothing to divide by either (no abandon, no agent time, no SLA policy,
        # no customer, no cost defined)
        "abandon_seconds", "occupancy", "first_reply_sla_rate", "resolution_sla_rate",
        "repeat_contact_rate", "cost_per_contact",
    }
    counts = [k for k in KPI_FIELDS if k.startswith(("contacts_", "tickets_")) or
              k.endswith("_responses")]
    assert all(r[k] == 0 and isinstance(r[k], int) for k in counts)
    assert (r["surveys_sent"], r["survey_response_rate"]) == (1, 0.0)  # 0 / 1, not null


# --- agent rows -------------------------------------------------------------------------------
def test_agent_rows() -> None:
    events = [
        off("c1", 0), ans("c1", 10, "a1"), clo("c1", 60),  # wait 10, handle 50, a1's
        off("c2", 0), aba("c2", 5),
        opn("t1", 0), rep("t1", 30, "a1"), res("t1", 40, contacts=1, agent="a1"), reo("t1", 50),
        sent("s1", 70, agent="a1"), resp("s1", 80, "csat", 5, agent="a1"),
    ]
    s = snap_of(events)
    a, al = row(s, "agent:a1"), row(s, "all")
    zero = ("contacts_offered", "contacts_abandoned", "tickets_opened", "tickets_reopened",
            "surveys_sent")
    assert [a[k] for k in zero] == [0] * 5
    assert [al[k] for k in zero] == [2, 1, 1, 1, 1]
    assert (a["contacts_answered"], a["asa_seconds"], a["aht_seconds"]) == (1, 10.0, 50.0)
    assert a["service_level"] == 1.0  # 1 within / 1 answered
    assert al["service_level"] == 0.5  # 1 within / (1 answered + 1 abandoned)
    assert a["abandonment_rate"] == 0.0  # 0 / (1 + 0)
    assert (a["tickets_resolved"], a["first_reply_seconds"], a["fcr_rate"]) == (1, 30.0, 1.0)
    assert (a["csat_responses"], a["csat"], a["survey_response_rate"]) == (1, 1.0, None)
    # v2: the agent's now row, with no agent_state ever: logged out, state never set
    now = row(s, "agent:a1", "now")
    assert (now["agents_logged_in"], now["state_seconds"], now["contacts_waiting"],
            now["open_tickets"]) == (0, None, None, None)


# --- live state -------------------------------------------------------------------------------
def test_now_rows() -> None:
    events = [
        off("c3", 100), off("c4", 200, q="tech", ch="chat"), off("c5", 300), ans("c5", 310),
        opn("t1", 0), res("t1", 10), reo("t1", 20),  # open again
        opn("t2", 30, q="tech"), opn("t3", 40), res("t3", 50),
    ]
    s = snap_of(events, at=600)
    live = {r["scope"]: (r["contacts_waiting"], r["longest_wait_seconds"], r["open_tickets"])
            for r in s["rows"] if r["window"] == "now" and not r["scope"].startswith("agent:")}
    assert live == {
        "all": (2, 500.0, 2),  # 600 - 100 (c3)
        "queue:billing": (1, 500.0, 1),
        "queue:tech": (1, 400.0, 1),  # 600 - 200 (c4)
        "channel:chat": (1, 400.0, 0),
        "channel:email": (0, 0.0, 2),  # nothing waiting: 0, not null
        "channel:voice": (1, 500.0, 0),
    }
    # Without --at the clock is the largest ts: 310 - 100
    assert row(snap_of(events), "all", "now")["longest_wait_seconds"] == 210.0


# --- windows and rows -------------------------------------------------------------------------
def test_window_membership_at_bucket_boundaries() -> None:
    events = [off("a", 899.999),  # 10:14:59.999: bucket 10:14, outside 5m as of 10:19:30
              off("b", 900),  # 10:15:00: first bucket of the 5m window
              off("c", 1199.9),  # 10:19:59.9, ahead of the clock but in bucket 10:19
              off("d", 1210)]  # 10:20:10: within the skew, bucket 10:20 not yet in a window
    s = snap_of(events, at=1170)  # 10:19:30
    assert row(s, "all", "5m")["contacts_offered"] == 2  # b, c
    assert row(s, "all", "15m")["contacts_offered"] == 3  # a, b, c (10:05..10:19)
    assert row(s, "all", "24h")["contacts_offered"] == 3
    assert row(s, "all", "now")["contacts_waiting"] == 4
    assert row(s, "all", "now")["longest_wait_seconds"] == pytest.approx(270.001)  # 1170-899.999


def test_row_order_and_existence() -> None:
    old = -DAY + 1170 + 15  # 2026-11-21T10:19:45: not too late, but outside the 24h buckets
    events = [
        off("o", old, q="old", ch="social"), ans("o", old + 1, "gone"), clo("o", old + 2),
        opn("st", old, q="stale", ch="messaging"),  # still open: a live-only scope
        off("x", 0, q="b"), ans("x", 5, "z"), off("y", 0, q="a", ch="chat"), ans("y", 6, "m"),
    ]
    s = snap_of(events, at=1170)
    got = [(r["scope"], r["window"]) for r in s["rows"]]
    full = ["5m", "15m", "1h", "24h", "today", "now"]
    want = [("all", w) for w in full] + [("queue:a", w) for w in full]
    want += [("queue:b", w) for w in full] + [("queue:stale", "now")]
    want += [("channel:chat", w) for w in full] + [("channel:messaging", "now")]
    want += [("channel:voice", w) for w in full]
    want += [(f"agent:{a}", w) for a in ("m", "z") for w in full]
    assert got == want
    assert row(s, "queue:stale", "now")["open_tickets"] == 1
    assert not [r for r in s["rows"] if r["scope"] in ("queue:old", "channel:social",
                                                       "agent:gone")]


def test_all_now_row_always_present() -> None:
    empty = {"scope": "all", "window": "now", "contacts_waiting": 0,
             "longest_wait_seconds": 0.0, "open_tickets": 0, "agents_logged_in": 0,
             "agents_available": 0, "agents_busy": 0, "agents_wrap_up": 0, "agents_paused": 0,
             "state_seconds": None, "tickets_sla_breached": 0, "tickets_sla_at_risk": 0}
    r = Replayer(Config())
    assert r.snapshot()["rows"] == [empty]
    r = Replayer(Config(), at_us=to_us(T0))
    for raw in (b"{", b"[]"):
        r.feed(raw)
    s = r.snapshot()
    assert (s["as_of"], s["rows"], s["rejected"]) == ("2026-11-22T10:00:00Z", [empty],
                                                      {"invalid_json": 2})
