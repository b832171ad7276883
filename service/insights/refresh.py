"""Computing today's snapshots: the kinds and their functions, and the refresh that
stores them (one process at a time)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

import asyncpg

from service.audit import service as audit
from service.insights.cohorts import cohort_table
from service.insights.health import KIND as MODEL_HEALTH
from service.insights.health import model_health_snapshot
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


async def _model_health(conn: asyncpg.Connection, context: SnapshotContext) -> dict:
    return await model_health_snapshot(conn, context.day, context.models)


KINDS: dict[str, Kind] = {
    "distribution": Kind(_distribution),
    "cohorts": Kind(_cohorts),
    MODEL_HEALTH: Kind(_model_health, daily=True),
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
