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
