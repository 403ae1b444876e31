"""Prometheus metrics of the worker: the KPI snapshot as gauges, and processing health.

Everything is registered on the :class:`~prometheus_client.CollectorRegistry`
passed in (as faust's ``sensors/prometheus.py`` does), never on the global
one, so tests and several apps in one process do not collide.

Which series each worker exports when several workers run
-----------------------------------------------------------
Every worker builds the same whole-center snapshot (it reads every
partition's partials, whichever partitions it owns), so the snapshot series
are identical on every worker, apart from the instant each one last
published:

* ``kpi_<kpi>{window, scope_type, scope}`` (one gauge family per KPI of the
  contract, base units: seconds, rates 0-1, ``kpi_nps`` -100..100; the counts
  are gauges too because they are windowed), ``kpi_contacts_waiting``,
  ``kpi_longest_wait_seconds``, ``kpi_open_tickets`` ``{scope_type, scope}``,
  ``kpi_rejected{reason}`` and ``kpi_duplicates`` (the snapshot's totals),
  ``kpi_snapshot_timestamp_seconds``, ``kpi_last_publish_timestamp_seconds`` and
  ``kpi_scopes_folded{kind}`` (scopes beyond a cap, shown under ``<kind>:other``).
  Aggregate these across workers with ``max``/``avg`` by their labels (or
  scrape a single worker), never ``sum``: a sum multiplies them by the number
  of workers.

* Processing series are per worker and cover only what that worker processed,
  so they ARE summed across workers: ``kpi_events_processed_total{type}``,
  ``kpi_events_rejected_total{reason}``, ``kpi_events_duplicate_total``,
  ``kpi_contact_wait_seconds{queue, channel}`` (histogram),
  ``kpi_event_to_publish_seconds`` (histogram) and
  ``kpi_consumer_lag{topic, partition}`` (each partition is owned by one worker
  at a time, so the sum is the group's lag), ``kpi_unrecoverable_errors_total{kind}``
  (errors no retry can fix: ``message_too_large``, ``topic_authorization_failed``,
  ``not_authorized``; counted once per occurrence, see ``stream_app/worker/health.py``)
  and ``kpi_view_records_skipped_total`` (partials records the view could not read).
  The counters restart at 0 with
  the process; use ``rate``/``increase``, which handle resets. After a crash a
  worker re-processes the batch the crash cut short, so these count processing,
  and may exceed the contract's numbers, which are the snapshot gauges.

A null KPI (zero denominator) has no sample at all rather than NaN, so
``avg``/``min`` and alert rules see "no data" instead of a number. A scope
that leaves the snapshot (nothing in the largest window any more) loses its
series at the next publish. ``agent_series=False`` leaves the agent scopes
out of the KPI gauges: one series per agent x window x KPI is the largest
cardinality here (about 100 per agent with four windows). Formatting the text
is prometheus_client's and costs about 10 us a series (a center with 500 agents,
~45,000 series: ~0.4 s a scrape), so serve it off the event loop
(``await asyncio.to_thread(generate_latest, registry)``; ``update`` swaps its
state in one assignment, so a scrape in another thread is safe).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from tables import kpis

DEFAULT_SL_THRESHOLD: Final = 20.0

#: Buckets of ``kpi_contact_wait_seconds``. ``histogram_quantile`` interpolates
#: linearly inside a bucket and "share answered within T" is exact only when T is
#: a bucket bound, so the bounds are dense around the 20 s service-level
#: threshold (every 2-5 s from 10 s to 30 s, 20 s itself a bound: the ``le="20"``
#: bucket over ``_count`` is the within-threshold share, ``le`` meaning <= as the
#: contract's "wait <= threshold" does). Below 10 s coarse steps suffice (no one
#: acts on 3 s vs 4 s); above 30 s the bounds grow roughly x1.5-2 up to 30 min so
#: the long tail of email/messaging first responses still has a p95 of the right
#: size instead of falling into +Inf.
WAIT_BUCKETS: Final = (
    1.0, 2.0, 5.0, 10.0, 12.0, 15.0, 17.0, 20.0, 22.0, 25.0, 30.0, 40.0, 60.0, 90.0,
    120.0, 180.0, 300.0, 600.0, 900.0, 1200.0, 1800.0,
)

#: Buckets of ``kpi_event_to_publish_seconds``: a healthy pipeline publishes within
#: one or two publish intervals (1 s default); the upper bounds show a worker that
#: is catching up after an outage.
PUBLISH_LATENCY_BUCKETS: Final = (
    0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)

#: one gauge family per KPI of the catalogue, named ``kpi_<name>``
KPI_FIELDS: Final = kpis.BUCKETED_NAMES
LIVE_FIELDS: Final = kpis.LIVE_NAMES
_KPI_LABELS: Final = ("window", "scope_type", "scope")
_LIVE_LABELS: Final = ("scope_type", "scope")

def split_scope(scope: str) -> tuple[str, str]:
    """``"queue:billing"`` -> ``("queue", "billing")``; ``"all"`` -> ``("all", "all")``.

    Split at the first colon only: agent ids may contain colons themselves.
    """
    kind, sep, name = scope.partition(":")
    return (kind, name) if sep else (scope, scope)


def parse_as_of(text: str) -> float:
    """The snapshot's ISO-8601 ``as_of`` as epoch seconds."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class _SnapshotCollector(Collector):
    """Builds the snapshot gauge families at scrape time from the last snapshot.

    A collector, not one ``Gauge`` child per (KPI, window, scope): publishing
    (every second) is then one pass over the rows instead of tens of thousands
    of ``labels().set()`` calls on a large center, and a series that is absent
    from the latest snapshot (null KPI, scope gone) cannot linger, because
    nothing is kept between publishes except the rows themselves.
    """

    def __init__(self) -> None:
        # Swapped as a whole by ``update``, so a scrape from another thread sees
        # either the old or the new publish, never a mix.
        self.state: tuple[list[tuple[tuple[str, str], dict[str, Any]]], dict[str, Any]] | None
        self.state = None

    def describe(self) -> Iterator[Metric]:
        # Names only: lets the registry detect clashes without a snapshot.
        yield from self._families()

    def _families(self) -> list[GaugeMetricFamily]:
        fams = [GaugeMetricFamily(f"kpi_{k}", kpis.BY_NAME[k].help, labels=_KPI_LABELS)
                for k in KPI_FIELDS]
        fams += [GaugeMetricFamily(f"kpi_{k}", kpis.BY_NAME[k].help, labels=_LIVE_LABELS)
                 for k in LIVE_FIELDS]
        fams += [
            GaugeMetricFamily("kpi_rejected", "rejected events in the snapshot (whole center, "
                              "since the state began), by reason", labels=("reason",)),
            GaugeMetricFamily("kpi_duplicates", "duplicate events dropped (whole center, since "
                              "the state began)"),
            GaugeMetricFamily("kpi_snapshot_timestamp_seconds",
                              "as_of of the last published snapshot, epoch seconds"),
            GaugeMetricFamily("kpi_last_publish_timestamp_seconds",
                              "wall time this worker last published a snapshot, epoch seconds"),
        ]
        return fams

    def collect(self) -> Iterator[Metric]:
        state = self.state
        if state is None:
            return  # nothing published yet: no samples rather than zeros
        rows, head = state
        fams = self._families()
        kpi_fams = fams[: len(KPI_FIELDS)]
        live_fams = fams[len(KPI_FIELDS): len(KPI_FIELDS) + len(LIVE_FIELDS)]
        rejected, duplicates, as_of, published = fams[len(KPI_FIELDS) + len(LIVE_FIELDS):]
        for (scope_type, scope), row in rows:
            window = row["window"]
            if window == "now":
                for fam, field in zip(live_fams, LIVE_FIELDS, strict=True):
                    value = row.get(field)
                    if value is not None:
                        fam.add_metric((scope_type, scope), float(value))
                continue
            labels = (window, scope_type, scope)
            for fam, field in zip(kpi_fams, KPI_FIELDS, strict=True):
                value = row.get(field)
                if value is not None:
                    fam.add_metric(labels, float(value))
        for reason, n in sorted(head["rejected"].items()):
            rejected.add_metric((reason,), float(n))
        duplicates.add_metric((), float(head["duplicates"]))
        if head["as_of"] is not None:
            as_of.add_metric((), head["as_of"])
        published.add_metric((), head["published"])
        yield from fams


