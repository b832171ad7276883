"""Segment, tier and churn-band movements over a period, from the change feed: each
customer counted once, from their label when the period began to their label when it
ended (customers first scored within it come from null)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

# (change type, the snapshot field it moves)
MOVED_BY = {
    "segment": ("segment.changed", "segment"),
    "tier": ("tier.changed", "pcltv_tier"),
    "churn_band": ("churn_band.changed", "churn_band"),
}

_MOVEMENTS = """
WITH ends AS (
  SELECT customer_id,
         (array_agg(before->>$4 ORDER BY seq))[1] AS from_name,
         (array_agg(after->>$4 ORDER BY seq DESC))[1] AS to_name
  FROM score_changes
  WHERE type = $1 AND occurred_at >= $2 AND occurred_at < $3 AND customer_id IS NOT NULL
  GROUP BY customer_id
)
SELECT from_name, to_name, count(*) AS customers FROM ends
WHERE from_name IS DISTINCT FROM to_name
GROUP BY 1, 2 ORDER BY 1 NULLS FIRST, 2
"""


@dataclass(frozen=True)
class Movement:
    from_name: str | None
    to_name: str
    customers: int


async def movements(
    conn: asyncpg.Connection, by: str, start: datetime, end: datetime
) -> list[Movement]:
    """Customers whose `by` label differs between `start` and `end`, per (from, to); one
    who moved and came back within the period has not moved."""
    change_type, field = MOVED_BY[by]
    rows = await conn.fetch(_MOVEMENTS, change_type, start, end, field)
    return [Movement(r["from_name"], r["to_name"], r["customers"]) for r in rows]
