"""The simulator, without Kafka: determinism, rate, ordering, realism, and that its bad
events are rejected for exactly the intended reason.

The reason check uses a small, independent reference of contract section 4 (checks
in contract order, live clock = the time the event is emitted), so a bad event that
would fail an earlier check than intended (a "late" event that is really a
duplicate, say) is caught here.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer

from stream_app.tools.simulator.run import (
    BAD_REASONS,
    BAD_VARIANTS,
    generate_events,
    run_simulate,
    timed_events,
)
from stream_app.tools.simulator.world import Generator

START = datetime.fromisoformat("2026-11-22T08:00:00Z").timestamp()
RETENTION, SKEW = 24 * 3600, 300
CHANNELS = {"voice", "chat", "email", "messaging", "social"}
RANGES = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
ID_FIELDS = {"contact_id", "ticket_id", "survey_id", "agent_id", "customer_id", "event_id"}
REQUIRED: dict[str, dict[str, type]] = {
    "contact_offered": {"contact_id": str, "queue": str, "channel": str},
    "contact_answered": {"contact_id": str, "agent_id": str},
    "contact_abandoned": {"contact_id": str},
    "contact_closed": {"contact_id": str},
    "ticket_opened": {"ticket_id": str, "queue": str, "channel": str},
    "ticket_replied": {"ticket_id": str, "agent_id": str},
    "ticket_resolved": {"ticket_id": str, "contacts": int},
    "ticket_reopened": {"ticket_id": str},
    "survey_sent": {"survey_id": str, "kind": str, "queue": str, "channel": str},
    "survey_response": {"survey_id": str, "kind": str, "score": int, "queue": str,
                        "channel": str},
}
# type -> (entity kind, states it may arrive in, state after)
LIFECYCLE = {
    "contact_offered": ("c", None, "waiting"),
    "contact_answered": ("c", {"waiting"}, "answered"),
    "contact_abandoned": ("c", {"waiting"}, "abandoned"),
    "contact_closed": ("c", {"answered"}, "closed"),
    "ticket_opened": ("t", None, "open"),
    "ticket_replied": ("t", {"open"}, "open"),
    "ticket_resolved": ("t", {"open"}, "resolved"),
    "ticket_reopened": ("t", {"resolved"}, "open"),
}


def parse_ts(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt.timestamp() if dt.tzinfo else None


class Reference:
    """Contract section 4 in its check order, with the live clock passed in."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.entities: dict[tuple[str, str], tuple[str, float]] = {}

    def schema_ok(self, ev: dict[str, Any]) -> bool:
        for field in ("event_id", "type", "ts"):
            if not isinstance(ev.get(field), str):
                return False
        if parse_ts(ev["ts"]) is None:
            return False
        for field, kind in REQUIRED.get(ev["type"], {}).items():
            value = ev.get(field)
            if not isinstance(value, kind) or isinstance(value, bool):
                return False
        for field in ID_FIELDS & ev.keys():
            if not isinstance(ev[field], str) or not 1 <= len(ev[field]) <= 128:
                return False
        if "channel" in REQUIRED.get(ev["type"], {}) and ev["channel"] not in CHANNELS:
            return False
        return not ("kind" in REQUIRED.get(ev["type"], {}) and ev["kind"] not in RANGES)

    def classify(self, raw: bytes, clock: float) -> str | None:
        try:
            ev = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return "invalid_json"
        if not isinstance(ev, dict):
            return "invalid_json"
        if not self.schema_ok(ev):
            return "schema"
        etype = ev["type"]
        if etype not in REQUIRED:
            return "unknown_type"
        if "score" in ev and not RANGES[ev["kind"]][0] <= ev["score"] <= RANGES[ev["kind"]][1]:
            return "out_of_range"
        if etype == "ticket_resolved" and ev["contacts"] < 1:
            return "out_of_range"
        ts = parse_ts(ev["ts"])
        assert ts is not None
        if ts < clock - RETENTION:
            return "too_late"
        if ts > clock + SKEW:
            return "future_ts"
        if ev["event_id"] in self.seen:
            return "duplicate"
        if etype in LIFECYCLE:
            kind, allowed, after = LIFECYCLE[etype]
            key = (kind, ev["contact_id" if kind == "c" else "ticket_id"])
            state = self.entities.get(key)
            if allowed is not None:
                if state is None or state[0] not in allowed:
                    return "unknown_entity"
                if ts < state[1]:
                    return "out_of_order"
            self.entities[key] = (after, ts)
        self.seen.add(ev["event_id"])
        return None


