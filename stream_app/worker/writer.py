"""Sends a batch's writes to Kafka in order, then commits its input offsets.

A batch's writes start only after the previous batch's are done, which keeps
the changelog in batch order (:mod:`tables.changelog` relies on it) and holds
consumption while the broker is away: the plan is sent again until it lands
(the writes are idempotent: absolute values and tombstones). A message already
acknowledged is not sent again, so a retry does not repeat dead letters.

Two kinds of failure: a transient one (the broker away, a leader election) is
logged once and retried with a short back-off; an unrecoverable one (a message
larger than the topic accepts, a missing ACL) goes to
:class:`~stream_app.worker.health.Health` (a metric, ``/readyz`` failing, one log
line saying what to do) and is retried every ``UNRECOVERABLE_RETRY_S``, so the
worker resumes by itself once the cause is fixed. A plan is queued before the
caller waits, so cancelling the caller (a rebalance stops the fetcher) never
drops a prepared plan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from stream_app.worker.health import (
    MESSAGE_TOO_LARGE,
    TOPIC_AUTHORIZATION_FAILED,
    Health,
    classify,
)
from stream_app.worker.processor import Msg, Plan

log = logging.getLogger("kpi.worker")

#: seconds between attempts while an unrecoverable error holds a batch
UNRECOVERABLE_RETRY_S = 30.0


class WriteError(Exception):
    """One message of a plan was refused; says which."""

    def __init__(self, exc: BaseException, msg: Msg) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.topic = msg[0]
        self.key = (msg[1] or b"").decode(errors="replace")
        self.size = len(msg[2] or b"") + len(msg[1] or b"")


class BatchWriter:
    def __init__(
        self,
        app: Any,
        cluster: str,
        health: Health | None = None,
        principal: str = "<the worker's principal>",
        on_written: Callable[[], None] = lambda: None,
    ) -> None:
        self.app = app
        #: where the broker is, for messages (log-safe: no password)
        self.cluster = cluster
        self.health = health or Health(60.0, lambda: True, dict)
        self.principal = principal
        self.on_written = on_written
        self._task: asyncio.Task[None] | None = None
        self._down_logged = False

    async def submit(self, plan: Plan) -> None:
        """Write ``plan`` in the background, after the plan before it; returns once the plan
        before it is written (one batch is written while the next is absorbed)."""
        prev = self._task
        self._task = asyncio.create_task(self._write_after(prev, plan), name="kpi-batch-writer")
        if prev is not None:
            await asyncio.shield(prev)

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _write_after(self, prev: asyncio.Task[None] | None, plan: Plan) -> None:
        if prev is not None:
            await prev
        await self._write(plan)

    async def _write(self, plan: Plan) -> None:
        delay = 1.0
        while True:
            try:
                for n, phase in enumerate((plan.first, plan.second, plan.third)):
                    await self._send_all(n, phase, plan.sent)
                await self._commit(plan.offsets)
                if self._down_logged:
                    log.warning("broker reachable again; state writes resumed")
                    self._down_logged = False
                self.health.resolve("write:")
                self.on_written()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker may come back
                if self._unrecoverable(exc):
                    await asyncio.sleep(UNRECOVERABLE_RETRY_S)
                    continue
                if not self._down_logged:
                    log.error(
                        "cannot write state to Kafka (%s); holding the batch and retrying. "
                        "Check that %s is up.",
                        exc,
                        self.cluster,
                    )
                    self._down_logged = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def unrecoverable(self, exc: BaseException | None, topic: str) -> bool:
        """For the other writers of the worker (SLA alert events): report ``exc`` if no retry
        can fix it (True), or, with None, that writing to ``topic`` works again."""
        if exc is None:
            self.health.resolve("alerts:")
            return False
        retry = "the events are held and retried at each publish"
        return self._unrecoverable(exc, topic, retry, where="alerts")

    def _unrecoverable(
        self, exc: BaseException, topic: str = "?", retry: str = "", where: str = "write"
    ) -> bool:
        kind = classify(exc)
        if kind is None:
            return False
        topic = exc.topic if isinstance(exc, WriteError) else topic
        retry = retry or f"the batch is held and retried every {UNRECOVERABLE_RETRY_S:g} s"
        if kind == MESSAGE_TOO_LARGE and isinstance(exc, WriteError):
            what = (
                f"cannot write a {exc.size:,}-byte message (key {exc.key}) to topic {topic}: "
                f"the broker refuses it as too large ({exc}). Raise max.message.bytes of topic "
                f"{topic} above {exc.size + 1024:,} (kafka-configs.sh --alter --entity-type "
                f"topics --entity-name {topic} --add-config max.message.bytes=<bytes>), and "
                "the broker's message.max.bytes if it is lower; then restart the worker so "
                f"that it chunks to the new limit. Until then {retry}."
            )
        elif kind == TOPIC_AUTHORIZATION_FAILED:
            what = (
                f"not authorized to write to topic {topic} ({exc}): grant {self.principal} "
                f"WRITE and DESCRIBE on it (kafka-acls.sh --add --allow-principal "
                f"User:{self.principal} --operation Write --operation Describe --topic "
                f"{topic}). Until then {retry}."
            )
        else:
            what = (
                f"the broker refuses the worker's writes to {topic} ({exc}): grant "
                f"{self.principal} the ACLs it needs (WRITE on the topics it writes, READ on "
                f"its consumer group), or fix the message. Until then {retry}."
            )
        self.health.report(f"{where}:{topic}:{kind}", kind, what)
        return True

    async def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit failures never hold the batch (the writes are idempotent; a lost commit
        means re-reading it), but one no retry can fix is reported."""
        error = await self.app.consumer.commit_offsets(offsets)
        kind = classify(error)
        if kind is None:
            if error is None:
                self.health.resolve("commit")
            return
        group = getattr(self.app.conf, "id", "?")
        self.health.report(
            "commit",
            kind,
            f"cannot commit input offsets for consumer group {group} ({error}): grant "
            f"{self.principal} READ on group {group} (kafka-acls.sh --add --allow-principal "
            f"User:{self.principal} --operation Read --group {group}). Until then a restart "
            "re-reads everything since the last commit (nothing is counted twice).",
        )

    async def _send_all(self, phase: int, msgs: list[Msg], sent: set[tuple[int, int]]) -> None:
        """Send the messages of ``phase`` not acknowledged yet (``sent``: (phase, index) of
        those that were)."""
        todo = [(i, m) for i, m in enumerate(msgs) if (phase, i) not in sent]
        if not todo:
            return
        producer = self.app.producer
        futs = []
        for i, msg in todo:
            topic, key, value, partition, headers = msg
            try:
                fut = await producer.send(topic, key, value, partition, None, headers)
            except Exception as exc:
                raise WriteError(exc, msg) from exc
            futs.append((i, msg, fut))
        await producer.flush()
        failed: list[WriteError] = []
        for i, msg, fut in futs:
            try:
                await fut  # raises if this write failed: it is sent again, the rest not
            except Exception as exc:  # noqa: BLE001 - every future is awaited, then raised
                failed.append(WriteError(exc, msg))
                failed[-1].__cause__ = exc
                continue
            sent.add((phase, i))
        if failed:
            # The broker refuses a record batch as a whole: the largest message of the
            # refused ones is the one to name.
            raise max(failed, key=lambda e: e.size)
