"""Kafka security settings (stream_app/kafka/client.py) against a real SASL_SSL broker.

Every client in these tests is built only from ``client_kwargs`` / ``faust_broker_kwargs``,
so what passes here is what the worker, the view reader, topic admin and the producers get.
The broker is the one of :mod:`tests.kafkasecure`, started once for the module; it cannot
start is a failure, never a skip. Each failure case is checked for its message and for how
fast it comes: a misconfigured worker must say what is wrong, not hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import ValidationError

from stream_app.kafka.client import (
    KafkaConnectionError,
    KafkaSecurity,
    client_kwargs,
    describe,
    faust_broker_kwargs,
)
from stream_app.kafka.connection import check_connection
from tests import kafkasecure as ks
from tests.kafkasecure import CertSet, SecureBroker

pytestmark = pytest.mark.timeout(180)

ENV_VARS = [f"KAFKA_{field.upper()}" for field in KafkaSecurity.model_fields]
SECRET = "s3cr3t-Never-Logged"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    try:
        with ks.secure_broker(tmp_path_factory.mktemp("secure-kafka")) as b:
            yield b
    except ks.SecureBrokerError as exc:
        pytest.fail(f"the SASL_SSL test broker did not start: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    """Certificates alone, for the tests that need no broker."""
    try:
        return ks.make_certs(tmp_path_factory.mktemp("certs"))
    except ks.SecureBrokerError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own KAFKA_* security variables must not leak into these tests."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def sasl_ssl(on: SecureBroker | CertSet, mechanism: str = "SCRAM-SHA-512", **over: Any) -> Any:
    """SASL_SSL settings for the test broker (for bare certificates: password SECRET)."""
    password = on.password if isinstance(on, SecureBroker) else SECRET
    fields = {"sasl_mechanism": mechanism, "sasl_username": ks.USERNAME, "sasl_password": password}
    return KafkaSecurity(
        security_protocol="SASL_SSL", **{"ssl_cafile": str(on.ca_file), **fields, **over}
    )


def settings(bootstrap: str, security: KafkaSecurity | None = None) -> Any:
    """What the project Settings will carry: bootstrap servers plus ``kafka_security``."""
    return SimpleNamespace(kafka_bootstrap_servers=bootstrap, kafka_security=security)


def run(coro: Awaitable[Any], timeout: float = 60.0) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


async def round_trip(cfg: Any, count: int, group: bool) -> list[bytes]:
    """Create a topic with the admin client, produce ``count`` values, consume them back."""
    topic = f"sec-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(**client_kwargs(cfg))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        assert topic in await admin.list_topics()
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**client_kwargs(cfg))
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, f"v{i}".encode())
    finally:
        await producer.stop()
    group_id = f"g-{topic}" if group else None
    consumer = AIOKafkaConsumer(
        **client_kwargs(cfg), group_id=group_id, auto_offset_reset="earliest"
    )
    if group:
        consumer.subscribe([topic])
    else:
        consumer.assign([TopicPartition(topic, 0)])
    await consumer.start()
    got: list[bytes] = []
    try:
        while len(got) < count:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(r.value for r in records if r.value is not None)
    finally:
        await consumer.stop()
    return got


# --- working configurations ----------------------------------------------------------------


@pytest.mark.stack
def test_scram_sha_512_from_environment_round_trips(
    broker: SecureBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings as a deployment gives them: environment variables only."""
    from stream_app.settings import Settings

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
    for var, value in {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": broker.username,
        "KAFKA_SASL_PASSWORD": broker.password,
        "KAFKA_SSL_CAFILE": str(broker.ca_file),
    }.items():
        monkeypatch.setenv(var, value)
    cfg = Settings()
    kwargs = client_kwargs(cfg)
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert run(round_trip(cfg, 3, group=True)) == [b"v0", b"v1", b"v2"]


@pytest.mark.stack
def test_plain_round_trips(broker: SecureBroker) -> None:
    cfg = settings(broker.bootstrap, sasl_ssl(broker, "PLAIN"))
    assert run(round_trip(cfg, 1, group=False)) == [b"v0"]


@pytest.mark.stack
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_check_connection_passes(broker: SecureBroker, mechanism: str) -> None:
    run(check_connection(settings(broker.bootstrap, sasl_ssl(broker, mechanism))))
    # Bootstrapping by name works too: the certificate names localhost as well.
    by_name = broker.bootstrap.replace("127.0.0.1", "localhost")
    run(check_connection(settings(by_name, sasl_ssl(broker, mechanism))))