@pytest.fixture(scope="module")
def stream() -> list[tuple[float, bytes, str | None]]:
    """3 h at 40 events/s with 5 % bad events: every bad variant shows up many times."""
    return list(timed_events(40, 3 * 3600, 11, START, 0.05))


@pytest.fixture(scope="module")
def good(stream: list[tuple[float, bytes, str | None]]) -> list[dict[str, Any]]:
    return [orjson.loads(data) for _, data, label in stream if label is None]


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a = list(generate_events(50, 600, 5, START, 0.05))
    assert a == list(generate_events(50, 600, 5, START, 0.05))
    assert a != list(generate_events(50, 600, 6, START, 0.05))
    assert all(isinstance(line, bytes) and b"\n" not in line for line in a)


def test_rate_is_about_events_over_duration() -> None:
    for rate, duration in ((20, 1800), (300, 60), (200, 600), (5, 4 * 3600)):
        n = sum(1 for _ in generate_events(rate, duration, 1, START, 0.01))
        assert n / duration == pytest.approx(rate, rel=0.05), (rate, duration, n)


def test_stream_is_in_event_time_order_and_within_the_duration(
        stream: list[tuple[float, bytes, str | None]]) -> None:
    times = [t for t, _, _ in stream]
    assert times == sorted(times)
    assert times[0] >= START and times[-1] < START + 3 * 3600


def test_good_events_follow_the_lifecycle_in_time_order(good: list[dict[str, Any]]) -> None:
    last: dict[str, float] = {}
    for ev in good:
        ts = parse_ts(ev["ts"])
        assert ts is not None
        family = ev["type"].split("_")[0]
        key = f"{family}:{ev[family + '_id']}"
        assert ts >= last.get(key, -math.inf), ev
        last[key] = ts


def test_every_event_is_rejected_for_exactly_its_intended_reason(
        stream: list[tuple[float, bytes, str | None]]) -> None:
    ref = Reference()
    mismatches = []
    for t, data, label in stream:
        got = ref.classify(data, t)
        want = label.split("/")[0] if label else None
        if got != want:
            mismatches.append((want, got, data[:200]))
    assert not mismatches[:5], f"{len(mismatches)} mismatches"


def test_every_reason_and_variant_is_present(
        stream: list[tuple[float, bytes, str | None]]) -> None:
    labels = Counter(label for _, _, label in stream if label)
    reasons = Counter(label.split("/")[0] for label in labels.elements())
    assert set(reasons) == set(BAD_REASONS)
    expected = {f"{r}/{v}" for r, vs in BAD_VARIANTS.items() for v in vs}
    assert set(labels) == expected, expected - set(labels)
    n_bad = sum(labels.values())
    assert n_bad / len(stream) == pytest.approx(0.05, rel=0.1)
    # Reasons are drawn uniformly.
    assert min(reasons.values()) > n_bad / len(BAD_REASONS) * 0.8


def test_bad_events_have_the_promised_shapes(
        stream: list[tuple[float, bytes, str | None]]) -> None:
    earlier: set[bytes] = set()
    seen_variants: dict[str, bytes] = {}
    for t, data, label in stream:
        if label == "duplicate/resend":
            assert data in earlier  # an exact redelivery
        if label == "invalid_json/bad_utf8":
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
        if label and label.startswith(("too_late", "future_ts")):
            ts = parse_ts(orjson.loads(data)["ts"])
            assert ts is not None
            assert (t - ts > 30 * 3600) if label.startswith("too_late") else (ts - t > 7200)
        if label:
            seen_variants.setdefault(label, data)
        else:
            earlier.add(data)
    assert seen_variants["invalid_json/array"].startswith(b"[")
    assert seen_variants["invalid_json/number"].isdigit()


def test_event_ids_are_unique_except_deliberate_duplicates(
        stream: list[tuple[float, bytes, str | None]]) -> None:
    ids: Counter[str] = Counter()
    for _, data, label in stream:
        if label is None or not label.startswith(("duplicate", "invalid_json")):
            ev = orjson.loads(data)
            if isinstance(ev, dict) and ev.get("event_id"):
                ids[ev["event_id"]] += 1
    assert ids and max(ids.values()) == 1
    assert all(i.startswith("ev-11-") for i in ids if len(i) <= 128)


