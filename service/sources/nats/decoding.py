"""NATS message bodies to events: pure functions, no I/O.

A message's data is one event in `POST /v1/events` shape, or `{"events": [...]}` of them.
"""

from __future__ import annotations

from typing import Any

from service.ops.jsonbody import parse_json
from service.sources.dead_letters import DeadLetter
from service.sources.write import Mapped

SOURCE = "nats"


def decode(data: bytes, message_key: str) -> tuple[list[Mapped], list[DeadLetter]]:
    """The events of one message, or the dead letter saying why it has none;
    `message_key` (stream:sequence) names the message in dead letters."""
    try:
        document = parse_json(data)
    except Exception as problem:  # parse_json's HTTPException, or undecodable bytes
        reason = getattr(problem, "detail", None) or str(problem)
        text = data.decode("utf-8", "backslashreplace")[:10_000]
        return [], [DeadLetter(SOURCE, f"data: {reason}", {"data": text}, message_key)]
    events: Any = document.get("events") if isinstance(document, dict) else None
    if isinstance(document, dict) and "events" in document:
        if not isinstance(events, list) or not events:
            letter = DeadLetter(SOURCE, "events: must be a non-empty list", document, message_key)
            return [], [letter]
    else:
        events = [document]
    mapped = [
        Mapped(event, event, _event_key(event, message_key, index))
        for index, event in enumerate(events)
    ]
    return mapped, []


def _event_key(event: Any, message_key: str, index: int) -> str:
    event_id = event.get("event_id") if isinstance(event, dict) else None
    return event_id if isinstance(event_id, str) and event_id else f"{message_key}:{index}"
