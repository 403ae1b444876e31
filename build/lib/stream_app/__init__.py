"""kpi-stream: live customer-service KPIs from Kafka events."""

__version__ = "0.1.0"
