"""A minute is written whole after every batch and read whole by every view; both sides
convert only the cells that changed (``PartitionStore.wire``,
``changelog.decode_minute_since``). These tests hold them to the whole conversion:
the bytes a writer sends equal a fresh encoding of its minute, and the cells a view
keeps equal a fresh decoding of the last record, batch after batch, across a restore.
"""

from __future__ import annotations

import random

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
    offsets: dict[str, int] = {}
    changelog: dict[bytes, bytes] = {}
    minutes_seen = 0
    for n, batch in enumerate(_batches(3)):
        for family, line in batch:
            off = offsets[family] = offsets.get(family, -1) + 1
            store.absorb(family, [(off, line)], clock, FeedStats())
        store.fold(clock.now)
        for key, value in store.partials():
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
        if n % 25 == 24:  # a restart: the wire entries are rebuilt from the changelog
            store = PartitionStore.restore(CFG, 0, dict(changelog))
            clock = EventClock(CFG.retention_us, CFG.skew_us)
    assert minutes_seen > 100
