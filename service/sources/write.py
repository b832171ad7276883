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
    stored = await store_locked(conn, staged) if staged else IngestOutcome()
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
    await dead_letters.record(conn, letters)
    return SourceOutcome(stored.accepted, stored.duplicates, letters)


def _customer_of(event: dict[str, Any]) -> str | None:
    customer = event.get("customer_id")
    return customer if isinstance(customer, str) else None
