"""The one write path: validated events become stored events, orders, facts and buckets.

The API and `scorer import` both call `store_events`, so they validate and
dedupe identically. Everything happens in one transaction, so a read after a
200 sees the event's features (read-your-writes).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg

from service.events.fingerprint import canonical_amount
from service.events.schemas import Rejection
from service.events.validation import StagedEvent
from service.features.definitions import (
    BUCKET_COLUMNS,
    ENGAGEMENT_COUNTERS,
    MONEY_BUCKET_COLUMNS,
    order_counted_sql,
    order_net_sql,
)

EVENT_COLUMNS = (
    "customer_id",
    "event_id",
    "type",
    "occurred_at",
    "day",
    "order_id",
    "amount",
    "properties",
    "fingerprint",
)


@dataclass
class IngestOutcome:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def reject(self, staged: StagedEvent, error: str) -> None:
        self.rejected.append(
            Rejection(index=staged.index, event_id=staged.event.event_id, error=error)
        )


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


_LOCK_CUSTOMERS = """
SELECT pg_advisory_xact_lock(key)
FROM (SELECT DISTINCT hashtextextended(id, 0) AS key FROM unnest($1::text[]) AS id ORDER BY 1) k
"""
_EXISTING_EVENTS = "SELECT event_id, fingerprint FROM events WHERE event_id = ANY($1::text[])"
_EXISTING_ORDERS = """
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
_SEE_CUSTOMERS = """
INSERT INTO customers AS c (customer_id, first_seen_at, first_seen_day, last_seen_at)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::date[], $4::timestamptz[])
ON CONFLICT (customer_id) DO UPDATE SET
  first_seen_day = CASE WHEN EXCLUDED.first_seen_at < c.first_seen_at
                        THEN EXCLUDED.first_seen_day ELSE c.first_seen_day END,
  first_seen_at = LEAST(c.first_seen_at, EXCLUDED.first_seen_at),
  last_seen_at = GREATEST(c.last_seen_at, EXCLUDED.last_seen_at)
"""
ADD_FACTS = """
INSERT INTO customer_facts (customer_id, kind, occurred_at, event_id, day, value)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::date[],
                     $6::jsonb[])
ON CONFLICT DO NOTHING
"""


async def store_events(conn: asyncpg.Connection, staged: list[StagedEvent]) -> IngestOutcome:
    """Store what is new, count duplicates, reject conflicts; retried on a rare id race."""
    for attempt in range(3):
        try:
            async with conn.transaction():
                return await _store(conn, staged)
        except asyncpg.UniqueViolationError:
            # Another transaction stored the same event_id for another customer
            # between our check and our COPY; the next attempt sees it.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _store(conn: asyncpg.Connection, staged: list[StagedEvent]) -> IngestOutcome:
    outcome = IngestOutcome()
    await conn.execute(_LOCK_CUSTOMERS, sorted({s.event.customer_id for s in staged}))
    fresh = _admit_in_order(
        staged,
        await _stored_fingerprints(conn, staged),
        await _completed_order_amounts(conn, staged),
        outcome,
    )
    if not fresh:
        return outcome
    await conn.copy_records_to_table(
        "events", records=map(_event_record, fresh), columns=EVENT_COLUMNS
    )
    outcome.accepted = len(fresh)
    buckets = _engagement_buckets(fresh)
    await _apply_orders(conn, fresh, buckets)
    await _write_buckets(conn, buckets)
    await _see_customers(conn, fresh)
    await _add_facts(conn, fresh)
    return outcome


async def _stored_fingerprints(
    conn: asyncpg.Connection, staged: list[StagedEvent]
) -> dict[str, bytes]:
    rows = await conn.fetch(_EXISTING_EVENTS, [s.event.event_id for s in staged])
    return {row["event_id"]: row["fingerprint"] for row in rows}


async def _completed_order_amounts(
    conn: asyncpg.Connection, staged: list[StagedEvent]
) -> dict[tuple[str, str], Decimal]:
    keys = [
        (s.event.customer_id, s.event.order_id) for s in staged if s.event.type == "order_completed"
    ]
    if not keys:
        return {}
    rows = await conn.fetch(_EXISTING_ORDERS, [k[0] for k in keys], [k[1] for k in keys])
    return {(row["customer_id"], row["order_id"]): row["amount"] for row in rows}


def _admit_in_order(
    staged: list[StagedEvent],
    fingerprints: dict[str, bytes],
    order_amounts: dict[tuple[str, str], Decimal],
    outcome: IngestOutcome,
) -> list[StagedEvent]:
    """Decide each event as if the batch had been sent one event at a time.

    Same event_id: same content is a duplicate, other content a conflict. An order
    counts once per (customer_id, order_id), whatever its event_id: the same amount
    again is a duplicate (not stored), another amount is rejected.
    """
    admitted = []
    for item in staged:
        event = item.event
        known = fingerprints.get(event.event_id)
        if known is not None:
            if known == item.fingerprint:
                outcome.duplicates += 1
            else:
                outcome.reject(item, "event_id: already used with different content (conflict)")
            continue
        if event.type == "order_completed":
            key = (event.customer_id, event.order_id)
            amount = order_amounts.get(key)
            if amount == event.amount:
                outcome.duplicates += 1
                continue
            if amount is not None:
                outcome.reject(
                    item,
                    f"order_id: order {key[1]} already recorded with amount "
                    f"{canonical_amount(amount)}",
                )
                continue
            order_amounts[key] = event.amount
        fingerprints[event.event_id] = item.fingerprint
        admitted.append(item)
    return admitted


def _event_record(item: StagedEvent) -> tuple:
    event = item.event
    return (
        event.customer_id,
        event.event_id,
        event.type,
        event.occurred_at,
        item.day,
        event.order_id,
        event.amount,
        item.properties_json,
        item.fingerprint,
    )


Buckets = dict[tuple[str, Any], list]


def _empty_bucket() -> list:
    return [0] * (len(BUCKET_COLUMNS) - 1) + [Decimal(0)]


_COLUMN_INDEX = {name: i for i, name in enumerate(BUCKET_COLUMNS)}


def _engagement_buckets(staged: list[StagedEvent]) -> Buckets:
    buckets: Buckets = defaultdict(_empty_bucket)
    for item in staged:
        column = ENGAGEMENT_COUNTERS.get(item.event.type)
        if column is not None:
            buckets[(item.event.customer_id, item.day)][_COLUMN_INDEX[column]] += 1
    return buckets


async def _apply_orders(conn: asyncpg.Connection, staged: list[StagedEvent], buckets: Buckets):
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


async def _see_customers(conn: asyncpg.Connection, staged: list[StagedEvent]) -> None:
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


async def _add_facts(conn: asyncpg.Connection, staged: list[StagedEvent]) -> None:
    rows = [
        (s.event.customer_id, kind, s.event.occurred_at, s.event.event_id, s.day, value)
        for s in staged
        for kind, value in facts_of(s.event.type, s.event.properties)
    ]
    if rows:
        columns = [list(column) for column in zip(*rows, strict=True)]
        columns[-1] = [json.dumps(value) for value in columns[-1]]
        await conn.execute(ADD_FACTS, *columns)