@pytest.mark.stack
def test_faust_app_produces_and_consumes(broker: SecureBroker, tmp_path: Path) -> None:
    import faust

    cfg = settings(broker.bootstrap, sasl_ssl(broker))
    kwargs = faust_broker_kwargs(cfg)
    assert isinstance(kwargs["broker_credentials"], faust.SASLCredentials)
    tag = uuid.uuid4().hex[:10]

    async def main() -> bytes:
        admin = AIOKafkaAdminClient(**client_kwargs(cfg))
        await admin.start()
        try:  # the agent's topic must exist before the group is assigned
            await admin.create_topics([NewTopic(f"faust-{tag}", 1, 1)])
        finally:
            await admin.close()
        app = faust.App(
            f"kpi-sec-{tag}",
            store="memory://",
            web_enabled=False,
            datadir=str(tmp_path / "faust"),
            consumer_auto_offset_reset="earliest",
            **kwargs,
        )
        topic = app.topic(f"faust-{tag}", key_serializer="raw", value_serializer="raw")
        received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        @app.agent(topic)
        async def collect(stream: Any) -> None:
            async for value in stream:
                if not received.done():
                    received.set_result(value)

        await app.start()
        try:
            await topic.send(value=b"hello over SASL_SSL")
            return await asyncio.wait_for(received, 30)
        finally:
            await app.stop()

    assert run(main()) == b"hello over SASL_SSL"


# --- failures: which problem, said fast ----------------------------------------------------


def failure(cfg: Any, timeout: float = 10.0) -> tuple[str, float]:
    t0 = time.monotonic()
    with pytest.raises(KafkaConnectionError) as info:
        run(check_connection(cfg, timeout=timeout), timeout=timeout + 5)
    return str(info.value), time.monotonic() - t0


@pytest.mark.stack
@pytest.mark.parametrize("user", ["kpi", "nobody"])
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_wrong_password_or_user(broker: SecureBroker, user: str, mechanism: str) -> None:
    security = sasl_ssl(broker, mechanism, sasl_username=user, sasl_password="wrong-password")
    message, took = failure(settings(broker.bootstrap, security))
    assert "SASL authentication failed" in message
    assert "KAFKA_SASL_PASSWORD" in message
    assert "wrong-password" not in message
    assert took < 5


@pytest.mark.stack
def test_untrusted_certificate(broker: SecureBroker) -> None:
    other_ca = broker.certs.other_ca_file
    message, took = failure(settings(broker.bootstrap, sasl_ssl(broker, ssl_cafile=str(other_ca))))
    assert "TLS verification failed" in message
    assert "certificate is not trusted" in message
    assert str(other_ca) in message
    assert took < 5


def stand_in_failure(security: KafkaSecurity, ctx: ssl.SSLContext | None, timeout: float) -> Any:
    """check_connection against a local server that accepts (over TLS with ``ctx``) and
    never answers; returns (message, seconds)."""

    async def main() -> tuple[str, float]:
        server = await asyncio.start_server(_drain, "127.0.0.1", 0, ssl=ctx)
        cfg = settings(f"127.0.0.1:{server.sockets[0].getsockname()[1]}", security)
        t0 = time.monotonic()
        try:
            await check_connection(cfg, timeout=timeout)
        except KafkaConnectionError as exc:
            return str(exc), time.monotonic() - t0
        finally:
            server.close()
        raise AssertionError("check_connection accepted a server that is no Kafka broker")

    return run(main())


async def _drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):  # ssl.SSLError is an OSError
        await reader.read()  # until the client goes
    writer.close()


def test_certificate_for_another_host(certs: CertSet) -> None:
    """A certificate from the trusted CA, but for another name."""
    tls = KafkaSecurity(security_protocol="SSL", ssl_cafile=str(certs.ca_file))
    message, took = stand_in_failure(
        tls, ks.tls_server_context(certs.wrong_host_cert, certs.wrong_host_key), timeout=5
    )
    assert "TLS verification failed" in message and "not valid for '127.0.0.1'" in message
    assert took < 5


def test_silent_port_is_bounded_by_the_timeout() -> None:
    message, took = stand_in_failure(KafkaSecurity(), None, timeout=1.5)
    assert "accepts TCP connections but gave no PLAINTEXT Kafka answer" in message
    assert took < 2.5


MISMATCHES: dict[str, tuple[Callable[[SecureBroker], tuple[str, KafkaSecurity]], str]] = {
    "tls-to-plaintext-port": (
        lambda b: (b.internal_bootstrap, sasl_ssl(b)),
        "TLS was spoken to a plaintext port",
    ),
    "plaintext-to-tls-port": (
        lambda b: (b.bootstrap, KafkaSecurity()),
        "plaintext was spoken to a TLS port: ",
    ),
    "tls-without-sasl-to-sasl-port": (
        lambda b: (b.bootstrap, KafkaSecurity(security_protocol="SSL", ssl_cafile=str(b.ca_file))),
        "the listener probably requires SASL",
    ),
}


