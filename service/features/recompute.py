"""`scorer features recompute`: rebuild orders, facts, customers and buckets (with their
running totals) from events.

It derives everything from the append-only event log with set-based SQL generated
from the same definitions as the online path, so it must reproduce exactly what
ingestion maintained (the property tests compare the two). Once raw events have been
purged (`service.features.retention`), rows of days before the horizon are their only
record: they are kept as stored, the later ones derived again, and the running totals
summed over both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg

from service.features.definitions import (
    BUCKET_COLUMNS,
    ENGAGEMENT_COUNTERS,
    cumulative,
    order_counted_sql,
    order_net_sql,
)
from service.features.retention import hold_horizon
from service.features.upkeep import (
    ADD_FACTS,
    FACT_TYPES,
    SEE_CUSTOMERS_MERGE,
    facts_of,
    mark_for_rescoring,
)

DERIVED_TABLES = ("customer_daily", "orders", "customer_facts", "customers")

# What a rebuild deletes and derives again, given the retention horizon $2 (the earliest
# date when none): rows of earlier days rest on purged events and are kept as stored.
_REBUILT_ROWS = {
    "customer_daily": "day >= $2",
    "orders": "day IS NULL OR day >= $2",
    "customer_facts": "day >= $2",
    "customers": "first_seen_day >= $2",
}

# Orders kept as stored (day before the horizon) already hold every refund applied to them,
# so their events, refunds of later days included, are not applied again.
_REBUILD_ORDERS = """
INSERT INTO orders (customer_id, order_id, amount, occurred_at, day, event_id, refunded)
SELECT customer_id, order_id,
  max(amount) FILTER (WHERE type = 'order_completed'),
  max(occurred_at) FILTER (WHERE type = 'order_completed'),
  max(day) FILTER (WHERE type = 'order_completed'),
  max(event_id) FILTER (WHERE type = 'order_completed'),
  coalesce(sum(amount) FILTER (WHERE type = 'order_refunded'), 0)
FROM events e
WHERE customer_id = ANY($1::text[]) AND type IN ('order_completed', 'order_refunded')
  AND NOT EXISTS (SELECT 1 FROM orders o
                  WHERE o.customer_id = e.customer_id AND o.order_id = e.order_id)
GROUP BY customer_id, order_id
"""


def _engagement_select() -> str:
    counters = [
        f"count(*) FILTER (WHERE type = '{event_type}') AS {column}"
        for event_type, column in ENGAGEMENT_COUNTERS.items()
    ]
    by_column = {
        column: expr for expr, column in zip(counters, ENGAGEMENT_COUNTERS.values(), strict=True)
    }
    values = [by_column.get(c, f"0 AS {c}") for c in BUCKET_COLUMNS]
    types = ", ".join(f"'{t}'" for t in ENGAGEMENT_COUNTERS)
    return (
        f"SELECT customer_id, day, {', '.join(values)} FROM events "
        f"WHERE customer_id = ANY($1::text[]) AND type IN ({types}) AND day >= $2 "
        "GROUP BY customer_id, day"
    )


def _orders_select() -> str:
    values = {
        "orders": f"{order_counted_sql('amount', 'refunded')}::int",
        "revenue": order_net_sql("amount", "refunded"),
    }
    columns = ", ".join(f"{values.get(c, '0')} AS {c}" for c in BUCKET_COLUMNS)
    return (
        f"SELECT customer_id, day, {columns} FROM orders "
        "WHERE customer_id = ANY($1::text[]) AND day >= $2"
    )


_KEPT_BUCKETS = (
    f"SELECT customer_id, day, {', '.join(BUCKET_COLUMNS)} FROM customer_daily "
    "WHERE customer_id = ANY($1::text[]) AND day < $2"
)

# The days from the horizon on are derived again; the running totals run over every row of
# the customer, the kept ones (which only get their totals written) included.
_REBUILD_BUCKETS = f"""
INSERT INTO customer_daily (customer_id, day, {", ".join(BUCKET_COLUMNS)},
  {", ".join(cumulative(c) for c in BUCKET_COLUMNS)})
SELECT customer_id, day, {", ".join(f"sum({c})" for c in BUCKET_COLUMNS)},
  {", ".join(f"sum(sum({c})) OVER running" for c in BUCKET_COLUMNS)}
