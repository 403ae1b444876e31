"""The simulated center is believable, read from its own JSONL with a small reader.

The numbers (waiting contacts, service level, occupancy) are recomputed here from the
events alone, independently of the project's replay engine, so a fault in either one
cannot hide the other's. The agent-consistency test replays each agent's states next
to its contacts: busy exactly from the answer to the close, one contact at a time,
only when available and only for its own queues.

Service level and waiting times are only meaningful in real time, so those tests run
at rates the default center serves in real time; the sped-up center (high rates) is
checked for what speed must not change: its size, its mix, its consistency, and the
time-free numbers (occupancy, abandon share).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pytest

from stream_app.tools.simulator.center import MAX_SITES, plan_center
from stream_app.tools.simulator.run import timed_events

DAY_START = datetime.fromisoformat("2026-11-23T00:00:00Z").timestamp()
PEAK_HOUR = DAY_START + 10 * 3600
SL_SECONDS = 20.0


def ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def good_events(rate: float, duration: float, start: float, load: float,
                seed: int = 7) -> list[dict[str, Any]]:
    """The events, each with its parsed time under ``_t`` (read once, used by every test)."""
    out = []
    for _, data, label in timed_events(rate, duration, seed, start, 0.0, load=load):
        if label is None:
            ev = orjson.loads(data)
            ev["_t"] = ts(ev["ts"])
            out.append(ev)
    return out


@dataclass
class Center:
    """What a supervisor's wallboard would show, summed over the run."""

    waiting_mean: float = 0.0
    waiting_max: int = 0
    answered: int = 0
    abandoned: int = 0
    within: int = 0
    state_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    reasons: Counter[str] = field(default_factory=Counter)
    logged_in_by_hour: dict[int, int] = field(default_factory=dict)

    @property
    def service_level(self) -> float:
        return self.within / (self.answered + self.abandoned)

    @property
    def abandon_share(self) -> float:
        return self.abandoned / (self.answered + self.abandoned)

    @property
    def occupancy(self) -> float:
        s = self.state_seconds
        return (s["busy"] + s["wrap_up"]) / (s["available"] + s["busy"] + s["wrap_up"])


