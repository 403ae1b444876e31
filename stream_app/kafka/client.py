"""Every Kafka client of the project is configured here, in one place.

The faust app, the whole-center view reader, topic admin, ``produce``, the simulator and the
connectors all build their clients from :func:`client_kwargs` (aiokafka) or
:func:`faust_broker_kwargs` (faust), so a cluster that needs TLS or SASL is configured once,
from the ``KAFKA_*`` variables every Kafka tool already uses, and validated before any client
starts: a typo in a variable name or a missing CA file fails at start-up with the variable's
name instead of as a connection that never comes up.

:func:`check_connection` exists because aiokafka reports most security problems badly: an
untrusted certificate or a wrong password ends in "Unable to bootstrap" after its own logging,
and some mismatches (TLS spoken to a plaintext port) look like a broken network. It makes one
connection itself, bounded in time, and says which problem it is and what to change.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args
from typing import Protocol as _Protocol

from aiokafka import errors as kafka_errors
from aiokafka.conn import AIOKafkaConnection, create_conn
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.metadata import MetadataRequest
from pydantic import SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
MECHANISMS: tuple[str, ...] = get_args(Mechanism)
_FILE_VARS = {f: f"KAFKA_{f.upper()}" for f in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")}


class KafkaConnectionError(RuntimeError):
    """The cluster cannot be used with these settings; the message says why and what to do."""


class KafkaSecurity(BaseSettings):
    """How clients authenticate to and encrypt traffic with the cluster, from the standard
    ``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_*``, ``KAFKA_SSL_*`` variables (no ``KPI_``
    prefix). The password is a :class:`~pydantic.SecretStr`: ``**********`` in reprs and logs.
    """

    # "KAFKA_" + field name is exactly those names, and code may write sasl_username=...
    model_config = SettingsConfigDict(
        env_prefix="KAFKA_", extra="ignore", env_ignore_empty=True, hide_input_in_errors=True
    )

    security_protocol: Protocol = "PLAINTEXT"
    sasl_mechanism: Mechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    #: CA bundle (PEM) that signed the brokers' certificates; unset: the system CA store
    ssl_cafile: str | None = None
    #: client certificate (PEM) for brokers that require one, and its key if not in the file
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _known_value(cls, v: Any, info: ValidationInfo) -> Any:
        if not isinstance(v, str):
            return v
        if info.field_name == "security_protocol":
            name, allowed, value = "KAFKA_SECURITY_PROTOCOL", PROTOCOLS, v.replace("-", "_")
        else:
            name, allowed, value = "KAFKA_SASL_MECHANISM", MECHANISMS, v.replace("_", "-")
        value = value.strip().upper()
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {v!r}")
        return value

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _file_exists(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and not Path(v).is_file():
            raise ValueError(f"{_FILE_VARS[str(info.field_name)]}={v!r}: no such file")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        proto = self.security_protocol
        password = self.sasl_password.get_secret_value() if self.sasl_password else None
        sasl = {
            "KAFKA_SASL_MECHANISM": self.sasl_mechanism,
            "KAFKA_SASL_USERNAME": self.sasl_username,
            "KAFKA_SASL_PASSWORD": password,
        }
        tls = {var: getattr(self, field) for field, var in _FILE_VARS.items()}
        for var, value in sasl.items():
            if self.uses_sasl and not value:
                raise ValueError(f"KAFKA_SECURITY_PROTOCOL={proto} needs {var}")
        for wanted, used, names, fix in (
            (sasl, self.uses_sasl, "SASL", "SASL_SSL (or SASL_PLAINTEXT)"),
            (tls, self.uses_tls, "TLS", "SSL (or SASL_SSL)"),
        ):
            unused = [var for var, value in wanted.items() if value is not None and not used]
            if unused:
                raise ValueError(
                    f"{unused[0]} is set but KAFKA_SECURITY_PROTOCOL={proto} does not use {names}: "
                    f"set KAFKA_SECURITY_PROTOCOL={fix}"
                )
        if not self.uses_tls:
            return self
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE")
        # Parse the files now, so that a wrong one names its variable at start-up.
        loaders = {
            "KAFKA_SSL_CAFILE": lambda: create_ssl_context(cafile=self.ssl_cafile),
            "KAFKA_SSL_CERTFILE/KAFKA_SSL_KEYFILE": self._new_ssl_context,
        }
        for var, load in loaders.items():
            try:
                load()
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(f"{var}: not a usable PEM file ({exc})") from exc
        return self

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def _new_ssl_context(self) -> ssl.SSLContext:
        return create_ssl_context(
            cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
        )

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """One context per settings object, shared by its clients (``None`` without TLS)."""
        return self._new_ssl_context() if self.uses_tls else None

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """The security keyword arguments of aiokafka's clients (no bootstrap servers)."""
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_sasl:
            assert self.sasl_password is not None  # checked by the validator
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password.get_secret_value(),
            )
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context
        return kwargs

    def describe(self) -> str:
        """Log-safe: protocol, mechanism, user and files, never the password."""
        parts: list[str] = [self.security_protocol]
        if self.uses_sasl:
            parts.append(f"SASL {self.sasl_mechanism} as user {self.sasl_username!r}")
        if self.uses_tls:
            parts.append(f"CA file {self.ssl_cafile}" if self.ssl_cafile else "system CA store")
            if self.ssl_certfile:
                parts.append(f"client certificate {self.ssl_certfile}")
        return ", ".join(parts)


