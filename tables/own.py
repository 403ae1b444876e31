"""The minutes a worker wrote itself, recognised when its view reads them back.

A worker's view reads every partials record back from Kafka, its own partitions'
included, and a minute is rewritten whole after every batch: decoding it again cost
the live worker a quarter of its time. Its writer knows which cells of the minute the
batch changed, so it tells the view (:meth:`OwnWrites.expect`) before sending; when
the view reads a record, :meth:`OwnWrites.read` says whether it may take just those
cells instead of decoding the whole record.

That is only exact when the view's cells of that minute are those of the writer's
previous record for it. So the hint is used only when the record read is, byte for
byte, the writer's next one and the record the view applied before it for that key
was the writer's one before (sequence numbers per key). Anything else -- a record of
another worker after a rebalance, a record read twice after a retried send, a start-up
reading older records first -- breaks the chain and the record is decoded whole, as
every record was before.

::

    writer   n=1 ──── n=2 ──── n=3            (hint: cells changed since n-1)
    log      n=1  X   n=2      n=3            X: another worker's record for the key
    view     whole    whole    from hint      n=2 follows X, not n=1: decoded whole
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

#: records sent and not yet read back, per key, beyond which the oldest are forgotten
#: (they can only have been lost; forgetting one only means decoding whole)
MAX_PENDING: Final = 64

Changes = dict[Any, list[Any]]
#: (partition, minute)
Key = tuple[int, int]


class OwnWrites:
    def __init__(self) -> None:
        #: key -> (value, sequence number, cells changed since the previous one or None)
        self._sent: dict[Key, deque[tuple[bytes, int, Changes | None]]] = {}
        self._seq: dict[Key, int] = {}
        #: key -> sequence number of this writer's record the view applied last for it
        self._applied: dict[Key, int] = {}

    def expect(self, key: Key, value: bytes, changes: Changes | None) -> None:
        """The writer is about to send ``value`` for ``key``: the cells it changed since
        its previous record for the key (None: not known, e.g. a minute rebuilt)."""
        n = self._seq[key] = self._seq.get(key, 0) + 1
        sent = self._sent.setdefault(key, deque())
        sent.append((value, n, changes))
        if len(sent) > MAX_PENDING:
            sent.popleft()

    def read(self, key: Key, value: bytes | None) -> Changes | None:
        """The view is applying ``value`` for ``key``: the changed cells when it may take
        only those on top of what it holds for the key, else None (decode it whole)."""
        sent = self._sent.get(key)
        match = None
        if sent and value is not None:
            for i, (v, n, changes) in enumerate(sent):
                if v == value:
                    match = (n, changes)
                    for _ in range(i + 1):
                        sent.popleft()
                    break
            if not sent:
                del self._sent[key]
        if match is None:
            self._applied.pop(key, None)
            return None
        n, changes = match
        follows = self._applied.get(key) == n - 1
        self._applied[key] = n
        return changes if follows else None

    def expire(self, minute: int) -> None:
        """Forget the minutes before ``minute`` (they left every window)."""
        for d in (self._sent, self._seq, self._applied):
            for key in [k for k in d if k[1] < minute]:
                del d[key]
