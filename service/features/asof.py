"""Every customer known on a past day with their exact features as of that day, from the
running totals (`read_features`, the statement the API serves): what training learns from
and what serving's calibration check re-scores, so the two read the same rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import asyncpg
import numpy as np

from service.features.service import read_features
from service.features.vector import feature_matrix

CHUNK = 5000


@dataclass
class Snapshot:
    """Every customer known at `cutoff`, with their feature rows and matrix."""

    cutoff: date
    customer_ids: list[str]
    features: list[dict]
    X: np.ndarray


def end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


async def known_customers(conn: asyncpg.Connection, cutoff: date) -> list[str]:
    rows = await conn.fetch(
        "SELECT customer_id FROM customers WHERE first_seen_day <= $1 ORDER BY customer_id",
        cutoff,
    )
    return [row["customer_id"] for row in rows]


async def snapshot(
    conn: asyncpg.Connection,
    cutoff: date,
    customer_ids: Sequence[str] | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> Snapshot:
    ids = list(customer_ids) if customer_ids is not None else await known_customers(conn, cutoff)
    rows: list[dict] = []
    kept: list[str] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        found = await read_features(conn, chunk, end_of_day(cutoff), cutoff)
        for customer_id in chunk:
            if customer_id in found:
                kept.append(customer_id)
                rows.append(found[customer_id])
        progress(len(chunk))
    return Snapshot(cutoff, kept, rows, feature_matrix(rows))
