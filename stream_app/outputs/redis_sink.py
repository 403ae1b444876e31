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
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
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


#: One call per publish: redis-py packs every command's arguments in Python, and an
#: 800-agent center changes hundreds of rows a publish (a sixth of the worker's loop at
#: 10 publishes a second). The changes go as one JSON argument; every value is a string
#: already, so Lua re-encodes nothing (cjson would print floats at 14 digits).
UPDATE_SCRIPT: Final = """
local d = cjson.decode(ARGV[1])
for _, h in ipairs(d[1]) do redis.call('HSET', h[1], unpack(h[2])) end
for _, h in ipairs(d[2]) do redis.call('HDEL', h[1], unpack(h[2])) end
for _, k in ipairs(d[3]) do redis.call('EXPIRE', k, ARGV[2]) end
for _, k in ipairs(d[4]) do redis.call('DEL', k) end
for _, m in ipairs(d[5]) do redis.call('PUBLISH', ARGV[3], m) end
return #d[1]
"""


@dataclass
class _Changes:
    #: [key, [field, value, ...]] to HSET; [key, [field, ...]] to HDEL
    hset: list[list[Any]] = field(default_factory=list)
    hdel: list[list[Any]] = field(default_factory=list)
    expire: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    #: the change feed's messages, one per changed row
    messages: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    #: what Redis holds once written, row by row
    written: dict[str, dict[str, Any]] = field(default_factory=dict)

    def commands(self, pipe: Any, ttl: int, feed: str) -> None:
        """The same writes as :data:`UPDATE_SCRIPT`, command by command."""
        for k, flat in self.hset:
            pipe.hset(k, mapping=dict(zip(flat[::2], flat[1::2], strict=True)))
        for k, fields in self.hdel:
            pipe.hdel(k, *fields)
        for k in self.expire:
            pipe.expire(k, ttl)
        for k in self.delete:
            pipe.delete(k)
        for m in self.messages:
            pipe.publish(feed, m)


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
        #: one script call per publish, until Redis refuses scripts
        self._scripted = True
        self._script: Any = None

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

    def _changes(self, snap: dict[str, Any], tick: bool, refresh: bool) -> _Changes:
        """What to write for ``snap`` against what Redis holds (``published``)."""
        as_of, published = snap["as_of"], self.published
        out = _Changes()
        written = out.written
        for r in snap["rows"]:
            k = row_key(self.prefix, r)
            old = published.get(k)
            if old is None or refresh:
                if old != r:
                    out.changed.append(k)
                fields = row_hash(r, as_of)
                out.expire.append(k)
            elif old != r:
                diff = {f: v for f, v in r.items() if old.get(f, _MISSING) != v}
                if not tick and diff.keys() <= TICKING:
                    written[k] = old  # the clock moved it: at the next tick
                    continue
                out.changed.append(k)
                fields = {f: field_value(v) for f, v in diff.items()}
                fields["as_of"] = as_of
                if old.keys() - r.keys():
                    out.hdel.append([k, sorted(old.keys() - r.keys())])
            else:
                written[k] = old
                continue
            written[k] = r
            out.hset.append([k, [x for pair in fields.items() for x in pair]])
        out.delete = sorted(published.keys() - written.keys())
        out.messages = [
            orjson.dumps({"key": k, "as_of": as_of, "row": written[k]}).decode()
            for k in out.changed
        ]
        return out

    async def publish(self, snap: dict[str, Any]) -> bool:
        """Write what changed since the last successful publish. False if Redis is away."""
        now = self.monotonic()
        # a timer's jitter must not push a 1 s publish interval past the tick
        tick = now - self._ticked >= self.tick_seconds * 0.95
        refresh = now - self._refreshed >= REFRESH_SECONDS
        out = self._changes(snap, tick, refresh)
        try:
            client = self._client()
            pipe = client.pipeline(transaction=False)
            feed = f"{self.prefix}updates"
            if self._scripted:
                if self._script is None:
                    self._script = client.register_script(UPDATE_SCRIPT)
                payload = orjson.dumps([out.hset, out.hdel, out.expire, out.delete, out.messages])
                await self._script(keys=[], args=[payload, self.ttl, feed], client=pipe)
            else:
                out.commands(pipe, self.ttl, feed)
            if tick:
                pipe.set(f"{self.prefix}snapshot", orjson.dumps(snap), ex=self.ttl)
            await pipe.execute()
        except ResponseError as exc:
            if not self._scripted:
                return await self._away(exc)
            log.warning("Redis refused the update script (%s): writing command by command "
                        "from now on (slower for a large center; is scripting disabled?)", exc)
            self._scripted = False
            self.published = {}
            return await self.publish(snap)
        except (RedisError, OSError) as exc:
            return await self._away(exc)
        if self.down:
            log.warning("Redis reachable again: %d rows rewritten", len(out.changed))
            self.down = False
        self.published = out.written
        if tick:
            self._ticked = now
        if refresh:
            self._refreshed = now
        return True

    async def _away(self, exc: Exception) -> bool:
        if not self.down:
            log.error(
                "Redis at %s unreachable (%s): still consuming; the wallboard keys "
                "are refreshed when it is back",
                mask_url(self.url),
                exc,
            )
            self.down = True
        self.published = {}  # whatever landed, rewrite all next time
        self._script = None
        await self._reset()
        return False

    async def _reset(self) -> None:
        if self.client is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.client.aclose()
            self.client = None

    async def close(self) -> None:
        await self._reset()
