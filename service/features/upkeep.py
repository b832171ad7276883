"""Online upkeep of the derived tables: what each newly stored event adds to its
customer's orders, daily buckets (and their running totals), first/last seen and stated
facts.

Runs inside the transaction that stores the events (so a read after the write sees
them); `recompute.py` rebuilds the same tables from the event log with set-based SQL
built from the same definitions, and must give exactly what this maintained.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import asyncpg

from service.features.definitions import (
    BUCKET_COLUMNS,
    ENGAGEMENT_COUNTERS,
    MONEY_BUCKET_COLUMNS,
    cumulative,
    order_counted_sql,
    order_net_sql,
)


class EventFields(Protocol):
    @property
    def customer_id(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def order_id(self) -> str | None: ...
    @property
    def amount(self) -> Decimal | None: ...
    @property
    def properties(self) -> dict[str, Any]: ...


class StoredEvent(Protocol):
    """A validated event just stored, with the calendar day of its bucket."""

    @property
    def event(self) -> EventFields: ...
    @property
    def day(self) -> date: ...


FACT_TYPES = ("consent_updated", "survey_response", "identify")


def facts_of(event_type: str, properties: dict[str, Any]) -> list[tuple[str, Any]]:
    """Stated facts whose latest value is a feature or profile field."""
    if event_type == "consent_updated":
        return [(f"consent:{properties['channel']}", properties["granted"])]
    if event_type == "survey_response" and properties.get("csat") is not None:
        return [("csat", properties["csat"])]
    if event_type == "identify":
        return [("traits", properties["traits"])]
    return []


_COMPLETED_ORDERS = """
SELECT o.customer_id, o.order_id, o.amount
FROM orders o JOIN unnest($1::text[], $2::text[]) AS k(customer_id, order_id)
  USING (customer_id, order_id)
WHERE o.amount IS NOT NULL
"""
_COMPLETE_ORDERS = f"""
INSERT INTO orders AS o (customer_id, order_id, amount, occurred_at, day, event_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::timestamptz[], $5::date[],
                     $6::text[])
ON CONFLICT (customer_id, order_id) DO UPDATE
SET amount = EXCLUDED.amount, occurred_at = EXCLUDED.occurred_at, day = EXCLUDED.day,
    event_id = EXCLUDED.event_id
RETURNING o.customer_id, o.day,
    {order_counted_sql("o.amount", "o.refunded")}::int AS orders,
    {order_net_sql("o.amount", "o.refunded")} AS revenue
"""
# Refunds add to the order's refunded sum; the bucket delta is new minus old
# contribution, which also holds refunds for orders that have not arrived (no day yet).
_APPLY_REFUNDS = f"""
WITH refund AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[]) AS r(customer_id, order_id, amount)
), updated AS (
  INSERT INTO orders AS o (customer_id, order_id, refunded)
  SELECT customer_id, order_id, amount FROM refund
  ON CONFLICT (customer_id, order_id) DO UPDATE SET refunded = o.refunded + EXCLUDED.refunded
  RETURNING o.customer_id, o.order_id, o.day, o.amount, o.refunded
)
SELECT u.customer_id, u.day,
  {order_counted_sql("u.amount", "u.refunded")}::int
    - {order_counted_sql("u.amount", "u.refunded - r.amount")}::int AS orders,
  {order_net_sql("u.amount", "u.refunded")}
    - {order_net_sql("u.amount", "u.refunded - r.amount")} AS revenue
