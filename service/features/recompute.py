"""`scorer features recompute`: rebuild orders, facts, customers and buckets (with their
running totals) from events.

It derives everything from the append-only event log with set-based SQL generated
from the same definitions as the online path, so it must reproduce exactly what
ingestion maintained (the property tests compare the two).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import asyncpg

from service.features.definitions import (
    BUCKET_COLUMNS,
    ENGAGEMENT_COUNTERS,
    cumulative,
    order_counted_sql,
    order_net_sql,
)
from service.features.upkeep import ADD_FACTS, FACT_TYPES, facts_of, mark_for_rescoring

DERIVED_TABLES = ("customer_daily", "orders", "customer_facts", "customers")

_REBUILD_ORDERS = """
INSERT INTO orders (customer_id, order_id, amount, occurred_at, day, event_id, refunded)
SELECT customer_id, order_id,
  max(amount) FILTER (WHERE type = 'order_completed'),
  max(occurred_at) FILTER (WHERE type = 'order_completed'),
  max(day) FILTER (WHERE type = 'order_completed'),
  max(event_id) FILTER (WHERE type = 'order_completed'),
  coalesce(sum(amount) FILTER (WHERE type = 'order_refunded'), 0)
FROM events
WHERE customer_id = ANY($1::text[]) AND type IN ('order_completed', 'order_refunded')
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
        f"WHERE customer_id = ANY($1::text[]) AND type IN ({types}) GROUP BY customer_id, day"
    )


def _orders_select() -> str:
    values = {
        "orders": f"{order_counted_sql('amount', 'refunded')}::int",
        "revenue": order_net_sql("amount", "refunded"),
    }
    columns = ", ".join(f"{values.get(c, '0')} AS {c}" for c in BUCKET_COLUMNS)
    return (
        f"SELECT customer_id, day, {columns} FROM orders "
        "WHERE customer_id = ANY($1::text[]) AND day IS NOT NULL"
    )


_REBUILD_BUCKETS = f"""
INSERT INTO customer_daily (customer_id, day, {", ".join(BUCKET_COLUMNS)},
  {", ".join(cumulative(c) for c in BUCKET_COLUMNS)})
SELECT customer_id, day, {", ".join(f"sum({c})" for c in BUCKET_COLUMNS)},
  {", ".join(f"sum(sum({c})) OVER running" for c in BUCKET_COLUMNS)}
FROM ({_engagement_select()} UNION ALL {_orders_select()}) parts
GROUP BY customer_id, day
WINDOW running AS (PARTITION BY customer_id ORDER BY day)
"""

_REBUILD_CUSTOMERS = """
INSERT INTO customers (customer_id, first_seen_at, first_seen_day, last_seen_at)
SELECT customer_id, min(occurred_at), (array_agg(day ORDER BY occurred_at))[1], max(occurred_at)
FROM events WHERE customer_id = ANY($1::text[]) GROUP BY customer_id
"""

_FACT_EVENTS = """
SELECT customer_id, event_id, type, occurred_at, day, properties::text AS properties, source
FROM events WHERE customer_id = ANY($1::text[]) AND type = ANY($2::text[])
"""


async def recompute_customers(conn: asyncpg.Connection, customer_ids: Sequence[str]) -> None:
    ids = list(customer_ids)
    async with conn.transaction():
        for table in DERIVED_TABLES:
            await conn.execute(f"DELETE FROM {table} WHERE customer_id = ANY($1::text[])", ids)
        await conn.execute(_REBUILD_ORDERS, ids)
        await conn.execute(_REBUILD_BUCKETS, ids)
        await conn.execute(_REBUILD_CUSTOMERS, ids)
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
        # The stored scores were computed from the rows just rebuilt (reads compute until
        # the scoring loop has rescored these customers).
        await mark_for_rescoring(conn, ids)


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


async def recompute(
    conn: asyncpg.Connection,
    customer_id: str | None = None,
    chunk_size: int = 2000,
    progress: Callable[[int], None] = lambda done: None,
) -> int:
    """Rebuild one customer, or every customer in the event log chunk by chunk (then the
    tables are analysed); returns how many customers had events to rebuild from."""
    ids = await _customers_with_events(conn, customer_id)
    for start in range(0, len(ids), chunk_size):
        chunk = ids[start : start + chunk_size]
        await recompute_customers(conn, chunk)
        progress(len(chunk))
    if customer_id is None:
        await analyze(conn, DERIVED_TABLES)
    return len(ids)
