"""Every Kafka client of the project is configured here, in one place.

The faust app, the whole-center view reader, topic admin, ``produce``, the simulator and the
connectors all build their clients from :func:`client_kwargs` (aiokafka) or
:func:`faust_broker_kwargs` (faust), so a cluster that needs TLS or SASL is configured once,
from the ``KAFKA_*`` variables every Kafka tool already uses, and validated before any client
starts: a typo in a variable name or a missing CA file fails at start-up with the variable's
name instead of as a connection that never comes up.

Whether the configured cluster can really be used is checked by
:func:`stream_app.kafka.connection.check_connection`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args
from typing import Protocol as _Protocol

from aiokafka.helpers import create_ssl_context
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


def hosts(bootstrap: str) -> list[tuple[str, int]]:
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