@pytest.mark.stack
@pytest.mark.parametrize("case", MISMATCHES)
def test_protocol_mismatch(broker: SecureBroker, case: str) -> None:
    build, expected = MISMATCHES[case]
    message, took = failure(settings(*build(broker)))
    assert expected in message
    assert took < 5


def test_nothing_listening() -> None:
    (port,) = ks.free_ports(1)
    message, took = failure(settings(f"127.0.0.1:{port}", KafkaSecurity()))
    assert f"nothing listens at 127.0.0.1:{port}" in message
    assert took < 5


# --- secrets never shown, bad settings named ---------------------------------------------


def test_password_never_in_describe_or_repr(certs: CertSet) -> None:
    security = sasl_ssl(certs)
    cfg = settings("127.0.0.1:9093", security)
    credentials = faust_broker_kwargs(cfg)["broker_credentials"]
    for text in (describe(cfg), repr(security), str(security), repr(credentials)):
        assert SECRET not in text
    assert SECRET not in security.model_dump_json()
    line = describe(cfg)
    assert "SASL_SSL" in line and "SCRAM-SHA-512" in line and "'kpi'" in line
    assert str(certs.ca_file) in line
    # aiokafka does need the password itself:
    assert client_kwargs(cfg)["sasl_plain_password"] == SECRET


BAD: list[tuple[dict[str, str], str]] = [
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN",
      "KAFKA_SASL_PASSWORD": SECRET}, "KAFKA_SASL_USERNAME"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "kpi",
      "KAFKA_SASL_PASSWORD": SECRET}, "KAFKA_SASL_MECHANISM"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN",
      "KAFKA_SASL_USERNAME": "kpi"}, "KAFKA_SASL_PASSWORD"),
    ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI",
      "KAFKA_SASL_USERNAME": "kpi", "KAFKA_SASL_PASSWORD": SECRET}, "KAFKA_SASL_MECHANISM"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "no/such/ca.pem"},
     "KAFKA_SSL_CAFILE"),
    ({"KAFKA_SSL_CAFILE": "{ca}"}, "KAFKA_SSL_CAFILE"),  # set, but PLAINTEXT does no TLS
    ({"KAFKA_SASL_USERNAME": "kpi", "KAFKA_SASL_PASSWORD": SECRET}, "KAFKA_SASL_USERNAME"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "{not_pem}"}, "KAFKA_SSL_CAFILE"),
]  # fmt: skip


@pytest.mark.parametrize(("env", "variable"), BAD)
def test_bad_settings_name_the_variable(
    env: dict[str, str], variable: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")  # exists; only the TLS check reads it
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    for var, value in env.items():
        monkeypatch.setenv(var, value.format(ca=ca, not_pem=not_pem))
    with pytest.raises(ValidationError) as info:
        KafkaSecurity()
    assert variable in str(info.value)
    assert SECRET not in str(info.value)
    # The same through client_kwargs, as a service would meet it at start-up.
    with pytest.raises(ValidationError):
        client_kwargs(settings("127.0.0.1:9092"))


def test_client_and_faust_kwargs_per_protocol(certs: CertSet) -> None:
    import faust

    plain = settings("a:9092, b:9093")
    assert client_kwargs(plain) == {
        "bootstrap_servers": "a:9092, b:9093",
        "security_protocol": "PLAINTEXT",
    }
    assert faust_broker_kwargs(plain) == {
        "broker": "kafka://a:9092;b:9093",
        "broker_credentials": None,
    }

    tls = settings("a:9093", KafkaSecurity(security_protocol="ssl", ssl_cafile=str(certs.ca_file)))
    kwargs = client_kwargs(tls)
    assert set(kwargs) == {"bootstrap_servers", "security_protocol", "ssl_context"}
    context = kwargs["ssl_context"]
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    creds = faust_broker_kwargs(tls)["broker_credentials"]
    assert isinstance(creds, faust.SSLCredentials) and creds.context is kwargs["ssl_context"]

    scram = settings("a:9093", sasl_ssl(certs, "scram_sha_256"))  # loosely spelled: normalised
    creds = faust_broker_kwargs(scram)["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.protocol.value, creds.mechanism.value) == ("SASL_SSL", "SCRAM-SHA-256")
    assert set(client_kwargs(scram)) == {
        "bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_plain_username",
        "sasl_plain_password", "ssl_context",
    }  # fmt: skip
