"""Send JSONL event lines to the contract topics, each with its contract key.

Used by ``kpi-stream produce`` (files or stdin) and by the live simulator (paced by
event time). Lines go out byte for byte: a bad line is routed like ``route()`` says
(contact topic, no key) so the worker can dead-letter it with its reason.

The producer is built from :func:`stream_app.kafka.client.client_kwargs`, so a cluster
that needs TLS or SASL works here as it does for the worker; given a bare ``host:port``
list (the simulator, the bench), the security comes from the ``KAFKA_*`` environment.
When the cluster cannot be used, :func:`~stream_app.kafka.connection.check_connection` says
why (wrong password, untrusted certificate, ...) instead of aiokafka's "Unable to
bootstrap".
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from stream_app.kafka import client as kafka_client
from stream_app.kafka.client import KafkaTarget, as_target, client_kwargs, describe
from stream_app.kafka.connection import check_connection
from stream_app.tools.routing import route

KAFKA_HINT = "is Kafka running? start it with `make stack` or set KAFKA_BOOTSTRAP_SERVERS"
#: Delivery futures awaited together: one round trip per few thousand lines, not per line.
GATHER_EVERY = 5000
#: Record batches left in flight while more are filled: waiting for all of them at
#: every checkpoint would leave the broker and us taking turns.
IN_FLIGHT = 64
READ_CHUNK = 1 << 16


class ProduceError(RuntimeError):
    """A problem the user can fix; the message says how."""


async def start_producer(where: str | KafkaTarget) -> AIOKafkaProducer:
    """A started producer for ``where`` (settings, or ``host:port`` with the environment's
    security); ProduceError saying what is wrong when the cluster cannot be used."""
    target = as_target(where)
    producer = AIOKafkaProducer(
        **client_kwargs(target),
        acks="all",  # the local broker has one replica, so this costs nothing and is safe
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30000,
    )
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its "Unable connect" log would repeat our message
    try:
        await producer.start()
    except (KafkaConnectionError, OSError, KafkaError) as exc:
        await producer.stop()
        try:  # which problem it is: wrong password, untrusted certificate, nothing there...
            await check_connection(target, timeout=10.0)
        except kafka_client.KafkaConnectionError as why:
            secured = kafka_client.security_of(target).security_protocol != "PLAINTEXT"
            raise ProduceError(str(why) if secured else f"{why} ({KAFKA_HINT})") from exc
        raise ProduceError(f"cannot reach {describe(target)} ({exc}): {KAFKA_HINT}") from exc
    finally:
        quiet.setLevel(level)
    return producer


async def check_topics(producer: AIOKafkaProducer, topics: Iterable[str], bootstrap: str,
                       timeout: float = 15.0) -> None:
    """Fail early and clearly instead of letting the first send time out after 30 s."""
    for topic in set(topics):
        try:
            parts = await asyncio.wait_for(producer.partitions_for(topic), timeout)
        except (TimeoutError, KafkaError):
            parts = None
        if not parts:
            raise ProduceError(
                f"topic {topic!r} is missing on {bootstrap}: create the contract topics with "
                "`make stack` (or check KPI_TOPIC_PREFIX / KPI_TOPIC_* settings)")


class Sender:
    """Routes lines to their topic, key and partition, and sends them.

    ``send`` is one message at a time (for the paced simulator). ``send_many`` fills one
    record batch per (topic, partition) itself, with the same murmur2 partitioning as the
    Java and aiokafka clients, so keyed events land where any producer would put them
    and per-entity order holds; it avoids aiokafka's per-message overhead (~3x faster).
    """

    def __init__(self, producer: AIOKafkaProducer, topics: dict[str, str]):
        self.producer, self.topics = producer, topics
        self.counts: Counter[str] = Counter()
        self.pending: list[asyncio.Future[Any]] = []
        self.partitions: dict[str, list[int]] = {}
        self.batches: dict[tuple[str, int], BatchBuilder] = {}
        self.in_batches = 0
        self.spread = 0  # round-robin for lines without a key
        self.key_partition: dict[tuple[str, bytes], int] = {}  # an entity has several events

    async def prepare(self) -> None:
        for topic in set(self.topics.values()):
            self.partitions[topic] = sorted(await self.producer.partitions_for(topic))

    async def send(self, line: bytes) -> None:
        family, key = route(line)
        topic = self.topics[family]
        self.pending.append(await self.producer.send(topic, line, key=key))
        self.counts[topic] += 1
        if len(self.pending) >= GATHER_EVERY:
            await self.settle()

    def _partition(self, topic: str, key: bytes | None) -> int:
        parts = self.partitions[topic]
        if key is None:
            self.spread += 1
            return parts[self.spread % len(parts)]
        cached = self.key_partition.get((topic, key))
        if cached is None:
            if len(self.key_partition) > 200_000:
                self.key_partition.clear()
            cached = parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)]
            self.key_partition[(topic, key)] = cached
        return cached

    async def send_many(self, lines: Iterable[bytes]) -> None:
        """Add lines to the open batches; full batches go out at once, the rest at
        ``flush_batches`` (called by ``settle``)."""
        topics, batches, counts = self.topics, self.batches, self.counts
        for line in lines:
            family, key = route(line)
            topic = topics[family]
            tp = (topic, self._partition(topic, key))
            batch = batches.get(tp)
            if batch is None:
                batch = batches[tp] = self.producer.create_batch()
            if batch.append(timestamp=None, key=key, value=line) is None:
                await self._ship(tp, batch)
                batch = batches[tp] = self.producer.create_batch()
                if batch.append(timestamp=None, key=key, value=line) is None:
                    raise ProduceError(f"a line of {len(line):,} bytes exceeds the batch size")
            counts[topic] += 1
            self.in_batches += 1
            if self.in_batches >= GATHER_EVERY:
                await self.flush_batches()
                await self.settle(keep=IN_FLIGHT)

    async def _ship(self, tp: tuple[str, int], batch: BatchBuilder) -> None:
        self.pending.append(await self.producer.send_batch(batch, tp[0], partition=tp[1]))

    async def flush_batches(self) -> None:
        batches, self.batches, self.in_batches = self.batches, {}, 0
        for tp, batch in batches.items():
            if batch.record_count():
                await self._ship(tp, batch)

    async def settle(self, keep: int = 0) -> None:
        """Wait until at most ``keep`` sends are in flight (0: send the open batches and
        wait for all); a failed delivery raises here."""
        if not keep:
            await self.flush_batches()
        if len(self.pending) > keep:
            cut = len(self.pending) - keep
            done, self.pending = self.pending[:cut], self.pending[cut:]
            await asyncio.gather(*done)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def produce_lines(where: str | KafkaTarget, topics: dict[str, str], lines: Iterable[bytes],
                        on_sent: Callable[[int], None] | None = None) -> dict[str, int]:
    """Send ``lines`` (no trailing newline; empty ones skipped); return lines per topic.
    ``where``: the settings, or ``host:port`` with the environment's security."""
    producer = await start_producer(where)
    try:
        await check_topics(producer, topics.values(), as_target(where).kafka_bootstrap_servers)
        sender = Sender(producer, topics)
        await sender.prepare()
        it = iter(lines)
        while chunk := [line for line in islice(it, GATHER_EVERY) if line]:
            await sender.send_many(chunk)
            if on_sent:
                on_sent(sender.total)
        await sender.settle()
        await producer.flush()
        return dict(sender.counts)
    finally:
        await producer.stop()


