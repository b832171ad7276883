"""Cohort retention: customers grouped by the month of their first counted order, and for
each later month the share of them that ordered again and the revenue they brought.

Read from the per-customer daily buckets (`customer_daily`), which outlive raw-event
retention, once per snapshot refresh rather than per page view."""

from __future__ import annotations

from datetime import date

import asyncpg

_COHORTS = """
WITH monthly AS (
  SELECT customer_id, date_trunc('month', day)::date AS month,
         sum(orders) AS orders, sum(revenue) AS revenue
  FROM customer_daily GROUP BY 1, 2
), acquired AS (
  SELECT customer_id, min(month) AS cohort FROM monthly WHERE orders > 0 GROUP BY 1
)
SELECT a.cohort,
       ((extract(year FROM m.month) - extract(year FROM a.cohort)) * 12
        + extract(month FROM m.month) - extract(month FROM a.cohort))::int AS months_since,
       count(*) FILTER (WHERE m.orders > 0) AS active,
       coalesce(sum(m.revenue), 0)::float8 AS revenue
FROM acquired a JOIN monthly m USING (customer_id)
WHERE m.month >= a.cohort AND m.month <= $1
GROUP BY 1, 2 ORDER BY 1, 2
"""


async def cohort_table(conn: asyncpg.Connection, today: date) -> dict:
    """{"cohorts": [{"month", "customers", "revenue", "months": [{"months_since",
    "active", "share", "revenue"}]}]}: every month since acquisition up to `today`'s,
    months with no buyer included (their share is 0)."""
    cells: dict[date, dict[int, tuple[int, float]]] = {}
    for row in await conn.fetch(_COHORTS, today):
        cells.setdefault(row["cohort"], {})[row["months_since"]] = (row["active"], row["revenue"])
    cohorts = []
    for month, by_since in sorted(cells.items()):
        size = by_since[0][0]
        span = (today.year - month.year) * 12 + today.month - month.month
        months = []
        for since in range(span + 1):
            active, revenue = by_since.get(since, (0, 0.0))
            months.append(
                {
                    "months_since": since,
                    "active": active,
                    "share": active / size,
                    "revenue": revenue,
                }
            )
        cohorts.append(
            {
                "month": month.strftime("%Y-%m"),
                "customers": size,
                "revenue": sum(cell["revenue"] for cell in months),
                "months": months,
            }
        )
    return {"cohorts": cohorts}
