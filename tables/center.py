"""The whole center, folded from every partition's partials (pure: key/value in, snapshot out).

Each worker writes, for the partitions it owns, the absolute minute cells, the
customer offers and SLA instants by minute, and a summary (live state,
counters, offsets) to the compacted partials topic (:mod:`tables.changelog`).
Every worker folds all of it into one :class:`Center`: a
:class:`tables.rollup.Rollup` keyed by partition, a
:class:`tables.repeats.RepeatIndex` whose repeat counts the roll-up reads as one
more partition, and a :class:`tables.sla.SlaCounter` -- all *replaced* per
partition and minute, never added twice, so a rebalance or a re-sent batch
changes nothing. The worker's reader (``stream_app.worker.view``) only moves
bytes from Kafka to :meth:`Center.apply`; the replay builds its snapshot with
the same :func:`build_snapshot`.
"""

from __future__ import annotations

from typing import Any, Final

from tables import aggregate as A
from tables import changelog as C
from tables import snapshot
from tables.agents import overlay
from tables.live import CenterLive, PartLive
from tables.own import OwnWrites
from tables.repeats import REPEAT_PARTITION, RepeatIndex
from tables.report import interval_rows
from tables.rollup import Rollup
from tables.sla import SlaCounter
from tables.state import Config
from tables.ticketcsat import ProductCsat
from tables.windows import MINUTE_US

#: minutes per partition whose last write is kept to decode the next one by difference
RECENT_MINUTES: Final = 2