def read_center(events: list[dict[str, Any]], start: float, end: float) -> Center:
    out = Center()
    offered: dict[str, float] = {}
    waiting, last, area = 0, start, 0.0
    state: dict[str, tuple[str, float]] = {}
    for ev in events:
        t, etype = ev["_t"], ev["type"]
        if etype == "agent_state":
            agent = ev["agent_id"]
            if agent in state:
                before, since = state[agent]
                out.state_seconds[before] += t - since
            state[agent] = (ev["state"], t)
            if ev["state"] == "paused":
                out.reasons[ev["reason"]] += 1
            hour = int((t - start) // 3600)
            out.logged_in_by_hour[hour] = sum(s != "offline" for s, _ in state.values())
            continue
        if etype == "contact_offered":
            step = 1
            offered[ev["contact_id"]] = t
        elif etype in ("contact_answered", "contact_abandoned"):
            step = -1
            if etype == "contact_answered":
                out.answered += 1
                out.within += t - offered[ev["contact_id"]] <= SL_SECONDS
            else:
                out.abandoned += 1
        else:
            continue
        area += waiting * (t - last)
        last = t
        waiting += step
        out.waiting_max = max(out.waiting_max, waiting)
    area += waiting * (end - last)
    for before, since in state.values():
        out.state_seconds[before] += end - since
    out.waiting_mean = area / (end - start)
    return out


PEAK_RATE = 5.0  # the most the default center carries in real time at that hour


@pytest.fixture(scope="module")
def peak_hour() -> list[dict[str, Any]]:
    return good_events(PEAK_RATE, 3600, PEAK_HOUR, 1.0)


def test_the_believable_runs_are_real_time() -> None:
    """Else the waiting and service-level checks below would test a sped-up center."""
    for rate, duration, start, load in ((PEAK_RATE, 3600, PEAK_HOUR, 1.0),
                                        (PEAK_RATE, 3600, PEAK_HOUR, 1.5),
                                        (3, 86400, DAY_START, 1.0)):
        plan = plan_center(rate, duration, start, load)
        assert plan.speed == 1.0 and plan.sites >= 3, (rate, plan.sites, plan.speed)


@pytest.fixture(scope="module")
def whole_day() -> list[dict[str, Any]]:
    return good_events(3, 86400, DAY_START, 1.0)


def test_a_normal_peak_hour(peak_hour: list[dict[str, Any]]) -> None:
    c = read_center(peak_hour, PEAK_HOUR, PEAK_HOUR + 3600)
    assert 2 <= c.waiting_mean <= 60, c.waiting_mean
    assert c.waiting_max <= 200
    assert 0.70 <= c.service_level <= 0.90, c.service_level
    assert 0.70 <= c.occupancy <= 0.90, c.occupancy
    assert 0.003 <= c.abandon_share <= 0.08


def test_a_normal_day(whole_day: list[dict[str, Any]]) -> None:
    c = read_center(whole_day, DAY_START, DAY_START + 86400)
    assert 1 <= c.waiting_mean <= 30, c.waiting_mean
    assert 0.70 <= c.service_level <= 0.90, c.service_level
    assert 0.70 <= c.occupancy <= 0.90, c.occupancy
    assert 0.005 <= c.abandon_share <= 0.08
    # Staff follows the traffic: few agents at night, many at the peak.
    night, peak = c.logged_in_by_hour[3], max(c.logged_in_by_hour.values())
    assert peak > 4 * night > 0
    # Breaks, lunches, trainings and meetings, each with its reason.
    assert {"break", "lunch", "training", "meeting"} <= set(c.reasons)
    assert c.reasons["break"] > c.reasons["training"]


def test_load_one_and_a_half_is_an_overload(peak_hour: list[dict[str, Any]]) -> None:
    normal = read_center(peak_hour, PEAK_HOUR, PEAK_HOUR + 3600)
    over = read_center(good_events(PEAK_RATE, 3600, PEAK_HOUR, 1.5), PEAK_HOUR,
                       PEAK_HOUR + 3600)
    assert over.service_level < normal.service_level - 0.3
    assert over.service_level < 0.5
    assert over.waiting_mean > 3 * normal.waiting_mean
    assert over.abandon_share > 2 * normal.abandon_share
    assert over.occupancy > 0.9


def _check_agents(events: list[dict[str, Any]]) -> Counter[str]:
    """Fails on the first inconsistency between an agent's states and its contacts."""
    state: dict[str, str] = {}
    queues: dict[str, set[str]] = defaultdict(set)
    handling: dict[str, str] = {}  # agent -> contact from answer to close
    agent_of: dict[str, str] = {}
    queue_of: dict[str, str] = {}
    expect: dict[str, tuple[str, float]] = {}  # the agent_state that must come next
    seen: Counter[str] = Counter()
    for ev in events:
        etype, t = ev["type"], ev["_t"]
        if etype == "contact_offered":
            queue_of[ev["contact_id"]] = ev["queue"]
        elif etype == "contact_answered":
            agent, contact = ev["agent_id"], ev["contact_id"]
            assert agent not in expect, ev
            assert state.get(agent) == "available", (ev, state.get(agent))
            assert agent not in handling, ev
            assert queue_of[contact] in queues[agent], (ev, queues[agent])
            handling[agent], agent_of[contact] = contact, agent
            expect[agent] = ("busy", t)
            seen["answered"] += 1
        elif etype == "contact_closed":
            agent = agent_of.pop(ev["contact_id"])
            assert ev.get("agent_id", agent) == agent
            assert handling.pop(agent) == ev["contact_id"] and state[agent] == "busy"
            expect[agent] = ("wrap_up", t)
        elif etype == "agent_state":
            agent, new = ev["agent_id"], ev["state"]
            if agent in expect:
                assert (new, t) == expect.pop(agent), ev
            else:
                # Between the answer and the close nothing else may happen to the agent.
                assert agent not in handling and new not in ("busy", "wrap_up"), ev
            if ev.get("queues") is not None:
                queues[agent] = set(ev["queues"])
                assert 1 <= len(queues[agent]) <= 3
            state[agent] = new
            seen[new] += 1
    return seen


def test_agent_states_match_their_contacts(whole_day: list[dict[str, Any]],
                                           peak_hour: list[dict[str, Any]]) -> None:
    for events, answered in ((whole_day, 10_000), (peak_hour, 2_000)):
        seen = _check_agents(events)
        assert seen["answered"] > answered and seen["busy"] == seen["answered"]
        assert seen["paused"] > 100
    assert _check_agents(whole_day)["offline"] > 100  # every shift ends within the day


def test_every_agent_logs_in_with_its_queues_before_anything_else(
        whole_day: list[dict[str, Any]]) -> None:
    first: dict[str, dict[str, Any]] = {}
    for ev in whole_day:
        if ev["type"] == "agent_state":
            first.setdefault(ev["agent_id"], ev)
    assert len(first) > 100
    for ev in first.values():
        assert ev["state"] == "available" and ev["queues"], ev
        assert ev["agent_id"].startswith("agent-") and len(ev["agent_id"]) >= 9


@pytest.mark.parametrize(("rate", "duration"), [(300, 600), (2000, 120)])
def test_a_fast_stream_is_the_same_bounded_center_sped_up(rate: float, duration: float) -> None:
    """Above the real-time size the center keeps four queues and its few hundred agents,
    and carries ``rate`` by running faster, with its mix and its consistency intact."""
    plan = plan_center(rate, duration, PEAK_HOUR, 1.0)
    assert plan.sites == MAX_SITES and plan.speed > 50
    events = good_events(rate, duration, PEAK_HOUR, 1.0)
    assert len(events) / duration == pytest.approx(rate, rel=0.03)
    assert {ev["queue"] for ev in events if "queue" in ev} == {
        "billing", "tech", "sales", "returns"}
    agents = {ev["agent_id"] for ev in events if "agent_id" in ev}
    assert 300 < len(agents) <= MAX_SITES * 250
    types = Counter(ev["type"] for ev in events)
    assert 0.30 < types["agent_state"] / len(events) < 0.50
    assert {"contact_abandoned", "ticket_resolved", "survey_response"} <= set(types)
    seen = _check_agents(events)
    assert seen["answered"] > 1000 and seen["busy"] == seen["answered"]
    assert seen["paused"] > 50 and seen["offline"] > 10
    # Occupancy and the abandon share do not depend on the clock's pace: a normal day's.
    c = read_center(events, PEAK_HOUR, PEAK_HOUR + duration)
    assert 0.70 <= c.occupancy <= 0.90, c.occupancy
    assert 0.005 <= c.abandon_share <= 0.08, c.abandon_share
    # Durations shrink with the speed: a voice call is seconds long, not minutes.
    opened = {ev["contact_id"]: ev["_t"] for ev in events if ev["type"] == "contact_answered"}
    talk = sorted(ev["_t"] - opened[ev["contact_id"]] for ev in events
                  if ev["type"] == "contact_closed" and ev["contact_id"] in opened)
    assert 60 / plan.speed < talk[len(talk) // 2] < 600 / plan.speed
