"""The raw-event retention horizon (`event_retention`), as the derived tables see it.

Once events of days before the horizon have been purged (`service.events.retention`), the
derived rows of those days are their only record: recompute keeps them, and ingest refuses
events of those days, whose duplicates could no longer be recognised. Writers that depend on
the horizon hold it with `hold_horizon` until they commit, and the purge moves it only under
the exclusive lock, so no writer works with a horizon older than the events still stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import asyncpg

# Any constant shared by every writer; chosen not to collide with hashed keys elsewhere, nor
# with the change feed's (7_358_404_911) or the audit log's (7_358_404_912).
RETENTION_LOCK = 7_358_404_913

_HORIZON = "SELECT purged_before, retention_days FROM event_retention"


@dataclass(frozen=True)
class Horizon:
    """Events of days before `purged_before` may have been purged (by a retention of
    `retention_days` days)."""

    purged_before: date
    retention_days: int

    def refusal(self) -> str:
        """Why an event of a day before the horizon is rejected."""
        return (
            f"occurred_at: before the event retention horizon {self.purged_before} "
            f"(SCORER_EVENT_RETENTION_DAYS={self.retention_days}): events of purged days can "
            "no longer be checked for duplicates"
        )


async def read_horizon(conn: asyncpg.Connection) -> Horizon | None:
    """The horizon in force, None while no event has ever been purged."""
    row = await conn.fetchrow(_HORIZON)
    return None if row is None else Horizon(row["purged_before"], row["retention_days"])


async def hold_horizon(conn: asyncpg.Connection) -> Horizon | None:
    """The horizon, which cannot move until the caller's transaction ends (a shared
    transaction lock; the purge takes it exclusively to move the horizon)."""
    # Two statements: the read must take its snapshot after the lock is granted.
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", RETENTION_LOCK)
    return await read_horizon(conn)


async def newest_day(conn: asyncpg.Connection) -> date | None:
    """The newest day of data: of the events, or, when no event is left since the horizon
    (all purged), of the daily buckets that kept them."""
    newest = await conn.fetchval("SELECT max(day) FROM events")
    horizon = await read_horizon(conn)
    if horizon is not None and (newest is None or newest < horizon.purged_before):
        kept = await conn.fetchval("SELECT max(day) FROM customer_daily")
        newest = max((day for day in (newest, kept) if day is not None), default=None)
    return newest


async def first_day(conn: asyncpg.Connection) -> date | None:
    """The first day of data, which the customers' first-seen days keep after a purge."""
    return await conn.fetchval("SELECT min(first_seen_day) FROM customers")
