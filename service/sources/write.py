"""How a source stores what it mapped: through the events write path, in one transaction
with the dead letters of whatever could not be used.

A source maps each message of its payload to zero or more events (`Mapped`), or to a
dead letter when it cannot be mapped at all. Events that fail validation or admission
(conflicts) become dead letters carrying the source's original message, so nothing the
source sent is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from service.events import tombstones
from service.events.service import IngestOutcome, in_write_transaction, store_locked
from service.events.validation import EventRules, StagedEvent
from service.sources import dead_letters
from service.sources.dead_letters import DeadLetter


@dataclass(frozen=True)
class Mapped:
    """One event in `POST /v1/events` shape, and the source message it came from."""

    event: dict[str, Any]
    message: Any
    external_id: str | None = None
    # The part of `message` that makes the event what it is, when the event also depends on
    # when it arrived: then a re-sent message is a duplicate by this, not by the event.
    content: Any = None


@dataclass
class SourceOutcome:
    accepted: int = 0
    duplicates: int = 0
    dead_lettered: list[DeadLetter] = field(default_factory=list)


async def store_mapped(
    conn: asyncpg.Connection,
    rules: EventRules,
    source: str,
    mapped: list[Mapped],
    unmappable: list[DeadLetter],
    now: datetime,
    deadline_seconds: float | None = None,
) -> SourceOutcome:
    """Validate and store `mapped`, dead-letter what fails and `unmappable`, in one commit."""
    return await in_write_transaction(
        conn,
        deadline_seconds,
        lambda: store_in_transaction(conn, rules, source, mapped, unmappable, now),
    )


async def store_in_transaction(
    conn: asyncpg.Connection,
    rules: EventRules,
    source: str,
    mapped: list[Mapped],
    unmappable: list[DeadLetter],
    now: datetime,
) -> SourceOutcome:
    """`store_mapped` for a source that has rows of its own to commit with the events: call
    it inside `in_write_transaction`."""
    staged: list[StagedEvent] = []
    rejected = []
    for index, item in enumerate(mapped):
        outcome = rules.stage(index, item.event, now, item.content)
        (staged if isinstance(outcome, StagedEvent) else rejected).append(outcome)
    stored = await store_locked(conn, staged, source) if staged else IngestOutcome()
    letters = list(unmappable)
    for rejection in sorted([*rejected, *stored.rejected], key=lambda r: r.index):
        item = mapped[rejection.index]
        letters.append(
            DeadLetter(
                source=source,
                reason=rejection.error,
                payload=item.message,
                external_id=item.external_id or rejection.event_id,
                customer_id=_customer_of(item.event),
            )
        )
    # An erased customer's messages are not kept, not even as dead letters: they count as
    # duplicates, as their events do.
    named = [_named_ids(letter) for letter in letters]
    erased = await tombstones.erased_among(conn, set().union(*named))
    kept = [letter for letter, ids in zip(letters, named, strict=True) if not ids & erased]
    await dead_letters.record(conn, kept)
    return SourceOutcome(stored.accepted, stored.duplicates + len(letters) - len(kept), kept)


# Enough for any message a source sends about one customer; a larger one is checked in part.
_MAX_NAMED_VALUES = 1000


def _named_ids(letter: DeadLetter) -> set[str]:
    """Who a letter may be about: its customer, else every id-like value of its payload (a
    message the source could not attribute may still name an erased customer)."""
    if letter.customer_id is not None:
        return {letter.customer_id}
    found: set[str] = set()
    pending = [letter.payload]
    while pending and len(found) < _MAX_NAMED_VALUES:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            found.add(str(value))
    return found


def _customer_of(event: dict[str, Any]) -> str | None:
    customer = event.get("customer_id")
    return customer if isinstance(customer, str) else None
