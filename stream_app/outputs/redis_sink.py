"""Redis for wallboards: a hash per snapshot row, the whole snapshot, a change feed.

Keys (prefix ``KPI_REDIS_PREFIX``, default ``kpi:``)::

    kpi:<window>:<scope>   hash: every KPI of the row ("" for null), scope, window, as_of
    kpi:snapshot           the whole snapshot as JSON
    kpi:updates            pub/sub: one JSON message per row that changed

Only what changed is written: the fields of a row that changed (and ``as_of``),
one change-feed message per changed row. A row whose only changes are values that
move with the clock between events (time in states, occupancy, cost, state time,
longest wait: ``ticks`` in the catalogue) is rewritten at most every
``tick_seconds`` (1 s): an 800-agent center has ~2,500 such rows, and rewriting
them at every publish of a sub-second interval held the event loop longer than
the events did, while an event-driven change still goes out at the next publish.
The whole snapshot key (a bulk read, megabytes for such a center) is written at that
pace too. A row that leaves the snapshot
(its scope left the retention) is deleted. Every key carries a TTL of the
retention as a safety net should the worker stop for good; it is renewed, and
every hash written whole, every ``REFRESH_SECONDS``, so a key lost on the Redis
side (a flush, a failover) comes back whole without waiting for a connection error.

Redis going away never stops the worker: the publish is skipped with one log
line, and when Redis answers again everything is written afresh (we cannot know
which of the last writes landed). That line names Redis by :func:`mask_url`: a URL may
carry the password, and logs are read by more people than the password is meant for.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from tables.kpis import TICKING

log = logging.getLogger("kpi.redis")

#: seconds between two rewrites of every key whole, with its TTL
REFRESH_SECONDS: Final = 600.0
_MISSING: Final = object()


def mask_url(url: str) -> str:
    """``redis://user:secret@host:6379/0`` -> ``redis://user:***@host:6379/0`` (log-safe)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def row_key(prefix: str, row: dict[str, Any]) -> str:
    return f"{prefix}{row['window']}:{row['scope']}"


def field_value(v: Any) -> str:
    return "" if v is None else v if isinstance(v, str) else orjson.dumps(v).decode()


def row_hash(row: dict[str, Any], as_of: str) -> dict[str, str]:
    out = {k: field_value(v) for k, v in row.items()}
    out["as_of"] = as_of
    return out


class RedisSink:
    def __init__(self, url: str, prefix: str, ttl_seconds: int, tick_seconds: float = 1.0,
                 monotonic: Any = time.monotonic) -> None:
        self.url = url
        self.prefix = prefix
        self.ttl = ttl_seconds
        self.tick_seconds = tick_seconds
        self.monotonic = monotonic
        self.client: aioredis.Redis | None = None
        #: what Redis holds, row by row, as of the last successful publish
        self.published: dict[str, dict[str, Any]] = {}
        self.down = False
        self._ticked = -1e18
        self._refreshed = -1e18

    def _client(self) -> aioredis.Redis:
        if self.client is None:
            # No retries inside a publish: the next publish is the retry, and a publish
            # must not hold the event loop for a second of back-off while Redis is away.
            self.client = aioredis.from_url(
                self.url,
                socket_timeout=2,
                socket_connect_timeout=2,
                health_check_interval=10,
                retry=Retry(NoBackoff(), 0),
            )
        return self.client

    async def publish(self, snap: dict[str, Any]) -> bool:
        """Write what changed since the last successful publish. False if Redis is away."""
        now = self.monotonic()
        # a timer's jitter must not push a 1 s publish interval past the tick
        tick = now - self._ticked >= self.tick_seconds * 0.95
        refresh = now - self._refreshed >= REFRESH_SECONDS
        as_of, ttl, published = snap["as_of"], self.ttl, self.published
        written: dict[str, dict[str, Any]] = {}
        changed: list[str] = []
        try:
            pipe = self._client().pipeline(transaction=False)
            for r in snap["rows"]:
                k = row_key(self.prefix, r)
                old = published.get(k)
                if old is None or refresh:
                    if old != r:
                        changed.append(k)
                    pipe.hset(k, mapping=row_hash(r, as_of))  # type: ignore[arg-type]
                    pipe.expire(k, ttl)
                elif old != r:
                    diff = {f: v for f, v in r.items() if old.get(f, _MISSING) != v}
                    if not tick and diff.keys() <= TICKING:
                        written[k] = old  # the clock moved it: at the next tick
                        continue
                    changed.append(k)
                    fields = {f: field_value(v) for f, v in diff.items()}
                    fields["as_of"] = as_of
                    pipe.hset(k, mapping=fields)
                    if old.keys() - r.keys():
                        pipe.hdel(k, *(old.keys() - r.keys()))
                else:
                    written[k] = old
                    continue
                written[k] = r
            for k in published.keys() - written.keys():
                pipe.delete(k)
            if tick:
                pipe.set(f"{self.prefix}snapshot", orjson.dumps(snap), ex=ttl)
            feed = f"{self.prefix}updates"
            for k in changed:
                pipe.publish(feed, orjson.dumps({"key": k, "as_of": as_of, "row": written[k]}))
            await pipe.execute()
        except (RedisError, OSError) as exc:
            if not self.down:
                log.error(
                    "Redis at %s unreachable (%s): still consuming; the wallboard keys "
                    "are refreshed when it is back",
                    mask_url(self.url),
                    exc,
                )
                self.down = True
            self.published = {}  # whatever landed, rewrite all next time
            await self._reset()
            return False
        if self.down:
            log.warning("Redis reachable again: %d rows rewritten", len(changed))
            self.down = False
        self.published = written
        if tick:
            self._ticked = now
        if refresh:
            self._refreshed = now
        return True

    async def _reset(self) -> None:
        if self.client is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.client.aclose()
            self.client = None

    async def close(self) -> None:
        await self._reset()
