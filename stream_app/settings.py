"""One typed settings object for the whole project.

Every field is read from a ``KPI_<NAME>`` environment variable, except the two
connection strings that the rest of the Kafka/Redis world already calls
``KAFKA_BOOTSTRAP_SERVERS`` and ``REDIS_URL``.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_app.kafka.client import KafkaSecurity
from tables.entities import window_minutes

#: Default local stack ports: non-default so a developer's own Kafka/Redis are left alone.
DEFAULT_KAFKA = "127.0.0.1:19092"
DEFAULT_REDIS = "redis://127.0.0.1:16379/0"


def parse_duration(text: str) -> int:
    """``"15m"`` -> 900. Accepts s, m, h, d suffixes; a bare number is seconds."""
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(float(text))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KPI_", extra="ignore")

    # --- connections -------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        DEFAULT_KAFKA,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "KPI_KAFKA_BOOTSTRAP_SERVERS"),
    )
    redis_url: str = Field(
        DEFAULT_REDIS, validation_alias=AliasChoices("REDIS_URL", "KPI_REDIS_URL")
    )
    #: TLS / SASL of every Kafka client, from the standard ``KAFKA_SECURITY_PROTOCOL``,
    #: ``KAFKA_SASL_*`` and ``KAFKA_SSL_*`` variables (stream_app/kafka/client.py)
    kafka_security: KafkaSecurity = Field(default_factory=KafkaSecurity)
    #: false where the app may not create topics: then every topic must exist beforehand,
    #: and a missing one stops the worker at start naming it
    create_topics: bool = True

    # --- names that let several deployments share one Kafka and one Redis ----
    app_id: str = "kpi-stream"
    topic_prefix: str = ""
    redis_prefix: str = "kpi:"

    # --- topics --------------------------------------------------------------
    topic_contacts: str = "contact-events"
    topic_tickets: str = "ticket-events"
    topic_surveys: str = "survey-events"
    topic_agents: str = "agent-events"
    topic_dead_letters: str = "kpi-dead-letters"
    topic_alerts: str = "kpi-sla-alerts"
    partitions: int = 4
    replication_factor: int = 1

    # --- KPI maths (contract sections 4-6) -------------------------------------
    windows: str = "5m,15m,1h,24h,today"
    retention: str = "24h"
    skew: str = "300s"
    sl_threshold_seconds: float = 20.0
    #: Unfinished contacts/tickets idle longer than this are forgotten (memory bound).
    open_entity_ttl: str = "7d"
    #: the most queue / agent / product scopes a snapshot holds (0: no cap); the least busy
    #: beyond it fold into queue:other, agent:other, product:other
    max_queues: int = 500
    max_agents: int = 5000
    max_products: int = 1000

    # --- live clock --------------------------------------------------------------
    #: Seconds added to the wall clock (tests move time without sleeping).
    clock_offset_seconds: float = 0.0

    # --- outputs -------------------------------------------------------------------
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    publish_interval: float = 1.0
    metrics_agent_series: bool = True
    rules_file: str = ""
    #: faust's working directory (nothing durable lives there: state is in Kafka)
    data_dir: str = ".run/worker-data"
    #: when set, /api/* and /metrics answer only requests with ``Authorization: Bearer <it>``
    api_token: SecretStr | None = None
    #: /healthz fails when no batch progressed for this long while input is waiting
    health_stall_seconds: float = 60.0
    #: an input message larger than this is dead-lettered ``too_large`` before decoding
    max_message_bytes: int = 1_000_000
    #: on SIGTERM, at most this long to write and commit the last batch and alerts
    stop_timeout: float = 20.0

    # --- engine batching ---------------------------------------------------------------
    #: a batch closes at this many events; while the worker keeps up, after ``batch_within``
    batch_max: int = 100_000
    #: seconds before a silent worker's partitions go to the others
    session_timeout: float = 10.0
    batch_within: float = 0.2
    #: the worker's garbage collector (stream_app/worker/gcpolicy.py): how often the objects
    #: that survived the young collections are frozen, and how often all is collected
    gc_freeze_seconds: float = 1.0
    gc_full_seconds: float = 3600.0

    @field_validator("windows")
    @classmethod
    def _check_windows(cls, v: str) -> str:
        names = [w.strip() for w in v.split(",") if w.strip()]
        try:
            minutes = [window_minutes(w) for w in names if w != "today"]
        except ValueError as exc:
            raise ValueError(f"KPI_WINDOWS={v!r}: {exc}") from exc
        if not names or any(m <= 0 for m in minutes) or len(set(names)) != len(names):
            raise ValueError("windows must be distinct whole minutes or today, "
                             "e.g. '5m,15m,1h,24h,today'")
        return v

    # --- derived ------------------------------------------------------------------
    @property
    def window_names(self) -> list[str]:
        return [w.strip() for w in self.windows.split(",") if w.strip()]

    @property
    def retention_seconds(self) -> int:
        return parse_duration(self.retention)

    @property
    def skew_seconds(self) -> int:
        return parse_duration(self.skew)

    @property
    def open_entity_ttl_seconds(self) -> int:
        return parse_duration(self.open_entity_ttl)

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def input_topics(self) -> dict[str, str]:
        """Family -> full topic name."""
        return {
            "contact": self.topic(self.topic_contacts),
            "ticket": self.topic(self.topic_tickets),
            "survey": self.topic(self.topic_surveys),
            "agent": self.topic(self.topic_agents),
        }

    @property
    def dead_letter_topic(self) -> str:
        return self.topic(self.topic_dead_letters)

    @property
    def alerts_topic(self) -> str:
        return self.topic(self.topic_alerts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
