"""A minute is written whole after every batch and read whole by every view; both sides
convert only the cells that changed (``PartitionStore.wire``,
``changelog.decode_minute_since``), and a worker's view takes its own writer's changed
cells without decoding (``tables.own``). These tests hold them to the whole conversion:
the bytes a writer sends equal a fresh encoding of its minute, and the cells a view
keeps equal a fresh decoding of the last record it applied, batch after batch, across a
restore, a second writer taking the partition over, late and repeated records.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from stream_app.tools.routing import route
from stream_app.tools.simulator.run import generate_events
from tables import changelog as C
from tables.center import Center
from tables.clock import EventClock
from tables.partition import FeedStats, PartitionStore
from tables.state import Config

CFG = Config()


def _batches(seed: int) -> list[list[tuple[str, bytes]]]:
    lines = list(generate_events(rate=40, duration=240, seed=seed,
                                 start_epoch=1_795_000_000.0, bad_share=0.02))
    rnd = random.Random(seed)
    out, i = [], 0
    while i < len(lines):
        n = rnd.randint(1, 60)
        out.append([(route(x)[0], x) for x in lines[i:i + n]])
        i += n
    return out


def test_writer_and_view_convert_by_difference_like_whole() -> None:
    store = PartitionStore.restore(CFG, 0, {})
    clock = EventClock(CFG.retention_us, CFG.skew_us)
    center = Center(CFG)
    fast = _count_fast(center)
    offsets: dict[str, int] = {}
    changelog: dict[bytes, bytes] = {}
    minutes_seen = 0
    for n, batch in enumerate(_batches(3)):
        for family, line in batch:
            off = offsets[family] = offsets.get(family, -1) + 1
            store.absorb(family, [(off, line)], clock, FeedStats())
        store.fold(clock.now)
        partials = store.partials()
        for key, value, changes in store.hints:
            center.own.expect(key, value, changes)
        for key, value in partials:
            p, what, minute = C.parse_partials_key(key)
            if what == C.CELLS and value is not None:
                minutes_seen += 1
                assert value == C.encode_minute(store.minutes[minute], store.processed)
                center.apply(key, value)
                assert center.rollup.minutes[minute][p] == C.decode_minute(value)[0]
            else:
                center.apply(key, value)
        for key, value in store.changelog():
            if value is None:
                changelog.pop(key, None)
            else:
                changelog[key] = value
                if key.startswith(b"M|"):  # the same entries, the changelog's offsets
                    minute = int(key.split(b"|")[2])
                    o = C.decode_minute(value)[1]
                    assert value == C.encode_minute(store.minutes[minute], o)
        if n % 25 == 24:  # a restart: the wire entries are rebuilt from the changelog
            store = PartitionStore.restore(CFG, 0, dict(changelog))
            clock = EventClock(CFG.retention_us, CFG.skew_us)
    assert minutes_seen > 100
    assert fast[0] > minutes_seen / 2  # most records were taken from the writer's changes


def _count_fast(center: Center) -> list[int]:
    """How often the view took a record from its writer's changes (not decoded whole)."""
    count = [0]
    read = center.own.read

    def counted(key: Any, value: bytes | None) -> Any:
        changes = read(key, value)
        count[0] += changes is not None
        return changes

    center.own.read = counted  # type: ignore[method-assign]
    return count