class _WaitQueues:
    """Which ``queue`` label a wait observation gets, so the histogram's children stay
    bounded like the snapshot's scopes (``KPI_MAX_QUEUES``).

    A queue the last snapshot shows keeps its own label. A queue it does not show yet
    (new, the view one publish behind) gets its own label while fewer than ``cap``
    queues have one; one the snapshot left out for a whole publish (folded into
    ``queue:other`` by the cap, or gone from the largest window) loses its children
    and is labelled ``other`` until a snapshot shows it again. ``cap`` 0: no cap.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.generation = 0
        #: queue -> the publish generation it got its own label at
        self.own: dict[str, int] = {}
        self.shown: set[str] = set()
        self.left_out: set[str] = set()

    def label(self, queue: str) -> str:
        if queue in self.own:
            return queue
        if queue in self.shown or (
                queue not in self.left_out and (not self.cap or len(self.own) < self.cap)):
            self.own[queue] = self.generation
            return queue
        self.own.setdefault("other", self.generation)
        return "other"

    def published(self, shown: set[str]) -> list[str]:
        """A snapshot showing the queues ``shown`` was published: the labels to remove."""
        self.generation += 1
        self.shown = shown
        gone = [q for q, gen in self.own.items()
                if q not in shown and q != "other" and gen < self.generation - 1]
        for q in gone:
            del self.own[q]
        self.left_out.difference_update(shown)
        self.left_out.update(gone)
        if self.cap and len(self.left_out) > 10 * self.cap:
            self.left_out.clear()  # bounded memory; they may take a label again
        return gone


class KpiMetrics:
    """Every metric of the worker, on the given registry.

    ``sl_threshold_seconds`` is added to the wait histogram's bounds when it is
    not one already, so a configured threshold other than 20 s stays exact.
    """

    def __init__(self, registry: CollectorRegistry, agent_series: bool = True,
                 sl_threshold_seconds: float = DEFAULT_SL_THRESHOLD,
                 max_queues: int = 0) -> None:
        self.registry = registry
        self.agent_series = agent_series
        self._snapshot = _SnapshotCollector()
        registry.register(self._snapshot)
        buckets = sorted({*WAIT_BUCKETS, float(sl_threshold_seconds)})
        self.contact_wait = Histogram(
            "kpi_contact_wait_seconds",
            "wait (answered - offered) of contacts this worker saw answered, seconds",
            ("queue", "channel"), buckets=buckets, registry=registry)
        self._wait_queues = _WaitQueues(max_queues)
        self._wait_keys: set[tuple[str, str]] = set()
        self.folded = Gauge(
            "kpi_scopes_folded", "scopes of a kind beyond its cap (KPI_MAX_QUEUES, ...) whose "
            "measurements the snapshot shows under <kind>:other", ("kind",), registry=registry)
        self._folded_kinds: set[str] = set()
        self.processed = Counter(
            "kpi_events_processed", "input events this worker processed, by event type "
            "(rejected ones under their type when known)", ("type",), registry=registry)
        self.rejected_events = Counter(
            "kpi_events_rejected", "events this worker sent to the dead-letter topic, by reason",
            ("reason",), registry=registry)
        self.duplicate_events = Counter(
            "kpi_events_duplicate", "duplicate events this worker dropped", registry=registry)
        self.event_to_publish = Histogram(
            "kpi_event_to_publish_seconds",
            "time from an event's ts to the first snapshot this worker published with it",
            buckets=PUBLISH_LATENCY_BUCKETS, registry=registry)
        self.lag = Gauge(
            "kpi_consumer_lag", "messages not yet processed, per input partition this worker "
            "owns", ("topic", "partition"), registry=registry)
        self._lag_keys: set[tuple[str, str]] = set()
        self.unrecoverable = Counter(
            "kpi_unrecoverable_errors", "errors no retry can fix (a message larger than the "
            "topic accepts, a missing ACL), by kind; the worker logs what to do",
            ("kind",), registry=registry)
        self.skipped = Counter(
            "kpi_view_records_skipped", "partials records this worker's whole-center view "
            "could not read and skipped", registry=registry)
        self._skipped_total = 0
        self._totals: tuple[dict[str, int], dict[str, int], int] = ({}, {}, 0)

    # --- the snapshot ---------------------------------------------------------------------
    def update(self, snapshot: Mapping[str, Any], now: float | None = None) -> None:
        """Take one published snapshot (contract section 7); call once per publish.

        ``now`` (epoch seconds) is the publish time, the wall clock by default.
        The rows are referenced, not copied: do not mutate a snapshot once passed.
        """
        keep_agents = self.agent_series
        rows = []
        for row in snapshot.get("rows", ()):
            scope = row["scope"]
            if not keep_agents and scope.startswith("agent:"):
                continue
            rows.append((split_scope(scope), row))
        as_of = snapshot.get("as_of")
        head = {
            "rejected": dict(snapshot.get("rejected") or {}),
            "duplicates": snapshot.get("duplicates") or 0,
            "as_of": parse_as_of(as_of) if as_of else None,
            "published": time.time() if now is None else now,
        }
        self._snapshot.state = (rows, head)
        for child in self._wait_queues.published(
                {name for (kind, name), _ in rows if kind == "queue"}):
            for key in [k for k in self._wait_keys if k[0] == child]:
                self.contact_wait.remove(*key)
                self._wait_keys.discard(key)

    # --- processing (per worker) ----------------------------------------------------------
    def observe_waits(self, queue: str, channel: str, waits: Iterable[float]) -> None:
        """One observation per answered contact: its wait in seconds (answered - offered)."""
        key = (self._wait_queues.label(queue), channel)
        self._wait_keys.add(key)
        child = self.contact_wait.labels(*key)
        for w in waits:
            child.observe(w)

    def events_processed(self, by_type: Mapping[str, int]) -> None:
        """DELTA: events processed since the previous call, by event type."""
        for kind, n in by_type.items():
            if n > 0:
                self.processed.labels(kind).inc(n)

    def rejected(self, by_reason: Mapping[str, int]) -> None:
        """DELTA: dead letters since the previous call, by rejection reason."""
        for reason, n in by_reason.items():
            if n > 0:
                self.rejected_events.labels(reason).inc(n)

    def duplicates(self, n: int) -> None:
        """DELTA: duplicates dropped since the previous call."""
        if n > 0:
            self.duplicate_events.inc(n)

    def publish_latency(self, seconds: float) -> None:
        """One observation: event ts -> the publish that first included the event."""
        self.event_to_publish.observe(max(0.0, seconds))

    def consumer_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """TOTAL: the current lag of every input partition this worker owns now.

        Partitions missing from ``lag`` (revoked, moved to another worker) lose
        their series, so the sum over workers never counts a partition twice.
        """
        keys = set()
        for (topic, partition), value in lag.items():
            key = (topic, str(partition))
            keys.add(key)
            self.lag.labels(*key).set(max(0, value))
        for key in self._lag_keys - keys:
            self.lag.remove(*key)
        self._lag_keys = keys

    def scopes_folded(self, by_kind: Mapping[str, int]) -> set[str]:
        """TOTAL: scopes each capped kind folded into ``<kind>:other`` at the last snapshot.
        Returns the kinds that began folding with this call (to log once)."""
        for kind, n in by_kind.items():
            self.folded.labels(kind).set(n)
        for kind in self._folded_kinds - set(by_kind):
            self.folded.labels(kind).set(0)
        began = set(by_kind) - self._folded_kinds
        self._folded_kinds |= set(by_kind)
        return began

    def unrecoverable_error(self, kind: str) -> None:
        """One unrecoverable error of ``kind`` began."""
        self.unrecoverable.labels(kind).inc()

    def view_records_skipped(self, total: int) -> None:
        """TOTAL: partials records skipped by the view since the process started."""
        if total > self._skipped_total:
            self.skipped.inc(total - self._skipped_total)
            self._skipped_total = total

    def processor_totals(self, by_type: Mapping[str, int], by_reason: Mapping[str, int],
                         duplicates: int) -> None:
        """TOTALS since the process started (``LiveProcessor.events_by_type``,
        ``.rejected_total``, ``.duplicates_total``): the differences from the
        previous call go to the three counters. For a worker that keeps totals
        rather than deltas; use either this or the delta methods, not both.
        """
        prev_t, prev_r, prev_d = self._totals
        self.events_processed({k: n - prev_t.get(k, 0) for k, n in by_type.items()})
        self.rejected({k: n - prev_r.get(k, 0) for k, n in by_reason.items()})
        self.duplicates(duplicates - prev_d)
        self._totals = (dict(by_type), dict(by_reason), duplicates)
