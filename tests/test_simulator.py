"""The simulator, without Kafka: determinism, rate, ordering, realism, and that its bad
events are rejected for exactly the intended reason. How believable the center itself
is (waiting, service level, occupancy, agents against contacts) is checked in
``test_simulator_center``.

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
from itertools import islice, takewhile
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from typer.testing import CliRunner

from stream_app.cli import app
from stream_app.tools.simulator.center import MAX_SITES, plan_center
from stream_app.tools.simulator.model import Generator
from stream_app.tools.simulator.run import (
    BAD_REASONS,
    BAD_VARIANTS,
    generate_events,
    run_simulate,
    timed_events,
)

START = datetime.fromisoformat("2026-11-22T08:00:00Z").timestamp()
RETENTION, SKEW = 24 * 3600, 300
CHANNELS = {"voice", "chat", "email", "messaging", "social"}
RANGES = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
STATES = {"available", "busy", "wrap_up", "paused", "offline"}
LOBS = {"billing", "tech", "sales", "returns"}
ID_FIELDS = {"contact_id", "ticket_id", "survey_id", "agent_id", "customer_id", "event_id"}
# type -> optional id fields it defines (contract v2): null or an id
OPTIONAL_IDS = {"ticket_opened": ("priority", "product"), "agent_state": ("reason",)}
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
    "agent_state": {"agent_id": str, "state": str},
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


def is_id(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 128


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
        self.agents: dict[str, float] = {}  # ts of each agent's last accepted agent_state

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
            if not is_id(ev[field]):
                return False
        for field in OPTIONAL_IDS.get(ev["type"], ()):
            if ev.get(field) is not None and not is_id(ev[field]):
                return False
        if ev["type"] == "agent_state":
            queues = ev.get("queues")
            if ev["state"] not in STATES or queues is not None and not (
                    isinstance(queues, list) and len(queues) <= 100
                    and all(is_id(q) for q in queues)):
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
        if etype == "agent_state":
            if ts < self.agents.get(ev["agent_id"], -math.inf):
                return "out_of_order"
            self.agents[ev["agent_id"]] = ts
        self.seen.add(ev["event_id"])
        return None


@pytest.fixture(scope="module")
def stream() -> list[tuple[float, bytes, str | None]]:
    """3 h at 40 events/s with 5 % bad events: every bad variant shows up many times, from a
    center sped up ~10x (so bad events are checked against the consumer's clock there)."""
    return list(timed_events(40, 3 * 3600, 11, START, 0.05))


STREAM_SPEED = plan_center(40 * 0.95, 3 * 3600, START, 1.0).speed


@pytest.fixture(scope="module")
def good(stream: list[tuple[float, bytes, str | None]]) -> list[dict[str, Any]]:
    return [orjson.loads(data) for _, data, label in stream if label is None]


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a = list(generate_events(50, 600, 5, START, 0.05))
    assert a == list(generate_events(50, 600, 5, START, 0.05))
    assert a == list(generate_events(50, 600, 5, START, 0.05, load=1.0))
    assert a != list(generate_events(50, 600, 6, START, 0.05))
    assert a != list(generate_events(50, 600, 5, START, 0.05, load=1.5))
    assert a != list(generate_events(50, 600, 5, START, 0.05, sites=2))
    assert all(isinstance(line, bytes) and b"\n" not in line for line in a)


def test_a_sped_up_center_is_deterministic_too() -> None:
    a = list(generate_events(2000, 20, 5, START, 0.05))
    assert plan_center(2000 * 0.95, 20, START, 1.0).speed > 100
    assert a == list(generate_events(2000, 20, 5, START, 0.05))
    assert a != list(generate_events(2000, 20, 6, START, 0.05))
    labels = Counter(label.split("/")[0] for _, _, label in timed_events(2000, 20, 5, START, 0.05)
                     if label)
    assert set(labels) == set(BAD_REASONS)


@pytest.mark.parametrize(("rate", "duration", "hour", "sites", "want_sites", "fast"), [
    (4, 7200, 10, None, 3, False),  # what the rate needs, in real time
    (3, 86400, 0, None, 4, False),
    (300, 120, 8, None, MAX_SITES, True),  # capped: the same sites, faster
    (300, 120, 8, 1, 1, True),
    (300, 120, 8, 12, 12, True),  # more than the cap when asked for, still fewer than needed
    (4, 7200, 10, 6, 6, False),  # more sites than needed: smaller ones, in real time
])
def test_center_size_and_speed(rate: float, duration: float, hour: int, sites: int | None,
                               want_sites: int, fast: bool) -> None:
    start = START + (hour - 8) * 3600
    plan = plan_center(rate, duration, start, 1.0, sites)
    assert plan.sites == want_sites and (plan.speed > 1.0) == fast, plan.speed
    assert plan.queues == ["billing", "tech", "sales", "returns"]
    if fast:
        assert plan.volume == 1.0  # standard sites: the planned center, only faster
    n = sum(1 for _ in generate_events(rate, duration, 1, start, 0.0, sites=sites))
    assert n / duration == pytest.approx(rate, rel=0.05)


@pytest.mark.parametrize(("rate", "duration", "hour", "load"), [
    (20, 1800, 8, 1.0), (300, 600, 8, 1.0), (300, 60, 8, 1.0), (30, 120, 10, 1.0),
    (10, 900, 3, 1.0), (5, 4 * 3600, 8, 1.0), (2, 2 * 86400, 0, 1.0), (20, 1800, 15, 1.5)])
def test_rate_is_about_events_over_duration(rate: float, duration: float, hour: int,
                                            load: float) -> None:
    """The center is sized so the window carries ``rate`` events/s whatever its hour, its
    length (short ones start with the burst of agents already on shift) or its load."""
    start = START + (hour - 8) * 3600
    n = sum(1 for _ in generate_events(rate, duration, 1, start, 0.01, load=load))
    assert n / duration == pytest.approx(rate, rel=0.05 if load == 1.0 else 0.08)


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
    # four queues with different loads (the same names in every site), every channel,
    # agents by the hundred but no more than the capped center has
    lobs = Counter(ev["queue"] for ev in offered.values())
    assert set(lobs) == LOBS
    assert lobs["billing"] > lobs["returns"] * 1.5
    channels = Counter(ev["channel"] for ev in offered.values())
    assert set(channels) == CHANNELS and channels.most_common(1)[0][0] == "voice"
    agents = {ev["agent_id"] for ev in good if "agent_id" in ev}
    assert 200 < len(agents) <= MAX_SITES * 250
    assert all(a.startswith("agent-") for a in agents)
    # ticket work goes to agents on the floor (of whom agent states were sent) if any
    unseen = agents - {ev["agent_id"] for ev in good if ev["type"] == "agent_state"}
    assert len(unseen) < len(agents) / 100
    # abandonment 0.5-8 % of finished waits; voice waits mostly nil, some of minutes (of
    # the center's time: the stream is sped up)
    ab, an = types["contact_abandoned"], types["contact_answered"]
    assert 0.005 < ab / (ab + an) < 0.08
    waits = [parse_ts(ev["ts"]) - parse_ts(offered[ev["contact_id"]]["ts"])  # type: ignore
             for ev in good if ev["type"] == "contact_answered"
             and offered[ev["contact_id"]]["channel"] == "voice"]
    assert STREAM_SPEED > 5
    assert statistics.median(waits) < 20 / STREAM_SPEED and max(waits) > 60 / STREAM_SPEED
    # tickets: replies, resolutions with contacts 1-4, some reopened; surveys answered
    resolved = [ev for ev in good if ev["type"] == "ticket_resolved"]
    assert Counter(ev["contacts"] for ev in resolved).most_common(1)[0][0] == 1
    assert any("agent_id" in ev for ev in resolved) and any("agent_id" not in ev
                                                            for ev in resolved)
    assert types["ticket_reopened"] > 0 and types["ticket_replied"] > types["ticket_opened"] / 2
    opened = [ev for ev in good if ev["type"] == "ticket_opened"]
    assert all(isinstance(ev["priority"], str) and isinstance(ev["product"], str)
               for ev in opened)
    assert 0.25 < types["survey_response"] / types["survey_sent"] < 0.55
    assert any(ev["ts"].endswith("+01:00") for ev in good)


def test_ticket_replies_come_from_agents_of_the_queue(good: list[dict[str, Any]]) -> None:
    serves: dict[str, set[str]] = {}
    for ev in good:
        if ev["type"] == "agent_state" and ev.get("queues"):
            serves[ev["agent_id"]] = set(ev["queues"])
    queue = {ev["ticket_id"]: ev["queue"] for ev in good if ev["type"] == "ticket_opened"}
    replies = [ev for ev in good if ev["type"] == "ticket_replied"]
    assert replies
    for ev in replies:
        # an agent that never logged in during the run may still own an old ticket
        assert ev["agent_id"] in serves or ev["agent_id"].startswith("agent-")
        if ev["agent_id"] in serves:
            assert queue[ev["ticket_id"]] in serves[ev["agent_id"]], ev


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
    """Pending steps a day apart, at the same hour: no growth beyond the day's own."""
    gen = Generator(2, 2 * 86400, 4, START, 0.01, "4")
    pending = []
    mark = START + 86400
    for t, _, _ in gen.run():
        if t >= mark:
            pending.append(sum(map(len, gen.wheel.values())) + len(gen.heap))
            mark += 86400
    pending.append(sum(map(len, gen.wheel.values())) + len(gen.heap))
    assert len(pending) == 2 and pending[1] < pending[0] * 1.2


def test_endless_stream_is_lazy_and_keeps_its_rate() -> None:
    endless = timed_events(2, math.inf, 1, START, 0.01)
    first = list(islice(endless, 1000))
    times = [t for t, _, label in first if label is None]
    # Lazy: the first events come from the first minutes, not after a day was built.
    assert len(times) > 950 and times == sorted(times) and times[-1] < START + 3600
    # Endless: sized on the mean day, so a whole day carries ~rate events per second.
    n = len(first) + sum(1 for _ in takewhile(lambda e: e[0] < START + 86400, endless))
    assert n / 86400 == pytest.approx(2, rel=0.1)


def test_run_simulate_to_file(tmp_path: Path) -> None:
    out = tmp_path / "sim.jsonl"
    run_simulate(rate=30, duration=120, seed=9, to_file=out, end="2026-11-22T10:00:00Z",
                 bad_share=0.0)
    lines = out.read_bytes().splitlines()
    assert lines == list(generate_events(30, 120, 9, START + 2 * 3600 - 120, 0.0))
    run_simulate(rate=30, duration=120, seed=9, to_file=out, end="2026-11-22T10:00:00Z",
                 bad_share=0.0, load=1.5)
    assert out.read_bytes().splitlines() == list(
        generate_events(30, 120, 9, START + 2 * 3600 - 120, 0.0, load=1.5))
    with pytest.raises(typer.BadParameter, match="normal day"):
        run_simulate(rate=30, duration=120, seed=9, to_file=out, end=None, bad_share=0.0,
                     load=0)
    with pytest.raises(typer.BadParameter, match="--duration"):
        run_simulate(rate=30, duration=None, seed=9, to_file=out, end=None, bad_share=0.0)
    with pytest.raises(typer.BadParameter, match=">= 1") as bad:
        run_simulate(rate=30, duration=120, seed=9, to_file=out, end=None, bad_share=0.0,
                     sites=0)
    assert bad.value.param_hint == "--sites"


def test_simulate_command_passes_load_and_sites(tmp_path: Path) -> None:
    out = tmp_path / "sim.jsonl"
    result = CliRunner().invoke(app, [
        "simulate", "--rate", "30", "--duration", "120", "--seed", "9", "--to-file", str(out),
        "--end", "2026-11-22T10:00:00Z", "--bad-share", "0", "--load", "1.5", "--sites", "2"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().splitlines() == list(
        generate_events(30, 120, 9, START + 2 * 3600 - 120, 0.0, load=1.5, sites=2))
    assert out.read_bytes().splitlines() != list(
        generate_events(30, 120, 9, START + 2 * 3600 - 120, 0.0, load=1.5))
