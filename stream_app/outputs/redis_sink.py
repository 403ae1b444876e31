"""Redis for wallboards: a hash per snapshot row, the whole snapshot, a change feed.

Keys (prefix ``KPI_REDIS_PREFIX``, default ``kpi:``)::

    kpi:<window>:<scope>   hash: every KPI of the row ("" for null), scope, window, as_of
    kpi:snapshot           the whole snapshot as JSON
    kpi:updates            pub/sub: one JSON message per row that changed

Only rows that changed are written. A row that leaves the snapshot (its scope
left the retention) is deleted, and every key carries a TTL of the retention
as a safety net should the worker stop for good.

Redis going away never stops the worker: the publish is skipped with one log
line, and when Redis answers again everything is written afresh (we cannot know
which of the last writes landed). That line names Redis by :func:`mask_url`: a URL may
carry the password, and logs are read by more people than the password is meant for.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

log = logging.getLogger("kpi.redis")


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


def row_hash(row: dict[str, Any], as_of: str) -> dict[str, str]:
    out = {
        k: ("" if v is None else str(v) if isinstance(v, str) else orjson.dumps(v).decode())
        for k, v in row.items()
    }
    out["as_of"] = as_of
    return out


class RedisSink:
    def __init__(self, url: str, prefix: str, ttl_seconds: int) -> None:
        self.url = url
        self.prefix = prefix
        self.ttl = ttl_seconds
        self.client: aioredis.Redis | None = None
        self.published: dict[str, dict[str, Any]] = {}
        self.down = False

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
        rows = {row_key(self.prefix, r): r for r in snap["rows"]}
        changed = [k for k, r in rows.items() if self.published.get(k) != r]
        gone = [k for k in self.published if k not in rows]
        try:
            pipe = self._client().pipeline(transaction=False)
            for k in changed:
                pipe.hset(k, mapping=row_hash(rows[k], snap["as_of"]))  # type: ignore[arg-type]
                pipe.expire(k, self.ttl)
            for k in gone:
                pipe.delete(k)
            pipe.set(f"{self.prefix}snapshot", orjson.dumps(snap), ex=self.ttl)
            for k in changed:
                pipe.publish(
                    f"{self.prefix}updates",
                    orjson.dumps({"key": k, "as_of": snap["as_of"], "row": rows[k]}),
                )
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
        self.published = rows
        return True

    async def _reset(self) -> None:
        if self.client is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.client.aclose()
            self.client = None

    async def close(self) -> None:
        await self._reset()
