"""How a source stores what it mapped: through the events write path, in one transaction
with the dead letters of whatever could not be used.

A source maps each message of its payload to zero or more events (`Mapped`), or to a
dead letter when it cannot be mapped at all. Events that fail validation or admission
(conflicts) become dead letters carrying the source's original message, so nothing the
source sent is lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from service.events.service import IngestOutcome, in_write_transaction, store_locked
from service.events.validation import EventRules
from service.sources import dead_letters
from service.sources.dead_letters import DeadLetter


@dataclass(frozen=True)
class Mapped:
    """One event in `POST /v1/events` shape, and the source message it came from."""

    event: dict[str, Any]
    message: Any
    external_id: str | None = None


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
    before_store: Callable[[], Awaitable[None]] | None = None,
) -> SourceOutcome:
    """Validate and store `mapped`, dead-letter what fails and `unmappable`, in one commit.

    `before_store` runs inside the transaction first (a source's own bookkeeping that must
    commit or roll back with the events)."""
    staged, rejected = rules.stage_all((item.event for item in mapped), now)

    async def work() -> SourceOutcome:
        if before_store is not None:
            await before_store()
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

    return await in_write_transaction(conn, deadline_seconds, work)


def _customer_of(event: dict[str, Any]) -> str | None:
    customer = event.get("customer_id")
    return customer if isinstance(customer, str) else None
