"""Liveness and readiness of a worker, and the errors that no retry can fix.

``/healthz`` answers "should this process be restarted?": the fetcher that feeds it died, or
input is waiting and no batch has gone out for ``KPI_HEALTH_STALL_SECONDS``. ``/readyz``
answers "can its numbers be trusted?": the whole-center view has been read to the end of the
partials topic, partitions have been assigned, and no unrecoverable error is active.
Publishing to Redis, Prometheus and the alerts waits for the first two (:meth:`loaded`):
before them a cold start would publish partial numbers, and alerts would resolve and fire
again.

An *unrecoverable* error is one a retry cannot fix: a message larger than the broker
accepts, a principal without the ACL it needs. It is counted
(``kpi_unrecoverable_errors_total{kind}``), fails ``/readyz`` and is logged once, saying
what to do; the writes are still retried, slowly, so the worker resumes by itself once
someone has fixed the cause (and logs that).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from aiokafka import errors as kafka_errors

log = logging.getLogger("kpi.health")

MESSAGE_TOO_LARGE = "message_too_large"
TOPIC_AUTHORIZATION_FAILED = "topic_authorization_failed"
NOT_AUTHORIZED = "not_authorized"

_TOO_LARGE = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordTooLargeError,
    kafka_errors.RecordListTooLargeError,
)
_NOT_AUTHORIZED = (
    kafka_errors.GroupAuthorizationFailedError,
    kafka_errors.ClusterAuthorizationFailedError,
    kafka_errors.TransactionalIdAuthorizationFailed,
    kafka_errors.SaslAuthenticationFailed,
)


def classify(exc: BaseException | None) -> str | None:
    """The unrecoverable kind of ``exc`` (or of its cause), None for a transient error."""
    for _ in range(10):  # the cause chain is short; never loop on a cyclic one
        if exc is None:
            return None
        if isinstance(exc, _TOO_LARGE):
            return MESSAGE_TOO_LARGE
        if isinstance(exc, kafka_errors.TopicAuthorizationFailedError):
            return TOPIC_AUTHORIZATION_FAILED
        if isinstance(exc, _NOT_AUTHORIZED):
            return NOT_AUTHORIZED
        exc = exc.__cause__
    return None


class Health:
    def __init__(
        self,
        stall_seconds: float,
        view_ready: Callable[[], bool],
        lag: Callable[[], Mapping[tuple[str, int], int]],
        on_unrecoverable: Callable[[str], None] = lambda kind: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stall_seconds = stall_seconds
        self.view_ready = view_ready
        self.lag = lag
        self.on_unrecoverable = on_unrecoverable
        self.clock = clock
        #: key (where it happens) -> (kind, what to do)
        self.active: dict[str, tuple[str, str]] = {}
        self.partitions_assigned = False
        self.last_progress = clock()
        self.fetcher_running = False
        self.fetcher_error: str | None = None
        self.stopping = False

    # --- unrecoverable errors -------------------------------------------------------------
    def report(self, key: str, kind: str, message: str) -> None:
        """An unrecoverable error at ``key``: counted and logged once until resolved."""
        if key in self.active:
            return
        self.active[key] = (kind, message)
        self.on_unrecoverable(kind)
        log.error("%s", message)

    def resolve(self, prefix: str) -> None:
        """The errors whose key starts with ``prefix`` are gone (their writes succeeded)."""
        for key in [k for k in self.active if k.startswith(prefix)]:
            kind, _ = self.active.pop(key)
            log.warning("%s at %s resolved: the held writes went through", kind, key)

    # --- progress ---------------------------------------------------------------------------
    def progressed(self) -> None:
        self.last_progress = self.clock()

    def assigned(self) -> None:
        self.partitions_assigned = True
        self.last_progress = self.clock()  # recovery of new partitions is not a stall

    def fetcher_started(self) -> None:
        self.fetcher_running, self.fetcher_error = True, None
        self.last_progress = self.clock()

    def fetcher_stopped(self, error: BaseException | None = None) -> None:
        self.fetcher_running = False
        if error is not None and not self.stopping:
            self.fetcher_error = f"{type(error).__name__}: {error}"
            log.error(
                "the fetcher stopped on %s: this worker consumes nothing any more; /healthz "
                "fails so that it is restarted",
                self.fetcher_error,
            )

    # --- the probes -------------------------------------------------------------------------
    def loaded(self) -> bool:
        """The view holds the whole center and partitions were assigned: publishing may
        start."""
        return self.partitions_assigned and self.view_ready()

    def liveness(self) -> list[str]:
        """Why this worker should be restarted (empty: it is alive)."""
        if self.stopping:
            return []
        problems = []
        if self.fetcher_error is not None:
            problems.append(f"the fetcher died ({self.fetcher_error})")
        waiting = sum(self.lag().values())
        idle = self.clock() - self.last_progress
        if waiting > 0 and idle > self.stall_seconds:
            problems.append(
                f"{waiting} input messages wait and no batch progressed for {idle:.0f} s "
                f"(KPI_HEALTH_STALL_SECONDS={self.stall_seconds:g})"
            )
        return problems

    def readiness(self) -> list[str]:
        """Why this worker's numbers cannot be trusted yet (empty: ready)."""
        problems = []
        if self.stopping:
            problems.append("stopping")
        if not self.view_ready():
            problems.append("the whole-center view is still being read")
        if not self.partitions_assigned:
            problems.append("no partition assignment yet")
        problems += [f"{kind}: {message}" for kind, message in self.active.values()]
        return problems
