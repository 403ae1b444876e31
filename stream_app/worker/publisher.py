"""Publishing the whole-center snapshot: Prometheus, Redis, SLA alerts, once per interval.

Every worker builds the same snapshot from its view, so every worker serves
``/api/snapshot`` and ``/metrics``; one worker (the owner of input partition 0)
writes Redis and evaluates alerts, so those happen once per center.

Nothing is published before the worker has loaded (``loaded``: the view read to the end of
the partials topic, partitions assigned): a cold start would otherwise publish a partial
center to Redis and Prometheus, and alerts would resolve and fire again. The processing
counters and the lag are exported from the start.

While the worker is catching up (more than ``BEHIND`` messages of lag), publishing takes
at most ``MAX_SHARE`` of its time: a large center's snapshot costs a few hundred
milliseconds (an 800-agent center: ~0.35 s, with Redis and alerts on top), and rebuilding
it every second would leave little for the backlog. A publish that took ``d`` seconds is
then followed by the next one after ``max(interval, d / MAX_SHARE - d)``. A worker that
keeps up publishes every interval, whatever the cost, so the board stays fresh.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from stream_app.outputs.alerts import AlertService
from stream_app.outputs.metrics import KpiMetrics
from stream_app.outputs.redis_sink import RedisSink
from stream_app.worker.processor import LiveProcessor
from stream_app.worker.view import CenterView

log = logging.getLogger("kpi.publish")

#: the most of the worker's time publishing may take (see the module's docstring)
MAX_SHARE = 0.2
#: messages of lag from which the worker counts as catching up
BEHIND = 5_000


class Publisher:
    def __init__(
        self,
        app: Any,
        view: CenterView,
        processor: LiveProcessor,
        metrics: KpiMetrics,
        redis: RedisSink,
        alerts: AlertService,
        clock: Callable[[], int],
        publish_interval: float,
        contact_topic: str,
        input_topics: set[str],
        loaded: Callable[[], bool] = lambda: True,
    ) -> None:
        self.app = app
        self.view = view
        self.processor = processor
        self.metrics = metrics
        self.redis = redis
        self.alerts = alerts
        self.clock = clock
        self.publish_interval = publish_interval
        self.contact_topic = contact_topic
        self.input_topics = input_topics
        self.loaded = loaded
        self.latest: dict[str, Any] | None = None
        self.last_publish = 0.0
        #: seconds the last publish took (snapshot, metrics, Redis, alerts)
        self.took = 0.0
        self._started = 0.0
        self._published_newest = 0

    def build_snapshot(self) -> dict[str, Any]:
        return self.view.snapshot(self.clock())

    def interval(self, behind: bool = True) -> float:
        """Seconds between two publishes: the setting, or, when ``behind``, longer for a
        publish that takes more than ``MAX_SHARE`` of it."""
        if not behind:
            return self.publish_interval
        return max(self.publish_interval, self.took * (1 / MAX_SHARE - 1))

    def current_snapshot(self) -> dict[str, Any]:
        if self.latest is None or time.time() - self.last_publish > self.publish_interval:
            return self.build_snapshot()
        return self.latest

    def is_publisher(self) -> bool:
        """The owner of partition 0 writes Redis and alerts. Every worker builds the same
        whole-center snapshot, so which one does not matter."""
        try:
            actives = self.app.assignor.assigned_actives()
        except Exception:  # noqa: BLE001 - not assigned yet
            return False
        return any(tp.topic == self.contact_topic and tp.partition == 0 for tp in actives)

    async def publish(self) -> None:
        p, m = self.processor, self.metrics
        m.processor_totals(p.events_by_type, p.rejected_total, p.duplicates_total)
        m.view_records_skipped(self.view.skipped)
        for (queue, channel), waits in p.take_waits().items():
            m.observe_waits(queue, channel, waits)
        lag = self.lag()
        m.consumer_lag(lag)
        if not self.loaded():
            return
        started = time.time()
        behind = sum(lag.values()) > BEHIND
        if started - self._started < self.interval(behind) - 0.05:  # a timer tick's jitter
            return
        self._started = started
        snap = self.latest = self.build_snapshot()
        self.last_publish = time.time()
        m.update(snap)
        for kind in sorted(m.scopes_folded(self.view.center.folded)):
            log.warning(
                "more %s scopes than KPI_MAX_%sS allows: the least busy now show as %s:other "
                "(kpi_scopes_folded). Raise the cap if the center really has that many, or "
                "check the source: ids that change per event (a session id as the queue) "
                "would fill any cap", kind, kind.upper(), kind)
        if p.newest_ts > self._published_newest:
            self._published_newest = p.newest_ts
            m.publish_latency(max(0.0, self.clock() / 1e6 - p.newest_ts / 1e6))
        if self.is_publisher():
            await self.redis.publish(snap)
            await self.alerts.evaluate(snap)
        self.took = time.time() - started

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages behind the log end, per input partition this worker owns. Reads the
        high-water marks the fetcher caches: asking the broker would go through faust's
        consumer thread and wait behind a fetch (about a second per publish)."""
        out: dict[tuple[str, int], int] = {}
        try:
            tps = [
                tp for tp in self.app.assignor.assigned_actives() if tp.topic in self.input_topics
            ]
            for tp in tps:
                end = self.app.consumer.highwater(tp)
                if end is None:
                    continue
                store = self.processor.stores.get(tp.partition)
                family = self.processor.family_of[tp.topic]
                done = store.processed.get(family, -1) if store else -1
                out[(tp.topic, tp.partition)] = max(0, end - done - 1)
        except Exception:  # noqa: BLE001 - lag is best effort; never stop a publish for it
            return out
        return out
