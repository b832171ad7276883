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

# One pass over the scores for all three distributions and the totals.
_DISTRIBUTION = """
SELECT CASE WHEN GROUPING(segment) = 0 THEN 'segment'
            WHEN GROUPING(pcltv_tier) = 0 THEN 'tier'
            WHEN GROUPING(churn_band) = 0 THEN 'churn_band' END AS by,
       coalesce(segment, pcltv_tier, churn_band) AS name, count(*) AS customers,
       coalesce(sum(pcltv), 0)::float8 AS pcltv,
       coalesce(sum((features->>'revenue_total')::numeric), 0)::float8 AS historic
FROM customer_scores
GROUP BY GROUPING SETS ((segment), (pcltv_tier), (churn_band), ())
ORDER BY 1 NULLS FIRST, 2
"""


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


async def distribution(conn: asyncpg.Connection) -> dict:
    """{"customers", "pcltv", "historic", "segments", "tiers", "churn_bands"}: each group a
    {"name", "customers"} list in name order (the JSON a daily snapshot keeps, too)."""
    result: dict = {"segments": [], "tiers": [], "churn_bands": []}
    lists = {"segment": "segments", "tier": "tiers", "churn_band": "churn_bands"}
    for row in await conn.fetch(_DISTRIBUTION):
        if row["by"] is None:
            result.update(customers=row["customers"], pcltv=row["pcltv"], historic=row["historic"])
        else:
            result[lists[row["by"]]].append({"name": row["name"], "customers": row["customers"]})
    return result
