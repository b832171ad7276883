"""Point-in-time feature vectors, for one customer (API) or many (training, checks).

`read_features` runs one SQL statement generated from `definitions`, so online
reads and offline builds share the exact same feature logic. The statement reads running
totals and index-ordered first/latest rows, so its cost does not grow with history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.features.definitions import (
    BUCKET_COLUMNS,
    FEATURE_FIELDS,
    WINDOW_FEATURES,
    WindowFeature,
    cumulative,
    order_counted_sql,
)
from service.vocabulary import CONSENT_CHANNELS


def _cents(numeric_sql: str) -> str:
    """Money rounded to cents, half away from zero, as a float: PostgreSQL rounds the exact
    numeric (as Decimal ROUND_HALF_UP would) and the driver decodes a double, not a Decimal."""
    return f"round({numeric_sql}, 2)::float8"


def _first(alias: str, select: str, table: str, where: str, order: str) -> str:
    """Join the customer's first row of `table` in `order`: one probe of an index whose
    order that is, however long the customer's history."""
    return (
        f"LEFT JOIN LATERAL (SELECT {select} FROM {table} x "
        f"WHERE x.customer_id = c.customer_id AND {where} ORDER BY {order} LIMIT 1) {alias} ON true"
    )


# The running totals as of day D, and as of D - N for each window length N: a window is
# the difference, since it covers the days d with D - N < d <= D.
_WINDOW_DAYS = sorted({f.days for f in WINDOW_FEATURES if f.days is not None})


def _totals_alias(days: int | None) -> str:
    return "upto_d" if days is None else f"upto_d_{days}"


def _totals(days: int | None, columns: set[str]) -> str:
    until = "$2::date" if days is None else f"$2::date - {days}"
    select = ", ".join(cumulative(c) for c in BUCKET_COLUMNS if c in columns)
    return _first(_totals_alias(days), select, "customer_daily", f"x.day <= {until}", "x.day DESC")


def _window_value(feature: WindowFeature) -> str:
    total = f"upto_d.{cumulative(feature.column)}"
    if feature.days is not None:
        total += f" - coalesce({_totals_alias(feature.days)}.{cumulative(feature.column)}, 0)"
    return f"{_cents(total) if feature.is_money else total} AS {feature.name}"


def _counted_order(alias: str, direction: str) -> str:
    return _first(
        alias,
        "occurred_at, day",
        "orders",
        f"x.day <= $2::date AND {order_counted_sql('x.amount', 'x.refunded')}",
        f"x.day {direction}, x.occurred_at {direction}",
    )


# The latest statement of each fact kind a feature uses: the column it fills, its SQL type.
_FACTS = {
    "csat": ("last_csat", "int"),
    **{f"consent:{c}": (f"consent_{c}", "boolean") for c in CONSENT_CHANNELS},
}


def _latest_fact(kind: str) -> str:
    return _first(
        f"fact_{_FACTS[kind][0]}",
        "value #>> '{}' AS value",
        "customer_facts",
        f"x.kind = '{kind}' AND x.day <= $2::date",
        "x.occurred_at DESC, x.event_id DESC",
    )


def _features_sql(match: str) -> str:
    """The feature statement for the customers matched by `match` (a condition on
    `customer_id` and $1), up to and including day $2: a fixed number of index probes per
    customer (running totals, first and last counted order, latest facts)."""
    lookups = [
        _totals(None, {"orders", "revenue", *(f.column for f in WINDOW_FEATURES)}),
        *(_totals(n, {f.column for f in WINDOW_FEATURES if f.days == n}) for n in _WINDOW_DAYS),
        _counted_order("first_order", "ASC"),
        _counted_order("last_order", "DESC"),
        *(_latest_fact(kind) for kind in _FACTS),
    ]
    joins = "\n".join(lookups)
    facts = ", ".join(
        f"fact_{name}.value::{sql_type} AS {name}" for name, sql_type in _FACTS.values()
    )
    return f"""
SELECT c.customer_id, c.first_seen_at, c.first_seen_day,
  {", ".join(_window_value(f) for f in WINDOW_FEATURES)},
  {_cents(f"upto_d.{cumulative('revenue')} / NULLIF(upto_d.{cumulative('orders')}, 0)")} AS aov,
  first_order.occurred_at AS first_order_at, last_order.occurred_at AS last_order_at,
  first_order.day AS first_order_day, last_order.day AS last_order_day,
  {facts}
FROM customers c
{joins}
WHERE c.{match} AND c.first_seen_day <= $2::date
"""


# Many customers (training, batch scoring) or one (the API): the same statement with an
# equality instead of an array match. PostgreSQL keeps a generic plan of the equality, but
# plans the array match again on every call, which costs more than the lookups (2.5x).
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
