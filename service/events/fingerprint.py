"""Content identity of an event, so a re-sent event_id can be told duplicate or conflict."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC
from decimal import Decimal

from service.events.schemas import Event


def canonical_amount(amount: Decimal) -> str:
    """'10', '10.0' and 10 are the same amount."""
    return format(amount.normalize(), "f")


def fingerprint(event: Event, currency: str | None) -> bytes:
    content = {
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "type": event.type,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
        "properties": event.properties,
        "order_id": event.order_id,
        "amount": None if event.amount is None else canonical_amount(event.amount),
        "currency": currency,
    }
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(encoded.encode(), digest_size=16).digest()


def source_fingerprint(event_id: str, customer_id: str, message: object) -> bytes:
    """Content identity of an event mapped from a source's message: the message as sent,
    not the event derived from it, so that a client's retry is a duplicate even where the
    mapping depends on when it arrived (Segment's clock-skew correction)."""
    content = {"event_id": event_id, "customer_id": customer_id, "message": message}
    encoded = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.blake2b(encoded.encode(), digest_size=16).digest()
