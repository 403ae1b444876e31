"""The sources by name: which mapper, which file reader, which request check.

One table so ``convert``, ``gateway`` and the docs agree on the names (and on a few
short aliases operators type: ``asterisk``, ``connect``, ``twilio``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

from connectors.base import ConnectorError
from connectors.chatwoot import ChatwootMapper
from connectors.connect import ConnectMapper
from connectors.delighted import DelightedMapper
from connectors.mapping import Mapper, Options, form_records, json_records
from connectors.state import State
from connectors.twilio import TwilioMapper
from connectors.zendesk import ZendeskMapper

ASTERISK = "asterisk-queue-log"
MAPPERS: dict[str, type[Mapper]] = {
    "zendesk": ZendeskMapper,
    "amazon-connect": ConnectMapper,
    "twilio-taskrouter": TwilioMapper,
    "chatwoot": ChatwootMapper,
    "delighted": DelightedMapper,
}
SOURCES = (ASTERISK, *MAPPERS)
ALIASES = {"asterisk": ASTERISK, "queue_log": ASTERISK, "connect": "amazon-connect",
           "twilio": "twilio-taskrouter"}
READERS: dict[str, Callable[[BinaryIO], Iterator[bytes | None]]] = {
    name: (form_records if name == "twilio-taskrouter" else json_records) for name in MAPPERS}


def canonical(name: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in SOURCES:
        raise ConnectorError(f"unknown source {name!r}; use one of: {', '.join(SOURCES)}")
    return key


def build_mappers(options: Options, state: State,
                  sources: list[str] | None = None) -> dict[str, Mapper]:
    return {name: cls(options, state) for name, cls in MAPPERS.items()
            if sources is None or name in sources}
