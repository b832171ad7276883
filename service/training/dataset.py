"""Point-in-time training sets: features as of a cutoff C (`service.features.asof`),
labels from (C, C + H] (`service.modeling.outcomes`), at the cutoffs chosen here.

Features come from `service.features.service.read_features`, the very statement the
API serves, so offline vectors equal online ones by construction (a test checks).
"""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg

from service.features.retention import first_day, newest_day


async def data_span(conn: asyncpg.Connection) -> tuple[date, date]:
    """The first and newest day of data, from the derived tables: they keep the days whose
    raw events were purged (SCORER_EVENT_RETENTION_DAYS)."""
    first, last = await first_day(conn), await newest_day(conn)
    if first is None or last is None:
        raise ValueError("no events: nothing to train on")
    return first, last


def cutoffs_for(last_day: date, horizon_days: int, count: int, step_days: int) -> list[date]:
    """Latest first: the newest cutoff whose horizon is complete, then earlier ones."""
    newest = last_day - timedelta(days=horizon_days)
    return [newest - timedelta(days=step_days * i) for i in range(count)]
