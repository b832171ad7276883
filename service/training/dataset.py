"""Point-in-time training sets: features as of a cutoff C, labels from (C, C + H].

Features come from `service.features.service.read_features`, the very statement the
API serves, so offline vectors equal online ones by construction (a test checks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import numpy as np

from service.features.definitions import order_counted_sql, order_net_sql
from service.features.retention import first_day, newest_day
from service.features.service import read_features
from service.features.vector import feature_matrix

CHUNK = 5000

_LABELS_SQL = f"""
SELECT customer_id,
  count(*) FILTER (WHERE {order_counted_sql("amount", "refunded")}) AS orders,
  coalesce(sum({order_net_sql("amount", "refunded")}), 0) AS revenue
FROM orders
WHERE customer_id = ANY($1::text[]) AND day > $2::date AND day <= $2::date + $3::int
GROUP BY customer_id
"""


@dataclass
class Snapshot:
    """Every customer known at `cutoff`, with their feature rows and matrix."""

    cutoff: date
    customer_ids: list[str]
    features: list[dict]
    X: np.ndarray


@dataclass
class Labels:
    orders: np.ndarray
    revenue: np.ndarray


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


async def labels(
    conn: asyncpg.Connection, customer_ids: Sequence[str], cutoff: date, horizon_days: int
) -> Labels:
    """Counted orders and net revenue in (cutoff, cutoff + horizon]."""
    orders = np.zeros(len(customer_ids), dtype=np.float64)
    revenue = np.zeros(len(customer_ids), dtype=np.float64)
    position = {customer_id: i for i, customer_id in enumerate(customer_ids)}
    for start in range(0, len(customer_ids), CHUNK):
        chunk = list(customer_ids[start : start + CHUNK])
        for row in await conn.fetch(_LABELS_SQL, chunk, cutoff, horizon_days):
            i = position[row["customer_id"]]
            orders[i], revenue[i] = row["orders"], float(row["revenue"])
    return Labels(orders, revenue)


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