class Center:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.rollup = Rollup(cfg)
        self.repeats = RepeatIndex(cfg.defs.repeat_window_us)
        self.sla = SlaCounter()
        self.csat = ProductCsat()
        self.summaries: dict[int, C.Summary] = {}
        #: scopes folded into <kind>:other by the caps, at the last snapshot
        self.folded: dict[str, int] = {}
        #: partition -> minute -> its last write's entries, for the newest minutes only
        #: (those a partition rewrites after every batch)
        self._entries: dict[int, dict[int, dict[Any, list[Any]]]] = {}
        #: the minutes this process's own writer sent (see tables.own)
        self.own = OwnWrites()

    def apply(self, key: bytes, value: bytes | None) -> None:
        """One partials record (None: a tombstone)."""
        p, what, minute = C.parse_partials_key(key)
        if what == C.SUMMARY:
            if value is None:
                self.summaries.pop(p, None)
            else:
                self.summaries[p] = C.decode_summary(value)
        elif what == C.CELLS:
            self._cells(p, minute, value)
        elif what == C.OFFERS:
            self.repeats.replace(p, minute, C.decode_offers(value) if value else None)
            sync_repeats(self.repeats, self.rollup)
        elif what == C.DEADLINES:
            self.sla.replace(p, minute, C.decode_deadlines(value) if value else None)
        elif what == C.CSAT_REFS:
            self.csat.replace_refs(p, minute, C.decode_list(value) if value else None)
        elif what == C.PRODUCTS:
            self.csat.replace_products(p, minute, C.decode_list(value) if value else None)

    def _cells(self, p: int, minute: int, value: bytes | None) -> None:
        recent = self._entries.setdefault(p, {})
        if value is None:
            self.own.read((p, minute), None)
            recent.pop(minute, None)
            self.rollup.replace(p, minute, None)
            return
        stored = self.rollup.minutes.get(minute, {}).get(p)
        changes = self.own.read((p, minute), value)
        if changes is not None and stored is not None:
            # this worker's own write, following the one the view holds: its changed cells
            cells = dict(stored)
            for k, entry in changes.items():
                cells[k] = A.from_wire(entry[4])
            before = recent.get(minute)
            if before is not None:
                before.update(changes)
            self._trim(recent)
            self.rollup.replace(p, minute, cells, only=changes)
            return
        cells, recent[minute] = C.decode_minute_since(value, recent.get(minute), stored)
        self._trim(recent)
        self.rollup.replace(p, minute, cells)

    @staticmethod
    def _trim(recent: dict[int, Any]) -> None:
        if len(recent) > RECENT_MINUTES:
            del recent[min(recent)]

    def snapshot(self, clock_us: int) -> dict[str, Any]:
        rejected: dict[str, int] = {}
        duplicates = 0
        for s in self.summaries.values():
            for r, n in s.rejected.items():
                rejected[r] = rejected.get(r, 0) + n
            duplicates += s.duplicates
        snap = build_snapshot(
            self.cfg, clock_us, self.rollup, [s.live for s in self.summaries.values()],
            self.sla, rejected, duplicates, self.folded,
        )
        self.rollup.expire(clock_us)
        self.own.expire(clock_us // MINUTE_US - self.cfg.largest_window)
        self.csat.expire((clock_us - self.cfg.retention_us) // MINUTE_US)
        self.repeats.expire(clock_us - self.cfg.retention_us - self.cfg.defs.repeat_window_us)
        sync_repeats(self.repeats, self.rollup)
        return snap

    def intervals(self, clock_us: int, interval: str) -> list[dict[str, Any]]:
        """Today's report intervals so far (contract §8 rows), from the whole center."""
        cal = self.cfg.calendar
        starts, ends = [], []
        t = cal.interval_start(cal.day_start(clock_us), interval)
        while t <= clock_us:
            starts.append(t)
            t = cal.next_interval_start(t, interval)
            ends.append(t)
        minutes = self.rollup.minutes
        agents = [entry for s in self.summaries.values() for entry in s.live.agents]
        return interval_rows(
            self.cfg, starts, ends, lambda m: list(minutes.get(m, {}).values()), agents, clock_us
        )

    def product_csat(self, clock_us: int) -> dict[str, dict[str, Any]]:
        return product_csat(self.cfg, self.csat, clock_us)

    def agents(self, clock_us: int) -> list[dict[str, Any]]:
        """Every agent whose state was ever set: state, queues, since when (the agents page)."""
        out = []
        for s in self.summaries.values():
            for aid, state, queues, _, since, _ in s.live.agents:
                out.append({
                    "agent": aid, "state": state, "queues": queues,
                    "since": snapshot.format_ts(since),
                    "state_seconds": max(0, clock_us - since) / 1_000_000,
                })
        return sorted(out, key=lambda a: a["agent"])

    def offsets(self) -> dict[int, dict[str, int]]:
        """Per partition: input offsets the view includes (tests wait on these)."""
        return {p: s.offsets for p, s in self.summaries.items()}


def product_csat(cfg: Config, csat: ProductCsat, clock_us: int) -> dict[str, dict[str, Any]]:
    """CSAT per product of the responses naming a ticket, per window: window -> product ->
    {"csat", "csat_responses"} (beside the snapshot: the contract has no survey KPIs per
    product, see tables.ticketcsat)."""
    minute = clock_us // MINUTE_US
    out: dict[str, dict[str, Any]] = {}
    for w in cfg.windows:
        counts = csat.counts(w.first(minute), minute)
        out[w.name] = {
            product: {"csat": good / n, "csat_responses": n}
            for product, (n, good) in sorted(counts.items())
        }
    return out


def sync_repeats(repeats: RepeatIndex, rollup: Rollup) -> None:
    """The repeat counts of the minutes that changed, into the roll-up's repeat partition."""
    for minute in repeats.take_dirty():
        rollup.replace(REPEAT_PARTITION, minute, repeats.cells(minute))


def build_snapshot(
    cfg: Config,
    clock_us: int,
    rollup: Rollup,
    parts: list[PartLive],
    sla: SlaCounter,
    rejected: dict[str, int],
    duplicates: int,
    folded: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The snapshot at ``clock_us``: windows from the roll-up plus the time of open agent
    intervals up to the clock, and the now rows from the live parts and SLA instants."""
    windows = rollup.windows(clock_us)
    minute = clock_us // MINUTE_US
    spans = [
        (w.name, w.first(minute) * MINUTE_US, (minute + 1) * MINUTE_US) for w in cfg.windows
    ]
    agents = [entry for part in parts for entry in part.agents]
    overlay(windows, spans, agents, clock_us)
    live = CenterLive(parts, clock_us, sla.counts(clock_us))
    return snapshot.build(cfg, clock_us, windows, live, rejected, duplicates, folded)
