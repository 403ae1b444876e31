"""The little state some webhook mappings need, bounded and restart-safe.

A webhook is one fact ("an agent replied"); turning it into a contract event sometimes
needs what came before (was this the *first* reply? was the task ever accepted?). That
memory is kept per entity, and it must neither grow without bound nor vanish on a
restart, hence:

* a cap per namespace (oldest entries go first) and a TTL measured in event time,
* :class:`SqliteState` (standard library, one file in ``--state-dir``) for the gateway,
  :class:`MemoryState` with the same rules for ``convert``, so both map alike.

Bounds: entities (tickets, tasks, conversations, contacts) live 7 days after their last
event - the engine forgets unfinished entities after the same 7 days (``open_entity_ttl``)
- capped at 500,000 per namespace; the redelivery cache keeps 1 day, 200,000 bodies.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

import orjson

ENTITY_TTL = 7 * 86400.0
ENTITY_CAP = 500_000
DELIVERY_NS = "deliveries"
DELIVERY_TTL = 86400.0
DELIVERY_CAP = 200_000
#: Expired rows are swept every this many writes (a sweep is one indexed DELETE).
SWEEP_EVERY = 5000


def limits(ns: str) -> tuple[float, int]:
    """(ttl seconds, cap) of a namespace."""
    if ns == DELIVERY_NS:
        return DELIVERY_TTL, DELIVERY_CAP
    return ENTITY_TTL, ENTITY_CAP


class State(Protocol):
    def get(self, ns: str, key: str) -> dict[str, Any] | None: ...

    def put(self, ns: str, key: str, value: dict[str, Any], ts: float) -> None: ...

    def delete(self, ns: str, key: str) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class MemoryState:
    """Same rules as :class:`SqliteState`, in a dict (``convert`` and tests)."""

    def __init__(self, caps: dict[str, int] | None = None) -> None:
        # values are stored serialized, like in sqlite: a caller mutating what get()
        # returned must not change the store behind put()'s back
        self._spaces: dict[str, OrderedDict[str, tuple[float, bytes]]] = {}
        self._newest: dict[str, float] = {}
        self._caps = caps or {}

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        space = self._spaces.get(ns)
        entry = space.get(key) if space is not None else None
        if entry is None:
            return None
        ttl, _ = limits(ns)
        if entry[0] < self._newest.get(ns, 0.0) - ttl:
            del space[key]  # type: ignore[union-attr]
            return None
        value: dict[str, Any] = orjson.loads(entry[1])
        return value

    def put(self, ns: str, key: str, value: dict[str, Any], ts: float) -> None:
        space = self._spaces.setdefault(ns, OrderedDict())
        self._newest[ns] = max(self._newest.get(ns, 0.0), ts)
        space[key] = (ts, orjson.dumps(value))
        space.move_to_end(key)
        cap = self._caps.get(ns, limits(ns)[1])
        while len(space) > cap:
            space.popitem(last=False)

    def delete(self, ns: str, key: str) -> None:
        space = self._spaces.get(ns)
        if space is not None:
            space.pop(key, None)

    def flush(self) -> None:
        """Nothing to commit: memory only."""

    def close(self) -> None:
        self._spaces.clear()


class SqliteState:
    """One sqlite file in WAL mode, written in group commits: writes go into one open
    transaction that :meth:`flush` commits (the gateway calls it every 50 ms, and at
    stop). Two commits per webhook would cost more than everything else a webhook does.
    What a crash can lose is the last 50 ms of state changes, never events (those are in
    Kafka before the vendor gets its answer); docs/connectors.md says what that costs."""

    def __init__(self, directory: str | Path) -> None:
        folder = Path(directory)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from connectors.base import ConnectorError

            raise ConnectorError(f"cannot create the state directory {folder}: "
                                 f"{exc.strerror}; pick a writable --state-dir") from exc
        self.path = folder / "gateway-state.sqlite3"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, "
            "ts REAL NOT NULL, value BLOB NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID")
        self._db.execute("CREATE INDEX IF NOT EXISTS kv_age ON kv (ns, ts)")
        self._newest: dict[str, float] = {
            ns: ts for ns, ts in self._db.execute("SELECT ns, MAX(ts) FROM kv GROUP BY ns")}
        self._writes = 0
        self._open = False

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT ts, value FROM kv WHERE ns = ? AND key = ?", (ns, key)).fetchone()
        if row is None:
            return None
        ttl, _ = limits(ns)
        if row[0] < self._newest.get(ns, 0.0) - ttl:
            return None
        value: dict[str, Any] = orjson.loads(row[1])
        return value

    def put(self, ns: str, key: str, value: dict[str, Any], ts: float) -> None:
        with self._lock:
            self._begin()
            self._newest[ns] = max(self._newest.get(ns, 0.0), ts)
            self._db.execute("INSERT OR REPLACE INTO kv (ns, key, ts, value) VALUES (?,?,?,?)",
                             (ns, key, ts, orjson.dumps(value)))
            self._writes += 1
            if self._writes % SWEEP_EVERY == 0:
                self._sweep()

    def delete(self, ns: str, key: str) -> None:
        with self._lock:
            self._begin()
            self._db.execute("DELETE FROM kv WHERE ns = ? AND key = ?", (ns, key))

    def _begin(self) -> None:
        if not self._open:
            self._db.execute("BEGIN")
            self._open = True

    def flush(self) -> None:
        """Commit what was written since the last flush."""
        with self._lock:
            if self._open:
                self._db.execute("COMMIT")
                self._open = False

    def _sweep(self) -> None:
        for ns, newest in self._newest.items():
            ttl, cap = limits(ns)
            self._db.execute("DELETE FROM kv WHERE ns = ? AND ts < ?", (ns, newest - ttl))
            (count,) = self._db.execute("SELECT COUNT(*) FROM kv WHERE ns = ?", (ns,)).fetchone()
            if count > cap:
                self._db.execute(
                    "DELETE FROM kv WHERE ns = ? AND key IN (SELECT key FROM kv WHERE ns = ? "
                    "ORDER BY ts LIMIT ?)", (ns, ns, count - cap))

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._db.close()