def test_realistic_mix(good: list[dict[str, Any]]) -> None:
    types = Counter(ev["type"] for ev in good)
    offered = {ev["contact_id"]: ev for ev in good if ev["type"] == "contact_offered"}
    # queues with different loads, every channel, about 20 agents
    queues = Counter(ev["queue"] for ev in offered.values())
    assert set(queues) == {"billing", "tech", "sales", "returns"}
    assert queues["billing"] > queues["returns"] * 1.5
    channels = Counter(ev["channel"] for ev in offered.values())
    assert set(channels) == CHANNELS and channels.most_common(1)[0][0] == "voice"
    agents = {ev["agent_id"] for ev in good if "agent_id" in ev}
    assert 18 <= len(agents) <= 20 and all(a.startswith("agent-") for a in agents)
    # abandonment 3-12 % of finished waits; voice waits mostly under 20 s with a long tail
    ab, an = types["contact_abandoned"], types["contact_answered"]
    assert 0.03 < ab / (ab + an) < 0.12
    waits = [parse_ts(ev["ts"]) - parse_ts(offered[ev["contact_id"]]["ts"])  # type: ignore
             for ev in good if ev["type"] == "contact_answered"
             and offered[ev["contact_id"]]["channel"] == "voice"]
    assert statistics.median(waits) < 20 and max(waits) > 120
    # tickets: replies, resolutions with contacts 1-4, some reopened; surveys answered
    resolved = [ev for ev in good if ev["type"] == "ticket_resolved"]
    assert Counter(ev["contacts"] for ev in resolved).most_common(1)[0][0] == 1
    assert any("agent_id" in ev for ev in resolved) and any("agent_id" not in ev
                                                            for ev in resolved)
    assert types["ticket_reopened"] > 0 and types["ticket_replied"] > types["ticket_opened"] / 2
    assert 0.25 < types["survey_response"] / types["survey_sent"] < 0.55
    assert any(ev["ts"].endswith("+01:00") for ev in good)


def test_surveys_scores_in_range_and_some_responses_without_sent(
        good: list[dict[str, Any]]) -> None:
    sent = {ev["survey_id"] for ev in good if ev["type"] == "survey_sent"}
    responses = [ev for ev in good if ev["type"] == "survey_response"]
    assert {ev["kind"] for ev in responses} == set(RANGES)
    for ev in responses:
        lo, hi = RANGES[ev["kind"]]
        assert lo <= ev["score"] <= hi and isinstance(ev["score"], int)
        assert ev["queue"] and ev["channel"] in CHANNELS
    orphans = [ev for ev in responses if ev["survey_id"] not in sent]
    assert 0 < len(orphans) < len(responses) * 0.2
    assert sum("agent_id" in ev for ev in responses) > len(responses) / 2


def test_reopen_comes_within_12_hours_of_resolution() -> None:
    resolved_at: dict[str, float] = {}
    gaps = []
    for line in generate_events(5, 30 * 3600, 2, START, 0.0):
        ev = orjson.loads(line)
        if ev["type"] == "ticket_resolved":
            resolved_at[ev["ticket_id"]] = parse_ts(ev["ts"])  # type: ignore[assignment]
        elif ev["type"] == "ticket_reopened":
            gaps.append(parse_ts(ev["ts"]) - resolved_at[ev["ticket_id"]])  # type: ignore
    assert gaps and max(gaps) <= 12 * 3600


def test_memory_stays_bounded_on_long_runs() -> None:
    def pending_after(hours: float) -> int:
        gen = Generator(5, hours * 3600, 4, START, 0.01, "4")
        for _ in gen.run():
            pass
        return sum(map(len, gen.wheel.values())) + len(gen.heap)

    assert pending_after(24) < pending_after(12) * 1.2


def test_endless_stream_is_lazy() -> None:
    first = list(islice(generate_events(100, math.inf, 1, START, 0.01), 1000))
    assert len(first) == 1000


def test_run_simulate_to_file(tmp_path: Path) -> None:
    out = tmp_path / "sim.jsonl"
    run_simulate(rate=30, duration=120, seed=9, to_file=out, end="2026-11-22T10:00:00Z",
                 bad_share=0.0)
    lines = out.read_bytes().splitlines()
    assert lines == list(generate_events(30, 120, 9, START + 2 * 3600 - 120, 0.0))
    with pytest.raises(typer.BadParameter, match="--duration"):
        run_simulate(rate=30, duration=None, seed=9, to_file=out, end=None, bad_share=0.0)
