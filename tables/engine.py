"""The offline engine: one partition state, the replay clock, the roll-up.

Every message goes through :meth:`tables.state.PartitionState.feed`, the same
entry the live worker uses; only the clock differs (an
:class:`~tables.clock.EventClock`, or a :class:`~tables.clock.FixedClock` for
``--at``). Once per clock minute pending cells are rolled up and what the
contract lets us forget is forgotten, so memory stays flat however long the
input. Repeat contacts and the live SLA counts go through the same classes
the whole-center view uses (:mod:`tables.repeats`, :mod:`tables.sla`), fed
with this one state's offers and instants, and the snapshot is the same
:func:`tables.center.build_snapshot`.
"""

from __future__ import annotations

from typing import Any

from tables.center import build_snapshot, product_csat, sync_repeats
from tables.clock import UNSET, Clock, EventClock, FixedClock
from tables.events import decode, to_us
from tables.repeats import RepeatIndex
from tables.rollup import Rollup
from tables.sla import SlaCounter
from tables.state import Config, PartitionState
from tables.ticketcsat import ProductCsat
from tables.windows import MINUTE_US

_NO_MINUTE = -(2**61)


class Replayer:
    def __init__(self, cfg: Config, at_us: int | None = None) -> None:
        self.cfg = cfg
        self.clock: Clock = (
            FixedClock(cfg.retention_us, cfg.skew_us, at_us)
            if at_us is not None
            else EventClock(cfg.retention_us, cfg.skew_us)
        )
        self.state = PartitionState(cfg)
        self.rollup = Rollup(cfg)
        self.repeats = RepeatIndex(cfg.defs.repeat_window_us)
        self.sla = SlaCounter()
        self.csat = ProductCsat()
        self._minute = _NO_MINUTE
        self._now = UNSET
        self.events = 0

    def feed(self, raw: bytes) -> str | None:
        """One message; returns its rejection reason, ``"duplicate"`` or None."""
        self.events += 1
        verdict = self.state.feed(raw, self.clock)
        now = self.clock.now
        if now != self._now:  # the clock moved (UNSET never equals a time)
            self._now = now
            minute = now // MINUTE_US
            if minute != self._minute:
                self._minute = minute
                self._tick(now)
        return verdict

    def feed_lines(self, lines: list[bytes]) -> None:
        """Many JSONL lines (without their newline); blank lines are skipped and
        a ``\r`` before the newline is dropped. The replay's loop lives here, not
        in the CLI, so that it is compiled with the rest (``infra/build_native.py``)."""
        feed = self.feed
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if line and not line.isspace():
                feed(line)

    def _tick(self, clock: int) -> None:
        """Once per clock minute: roll pending cells up and forget what expired."""
        self._roll()
        self.rollup.expire(clock)
        self.state.expire(clock)
        self.repeats.expire(clock - self.cfg.retention_us - self.cfg.defs.repeat_window_us)
        sync_repeats(self.repeats, self.rollup)
        self.csat.expire((clock - self.cfg.retention_us) // MINUTE_US)

    def _roll(self) -> None:
        """Pending cells, offers and SLA instants into the roll-up, repeats and SLA counter,
        the way the live view receives them: one partition (0), replaced minute by minute."""
        self.rollup.add_cells(self.state.take_cells())
        offers = self.state.contacts.offers
        for minute in self.state.contacts.take_offer_minutes():
            self.repeats.replace(0, minute, offers.get(minute))
        sync_repeats(self.repeats, self.rollup)
        deadlines = self.state.tickets.deadlines
        for minute in deadlines.take_dirty():
            self.sla.replace(0, minute, deadlines.records(minute))
        refs, products = self.state.csat_refs, self.state.tickets.products
        for minute in refs.take_dirty():
            self.csat.replace_refs(0, minute, refs.wire(minute))
        for minute in products.take_dirty():
            self.csat.replace_products(0, minute, products.wire(minute))

    def product_csat(self) -> dict[str, dict[str, Any]]:
        """CSAT per product (responses naming a ticket), per window, beside the snapshot."""
        self._roll()
        return product_csat(self.cfg, self.csat, self.clock.now if self.clock.seen() else 0)

    def snapshot(self) -> dict[str, Any]:
        # nothing valid seen: an empty snapshot at the epoch
        clock = self.clock.now if self.clock.seen() else 0
        self._roll()
        return build_snapshot(
            self.cfg,
            clock,
            self.rollup,
            [self.state.live_part()],
            self.sla,
            self.state.rejected,
            self.state.duplicates,
        )


def floor(lines: list[bytes], seen: dict[str, int]) -> None:
    """The least any replay of the contract must do per event, with nothing else:
    decode and validate, read the event time, one probe of the ids seen (duplicates).
    No lifecycle, no measurement, no roll-up. ``make bench-replay`` times it beside
    the replay: the replay can only approach this, never pass it."""
    for line in lines:
        ev = decode(line)
        if not isinstance(ev, str):
            seen.setdefault(ev.event_id, to_us(ev.ts))
