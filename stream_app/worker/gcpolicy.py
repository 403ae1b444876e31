"""The cyclic garbage collector, for a process holding millions of long-lived objects.

The worker's state (entities, seen ids, minute cells) is millions of objects that
live for a day and form no reference cycles, yet every full collection walks all
of them: profiled under ``make bench``, gc took about a quarter of the worker's
CPU. Once per batch the worker calls :meth:`GcPolicy.tick`:

* young collections run as usual (they only see new objects);
* every ``freeze_seconds`` what survived them is moved to the permanent
  generation (``gc.freeze``), which collections skip. Reference counting still
  frees those objects the moment the state forgets them; only a garbage *cycle*
  caught in a freeze would wait, until
* every ``full_seconds`` everything is unfrozen and collected once.

Freezing alone is not enough while a worker catches up: a batch then runs for
seconds and promotes hundreds of thousands of objects to the oldest generation
before the next freeze, and CPython starts a full collection of all unfrozen
objects whenever what it promoted since the last one exceeds a quarter of what
that one kept. Profiled at 1,000,000 events behind, that was 25 % of the
worker's CPU. :meth:`GcPolicy.install` therefore leaves full collections to the
policy alone (the oldest generation's threshold out of reach); the young ones
keep their defaults. An object that becomes garbage in a cycle after surviving
two young collections waits for the periodic full collection, as a frozen one
already does.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

#: the oldest generation's threshold once installed: counted in middle-generation
#: collections (hundreds a second at most): automatic full collections never come.
NO_AUTOMATIC_FULL = 2**31 - 1


class GcPolicy:
    def __init__(
        self,
        freeze_seconds: float,
        full_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.freeze_seconds = freeze_seconds
        self.full_seconds = full_seconds
        self._clock = clock
        now = clock()
        self._last_freeze = now
        self._last_full = now
        self.freezes = 0
        self.full_collections = 0

    def install(self) -> tuple[int, ...]:
        """Full collections from now on only by :meth:`tick`; returns the thresholds
        it replaced (for ``gc.set_threshold(*old)``)."""
        old = gc.get_threshold()
        gc.set_threshold(old[0], old[1], NO_AUTOMATIC_FULL)
        return old

    def tick(self) -> None:
        now = self._clock()
        if now - self._last_full >= self.full_seconds:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._last_full = self._last_freeze = now
            self.full_collections += 1
        elif now - self._last_freeze >= self.freeze_seconds:
            gc.collect(1)  # young garbage first, so that little of it is frozen
            gc.freeze()
            self._last_freeze = now
            self.freezes += 1
