"""What happened after a cutoff: counted orders and net revenue in (cutoff, cutoff + H],
and churn, the label the churn model learns, defined once here for training and for
serving's calibration check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg
import numpy as np

from service.features.asof import CHUNK
from service.features.definitions import order_counted_sql, order_net_sql

_LABELS_SQL = f"""
SELECT customer_id,
  count(*) FILTER (WHERE {order_counted_sql("amount", "refunded")}) AS orders,
  coalesce(sum({order_net_sql("amount", "refunded")}), 0) AS revenue
FROM orders
WHERE customer_id = ANY($1::text[]) AND day > $2::date AND day <= $2::date + $3::int
GROUP BY customer_id
"""


@dataclass
class Labels:
    orders: np.ndarray
    revenue: np.ndarray


def churned(orders: np.ndarray) -> np.ndarray:
    """1 where a customer placed no counted order in the horizon: the churn label."""
    return (np.asarray(orders) == 0).astype(int)


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
