"""The offline engine: one partition state, the replay clock, the roll-up.

Clock rule (contract section 5): without a fixed clock it is the largest
valid ``ts`` seen so far, where *valid* means the event passed the stateless
checks and the clock checks (a ``too_late`` event never moves it). It moves
before the duplicate and lifecycle checks, so an event rejected there still
tells us what time it is. With a fixed clock (``--at``) it never moves and
``future_ts`` applies.

The live worker uses the same :class:`PartitionState`, :class:`Rollup` and
:func:`tables.snapshot.build`; only where the clock comes from differs.
"""

from __future__ import annotations

from typing import Any

from tables import snapshot
from tables.events import decode, to_us
from tables.rollup import Rollup
from tables.state import Config, PartitionState, time_reason
from tables.windows import MINUTE_US


class Replayer:
    def __init__(self, cfg: Config, at_us: int | None = None) -> None:
        self.cfg = cfg
        self.fixed = at_us
        self.clock: int | None = at_us
        self.state = PartitionState(cfg)
        self.rollup = Rollup(cfg)
        self._minute: int | None = None
        self.events = 0

    def feed(self, raw: bytes) -> str | None:
        """One message; returns its rejection reason, ``"duplicate"`` or None."""
        self.events += 1
        ev = decode(raw)
        state = self.state
        if isinstance(ev, str):
            state.reject(ev)
            return ev
        ts = to_us(ev.ts)
        clock = self.clock
        if clock is not None and (
            ts < clock - self.cfg.retention_us
            or (self.fixed is not None and ts > clock + self.cfg.skew_us)
        ):
            reason = time_reason(ts, clock, self.cfg, self.fixed is not None)
            assert reason is not None
            state.reject(reason)
            return reason
        if self.fixed is None and (clock is None or ts > clock):
            self.clock = clock = ts
            minute = ts // MINUTE_US
            if minute != self._minute:
                self._minute = minute
                self._tick(ts)
        assert clock is not None
        return state.apply(ev, ts, clock)

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
        self.rollup.add_cells(self.state.take_cells())
        self.rollup.expire(clock)
        self.state.expire(clock)

    def snapshot(self) -> dict[str, Any]:
        clock = self.clock
        if clock is None:  # nothing valid seen: an empty snapshot at the epoch
            clock = 0
        self.rollup.add_cells(self.state.take_cells())
        windows = self.rollup.windows(clock)
        return snapshot.build(
            self.cfg,
            clock,
            windows,
            self.state.live_state(clock),
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
