"""Raw-event retention (SCORER_EVENT_RETENTION_DAYS): events of days before the horizon
`today - N` are deleted, in bounded batches, while the derived tables keep what they added.

The horizon is recorded first (`event_retention`), under the exclusive retention lock that
every ingest holds shared while it dedupes: once it is recorded, no transaction admits an
event of an earlier day, so a deleted event can never be stored and counted again. Then
batches of events are deleted, each its own transaction, rows taken with SKIP LOCKED so that
any number of processes purge side by side without waiting on each other.

Kept past the horizon: refunds whose order has no day yet (held for an order that has not
arrived) or whose order's day is on or after the horizon, which recompute rebuilds from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import asyncpg

from service.features.retention import RETENTION_LOCK, Horizon, read_horizon

BATCH = 10_000
# Moving the horizon waits for the ingests in flight, and new ingests queue behind it: short
# waits, tried again after a pause, keep that queue shorter than their lock timeout.
_ADVANCE_LOCK_TIMEOUT_MS = 500
_ADVANCE_ATTEMPTS, _ADVANCE_PAUSE_SECONDS = 5, 0.2

_ADVANCE = """
INSERT INTO event_retention AS r (id, purged_before, retention_days)
VALUES (true, $1, $2)
ON CONFLICT (id) DO UPDATE
SET purged_before = EXCLUDED.purged_before, retention_days = EXCLUDED.retention_days,
    updated_at = now()
WHERE r.purged_before < EXCLUDED.purged_before
"""

# Refunds that recompute still needs: held for an order without a day, or of an order on or
# after the horizon (its row is rebuilt from events).
_PURGEABLE = """
x.day < $1 AND (x.type <> 'order_refunded' OR EXISTS (
  SELECT 1 FROM orders o
  WHERE o.customer_id = x.customer_id AND o.order_id = x.order_id AND o.day < $1))
"""
_PURGE_BATCH = f"""
DELETE FROM events e
USING (
  SELECT x.customer_id, x.event_id FROM events x WHERE {_PURGEABLE}
  LIMIT $2 FOR UPDATE OF x SKIP LOCKED
) doomed
WHERE e.customer_id = doomed.customer_id AND e.event_id = doomed.event_id
"""
_KEPT = "SELECT count(*) FROM events WHERE day < $1"


@dataclass(frozen=True)
class Purged:
    horizon: Horizon
    deleted: int
    kept: int  # refunds before the horizon kept for recompute


async def advance_horizon(conn: asyncpg.Connection, horizon: Horizon) -> Horizon:
    """Record `horizon` unless a later one is in force; the horizon in force after."""
    current = await read_horizon(conn)
    if current is not None and current.purged_before >= horizon.purged_before:
        return current
    for attempt in range(_ADVANCE_ATTEMPTS):
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = {_ADVANCE_LOCK_TIMEOUT_MS}")
                await conn.execute("SELECT pg_advisory_xact_lock($1)", RETENTION_LOCK)
                await conn.execute(_ADVANCE, horizon.purged_before, horizon.retention_days)
            break
        except asyncpg.LockNotAvailableError:
            if attempt == _ADVANCE_ATTEMPTS - 1:
                raise
            await asyncio.sleep(_ADVANCE_PAUSE_SECONDS)
    return await read_horizon(conn) or horizon


async def purge_batch(conn: asyncpg.Connection, purged_before: date, batch: int = BATCH) -> int:
    """Delete one batch of purgeable events before the horizon; the number deleted."""
    status = await conn.execute(_PURGE_BATCH, purged_before, batch)
    return int(status.split()[-1])


async def purge_events(
    conn: asyncpg.Connection,
    today: date,
    retention_days: int,
    batch: int = BATCH,
    progress: Callable[[int], None] = lambda deleted: None,
) -> Purged:
    """Move the horizon to `today - retention_days` (never back) and delete the events
    before it batch by batch; `progress` hears each batch's count."""
    wanted = Horizon(today - timedelta(days=retention_days), retention_days)
    horizon = await advance_horizon(conn, wanted)
    deleted = 0
    while count := await purge_batch(conn, horizon.purged_before, batch):
        deleted += count
        progress(count)
    kept = await conn.fetchval(_KEPT, horizon.purged_before)
    return Purged(horizon, deleted, kept)