FROM updated u JOIN refund r USING (customer_id, order_id)
WHERE u.day IS NOT NULL
"""
_BUCKET_TYPES = ", ".join(
    f"${i + 3}::{'numeric' if c in MONEY_BUCKET_COLUMNS else 'int'}[]"
    for i, c in enumerate(BUCKET_COLUMNS)
)
_ADD_TO_BUCKETS = f"""
INSERT INTO customer_daily AS b (customer_id, day, {", ".join(BUCKET_COLUMNS)})
SELECT * FROM unnest($1::text[], $2::date[], {_BUCKET_TYPES})
ON CONFLICT (customer_id, day) DO UPDATE SET
{", ".join(f"{c} = b.{c} + EXCLUDED.{c}" for c in BUCKET_COLUMNS)}
"""
_TOTALS = ", ".join(cumulative(c) for c in BUCKET_COLUMNS)
_RUNNING = ", ".join(
    f"coalesce(p.{cumulative(c)}, 0) + sum(x.{c}) OVER (ORDER BY x.day) AS {cumulative(c)}"
    for c in BUCKET_COLUMNS
)
# The running totals of each customer ($1) from a day ($2) on: the totals of the row before
# that day plus a running sum over the rows from it. Every step is an index probe or range
# of one customer's rows, and the rows are written back as an upsert (they all exist) that
# finds each through the primary key: no plan can turn into a scan of the whole table, as
# a join did while a bulk import had left the statistics far behind.
_CARRY_TOTALS = f"""
INSERT INTO customer_daily AS b (customer_id, day, {_TOTALS})
SELECT s.customer_id, r.*
FROM unnest($1::text[], $2::date[]) AS s(customer_id, day)
LEFT JOIN LATERAL (
  SELECT {_TOTALS} FROM customer_daily x
  WHERE x.customer_id = s.customer_id AND x.day < s.day ORDER BY x.day DESC LIMIT 1
) p ON true
CROSS JOIN LATERAL (
  SELECT x.day, {_RUNNING} FROM customer_daily x
  WHERE x.customer_id = s.customer_id AND x.day >= s.day
) r
ON CONFLICT (customer_id, day) DO UPDATE SET
{", ".join(f"{cumulative(c)} = EXCLUDED.{cumulative(c)}" for c in BUCKET_COLUMNS)}
"""
# New sightings widen a known customer's span (also recompute's, onto rows it keeps).
SEE_CUSTOMERS_MERGE = """
ON CONFLICT (customer_id) DO UPDATE SET
  first_seen_day = CASE WHEN EXCLUDED.first_seen_at < c.first_seen_at
                        THEN EXCLUDED.first_seen_day ELSE c.first_seen_day END,
  first_seen_at = LEAST(c.first_seen_at, EXCLUDED.first_seen_at),
  last_seen_at = GREATEST(c.last_seen_at, EXCLUDED.last_seen_at)
"""
_SEE_CUSTOMERS = f"""
INSERT INTO customers AS c (customer_id, first_seen_at, first_seen_day, last_seen_at)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::date[], $4::timestamptz[])
{SEE_CUSTOMERS_MERGE}
"""
# The first acceptance of a decision wins (by `occurred_at`): the decision keeps it after
# the event itself is purged.
_ACCEPT_DECISIONS = """
UPDATE offer_decisions d SET accepted_at = LEAST(d.accepted_at, a.accepted_at)
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS a(customer_id, decision_id, accepted_at)
WHERE d.customer_id = a.customer_id AND d.decision_id = a.decision_id
"""
ADD_FACTS = """
INSERT INTO customer_facts (customer_id, kind, occurred_at, event_id, day, value, source)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::date[],
                     $6::jsonb[], $7::text[])
ON CONFLICT DO NOTHING
"""


_MARK_FOR_RESCORING = "INSERT INTO score_outbox (customer_id) SELECT unnest($1::text[])"


async def mark_for_rescoring(conn: asyncpg.Connection, customer_ids: Sequence[str]) -> None:
    """Queue customers whose derived rows just changed for the scoring loop (the outbox),
    in the caller's transaction: their stored scores are stale from its commit on."""
    await conn.execute(_MARK_FOR_RESCORING, sorted(set(customer_ids)))


async def completed_order_amounts(
    conn: asyncpg.Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Decimal]:
    """The amount of each (customer_id, order_id) already completed, for dedupe."""
    if not keys:
        return {}
    rows = await conn.fetch(_COMPLETED_ORDERS, [k[0] for k in keys], [k[1] for k in keys])
    return {(row["customer_id"], row["order_id"]): row["amount"] for row in rows}


async def apply(conn: asyncpg.Connection, fresh: Sequence[StoredEvent], source: str) -> None:
    """Add newly stored events (from `source`) to orders, buckets, customers and facts."""
    buckets = _engagement_buckets(fresh)
    await _apply_orders(conn, fresh, buckets)
    await _write_buckets(conn, buckets)
    await _see_customers(conn, fresh)
    await _add_facts(conn, fresh, source)
    await _accept_decisions(conn, fresh)


Buckets = dict[tuple[str, Any], list]


def _empty_bucket() -> list:
    return [0] * (len(BUCKET_COLUMNS) - 1) + [Decimal(0)]


_COLUMN_INDEX = {name: i for i, name in enumerate(BUCKET_COLUMNS)}


