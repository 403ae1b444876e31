"""Crash exactness of the live processor, without a broker.

The changelog is modelled as what Kafka guarantees: per partition, an ordered
log of which any *prefix* may have landed when the process dies. For many
crash points (after every single write of a batch), the test restores the
partition from the surviving prefix, re-processes from the committed offsets
and checks that the final snapshot equals the offline replay of the same
input: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import random
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream_app.tools.routing import route
from stream_app.tools.simulator.run import generate_events
from stream_app.worker.processor import LiveProcessor, Msg, Plan
from tables.center import Center
from tables.compare import diff
from tables.definitions import definitions_from_toml
from tables.engine import Replayer
from tables.events import decode, to_us
from tables.snapshot import format_ts
from tables.state import Config

TOPICS = {
    "contact": "contact-events",
    "ticket": "ticket-events",
    "survey": "survey-events",
    "agent": "agent-events",
}
# Every kind of v2 state: agents, SLA instants, offers (repeats), thresholds, a local day.
DEFS = Path(__file__).resolve().parent / "definitions" / "center.toml"
CFG = Config(defs=definitions_from_toml(DEFS.read_text(), str(DEFS)))
P = 2


def _input(n_seconds: float, seed: int) -> tuple[list[bytes], dict[tuple[str, int], list[bytes]]]:
    lines = list(
        generate_events(
            rate=30, duration=n_seconds, seed=seed, start_epoch=1_795_000_000.0, bad_share=0.05
        )
    )
    lines += _ticket_surveys(1_795_000_000.0, n_seconds, seed)
    logs: dict[tuple[str, int], list[bytes]] = {
        (t, p): [] for t in TOPICS.values() for p in range(P)
    }
    for line in lines:
        family, key = route(line)
        part = (zlib.crc32(key) % P) if key else 0
        logs[(TOPICS[family], part)].append(line)
    return lines, logs


def _ticket_surveys(start: float, seconds: float, seed: int) -> list[bytes]:
    """Tickets with a product and CSAT responses naming them: the join of CSAT per product
    across partitions (the simulator's ticket surveys come hours after a resolution)."""
    out = []
    for i in range(40):
        t = start + seconds * i / 40
        tid, sid = f"xt-{seed}-{i}", f"xs-{seed}-{i}"
        out.append(orjson.dumps({
            "event_id": f"x-{tid}", "type": "ticket_opened", "ts": format_ts(int(t * 1e6)),
            "ticket_id": tid, "queue": "billing", "channel": "email",
            "product": ("router", "modem", "sim")[i % 3]}))
        out.append(orjson.dumps({
            "event_id": f"x-{sid}", "type": "survey_response",
            "ts": format_ts(int((t + seconds / 80) * 1e6)), "survey_id": sid, "kind": "csat",
            "score": 1 + i % 5, "queue": "billing", "channel": "email", "ticket_id": tid}))
    return out


def _clock_for(lines: list[bytes]) -> int:
    best = 0
    for line in lines:
        ev = decode(line)
        if not isinstance(ev, str):
            best = max(best, to_us(ev.ts))
    return best + 1_000_000


class World:
    """The broker, as far as the processor can tell: changelog, partials, committed offsets."""

    def __init__(self) -> None:
        self.changelog: dict[int, list[tuple[bytes, bytes | None]]] = {p: [] for p in range(P)}
        self.partials: dict[bytes, bytes | None] = {}
        self.committed: dict[tuple[str, int], int] = {}

    def table(self, p: int, upto: int | None = None) -> dict[bytes, bytes]:
        items: dict[bytes, bytes] = {}
        for k, v in self.changelog[p][:upto]:
            if v is None:
                items.pop(k, None)
            else:
                items[k] = v
        return items


def _apply_plan(world: World, plan: Plan, cut: int | None = None) -> bool:
    """Write a plan; ``cut``: how many changelog writes land before the crash."""
    for topic, key, value, _, _ in plan.first:
        if topic == "partials":
            assert key is not None
            world.partials[key] = value
    writes: list[Msg] = plan.second + plan.third
    landed = writes if cut is None else writes[:cut]
    for _, key, value, part, _ in landed:
        assert key is not None and part is not None
        world.changelog[part].append((key, value))
    if cut is not None and cut < len(writes):
        return False
    world.committed.update(plan.offsets)
    return True


def _processor() -> LiveProcessor:
    return LiveProcessor(CFG, TOPICS, "changelog", "partials", "dlq", checkpoint_every=3)


def _run(
    world: World,
    logs: dict[tuple[str, int], list[bytes]],
    clock: int,
    batch: int,
    crash_at: tuple[int, int] | None,
    rng: random.Random,
) -> bool:
    """Process everything after the committed offsets; optionally crash in batch #n at write #k."""
    proc = _processor()
    for p in range(P):
        proc.load(p, world.table(p))
    cursors = {tp: world.committed.get(tp, 0) for tp in logs}
    n_batch = 0
    while any(cursors[tp] < len(logs[tp]) for tp in logs):
        for tp in logs:
            start = cursors[tp]
            take = rng.randint(1, batch)
            recs = [(o, logs[tp][o]) for o in range(start, min(start + take, len(logs[tp])))]
            if recs:
                proc.absorb(tp[0], tp[1], recs, clock)
                cursors[tp] = recs[-1][0] + 1
        plan = proc.prepare(clock)
        if plan is None:
            continue
        n_batch += 1
        if crash_at is not None and n_batch == crash_at[0]:
            _apply_plan(world, plan, cut=crash_at[1])
            return False
        _apply_plan(world, plan)
    return True


def _live_snapshot(world: World, clock: int) -> dict[str, Any]:
    """What every worker's view serves: the same pure fold of the partials (and, beside
    the snapshot, the CSAT per product it joins across partitions)."""
    center = Center(CFG)
    for k, v in world.partials.items():
        center.apply(k, v)
    return {**center.snapshot(clock), "product_csat": center.product_csat(clock)}


def _replay(logs: dict[tuple[str, int], list[bytes]], clock: int) -> dict[str, Any]:
    rep = Replayer(CFG, at_us=clock)
    # Partition-wise order is all the contract promises, and all the state depends on.
    for tp in sorted(logs):
        for line in logs[tp]:
            rep.feed(line)
    return {**rep.snapshot(), "product_csat": rep.product_csat()}


@pytest.mark.parametrize("seed", [1, 2])
def test_crash_at_every_write_of_a_batch_is_exact(seed: int) -> None:
    lines, logs = _input(240, seed)
    clock = _clock_for(lines)
    expected = _replay(logs, clock)
    assert (
        sum(
            r["contacts_offered"]
            for r in expected["rows"]
            if r["scope"] == "all" and r["window"] == "24h"
        )
        > 100
    )
    assert expected["duplicates"] > 0 and expected["rejected"]
    assert expected["product_csat"]["24h"], "no CSAT response named a ticket with a product"
    rng = random.Random(seed)
    crash_points = [(b, k) for b in (2, 5, 9) for k in range(0, 40, 3)]
    for batch_no, cut in crash_points:
        world = World()
        finished = _run(world, logs, clock, 60, (batch_no, cut), rng)
        if not finished:
            assert _run(world, logs, clock, 60, None, rng)
        got = _live_snapshot(world, clock)
        problems = diff(expected, got)
        assert got["product_csat"] == expected["product_csat"], (batch_no, cut)
        assert not problems, f"crash at batch {batch_no} write {cut}: {problems[:5]}"


def test_two_crashes_in_a_row_are_exact() -> None:
    lines, logs = _input(180, 7)
    clock = _clock_for(lines)
    expected = _replay(logs, clock)
    rng = random.Random(7)
    world = World()
    assert not _run(world, logs, clock, 40, (3, 5), rng)
    assert not _run(world, logs, clock, 40, (2, 1), rng)
    assert _run(world, logs, clock, 40, None, rng)
    got = _live_snapshot(world, clock)
    assert not diff(expected, got)
    assert got["product_csat"] == expected["product_csat"]


def test_a_clean_run_writes_a_checkpoint_and_restores_from_it() -> None:
    lines, logs = _input(120, 3)
    clock = _clock_for(lines)
    world = World()
    assert _run(world, logs, clock, 30, None, random.Random(3))
    for p in range(P):
        keys = set(world.table(p))
        assert f"K|{p}".encode() in keys  # checkpoint_every=3 batches
        proc = _processor()
        rt = proc.load(p, world.table(p))
        assert rt.applied == {f: len(logs[(t, p)]) - 1 for f, t in TOPICS.items() if logs[(t, p)]}
