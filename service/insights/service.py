"""Customer equity and the distribution of segments, tiers and churn bands, read from the
stored scores (`customer_scores`), one aggregate statement per view."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

# Historic value is the revenue to date the stored feature row carries.
_EQUITY = """
SELECT {group} AS name, count(*) AS customers,
       coalesce(sum(pcltv), 0)::float8 AS pcltv,
       coalesce(sum((features->>'revenue_total')::numeric), 0)::float8 AS historic
FROM customer_scores GROUP BY ROLLUP ({group}) ORDER BY {group} NULLS FIRST
"""
GROUPINGS = {"tier": "pcltv_tier", "segment": "segment", "churn_band": "churn_band"}


@dataclass(frozen=True)
class EquityRow:
    name: str | None  # None: the total
    customers: int
    pcltv: float
    historic: float


async def equity(conn: asyncpg.Connection, by: str) -> list[EquityRow]:
    """Customers, predicted and historic value per group of `by`, the total first."""
    rows = await conn.fetch(_EQUITY.format(group=GROUPINGS[by]))
    return [EquityRow(**dict(row)) for row in rows]
