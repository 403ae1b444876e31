"""Structured, quiet logs: one JSON object per line on stderr."""

from __future__ import annotations

import logging
import sys
import time

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def setup_logging(level: str = "warning") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Our own loggers say what matters at info; faust/aiokafka are noisy there.
    logging.getLogger("kpi").setLevel(min(logging.INFO, root.level))


class _DropTransient(logging.Filter):
    """aiokafka logs an ERROR while a fresh broker elects its group coordinator;
    it retries by itself, so the line only alarms people."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "GroupCoordinatorNotAvailableError" not in record.getMessage()


#: for faust's ``logging_config`` (dictConfig): faust sets up logging in its worker.
LOGGING_CONFIG: dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JsonFormatter}},
    "filters": {"transient": {"()": _DropTransient}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["transient"],
            "stream": "ext://sys.stderr",
        },
    },
    "root": {"handlers": ["stderr"]},
}
