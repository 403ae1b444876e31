"""Can the configured cluster be used? One bounded connection that says what is wrong.

This exists because aiokafka reports most security problems badly: an untrusted
certificate or a wrong password ends in "Unable to bootstrap" after its own logging, and
some mismatches (TLS spoken to a plaintext port) look like a broken network.
:func:`check_connection` makes one connection itself, bounded in time, and says which
problem it is and what to change (:class:`~stream_app.kafka.client.KafkaConnectionError`).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka import errors as kafka_errors
from aiokafka.conn import AIOKafkaConnection, create_conn
from aiokafka.protocol.metadata import MetadataRequest

from stream_app.kafka.client import (
    KafkaConnectionError,
    KafkaSecurity,
    KafkaTarget,
    describe,
    security_of,
)
from stream_app.kafka.client import (
    hosts as host_ports,
)


def _find(exc: BaseException | None, kind: type[BaseException]) -> Any:
    """The first exception of ``kind`` in the cause/context chain of ``exc``."""
    for _ in range(20):  # chains are short; never loop on a cyclic one
        if exc is None or isinstance(exc, kind):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


async def _connect(host: str, port: int, kw: dict[str, Any], timeout: float) -> AIOKafkaConnection:
    """One connection, TLS and SASL handshakes done: aiokafka's own bootstrap would hide the
    reason of a failure behind "Unable to bootstrap"."""
    ms = int(timeout * 1000)
    return await create_conn(host, port, client_id="kpi-check", request_timeout_ms=ms, **kw)


async def _answers(host: str, port: int, timeout: float, how: str) -> bool:
    """Whether ``host:port`` accepts TCP (``how="tcp"``), completes any TLS handshake
    (``"tls"``, certificate unchecked) or answers Kafka in plaintext (``"kafka"``)."""
    try:
        async with asyncio.timeout(timeout):
            if how == "kafka":
                (await _connect(host, port, {"security_protocol": "PLAINTEXT"}, timeout)).close()
                return True
            ctx = ssl.create_default_context() if how == "tls" else None
            if ctx is not None:
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            _, writer = await asyncio.open_connection(host, port, ssl=ctx)
            writer.close()
            return True
    except (OSError, RuntimeError, TimeoutError):  # aiokafka's errors are RuntimeErrors
        return False


async def _explain(
    exc: BaseException, host: str, port: int, sec: KafkaSecurity, connected: bool, budget: float
) -> str:
    at, proto = f"{host}:{port}", sec.security_protocol
    cert = _find(exc, ssl.SSLCertVerificationError)
    if cert is not None:
        why = cert.verify_message or str(cert)
        if cert.verify_code in (62, 64):  # hostname / IP address mismatch
            return (
                f"TLS verification failed at {at}: the broker's certificate is not valid for "
                f"{host!r} ({why}). Connect by a name the certificate lists in its "
                "subjectAltName, or have the broker's certificate reissued for this name."
            )
        ca = f"CA file {sec.ssl_cafile}" if sec.ssl_cafile else "the system CA store"
        return (
            f"TLS verification failed at {at}: the broker's certificate is not trusted by {ca} "
            f"({why}). Set KAFKA_SSL_CAFILE to the CA that signed the broker's certificate."
        )
    if _find(exc, kafka_errors.SaslAuthenticationFailed) is not None:
        return (
            f"SASL authentication failed at {at} for user {sec.sasl_username!r} with "
            f"{sec.sasl_mechanism}: wrong password or unknown user ({exc}). Check "
            "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD, and that the user has credentials "
            "for this mechanism (SCRAM credentials exist per mechanism)."
        )
    if _find(exc, kafka_errors.UnsupportedSaslMechanismError) is not None:
        return f"{exc}. Set KAFKA_SASL_MECHANISM to one the broker enables at {at}."
    if _find(exc, kafka_errors.IllegalSaslStateError) is not None:
        return (
            f"the listener at {at} does not use SASL but KAFKA_SECURITY_PROTOCOL={proto}: "
            "use the broker's SASL listener port, or drop SASL (PLAINTEXT or SSL)."
        )
    if _find(exc, ConnectionRefusedError) is not None:
        return f"nothing listens at {at}: is the broker up, is KAFKA_BOOTSTRAP_SERVERS right?"
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError | ConnectionError):
        return f"cannot connect to {at}: {exc}. Check KAFKA_BOOTSTRAP_SERVERS."
    if connected and not sec.uses_sasl:
        return (
            f"the broker at {at} closed the connection after the {proto} handshake ({exc}): "
            "the listener probably requires SASL; set KAFKA_SECURITY_PROTOCOL=SASL_SSL (or "
            "SASL_PLAINTEXT) with KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD."
        )
    alert = _find(exc, ssl.SSLError)
    if alert is not None and "ALERT" in str(alert.reason):
        return (
            f"the broker at {at} rejected the TLS handshake ({alert.reason}): it may require a "
            "client certificate (KAFKA_SSL_CERTFILE, KAFKA_SSL_KEYFILE) or not trust the one given."
        )
    # Closed or reset during the handshake: most often the two ends disagree about TLS.
    if sec.uses_tls and await _answers(host, port, budget, "kafka"):
        return (
            f"TLS was spoken to a plaintext port: {at} answers Kafka without TLS. Use the "
            "broker's TLS listener port, or set KAFKA_SECURITY_PROTOCOL=PLAINTEXT (or "
            "SASL_PLAINTEXT) if this cluster has no TLS."
        )
    if not sec.uses_tls and await _answers(host, port, budget, "tls"):
        return (
            f"plaintext was spoken to a TLS port: {at} expects TLS but "
            f"KAFKA_SECURITY_PROTOCOL={proto}. Set KAFKA_SECURITY_PROTOCOL=SSL (or SASL_SSL) "
            "and KAFKA_SSL_CAFILE."
        )
    detail = str(exc) if type(exc).__name__ in str(exc) else f"{type(exc).__name__}: {exc}"
    certs = " Does it require client certificates (KAFKA_SSL_CERTFILE, KAFKA_SSL_KEYFILE)?"
    return (
        f"the connection to {at} failed during the {proto} handshake ({detail}): is this a "
        f"Kafka listener for {proto}? Check KAFKA_BOOTSTRAP_SERVERS and KAFKA_SECURITY_PROTOCOL "
        f"against the broker's listeners.{certs if sec.uses_tls and not sec.ssl_certfile else ''}"
    )


async def _check_host(host: str, port: int, sec: KafkaSecurity, budget: float) -> Any:
    """Metadata from ``host:port`` over ``sec``; KafkaConnectionError saying why not."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    connected = False
    try:
        # Most of the budget for the attempt, the rest for finding out why it failed.
        async with asyncio.timeout(budget * 0.6):
            conn = await _connect(host, port, sec.aiokafka_kwargs(), budget * 0.6)
            connected = True
            try:
                return await conn.send(MetadataRequest([]))
            finally:
                conn.close()
    except TimeoutError as exc:
        at, proto, waited = f"{host}:{port}", sec.security_protocol, f"{budget * 0.6:.1f}s"
        if connected:
            why = f"the broker at {at} completed the {proto} handshake, then went silent ({waited})"
        elif await _answers(host, port, max(0.1, deadline - loop.time()), "tcp"):
            why = (
                f"{at} accepts TCP connections but gave no {proto} Kafka answer within {waited}: "
                f"the port is probably not a Kafka listener for {proto} (TLS or not, SASL or "
                "not), or the broker is overloaded. Check KAFKA_SECURITY_PROTOCOL."
            )
        else:
            why = (
                f"no TCP connection to {at} within {waited}: unreachable host or a firewall. "
                "Check KAFKA_BOOTSTRAP_SERVERS."
            )
        raise KafkaConnectionError(why) from exc
    except (OSError, RuntimeError, EOFError) as exc:
        probe = max(0.1, deadline - loop.time())
        raise KafkaConnectionError(await _explain(exc, host, port, sec, connected, probe)) from exc


