"""Which topic and key a raw event belongs on (contract section 1).

Used by the producer and the simulator. A line that is not JSON, or whose
``type`` names no known family, still goes somewhere (the contact topic, no
key) so the worker sees it and dead-letters it with its reason.
"""

from __future__ import annotations

import orjson

FAMILY_KEYS = {
    "contact": "contact_id",
    "ticket": "ticket_id",
    "survey": "survey_id",
    "agent": "agent_id",
}
FALLBACK_FAMILY = "contact"


def family_of_type(event_type: object) -> str | None:
    if isinstance(event_type, str):
        head = event_type.split("_", 1)[0]
        if head in FAMILY_KEYS:
            return head
    return None


def route(raw: bytes) -> tuple[str, bytes | None]:
    """Return ``(family, key)`` for one raw event value."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return FALLBACK_FAMILY, None
    if not isinstance(obj, dict):
        return FALLBACK_FAMILY, None
    family = family_of_type(obj.get("type"))
    if family is None:
        # Unknown type: guess the family from the id it carries, so ordering per entity holds.
        for fam, field in FAMILY_KEYS.items():
            if isinstance(obj.get(field), str):
                family = fam
                break
        else:
            return FALLBACK_FAMILY, None
    key = obj.get(FAMILY_KEYS[family])
    return family, key.encode() if isinstance(key, str) and key else None