FROM ({_engagement_select()} UNION ALL {_orders_select()} UNION ALL {_KEPT_BUCKETS}) parts
GROUP BY customer_id, day
WINDOW running AS (PARTITION BY customer_id ORDER BY day)
ON CONFLICT (customer_id, day) DO UPDATE SET
{", ".join(f"{cumulative(c)} = EXCLUDED.{cumulative(c)}" for c in BUCKET_COLUMNS)}
"""

_REBUILD_CUSTOMERS = f"""
INSERT INTO customers AS c (customer_id, first_seen_at, first_seen_day, last_seen_at)
SELECT customer_id, min(occurred_at), (array_agg(day ORDER BY occurred_at))[1], max(occurred_at)
FROM events WHERE customer_id = ANY($1::text[]) GROUP BY customer_id
{SEE_CUSTOMERS_MERGE}
"""

_FACT_EVENTS = """
SELECT customer_id, event_id, type, occurred_at, day, properties::text AS properties, source
FROM events WHERE customer_id = ANY($1::text[]) AND type = ANY($2::text[])
"""

# Each decision's first acceptance among the events; once events were purged ($2), one
# recorded before is kept (its event may be gone), unless a kept event is earlier.
_REBUILD_ACCEPTANCE = """
WITH accepted AS (
  SELECT customer_id, properties->>'decision_id' AS decision_id, min(occurred_at) AS accepted_at
  FROM events WHERE customer_id = ANY($1::text[]) AND type = 'offer_accepted' GROUP BY 1, 2
), rebuilt AS (
  SELECT d.customer_id, d.decision_id,
    LEAST(a.accepted_at, CASE WHEN $2::bool THEN d.accepted_at END) AS accepted_at
  FROM offer_decisions d LEFT JOIN accepted a USING (customer_id, decision_id)
  WHERE d.customer_id = ANY($1::text[])
)
UPDATE offer_decisions d SET accepted_at = r.accepted_at FROM rebuilt r
WHERE d.customer_id = r.customer_id AND d.decision_id = r.decision_id
  AND d.accepted_at IS DISTINCT FROM r.accepted_at
"""


async def recompute_customers(conn: asyncpg.Connection, customer_ids: Sequence[str]) -> date | None:
    """Rebuild these customers' derived rows in one transaction; the retention horizon it
    kept the rows before (None: everything was rebuilt from events)."""
    ids = list(customer_ids)
    async with conn.transaction():
        # Held to the commit: the purge cannot move the horizon under the rebuild.
        horizon = await hold_horizon(conn)
        since = date.min if horizon is None else horizon.purged_before
        for table in DERIVED_TABLES:
            await conn.execute(
                f"DELETE FROM {table} WHERE customer_id = ANY($1::text[]) "
                f"AND ({_REBUILT_ROWS[table]})",
                ids,
                since,
            )
        await conn.execute(_REBUILD_ORDERS, ids)
        await conn.execute(_REBUILD_BUCKETS, ids, since)
        await conn.execute(_REBUILD_CUSTOMERS, ids)
        await _rebuild_facts(conn, ids)
        await conn.execute(_REBUILD_ACCEPTANCE, ids, horizon is not None)
        # The stored scores were computed from the rows just rebuilt (reads compute until
        # the scoring loop has rescored these customers).
        await mark_for_rescoring(conn, ids)
    return None if horizon is None else horizon.purged_before


async def _rebuild_facts(conn: asyncpg.Connection, ids: list[str]) -> None:
    """Facts of every stored statement; those kept from before the horizon stay as they are."""
    facts = []
    for row in await conn.fetch(_FACT_EVENTS, ids, list(FACT_TYPES)):
        for kind, value in facts_of(row["type"], json.loads(row["properties"])):
            facts.append(
                (
                    row["customer_id"],
                    kind,
                    row["occurred_at"],
                    row["event_id"],
                    row["day"],
                    json.dumps(value),
                    row["source"],
                )
            )
    if facts:
        await conn.execute(ADD_FACTS, *(list(column) for column in zip(*facts, strict=True)))


async def analyze(conn: asyncpg.Connection, tables: Sequence[str]) -> None:
    """Fresh planner statistics after a bulk write: autovacuum may be off or behind, and
    without statistics the planner misjudges every feature read (JIT on point reads)."""
    await conn.execute(f"ANALYZE {', '.join(tables)}")


async def _customers_with_events(conn: asyncpg.Connection, customer_id: str | None) -> list[str]:
    if customer_id is None:
        rows = await conn.fetch("SELECT DISTINCT customer_id FROM events ORDER BY 1")
        return [row["customer_id"] for row in rows]
    found = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM events WHERE customer_id = $1)", customer_id
    )
    return [customer_id] if found else []


@dataclass(frozen=True)
class Recomputed:
    customers: int  # customers that had events to rebuild from
    horizon: date | None  # rows before it were kept as stored (their events were purged)


async def recompute(
    conn: asyncpg.Connection,
    customer_id: str | None = None,
    chunk_size: int = 2000,
    progress: Callable[[int], None] = lambda done: None,
) -> Recomputed:
    """Rebuild one customer, or every customer in the event log chunk by chunk (then the
    tables are analysed)."""
    ids = await _customers_with_events(conn, customer_id)
    horizon = None
    for start in range(0, len(ids), chunk_size):
        chunk = ids[start : start + chunk_size]
        horizon = await recompute_customers(conn, chunk)
        progress(len(chunk))
    if customer_id is None:
        await analyze(conn, DERIVED_TABLES)
    return Recomputed(len(ids), horizon)
