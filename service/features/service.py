"""Point-in-time feature vectors, for one customer (API) or many (training, checks).

`read_features` runs one SQL statement generated from `definitions`, so online
reads and offline builds share the exact same feature logic.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.features.definitions import (
    FEATURE_FIELDS,
    WINDOW_FEATURES,
    WindowFeature,
    order_counted_sql,
)
from service.vocabulary import CONSENT_CHANNELS


def _window_sum(feature: WindowFeature) -> str:
    window = "" if feature.days is None else f" FILTER (WHERE day > $2::date - {feature.days})"
    total = f"sum({feature.column}){window}"
    return f"{_cents(total) if feature.is_money else total} AS {feature.name}"


def _cents(numeric_sql: str) -> str:
    """Money rounded to cents, half away from zero, as a float: PostgreSQL rounds the exact
    numeric (as Decimal ROUND_HALF_UP would) and the driver decodes a double, not a Decimal."""
    return f"round({numeric_sql}, 2)::float8"


def _fact(kind: str, sql_type: str) -> str:
    return f"(f.facts->>'{kind}')::{sql_type}"


def _features_sql(match: str) -> str:
    """The feature statement for the customers matched by `match` (a condition on
    `customer_id` and $1), up to and including day $2."""
    return f"""
WITH buckets AS (
  SELECT customer_id, {", ".join(_window_sum(f) for f in WINDOW_FEATURES)},
    {_cents("sum(revenue) / NULLIF(sum(orders), 0)")} AS aov
  FROM customer_daily
  WHERE {match} AND day <= $2::date
  GROUP BY customer_id
), counted_orders AS (
  SELECT customer_id, min(occurred_at) AS first_order_at, max(occurred_at) AS last_order_at,
         min(day) AS first_order_day, max(day) AS last_order_day
  FROM orders
  WHERE {match} AND day <= $2::date
    AND {order_counted_sql("amount", "refunded")}
  GROUP BY customer_id
), latest_facts AS (
  SELECT customer_id, jsonb_object_agg(kind, value) AS facts
  FROM (
    SELECT DISTINCT ON (customer_id, kind) customer_id, kind, value
    FROM customer_facts
    WHERE {match} AND day <= $2::date AND kind <> 'traits'
    ORDER BY customer_id, kind, occurred_at DESC, event_id DESC
  ) latest
  GROUP BY customer_id
)
SELECT c.customer_id, c.first_seen_at, c.first_seen_day,
  {", ".join(f"b.{f.name}" for f in WINDOW_FEATURES)}, b.aov,
  o.first_order_at, o.last_order_at, o.first_order_day, o.last_order_day,
  {_fact("csat", "int")} AS last_csat,
  {", ".join(f"{_fact(f'consent:{c}', 'boolean')} AS consent_{c}" for c in CONSENT_CHANNELS)}
FROM customers c
LEFT JOIN buckets b USING (customer_id)
LEFT JOIN counted_orders o USING (customer_id)
LEFT JOIN latest_facts f USING (customer_id)
WHERE c.{match} AND c.first_seen_day <= $2::date
"""


# Many customers (training, batch scoring) or one (the API): the same statement with an
# equality instead of an array match, which lets PostgreSQL skip hashing (2x faster).
FEATURES_SQL = _features_sql("customer_id = ANY($1::text[])")
FEATURES_SQL_ONE = _features_sql("customer_id = $1")


# Fields the statement returns as they are, with the value of "nothing yet" (windows sum
# to 0 without rows); the others are derived below.
_DERIVED = frozenset({"recency_days", "tenure_days", "avg_days_between_orders", "consent"})
_PASSED = tuple(
    (feature.name, 0.0 if feature.kind == "money" else 0 if feature.kind == "count" else None)
    for feature in FEATURE_FIELDS
    if feature.name not in _DERIVED
)


def derive_features(row: asyncpg.Record | dict, as_of: datetime, as_of_day: date) -> dict:
    """The feature row (the fields of `Features`; the schema orders them) from one row of
    FEATURES_SQL."""
    features: dict[str, Any] = {"customer_id": row["customer_id"], "as_of": as_of}
    for name, nothing in _PASSED:
        value = row[name]
        features[name] = nothing if value is None else value
    last_day, first_day = row["last_order_day"], row["first_order_day"]
    orders_total = features["orders_total"]
    features["recency_days"] = None if last_day is None else (as_of_day - last_day).days
    features["tenure_days"] = (as_of_day - row["first_seen_day"]).days
    features["avg_days_between_orders"] = (
        (last_day - first_day).days / (orders_total - 1) if orders_total >= 2 else None
    )
    features["consent"] = {channel: row[f"consent_{channel}"] for channel in CONSENT_CHANNELS}
    return features


async def read_features(
    conn: asyncpg.Connection, customer_ids: Sequence[str], as_of: datetime, as_of_day: date
) -> dict[str, dict]:
    """Feature vectors keyed by customer; customers unknown as of that day are absent."""
    if len(customer_ids) == 1:
        rows = await conn.fetch(FEATURES_SQL_ONE, customer_ids[0], as_of_day)
    else:
        rows = await conn.fetch(FEATURES_SQL, list(customer_ids), as_of_day)
    return {row["customer_id"]: derive_features(row, as_of, as_of_day) for row in rows}


def resolve_as_of(as_of: datetime | None, zone: ZoneInfo) -> tuple[datetime, date]:
    """A read as of T sees every day up to and including day(T) in the service's calendar."""
    moment = as_of or datetime.now(UTC)
    return moment, moment.astimezone(zone).date()