def _split_lines(buf: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (newline stripped, CRLF too; empty ones dropped) and the rest."""
    *lines, rest = buf.split(b"\n")
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines if ln and ln != b"\r"], rest


async def read_lines(stream: BinaryIO) -> AsyncIterator[tuple[list[bytes], int]]:
    """``(lines, bytes read)`` chunks. ``read1`` in a thread returns what is there, so a
    slow pipe (``simulate --to-file - | produce -``) streams instead of stalling the loop."""
    rest = b""
    while True:
        chunk = await asyncio.to_thread(stream.read1, READ_CHUNK)  # type: ignore[attr-defined]
        if not chunk:
            break
        lines, rest = _split_lines(rest + chunk)
        yield lines, len(chunk)
    if rest and rest != b"\r":
        yield [rest[:-1] if rest.endswith(b"\r") else rest], 0


async def _produce_files(files: list[Path], target: KafkaTarget, topics: dict[str, str],
                         console: Console) -> tuple[Counter[str], float]:
    for path in files:
        if str(path) != "-" and not path.is_file():
            raise ProduceError(f"no such file: {path}")
    sizes = None if any(str(p) == "-" for p in files) else sum(p.stat().st_size for p in files)
    producer = await start_producer(target)
    sender = Sender(producer, topics)
    t0 = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TimeElapsedColumn())
    try:
        await check_topics(producer, topics.values(), target.kafka_bootstrap_servers)
        await sender.prepare()
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("sending", total=sizes)
            for path in files:
                with _open(path) as stream:
                    async for lines, nbytes in read_lines(stream):
                        await sender.send_many(lines)
                        if nbytes < READ_CHUNK:  # input is slower than us: don't hold lines
                            await sender.flush_batches()
                        rate = sender.total / max(time.perf_counter() - t0, 1e-6)
                        progress.update(task, advance=nbytes,
                                        description=f"{sender.total:,} lines, {rate:,.0f}/s")
            await sender.settle()
            await producer.flush()
    finally:
        await producer.stop()
    return sender.counts, time.perf_counter() - t0


def _open(path: Path) -> BinaryIO:
    if str(path) == "-":
        # Not closed by ``with``: wrap stdin so leaving the block leaves stdin open.
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    return path.open("rb")


def run_produce(files: list[Path]) -> None:
    """``kpi-stream produce``: JSONL files (``-`` = stdin) to the contract topics."""
    from stream_app.worker.startup import load_settings

    settings = load_settings()
    console = Console(stderr=True, soft_wrap=True)
    try:
        counts, elapsed = asyncio.run(_produce_files(
            files, settings, settings.input_topics, console))
    except ProduceError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from None
    except KafkaError as exc:
        console.print(f"[red]error:[/red] Kafka refused the lines ({exc}): {KAFKA_HINT}")
        raise SystemExit(1) from None
    total = sum(counts.values())
    per_topic = ", ".join(f"{topic} {n:,}" for topic, n in sorted(counts.items())) or "nothing"
    console.print(f"produced {total:,} lines in {elapsed:.1f} s "
                  f"({total / max(elapsed, 1e-6):,.0f} lines/s): {per_topic}")
