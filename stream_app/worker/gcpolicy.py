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
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


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
