"""Helpers of the SLA alert tests: contacts with chosen waits, a Redis channel and a
Kafka topic read back whole, and in-memory stand-ins for the producer and Redis."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import orjson
import redis
from aiokafka import AIOKafkaConsumer, TopicPartition

from tables.snapshot import format_ts


def contacts(queue: str, first: int, n: int, wait: float) -> list[bytes]:
    """``n`` voice contacts of ``queue`` answered just now after ``wait`` seconds."""
    out = []
    end = time.time() - 2
    for i in range(first, first + n):
        cid = f"{queue}-{i}"
        offered = {"queue": queue, "channel": "voice"}
        for etype, t, extra in (("contact_offered", end - wait, offered),
                                ("contact_answered", end, {"agent_id": "ann"})):
            ts = format_ts(int(t * 1000) * 1000)
            out.append(orjson.dumps({"event_id": f"{etype}-{cid}", "type": etype, "ts": ts,
                                     "contact_id": cid, **extra}))
    return out


class Channel(threading.Thread):
    """Every message of a Redis pub/sub channel, collected in the background."""

    def __init__(self, url: str, name: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(name)
        self.messages: list[dict[str, Any]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            msg = self.pubsub.get_message(timeout=0.2)
            if msg is not None:
                self.messages.append(orjson.loads(msg["data"]))

    def close(self) -> None:
        self.stop.set()
        self.join(timeout=5)
        self.pubsub.close()
        self.client.close()


def topic_events(bootstrap: str, topic: str, partitions: int
                 ) -> list[tuple[bytes, dict[str, Any]]]:
    async def run() -> list[tuple[bytes, dict[str, Any]]]:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await c.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            ends = await c.end_offsets(tps)
            out = []
            while [tp for tp in tps if await c.position(tp) < ends[tp]]:
                for recs in (await c.getmany(timeout_ms=1000)).values():
                    out += [(r.key, orjson.loads(r.value)) for r in recs]
            return out
        finally:
            await c.stop()
    return asyncio.run(run())


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, Any]]] = []
        self.down = False

    async def send(self, topic: str, key: bytes, value: bytes, *_: Any) -> Any:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.down:
            fut.set_exception(ConnectionError("broker away"))
        else:
            self.sent.append((topic, key, orjson.loads(value)))
            fut.set_result(None)
        return fut

    async def flush(self) -> None:
        return None


class FakeRedis:
    """The few commands the service uses, on dicts; ``down`` makes every call fail."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[bytes, bytes]] = {}
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.down = False

    def pipeline(self, transaction: bool = True) -> FakeRedis.Pipe:
        return FakeRedis.Pipe(self)

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        if self.down:
            raise redis.ConnectionError("redis away")
        return dict(self.hashes.get(key, {}))

    class Pipe:
        def __init__(self, r: FakeRedis) -> None:
            self.r = r
            self.ops: list[tuple[Any, ...]] = []

        def __getattr__(self, name: str) -> Any:
            return lambda *args: self.ops.append((name, *args))

        async def execute(self) -> list[Any]:
            if self.r.down:
                raise redis.ConnectionError("redis away")
            out: list[Any] = []
            for name, *args in self.ops:
                h = self.r.hashes.setdefault(args[0], {}) if name.startswith("h") else None
                if name == "hgetall":
                    out.append(dict(h or {}))
                    continue
                if name == "hset":
                    h[args[1].encode()] = args[2]  # type: ignore[index]
                elif name == "hdel":
                    h.pop(args[1].encode(), None)  # type: ignore[union-attr]
                elif name == "publish":
                    self.r.messages.append((args[0], orjson.loads(args[1])))
                out.append(True)
            return out
