"""The one write path: validated events are admitted in order and stored, and the derived
tables (orders, facts, buckets) are brought up to date in the same transaction, which also
marks each customer written for rescoring (the outbox the scoring loop drains).

The API and `scorer import` both call `store_events`, so they validate and
dedupe identically. Everything happens in one transaction, so a read after a
200 sees the event's features (read-your-writes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

import asyncpg

from service.events import tombstones
from service.events.fingerprint import canonical_amount
from service.events.schemas import Rejection
from service.events.validation import StagedEvent
from service.features import upkeep
from service.features.retention import Horizon, hold_horizon

T = TypeVar("T")

EVENT_COLUMNS = (
    "customer_id",
    "event_id",
    "type",
    "occurred_at",
    "day",
    "order_id",
    "amount",
    "properties",
    "fingerprint",
    "source",
)


@dataclass
class IngestOutcome:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def reject(self, staged: StagedEvent, error: str) -> None:
        self.rejected.append(
            Rejection(index=staged.index, event_id=staged.event.event_id, error=error)
        )


_LOCK_KEYS = """
SELECT pg_advisory_xact_lock(key)
FROM (SELECT DISTINCT hashtextextended(id, 0) AS key FROM unnest($1::text[]) AS id ORDER BY 1) k
"""
_EXISTING_EVENTS = "SELECT event_id, fingerprint FROM events WHERE event_id = ANY($1::text[])"


async def store_events(
    conn: asyncpg.Connection,
    staged: list[StagedEvent],
    deadline_seconds: float | None = None,
    source: str = "api",
) -> IngestOutcome:
    """Store what is new, count duplicates, reject conflicts; retried on a rare id race.

    `deadline_seconds` bounds every statement of the transaction (the API's connections
    default to the shorter read deadline); `source` names the way in, kept with each event."""
    return await in_write_transaction(
        conn, deadline_seconds, lambda: store_locked(conn, staged, source)
    )


async def in_write_transaction(
    conn: asyncpg.Connection,
    deadline_seconds: float | None,
    work: Callable[[], Awaitable[T]],
) -> T:
    """Run `work` (which stores through `store_locked`) in one transaction, again on a rare
    event_id race, so that sources can add their own rows to the same commit."""
    for attempt in range(3):
        try:
            async with conn.transaction():
                if deadline_seconds is not None:
                    await conn.execute(
                        f"SET LOCAL statement_timeout = {int(deadline_seconds * 1000)}"
                    )
                return await work()
        except asyncpg.UniqueViolationError:
            # Another transaction stored the same event_id for another customer
            # between our check and our COPY; the next attempt sees it.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def lock_keys(conn: asyncpg.Connection, keys: Iterable[str]) -> None:
    """Transaction locks on `keys` (customer ids, or any other key a source serialises on),
    taken in one sorted statement so that two writers never deadlock; re-taking a key the
    transaction holds is free."""
    await conn.execute(_LOCK_KEYS, sorted(set(keys)))


async def store_locked(
    conn: asyncpg.Connection, staged: list[StagedEvent], source: str = "api"
) -> IngestOutcome:
    """The write itself; must run inside `in_write_transaction`. Events of erased customers
    are duplicates: the erasure took these same locks, so its tombstone is visible here."""
    outcome = IngestOutcome()
    await lock_keys(conn, (s.event.customer_id for s in staged))
    horizon = await hold_horizon(conn)
    erased = await tombstones.erased_among(conn, (s.event.customer_id for s in staged))
    if erased:
        outcome.duplicates = sum(s.event.customer_id in erased for s in staged)
        staged = [s for s in staged if s.event.customer_id not in erased]
    fresh = _admit_in_order(
        staged,
        await _stored_fingerprints(conn, staged),
        await _completed_order_amounts(conn, staged),
        horizon,
        outcome,
    )
    if not fresh:
        return outcome
    await conn.copy_records_to_table(
        "events",
        records=(_event_record(item, source) for item in fresh),
        columns=EVENT_COLUMNS,
    )
    outcome.accepted = len(fresh)
    await upkeep.apply(conn, fresh, source)
    await upkeep.mark_for_rescoring(conn, [s.event.customer_id for s in fresh])
    return outcome


async def _stored_fingerprints(
    conn: asyncpg.Connection, staged: list[StagedEvent]
) -> dict[str, bytes]:
    rows = await conn.fetch(_EXISTING_EVENTS, [s.event.event_id for s in staged])
    return {row["event_id"]: row["fingerprint"] for row in rows}


async def _completed_order_amounts(
    conn: asyncpg.Connection, staged: list[StagedEvent]
) -> dict[tuple[str, str], Decimal]:
    keys = [
        (s.event.customer_id, s.event.order_id) for s in staged if s.event.type == "order_completed"
    ]
    return await upkeep.completed_order_amounts(conn, keys)


def _admit_in_order(
    staged: list[StagedEvent],
    fingerprints: dict[str, bytes],
    order_amounts: dict[tuple[str, str], Decimal],
    horizon: Horizon | None,
    outcome: IngestOutcome,
) -> list[StagedEvent]:
    """Decide each event as if the batch had been sent one event at a time.

    Same event_id: same content is a duplicate, other content a conflict. An order
    counts once per (customer_id, order_id), whatever its event_id: the same amount
    again is a duplicate (not stored), another amount is rejected. Any other event of a
    day before the retention horizon is rejected: its copy may have been purged, so it
    could be counted twice.
    """
    admitted = []
    for item in staged:
        event = item.event
        known = fingerprints.get(event.event_id)
        if known is not None:
            if known == item.fingerprint:
                outcome.duplicates += 1
            else:
                outcome.reject(item, "event_id: already used with different content (conflict)")
            continue
        if event.type == "order_completed":
            key = (event.customer_id, event.order_id)
            amount = order_amounts.get(key)
            if amount == event.amount:
                outcome.duplicates += 1
                continue
            if amount is not None:
                outcome.reject(
                    item,
                    f"order_id: order {key[1]} already recorded with amount "
                    f"{canonical_amount(amount)}",
                )
                continue
        if horizon is not None and item.day < horizon.purged_before:
            outcome.reject(item, horizon.refusal())
            continue
        if event.type == "order_completed":
            order_amounts[(event.customer_id, event.order_id)] = event.amount
        fingerprints[event.event_id] = item.fingerprint
        admitted.append(item)
    return admitted


def _event_record(item: StagedEvent, source: str) -> tuple:
    event = item.event
    return (
        event.customer_id,
        event.event_id,
        event.type,
        event.occurred_at,
        item.day,
        event.order_id,
        event.amount,
        item.properties_json,
        item.fingerprint,
        source,
    )
