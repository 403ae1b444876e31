"""Every Kafka client of the project is configured here, in one place.

The faust app, the whole-center view reader, topic admin, ``produce``, the
simulator and the connectors all build their aiokafka clients from
:func:`client_kwargs`, so a cluster that needs TLS or SASL is configured once.
"""

from __future__ import annotations

from typing import Any

from stream_app.settings import Settings


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments shared by every aiokafka client (producer, consumer, admin)."""
    return {"bootstrap_servers": settings.kafka_bootstrap_servers}
