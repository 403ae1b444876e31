"""Production limits in the core, without a broker: byte-bounded changelog chunks, the
``too_large`` reason, one bad record dead-lettered instead of stopping its partition, and
dead letters cut to what their topic accepts.

The fault-injection tests monkeypatch ``PartitionState.apply``. Compiled, the core calls
its own methods directly and would not see the patch, so those tests run in a child
process on the pure-Python core (``KPI_PURE_PYTHON=1``), the same source.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from typing import Any

import orjson
import pytest

from stream_app.tools.simulator.run import generate_events
from stream_app.worker.processor import LiveProcessor
from tables import changelog as C
from tables.clock import EventClock, WallClock
from tables.engine import Replayer
from tables.partition import FeedStats, PartitionStore
from tables.schema import INTERNAL_ERROR, REASONS, TOO_LARGE
from tables.state import Config, PartitionState
from tests.livehelp import ROOT

TOPICS = {f: f"{f}-events" for f in ("contact", "ticket", "survey", "agent")}
NOW = 1_795_000_000.0


def _events(seconds: float = 600, seed: int = 3) -> list[bytes]:
    return list(generate_events(rate=30, duration=seconds, seed=seed,
                                start_epoch=NOW - seconds, bad_share=0.0))


def _clock(at: float = NOW + 1) -> WallClock:
    cfg = Config()
    clock = WallClock(cfg.retention_us, cfg.skew_us)
    clock.set(int(at * 1_000_000))
    return clock


def _apply(items: dict[bytes, bytes], writes: list[tuple[bytes, bytes | None]]) -> None:
    for k, v in writes:
        if v is None:
            items.pop(k, None)
        else:
            items[k] = v


def _contact_records(lines: list[bytes]) -> list[tuple[int, bytes]]:
    """The contact-family lines with offsets, as one input partition would hold them."""
    return [(i, line) for i, line in enumerate(ln for ln in lines if b'"contact_' in ln)]


def test_changelog_chunks_stay_under_the_topic_limit_and_read_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limit = 8_000
    monkeypatch.setattr(C, "VALUE_LIMIT", limit)
    cfg = Config()
    store = PartitionStore.restore(cfg, 0, {})
    records = _contact_records(_events())
    store.absorb("contact", records, _clock(), FeedStats())
    store.fold(int((NOW + 1) * 1e6))
    batch = store.changelog()
    log_writes = [w for w in batch if w[0].startswith(b"L|")]
    checkpoint = store.checkpoint()
    assert len(log_writes) > 3, "the batch's redo log should need several chunks"
    for k, v in log_writes + checkpoint:
        assert v is None or len(v) <= limit, (k, len(v))
    # The batch's writes read back: every entity and id of the redo log's chunks.
    items: dict[bytes, bytes] = {}
    _apply(items, batch)
    alone = PartitionStore.restore(cfg, 0, items)
    assert alone.state.seen == store.state.seen
    # And after the checkpoint (which replaces the logs) the same.
    _apply(items, checkpoint)
    restored = PartitionStore.restore(cfg, 0, items)
    assert not any(k.startswith(b"L|") for k in items)
    assert sorted(map(repr, restored.state.records()[0])) == sorted(
        map(repr, store.state.records()[0])
    )
    assert restored.state.seen == store.state.seen


def test_one_item_over_the_limit_is_its_own_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(C, "VALUE_LIMIT", 1_024)
    big = [["c", "x", ["q" * 3_000]]]
    chunks = C.encode_log(big + [["c", f"y{i}", None] for i in range(100)], [], [], [], {"c": 1})
    assert len(orjson.loads(chunks[0])["e"]) == 1 and len(chunks[0]) > 1_024
    assert all(len(c) <= 1_024 for c in chunks[1:])
    assert sum(len(orjson.loads(c)["e"]) for c in chunks) == 101


def _padded(line: bytes, size: int) -> bytes:
    """The same event, with an ignored field that makes it ``size`` bytes long."""
    body = line[:-1] + b', "pad": "'
    return body + b"x" * (size - len(body) - 2) + b'"}'


def test_too_large_is_rejected_before_decoding_in_replay_and_live() -> None:
    assert REASONS[-1] == TOO_LARGE
    line = _events(60)[0]
    big = _padded(line, 2_001)
    cfg = Config(max_message_bytes=2_000)
    state = PartitionState(cfg)
    clock = EventClock(cfg.retention_us, cfg.skew_us)
    assert state.feed(big, clock) == TOO_LARGE
    assert state.last is None and not clock.seen()  # not decoded: the clock did not move
    assert state.feed(_padded(line, 2_000), clock) is None
    replay = Replayer(cfg)
    replay.feed_lines([big, b"{not json", _padded(line, 2_000)])
    assert replay.snapshot()["rejected"] == {"invalid_json": 1, "too_large": 1}
    # Live: the same verdict, and a dead letter with the reason.
    proc = LiveProcessor(cfg, TOPICS, "changelog", "partials", "dlq")
    proc.load(0, {})
    proc.absorb("contact-events", 0, [(0, big)], int(NOW * 1e6))
    (_, _, value, _, headers), = proc.dead_letters
    assert dict(headers or [])["reason"] == b"too_large" and value == big


def test_settings_carry_the_limit_to_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    from stream_app.settings import Settings

    assert Config.from_settings(Settings()).max_message_bytes == 1_000_000
    monkeypatch.setenv("KPI_MAX_MESSAGE_BYTES", "5000")
    assert Config.from_settings(Settings()).max_message_bytes == 5000


def test_dead_letters_are_cut_to_the_topic_limit() -> None:
    proc = LiveProcessor(Config(), TOPICS, "changelog", "partials", "dlq",
                         dead_letter_max_bytes=100)
    proc.load(1, {})
    proc.absorb("ticket-events", 1, [(7, b"{" * 300), (8, b"{" * 50)], int(NOW * 1e6))
    (_, _, cut, _, h1), (_, _, whole, _, h2) = proc.dead_letters
    assert cut == b"{" * 100 and whole == b"{" * 50
    assert dict(h1 or [])["original_size"] == b"300" and "original_size" not in dict(h2 or [])
    assert dict(h1 or [])["source_offset"] == b"7"


# --- one bad record: pure-Python core in a child process ---------------------------------


def _in_pure_python(name: str) -> None:
    env = {**os.environ, "KPI_PURE_PYTHON": "1", "PYTHONPATH": str(ROOT)}
    code = f"from tests.test_prod_core import {name}; {name}()"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def _fault_on(event_id: str) -> Any:
    """Patch ``PartitionState.apply`` to fail on one event, after it changed some state."""
    original = PartitionState.apply

    def apply(self: PartitionState, ev: Any, ts: int, clock: int) -> str | None:
        verdict = original(self, ev, ts, clock)
        if ev.event_id == event_id:
            raise KeyError(f"injected fault on {event_id}")
        return verdict

    PartitionState.apply = apply  # type: ignore[method-assign]
    return original


def fault_in_absorb() -> None:
    import tables

    assert not tables.NATIVE
    records = _contact_records(_events(300, seed=5))
    victim = orjson.loads(records[10][1])["event_id"]
    original = _fault_on(victim)
    try:
        proc = LiveProcessor(Config(), TOPICS, "changelog", "partials", "dlq")
        proc.load(0, {})
        proc.absorb("contact-events", 0, records, int((NOW + 1) * 1e6))
        dead = [(dict(h or []), v) for _, _, v, _, h in proc.dead_letters]
        internal = [(h, v) for h, v in dead if h["reason"] == INTERNAL_ERROR.encode()]
        assert len(internal) == 1, dead
        headers, value = internal[0]
        assert value == records[10][1] and headers["source_offset"] == b"10"
        assert headers["exception"].startswith(b"KeyError: ")
        assert proc.rejected_total[INTERNAL_ERROR] == 1
        store = proc.stores[0]
        assert store.processed["contact"] == records[-1][0]  # everything after it went on
        assert len(store.state.contacts.contacts) > 10
        # Re-processing after a crash (the gated path) survives the fault the same way.
        items: dict[bytes, bytes] = {}
        store.fold(int((NOW + 1) * 1e6))
        # a crash before the redo log: the victim's entity is not stored, it is fed again
        _apply(items, [w for w in store.changelog() if w[0][:2] not in (b"A|", b"L|")])
        again = PartitionStore.restore(Config(), 0, items)
        dead2 = again.absorb("contact", records, _clock(), FeedStats())
        assert [r for _, _, r in dead2 if r.startswith(INTERNAL_ERROR)] != []
        # A fault inside the isolated re-feed keeps the batch's pending cells.
        state = PartitionState(Config())
        clock = _clock()
        for _, raw in records[:10]:
            state.feed(raw, clock)
        before = state.buffer.swap({})
        expected = copy.deepcopy(before)
        assert expected, "the first records should have left pending cells"
        state.buffer.swap(before)
        try:
            state.feed_isolated(records[10][1], clock)
        except KeyError:
            pass
        else:
            raise AssertionError("the injected fault did not fire")
        assert state.buffer.swap({}) == expected
    finally:
        PartitionState.apply = original  # type: ignore[method-assign]


def test_one_bad_record_is_one_dead_letter_and_processing_goes_on() -> None:
    t0 = time.monotonic()
    _in_pure_python("fault_in_absorb")
    assert time.monotonic() - t0 < 60
