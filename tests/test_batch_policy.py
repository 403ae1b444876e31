"""When a batch closes (stream_app.worker.hub): on time while the worker keeps up, on size
(or after ``BEHIND_WITHIN``) while it catches up."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from stream_app.settings import Settings
from stream_app.worker.hub import BEHIND_WITHIN, KpiHub


class Hub(KpiHub):
    def __init__(self, behind: bool) -> None:
        super().__init__(Settings(batch_max=1000, batch_within=0.2), table=None,
                         processor=None, writer=None, clock=lambda: 0)  # type: ignore[arg-type]
        self.behind = lambda: behind
        self.persisted = 0

    async def persist(self) -> None:
        self.persisted += 1
        self.pending = 0


def closes(behind: bool, pending: int, age: float) -> bool:
    hub = Hub(behind)
    hub.pending, hub.pending_since = pending, time.monotonic() - age
    asyncio.run(hub.maybe_persist())
    return hub.persisted == 1


CASES: list[tuple[bool, int, float, bool]] = [
    # behind, events pending, seconds since the first, closes
    (False, 0, 10.0, False),  # nothing to write
    (False, 10, 0.1, False),
    (False, 10, 0.25, True),  # keeping up: on time
    (False, 1000, 0.0, True),  # ... or on size
    (True, 10, 0.25, False),  # catching up: not on time
    (True, 999, BEHIND_WITHIN - 0.5, False),
    (True, 1000, 0.0, True),  # on size
    (True, 10, BEHIND_WITHIN + 0.1, True),  # or after BEHIND_WITHIN
]


def test_batch_closes_on_time_when_keeping_up_and_on_size_when_behind() -> None:
    got = [(b, n, a, closes(b, n, a)) for b, n, a, _ in CASES]
    assert got == [(b, n, a, want) for b, n, a, want in CASES]


def test_settings_default_batch_spans_many_fetches() -> None:
    from stream_app.worker.app import FETCH_MAX

    s: Any = Settings()
    assert s.batch_max >= 10 * FETCH_MAX
