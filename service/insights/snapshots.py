"""Daily snapshots of the insight aggregates: one row per day and kind in
`insight_snapshots`. Today's row is refreshed by the background work every
SCORER_INSIGHTS_REFRESH_SECONDS (kinds marked daily: once a day); a past day's row is its
last refresh, never rewritten, so trends are read back rather than recomputed and no page
view scans the event table."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg

from service.audit import service as audit
from service.insights.cohorts import cohort_table
from service.insights.service import distribution
from service.scoring.store import ModelStore

# One refresher at a time across processes; distinct from the feed, audit and retention locks.
SNAPSHOT_LOCK = 7_358_404_914


@dataclass(frozen=True)
class SnapshotContext:
    day: date
    zone: ZoneInfo
    models: ModelStore | None


Compute = Callable[[asyncpg.Connection, SnapshotContext], Awaitable[dict]]


@dataclass(frozen=True)
class Kind:
    compute: Compute
    # Expensive kinds are computed once a day by the background work (any time on demand).
    daily: bool = False


async def _distribution(conn: asyncpg.Connection, context: SnapshotContext) -> dict:
    return await distribution(conn)


async def _cohorts(conn: asyncpg.Connection, context: SnapshotContext) -> dict:
    return await cohort_table(conn, context.day)


KINDS: dict[str, Kind] = {
    "distribution": Kind(_distribution),
    "cohorts": Kind(_cohorts),
}

_UPSERT = """
INSERT INTO insight_snapshots (day, kind, payload, computed_at)
VALUES ($1, $2, $3::jsonb, clock_timestamp())
ON CONFLICT (kind, day) DO UPDATE SET payload = excluded.payload,
                                      computed_at = excluded.computed_at
"""
_TAKEN_TODAY = "SELECT kind FROM insight_snapshots WHERE day = $1"


async def refresh(
    conn: asyncpg.Connection, context: SnapshotContext, *, every_kind: bool = True
) -> list[str] | None:
    """Today's snapshots, each in its own transaction, and the kinds refreshed; None when
    another process holds the refresh. Without `every_kind`, daily kinds already taken
    today are left as they are."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", SNAPSHOT_LOCK):
        return None
    try:
        taken = {row["kind"] for row in await conn.fetch(_TAKEN_TODAY, context.day)}
        chosen = [
            name
            for name, kind in KINDS.items()
            if every_kind or not kind.daily or name not in taken
        ]
        for name in chosen:
            payload = await KINDS[name].compute(conn, context)
            await conn.execute(_UPSERT, context.day, name, json.dumps(payload))
        return chosen
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", SNAPSHOT_LOCK)


async def take_now(
    conn: asyncpg.Connection, context: SnapshotContext, actor: str
) -> list[str] | None:
    """Every kind of today's snapshots, on an admin's demand (audited)."""
    kinds = await refresh(conn, context)
    if kinds is not None:
        await audit.record(
            conn, actor, "insights.snapshots_taken", str(context.day), {"kinds": kinds}
        )
    return kinds


@dataclass(frozen=True)
class Snapshot:
    day: date
    computed_at: datetime
    payload: dict


_SELECT = (
    "SELECT day, computed_at, payload::text AS payload FROM insight_snapshots WHERE kind = $1 "
)


async def _read(conn: asyncpg.Connection, rest: str, *args) -> list[Snapshot]:
    rows = await conn.fetch(_SELECT + rest, *args)
    return [Snapshot(r["day"], r["computed_at"], json.loads(r["payload"])) for r in rows]


async def latest(conn: asyncpg.Connection, kind: str) -> Snapshot | None:
    found = await _read(conn, "ORDER BY day DESC LIMIT 1", kind)
    return found[0] if found else None


async def on_day(conn: asyncpg.Connection, kind: str, day: date) -> Snapshot | None:
    found = await _read(conn, "AND day = $2", kind, day)
    return found[0] if found else None


async def since(conn: asyncpg.Connection, kind: str, first_day: date) -> list[Snapshot]:
    return await _read(conn, "AND day >= $2 ORDER BY day", kind, first_day)
