"""The whole center, folded from every partition's partials (pure: key/value in, snapshot out).

Each worker writes, for the partitions it owns, the absolute minute cells and a
summary (live state, counters, offsets) to the compacted partials topic
(:mod:`tables.changelog`). Every worker folds all of it into one
:class:`Center`: a :class:`tables.rollup.Rollup` keyed by partition, so a
partition's values are *replaced*, never added twice, and a rebalance or a
re-sent batch changes nothing. The worker's reader (``stream_app.worker.view``)
only moves bytes from Kafka to :meth:`Center.apply`.
"""

from __future__ import annotations

from typing import Any

from tables import changelog as C
from tables import snapshot
from tables.live import CenterLive
from tables.rollup import Rollup
from tables.state import Config


class Center:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.rollup = Rollup(cfg)
        self.summaries: dict[int, C.Summary] = {}

    def apply(self, key: bytes, value: bytes | None) -> None:
        """One partials record (None: a tombstone)."""
        p, what = C.parse_partials_key(key)
        if what == C.SUMMARY:
            if value is None:
                self.summaries.pop(p, None)
            else:
                self.summaries[p] = C.decode_summary(value)
            return
        cells = C.decode_minute(value)[0] if value is not None else None
        self.rollup.replace(p, int(what), cells)

    def snapshot(self, clock_us: int) -> dict[str, Any]:
        windows = self.rollup.windows(clock_us)
        live = CenterLive([s.live for s in self.summaries.values()], clock_us)
        rejected: dict[str, int] = {}
        duplicates = 0
        for s in self.summaries.values():
            for r, n in s.rejected.items():
                rejected[r] = rejected.get(r, 0) + n
            duplicates += s.duplicates
        self.rollup.expire(clock_us)
        return snapshot.build(self.cfg, clock_us, windows, live, rejected, duplicates)

    def offsets(self) -> dict[int, dict[str, int]]:
        """Per partition: input offsets the view includes (tests wait on these)."""
        return {p: s.offsets for p, s in self.summaries.items()}
