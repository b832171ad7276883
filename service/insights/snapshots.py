"""Daily snapshots of the insight aggregates, stored: one row per day and kind in
`insight_snapshots` (`refresh.py` computes them). Today's row is refreshed by the
background work every SCORER_INSIGHTS_REFRESH_SECONDS (daily kinds: once a day); a past
day's row is its last refresh, never rewritten, so trends are read back rather than
recomputed and no page view scans the event table."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg


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
