"""Bounded cardinality: beyond a kind's cap the least busy scopes fold into <kind>:other,
exactly (every aggregate is a sum), and replay and the whole-center view fold alike."""

from __future__ import annotations

import json
from typing import Any

from tables.engine import Replayer
from tables.entities import Config

T = "2026-11-23T10:{:02d}:{:02d}Z"


def ev(n: int, etype: str, minute: int, sec: int, **f: Any) -> bytes:
    return json.dumps({"event_id": f"e{n}", "type": etype, "ts": T.format(minute, sec), **f}
                      ).encode()


def events() -> list[bytes]:
    out, n = [], 0
    # 6 queues with 6, 5, 4, 3, 2, 1 contacts; each answered by its own agent
    for q in range(6):
        for i in range(6 - q):
            n += 1
            cid = f"c{q}-{i}"
            out.append(ev(n, "contact_offered", 1, i, contact_id=cid, queue=f"q{q}",
                          channel="voice"))
            n += 1
            out.append(ev(n, "contact_answered", 2, i, contact_id=cid, agent_id=f"a{q}"))
    return out


def snap(caps: dict[str, int] | None) -> dict[str, Any]:
    r = Replayer(Config(caps=caps))
    for raw in events():
        assert r.feed(raw) is None
    return r.snapshot()


def rows(s: dict[str, Any], window: str = "24h") -> dict[str, dict[str, Any]]:
    return {r["scope"]: r for r in s["rows"] if r["window"] == window}


def test_caps_fold_the_least_busy_exactly() -> None:
    full, capped = rows(snap(None)), rows(snap({"queue": 3, "agent": 4}))
    queues = sorted(s for s in capped if s.startswith("queue:"))
    assert queues == ["queue:other", "queue:q0", "queue:q1"]  # 2 busiest + other = 3
    assert capped["queue:other"]["contacts_offered"] == 4 + 3 + 2 + 1
    agents = sorted(s for s in capped if s.startswith("agent:"))
    assert agents == ["agent:a0", "agent:a1", "agent:a2", "agent:other"]
    assert capped["agent:other"]["contacts_answered"] == 3 + 2 + 1
    # nothing lost: the center and the kept scopes are unchanged
    assert capped["all"] == full["all"] and capped["queue:q0"] == full["queue:q0"]
    assert capped["agent:other"]["asa_seconds"] == 60.0


def test_no_cap_no_fold() -> None:
    assert "queue:other" not in rows(snap({"queue": 10}))


def test_snapshot_reports_what_it_folded_now_not_before() -> None:
    from tables.center import build_snapshot  # noqa: PLC0415 - the view's entry point

    r = Replayer(Config(caps={"queue": 3}))
    for raw in events():
        assert r.feed(raw) is None
    r.snapshot()
    folded = {"agent": 9}  # from an earlier snapshot: no longer true
    build_snapshot(r.cfg, r.clock.now, r.rollup, [r.state.live_part()], r.sla, {}, 0, folded)
    assert folded == {"queue": 4}


# --- the Prometheus side: the folded gauge and the wait histogram's children -----------------
def _metrics(cap: int) -> tuple[Any, Any]:
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    from stream_app.outputs.metrics import KpiMetrics  # noqa: PLC0415

    reg = CollectorRegistry(auto_describe=True)
    return reg, KpiMetrics(reg, max_queues=cap)


def _wait_queues(reg: Any) -> set[str]:
    return {s.labels["queue"] for m in reg.collect() if m.name == "kpi_contact_wait_seconds"
            for s in m.samples}


def _queues_snapshot(*queues: str) -> dict[str, Any]:
    return {"as_of": None, "rows": [{"scope": f"queue:{q}", "window": "now"} for q in queues]}


def test_folded_gauge_and_began_folding_once() -> None:
    reg, m = _metrics(0)
    assert m.scopes_folded({"queue": 4}) == {"queue"}
    assert m.scopes_folded({"queue": 5}) == set()  # logged once, not on every publish
    assert reg.get_sample_value("kpi_scopes_folded", {"kind": "queue"}) == 5
    assert m.scopes_folded({}) == set()
    assert reg.get_sample_value("kpi_scopes_folded", {"kind": "queue"}) == 0


def test_wait_histogram_children_are_capped_and_gone_queues_removed() -> None:
    reg, m = _metrics(2)
    m.observe_waits("q0", "voice", [1.0])
    m.observe_waits("q1", "voice", [2.0])
    m.observe_waits("junk-1", "voice", [3.0])  # third queue, cap 2: other
    assert _wait_queues(reg) == {"q0", "q1", "other"}
    assert reg.get_sample_value("kpi_contact_wait_seconds_count",
                                {"queue": "other", "channel": "voice"}) == 1
    # the snapshot shows q0 and other (q1 folded): q1 keeps its label for one publish
    # (the view may be a publish behind), then loses its series
    m.update(_queues_snapshot("q0", "other"))
    assert "q1" in _wait_queues(reg)
    m.update(_queues_snapshot("q0", "other"))
    assert _wait_queues(reg) == {"q0", "other"}
    m.observe_waits("q1", "voice", [4.0])  # left out by the snapshot: goes to other
    assert "q1" not in _wait_queues(reg)
    # a queue the snapshot shows always has its own label, whatever the count
    m.update(_queues_snapshot("q0", "q1", "q2"))
    m.observe_waits("q2", "chat", [5.0])
    m.observe_waits("q1", "voice", [6.0])
    assert _wait_queues(reg) == {"q0", "q1", "q2", "other"}