async def check_connection(settings: KafkaTarget, timeout: float = 10.0) -> None:
    """Connect once to the bootstrap servers and to the brokers they advertise.

    Returns when the cluster answers a metadata request over the configured security;
    raises :class:`KafkaConnectionError` within ``timeout`` seconds otherwise, saying which
    problem it is (SASL authentication, TLS verification, TLS/plaintext mismatch, nothing
    listening, advertised listeners unreachable) and what to change.
    """
    sec = security_of(settings)
    hosts = host_ports(settings.kafka_bootstrap_servers)
    if not hosts:
        raise KafkaConnectionError("KAFKA_BOOTSTRAP_SERVERS is empty")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    problems: list[str] = []
    head = f"cannot use {describe(settings)}: "
    try:
        async with asyncio.timeout(timeout):
            for i, (host, port) in enumerate(hosts):
                share = (deadline - loop.time()) / (len(hosts) - i)
                try:
                    metadata = await _check_host(host, port, sec, share)
                    break
                except KafkaConnectionError as exc:
                    problems.append(str(exc))
            else:
                raise KafkaConnectionError(head + " | ".join(problems))
            # Clients go on to the addresses the brokers advertise, not to the bootstrap.
            advertised = {(b[1], b[2]) for b in metadata.brokers} - set(hosts)
            for host, port in sorted(advertised):
                at = f"{host}:{port} (check the brokers' advertised.listeners)"
                problems = [
                    f"the bootstrap servers answer, but not the broker they advertise at {at}"
                ]
                try:
                    await _check_host(host, port, sec, max(0.5, deadline - loop.time()))
                except KafkaConnectionError as exc:
                    raise KafkaConnectionError(f"{head}{problems[0]}: {exc}") from exc
    except TimeoutError as exc:
        problems.append(f"no complete answer within {timeout:.1f}s")
        raise KafkaConnectionError(head + " | ".join(problems)) from exc