class KafkaTarget(_Protocol):
    """What a client needs to know of the settings: the project's ``Settings`` (which embeds
    ``kafka_security``), or anything with ``kafka_bootstrap_servers`` (then the security
    comes from the environment)."""

    @property
    def kafka_bootstrap_servers(self) -> str: ...


@dataclass(frozen=True)
class Cluster:
    """A bootstrap list with its security (None: from the environment)."""

    kafka_bootstrap_servers: str
    kafka_security: KafkaSecurity | None = None


def as_target(where: str | KafkaTarget) -> KafkaTarget:
    """Tools that take a bare ``host:port`` list get the environment's security with it."""
    return Cluster(where) if isinstance(where, str) else where


def security_of(settings: KafkaTarget) -> KafkaSecurity:
    """``settings.kafka_security`` when the settings carry one, else read from the environment."""
    return getattr(settings, "kafka_security", None) or KafkaSecurity()


def client_kwargs(settings: KafkaTarget) -> dict[str, Any]:
    """Keyword arguments shared by every aiokafka client (producer, consumer, admin).

    Holds the SASL password in clear (aiokafka needs it so): never log this dict, log
    :func:`describe` instead.
    """
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        **security_of(settings).aiokafka_kwargs(),
    }


def _servers(bootstrap: str) -> list[str]:
    return [part.strip() for part in bootstrap.split(",") if part.strip()]


def _hosts(bootstrap: str) -> list[tuple[str, int]]:
    """``"a:9093, [::1]:9093, b"`` -> ``[("a", 9093), ("::1", 9093), ("b", 9092)]``."""
    out = []
    for item in _servers(bootstrap):
        host, sep, port = item.rpartition(":")
        if not sep or host.endswith(":"):  # no port (a bare IPv6 address included)
            host, port = item, "9092"
        if not port.isdigit():
            raise KafkaConnectionError(f"KAFKA_BOOTSTRAP_SERVERS: {item!r} is not host:port")
        out.append((host.strip("[]"), int(port)))
    return out


def faust_broker_kwargs(settings: KafkaTarget) -> dict[str, Any]:
    """``broker`` and ``broker_credentials`` for ``faust.App(...)``: the same cluster, the
    same security as :func:`client_kwargs` (faust hands the credentials to aiokafka)."""
    from faust.auth import SASLCredentials, SSLCredentials

    security = security_of(settings)
    credentials: SASLCredentials | SSLCredentials | None = None
    if security.uses_sasl:
        assert security.sasl_password is not None
        credentials = SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password.get_secret_value(),
            mechanism=security.sasl_mechanism,
            ssl_context=security.ssl_context,  # None for SASL_PLAINTEXT
        )
    elif security.uses_tls:
        credentials = SSLCredentials(security.ssl_context)
    servers = ";".join(_servers(settings.kafka_bootstrap_servers))
    return {"broker": f"kafka://{servers}", "broker_credentials": credentials}


def describe(settings: KafkaTarget) -> str:
    """One log-safe line: where the cluster is and how clients authenticate."""
    return f"Kafka {settings.kafka_bootstrap_servers} ({security_of(settings).describe()})"


# --- check_connection -------------------------------------------------------------------------


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
    hosts = _hosts(settings.kafka_bootstrap_servers)
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
