"""Fixtures for tests that run against the real local stack (Kafka + Redis).

The stack is never mocked and a missing stack is a failure, not a skip: a
suite that silently skips its integration tests looks green while testing
nothing. ``make test`` starts the stack (unless KAFKA_BOOTSTRAP_SERVERS and
REDIS_URL point at one already) and stops it afterwards.

Tests of pure code simply do not request these fixtures and need no stack.
Tests that do request them get the ``stack`` marker automatically, so
``pytest -m 'not stack'`` runs the rest without Kafka or Redis.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.livehelp import Deployment

STACK_HINT = "start the stack with `make stack` or run `make test`"
STACK_FIXTURES = {"kafka_bootstrap", "redis_url", "make_topics"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """``KAFKA_BOOTSTRAP_SERVERS`` of a broker that answers metadata requests."""
    from stream_app.kafka.topics import broker_ready

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if not bootstrap:
        pytest.fail(f"KAFKA_BOOTSTRAP_SERVERS is not set: {STACK_HINT}", pytrace=False)
    if not asyncio.run(broker_ready(bootstrap, timeout=10.0)):
        pytest.fail(f"no Kafka broker answers at {bootstrap}: {STACK_HINT}", pytrace=False)
    return bootstrap


@pytest.fixture(scope="session")
def redis_url() -> str:
    """``REDIS_URL`` of a Redis server that answers PING."""
    import redis

    url = os.environ.get("REDIS_URL", "").strip()
    if not url:
        pytest.fail(f"REDIS_URL is not set: {STACK_HINT}", pytrace=False)
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} does not answer PING ({exc}): {STACK_HINT}", pytrace=False)
    finally:
        client.close()
    return url


@pytest.fixture
def unique_name() -> str:
    """A fresh suffix for topic / consumer-group / key names, so tests never share state."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def make_topics(kafka_bootstrap: str) -> Callable[..., list[str]]:
    """``make_topics(names, partitions=4)`` creates the topics on the real broker.

    Idempotent, and returns once every partition has a leader. Topics are not
    deleted afterwards: names are unique per test and the local broker starts
    empty on every ``infra/kafka.sh start``.
    """
    from stream_app.kafka.topics import ensure_topics

    def _make(names: str | list[str], partitions: int = 4) -> list[str]:
        topic_names = [names] if isinstance(names, str) else list(names)
        asyncio.run(ensure_topics(kafka_bootstrap, topic_names, partitions, timeout=30.0))
        return topic_names

    return _make


@pytest.fixture
def deployment(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """A fresh kpi-stream deployment (app id, topic prefix, Redis prefix); its workers are
    stopped by PID afterwards."""
    dep = Deployment(kafka_bootstrap, redis_url, tmp_path)
    yield dep
    dep.stop_all()