def _engagement_buckets(staged: Sequence[StoredEvent]) -> Buckets:
    buckets: Buckets = defaultdict(_empty_bucket)
    for item in staged:
        column = ENGAGEMENT_COUNTERS.get(item.event.type)
        if column is not None:
            buckets[(item.event.customer_id, item.day)][_COLUMN_INDEX[column]] += 1
    return buckets


async def _apply_orders(conn: asyncpg.Connection, staged: Sequence[StoredEvent], buckets: Buckets):
    completions = [s for s in staged if s.event.type == "order_completed"]
    if completions:
        rows = await conn.fetch(
            _COMPLETE_ORDERS,
            [s.event.customer_id for s in completions],
            [s.event.order_id for s in completions],
            [s.event.amount for s in completions],
            [s.event.occurred_at for s in completions],
            [s.day for s in completions],
            [s.event.event_id for s in completions],
        )
        _add_order_deltas(rows, buckets)
    refunds: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for item in staged:
        if item.event.type == "order_refunded":
            refunds[(item.event.customer_id, item.event.order_id)] += item.event.amount
    if refunds:
        keys = sorted(refunds)
        rows = await conn.fetch(
            _APPLY_REFUNDS, [k[0] for k in keys], [k[1] for k in keys], [refunds[k] for k in keys]
        )
        _add_order_deltas(rows, buckets)


def _add_order_deltas(rows: list[asyncpg.Record], buckets: Buckets) -> None:
    orders, revenue = _COLUMN_INDEX["orders"], _COLUMN_INDEX["revenue"]
    # A completed order's day always gets a bucket row, even when held refunds
    # cancel it, so the set of rows is the one `recompute` derives from events.
    for row in rows:
        bucket = buckets[(row["customer_id"], row["day"])]
        bucket[orders] += row["orders"]
        bucket[revenue] += row["revenue"]


async def _write_buckets(conn: asyncpg.Connection, buckets: Buckets) -> None:
    if not buckets:
        return
    keys = sorted(buckets)
    columns = [[buckets[k][i] for k in keys] for i in range(len(BUCKET_COLUMNS))]
    await conn.execute(_ADD_TO_BUCKETS, [k[0] for k in keys], [k[1] for k in keys], *columns)
    # Today's events move today's row only; a late event, or a refund restating an old
    # order's day, moves every later row of that customer too.
    earliest: dict[str, date] = {}
    for customer_id, day in keys:
        earliest.setdefault(customer_id, day)
    await conn.execute(_CARRY_TOTALS, list(earliest), list(earliest.values()))


async def _see_customers(conn: asyncpg.Connection, staged: Sequence[StoredEvent]) -> None:
    span: dict[str, list] = {}
    for item in staged:
        when = item.event.occurred_at
        seen = span.get(item.event.customer_id)
        if seen is None:
            span[item.event.customer_id] = [when, item.day, when]
        else:
            if when < seen[0]:
                seen[0], seen[1] = when, item.day
            seen[2] = max(seen[2], when)
    ids = sorted(span)
    await conn.execute(
        _SEE_CUSTOMERS,
        ids,
        [span[i][0] for i in ids],
        [span[i][1] for i in ids],
        [span[i][2] for i in ids],
    )


async def _add_facts(conn: asyncpg.Connection, staged: Sequence[StoredEvent], source: str) -> None:
    rows = [
        (s.event.customer_id, kind, s.event.occurred_at, s.event.event_id, s.day, value, source)
        for s in staged
        for kind, value in facts_of(s.event.type, s.event.properties)
    ]
    if rows:
        columns = [list(column) for column in zip(*rows, strict=True)]
        columns[5] = [json.dumps(value) for value in columns[5]]
        await conn.execute(ADD_FACTS, *columns)


async def _accept_decisions(conn: asyncpg.Connection, staged: Sequence[StoredEvent]) -> None:
    # One row per decision: an UPDATE ... FROM with two matches applies only one of them.
    first: dict[tuple[str, str], datetime] = {}
    for item in staged:
        if item.event.type == "offer_accepted":
            key = (item.event.customer_id, item.event.properties["decision_id"])
            first[key] = min(first.get(key, item.event.occurred_at), item.event.occurred_at)
    if first:
        keys = sorted(first)
        await conn.execute(
            _ACCEPT_DECISIONS, [k[0] for k in keys], [k[1] for k in keys], [first[k] for k in keys]
        )
