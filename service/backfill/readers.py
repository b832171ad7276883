"""Readers of backfill files: NDJSON in our event shape, or CSV of completed orders.

Each yields (line_number, raw_event_or_problem); a problem is a string naming
what is wrong with that line, so it is reported instead of dropped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

CSV_COLUMNS = ("customer_id", "occurred_at", "amount")
CSV_OPTIONAL = ("order_id", "currency")
# Transaction exports (and `scorer backtest` files) often call the timestamp "date".
CSV_ALIASES = {"date": "occurred_at"}

Line = tuple[int, dict[str, Any] | str]


def read_ndjson(stream: io.TextIOBase) -> Iterator[Line]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as error:
            yield number, f"line is not valid JSON: {error}"


def _csv_timestamp(value: str, zone: ZoneInfo) -> str:
    """A bare date means the start of that day in the service's calendar."""
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime(day.year, day.month, day.day, tzinfo=zone).isoformat()
    return value


def read_orders_csv(stream: io.TextIOBase, zone: ZoneInfo) -> Iterator[Line]:
    """Rows become order_completed events with ids derived from their content, so a
    re-run of the same file is recognised as duplicates."""
    reader = csv.DictReader(stream)
    reader.fieldnames = [CSV_ALIASES.get(name, name) for name in reader.fieldnames or []]
    header = reader.fieldnames
    missing = [c for c in CSV_COLUMNS if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS + CSV_OPTIONAL]
    if missing or unknown:
        yield (
            1,
            f"CSV header must be {','.join(CSV_COLUMNS)}[,order_id,currency]; "
            + (f"missing {missing}" if missing else f"unknown {unknown}"),
        )
        return
    seen: Counter[tuple] = Counter()
    for row in reader:
        number = reader.line_num
        if None in row or any(row.get(c) in (None, "") for c in CSV_COLUMNS):
            yield number, f"row needs {', '.join(CSV_COLUMNS)} (and no extra cells)"
            continue
        try:
            occurred_at = _csv_timestamp(row["occurred_at"], zone)
        except ValueError:
            yield number, f"occurred_at: not a date or RFC 3339 timestamp: {row['occurred_at']!r}"
            continue
        order_id = row.get("order_id") or None
        if order_id is None:
            # Identical rows without an order id are distinct orders: number them.
            content = (row["customer_id"], occurred_at, row["amount"])
            seen[content] += 1
            digest = hashlib.blake2b(repr((*content, seen[content])).encode(), digest_size=8)
            order_id = "csv-" + digest.hexdigest()
        event: dict[str, Any] = {
            "event_id": f"csv:{row['customer_id']}:{order_id}",
            "customer_id": row["customer_id"],
            "type": "order_completed",
            "occurred_at": occurred_at,
            "order_id": order_id,
            "amount": row["amount"],
        }
        if row.get("currency"):
            event["currency"] = row["currency"]
        yield number, event