def _writer_records(store: PartitionStore, batches: list[list[tuple[str, bytes]]],
                    offsets: dict[str, int], hints: list[Any] | None,
                    changelog: dict[bytes, bytes]) -> list[tuple[bytes, bytes | None]]:
    clock = EventClock(CFG.retention_us, CFG.skew_us)
    out: list[tuple[bytes, bytes | None]] = []
    for batch in batches:
        for family, line in batch:
            off = offsets[family] = offsets.get(family, -1) + 1
            store.absorb(family, [(off, line)], clock, FeedStats())
        store.fold(clock.now)
        partials = store.partials()
        if hints is not None:
            hints.extend(store.hints)
        out += [(k, v) for k, v in partials if C.parse_partials_key(k)[1] == C.CELLS]
        for k, v in store.changelog():
            if v is None:
                changelog.pop(k, None)
            else:
                changelog[k] = v
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_view_takes_its_writers_changes_only_when_it_holds_the_previous_record(
    seed: int,
) -> None:
    """Writer A (this process: its hints reach the view) does the first batches; writer B
    (another worker, after a rebalance) goes on from A's changelog. The log interleaves
    A's last records with B's first ones and repeats some (a retried send). After every
    record, the view holds exactly the decoding of the last record it read for the key."""
    rnd = random.Random(seed)
    batches = _batches(seed)
    cut = len(batches) // 2
    tail = rnd.randint(1, 6)  # A's last batches: their changelog did not land before B
    offsets: dict[str, int] = {}
    changelog: dict[bytes, bytes] = {}
    hints: list[Any] = []
    a_store = PartitionStore.restore(CFG, 0, {})
    a = _writer_records(a_store, batches[:cut - tail], offsets, hints, changelog)
    b_store = PartitionStore.restore(CFG, 0, dict(changelog))
    b_offsets = dict(offsets)
    a_late = _writer_records(a_store, batches[cut - tail:cut], offsets, hints, changelog)
    # B processes A's last batches again, cut differently, then new ones
    redo = [ev for batch in batches[cut - tail:] for ev in batch]
    b_batches = []
    while redo:
        n = rnd.randint(1, 80)
        b_batches.append(redo[:n])
        redo = redo[n:]
    b = _writer_records(b_store, b_batches, b_offsets, None, {})
    log = list(a)
    late, fresh = list(a_late), list(b)
    while late or fresh:  # each writer's order kept, the two interleaved
        src = late if late and (not fresh or rnd.random() < 0.5) else fresh
        log.append(src.pop(0))
        if rnd.random() < 0.05:
            log.append(log[-1])  # read twice
    center = Center(CFG)
    fast = _count_fast(center)
    for key, value, changes in hints:
        center.own.expect(key, value, changes)
    newest = 0
    final: dict[bytes, bytes | None] = {}
    for i, (key, value) in enumerate(log):
        center.apply(key, value)
        final[key] = value
        p, _, minute = C.parse_partials_key(key)
        want = C.decode_minute(value)[0] if value is not None else None
        assert center.rollup.minutes.get(minute, {}).get(p) == want, key
        newest = max(newest, minute)
        if i % 7 == 0:  # the windows' running sums move with what is applied between reads
            center.rollup.windows(newest * 60_000_000 + 59_000_000)
    assert fast[0] > 0
    # ... and the windows equal those of a view that read only the final records
    clock = newest * 60_000_000 + 59_000_000
    fresh = Center(CFG)
    for key, value in final.items():
        fresh.apply(key, value)
    assert center.snapshot(clock) == fresh.snapshot(clock)


def test_a_foreign_record_after_own_changes_is_decoded_against_what_the_view_holds() -> None:
    """Own record 1 (decoded whole), own record 2 (taken from its changes), then another
    writer's record holding record 1's value again (a worker that took the partition over
    from an older changelog): the view must hold that older value, not keep record 2's."""
    from tables import aggregate as A

    minute = 1_795_000_000 // 60
    key, cell = C.partials_key(0, minute), ("billing", "voice", "", "")

    def record(offered: int) -> tuple[bytes, dict[Any, list[Any]]]:
        agg = A.initialize()
        agg[A.OFFERED] = offered
        entry = C.wire_cell(cell, agg)
        return C.encode_wire({cell: entry}, {"contact": offered}), {cell: entry}

    center = Center(CFG)
    center.rollup.windows(minute * 60_000_000)
    one, _ = record(1)
    two, two_changes = record(2)
    center.own.expect((0, minute), one, None)
    center.own.expect((0, minute), two, two_changes)
    fast = _count_fast(center)
    for value in (one, two, record(1)[0]):
        center.apply(key, value)
        assert center.rollup.minutes[minute][0] == C.decode_minute(value)[0]
    assert fast[0] == 1
