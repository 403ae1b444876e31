"""Create the contract topics on a Kafka cluster, idempotently.

``python -m stream_app.kafka.topics`` creates the five topics named in
:class:`stream_app.settings.Settings` (with ``KPI_TOPIC_PREFIX`` applied and
``KPI_PARTITIONS`` partitions); ``--wait SECONDS`` instead waits until a broker
answers a metadata request, which is how ``infra/kafka.sh start`` knows the
broker is usable (an open port is not enough: a KRaft broker accepts
connections before it has registered with its controller).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from stream_app.kafka.client import KafkaTarget, as_target, client_kwargs

log = logging.getLogger(__name__)
#: the broker's default ``message.max.bytes`` (what a topic without its own limit takes)
BROKER_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588


def admin_client(where: str | KafkaTarget, timeout: float = 30.0) -> AIOKafkaAdminClient:
    """An admin client with the cluster's security (``where``: settings or ``host:port``)."""
    return AIOKafkaAdminClient(
        **client_kwargs(as_target(where)), request_timeout_ms=int(timeout * 1000)
    )


async def ensure_topics(
    where: str | KafkaTarget,
    names: list[str],
    partitions: int,
    replication_factor: int = 1,
    timeout: float = 30.0,
    configs: dict[str, str] | None = None,
) -> None:
    """Create ``names`` with ``partitions`` partitions; existing topics are left as they are.

    Returns only once every topic has a leader for each partition, so a producer
    started right after does not race the broker's metadata propagation.
    """
    if not names:
        return
    admin = admin_client(where, timeout)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(n, partitions, replication_factor, topic_configs=configs) for n in names],
            timeout_ms=int(timeout * 1000),
        )
        for topic_error in response.topic_errors:
            name, code = topic_error[0], topic_error[1]
            if code == 0 or code == TopicAlreadyExistsError.errno:
                continue
            message = topic_error[2] if len(topic_error) > 2 else ""
            raise for_code(code)(f"creating topic {name!r}: {message}")
        await _wait_for_leaders(admin, names, timeout)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    missing: list[str] = list(names)
    while time.monotonic() < deadline:
        described = [t for t in await _describe_all(admin) if t["topic"] in names]
        missing = [
            t["topic"]
            for t in described
            if t["error_code"] != 0
            or not t["partitions"]
            or any(p["leader"] < 0 for p in t["partitions"])
        ]
        missing += sorted(set(names) - {t["topic"] for t in described})
        if not missing:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"topics without leaders after {timeout:.0f}s: {sorted(set(missing))}")


async def _describe_all(admin: AIOKafkaAdminClient) -> list[dict]:
    # Naming topics in a metadata request makes a broker with
    # auto.create.topics.enable (which faust needs) create them; listing all
    # topics never does, so absent topics stay absent.
    return list(await admin.describe_topics(None))


async def topic_partitions(where: str | KafkaTarget, names: list[str]) -> dict[str, int]:
    """Partition count of each existing topic in ``names`` (absent topics are left out)."""
    admin = admin_client(where, 10.0)
    await admin.start()
    try:
        described = [t for t in await _describe_all(admin) if t["topic"] in names]
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


async def max_message_bytes(where: str | KafkaTarget, names: list[str]) -> dict[str, int]:
    """``max.message.bytes`` of each existing topic in ``names``, as the broker applies it
    (the topic's own value, else the broker's). Topics it cannot describe are left out."""
    admin = admin_client(where, 10.0)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, n, {"max.message.bytes": None})
                for n in names
            ]
        )
    finally:
        await admin.close()
    out: dict[str, int] = {}
    for response in responses:
        for error_code, _, _, name, entries in response.resources:
            for entry in entries if error_code == 0 else ():
                if entry[0] == "max.message.bytes" and str(entry[1]).isdigit():
                    out[name] = int(entry[1])
    return out


async def broker_ready(where: str | KafkaTarget, timeout: float = 3.0) -> bool:
    """True when some broker answers a metadata request listing at least one broker."""
    client = AIOKafkaClient(
        **client_kwargs(as_target(where)), request_timeout_ms=int(timeout * 1000)
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        return bool(client.cluster.brokers())
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        await client.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def wait_ready(bootstrap: str, timeout: float, pid: int | None = None) -> bool:
    """Poll until the broker answers, ``timeout`` passes or process ``pid`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not _pid_alive(pid):
            return False
        if await broker_ready(bootstrap, timeout=min(3.0, max(0.5, deadline - time.monotonic()))):
            return True
        await asyncio.sleep(0.5)
    return False


def contract_topics() -> tuple[str, list[str], int, int]:
    """(bootstrap, topic names, partitions, replication factor) from the settings."""
    from stream_app.settings import get_settings

    s = get_settings()
    names = [*s.input_topics.values(), s.dead_letter_topic, s.alerts_topic]
    return s.kafka_bootstrap_servers, names, s.partitions, s.replication_factor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stream_app.kafka.topics",
        description="Create the contract topics (KPI_TOPIC_PREFIX, KPI_PARTITIONS) idempotently.",
    )
    parser.add_argument("--bootstrap", help="default: KAFKA_BOOTSTRAP_SERVERS from the settings")
    parser.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="only wait until the broker answers a metadata request; exit 1 on timeout",
    )
    parser.add_argument(
        "--pid", type=int, help="with --wait: give up as soon as this process exits"
    )
    args = parser.parse_args(argv)
    # aiokafka logs every refused connection at ERROR; while waiting for a broker
    # that is still starting those are expected noise.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    if args.wait is not None:
        bootstrap = args.bootstrap or contract_topics()[0]
        ok = asyncio.run(wait_ready(bootstrap, args.wait, args.pid))
        if not ok:
            print(f"kafka at {bootstrap} did not answer a metadata request", file=sys.stderr)
        return 0 if ok else 1

    bootstrap, names, partitions, replication = contract_topics()
    bootstrap = args.bootstrap or bootstrap
    asyncio.run(ensure_topics(bootstrap, names, partitions, replication))
    counts = asyncio.run(topic_partitions(bootstrap, names))
    for name in names:
        note = "" if counts.get(name) == partitions else f" (wanted {partitions})"
        print(f"topic {name}: {counts.get(name, 0)} partitions{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
