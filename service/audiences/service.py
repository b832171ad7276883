"""Audiences: customers by segment, value tier and churn band, from the materialized
scores, as CSV or NDJSON lines, a page at a time in `customer_id` order."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

COLUMNS = (
    "customer_id",
    "segment",
    "churn_probability",
    "churn_band",
    "pcltv",
    "pcltv_tier",
    "r",
    "f",
    "m",
    "as_of",
    "updated_at",
)


@dataclass(frozen=True)
class AudienceQuery:
    segment: str | None = None
    tier: str | None = None
    churn_band: str | None = None
    after: str = ""
    limit: int = 10_000

    def sql(self) -> tuple[str, list]:
        conditions, args = ["customer_id > $1"], [self.after]
        for column, value in (
            ("segment", self.segment),
            ("pcltv_tier", self.tier),
            ("churn_band", self.churn_band),
        ):
            if value is not None:
                args.append(value)
                conditions.append(f"{column} = ${len(args)}")
        args.append(self.limit + 1)
        statement = f"""
            SELECT {", ".join(COLUMNS)} FROM customer_scores
            WHERE {" AND ".join(conditions)} ORDER BY customer_id LIMIT ${len(args)}
        """
        return statement, args


async def members(conn: asyncpg.Connection, query: AudienceQuery) -> tuple[list, str | None]:
    """One page, and the cursor of the next: the page's last customer id (None on the last
    page)."""
    statement, args = query.sql()
    rows = await conn.fetch(statement, *args)
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        return rows, rows[-1]["customer_id"]
    return rows, None


def _plain(row: asyncpg.Record) -> dict:
    out = dict(row)
    out["as_of"] = out["as_of"].isoformat()
    out["updated_at"] = out["updated_at"].isoformat()
    return out


async def ndjson_lines(rows: list) -> AsyncIterator[bytes]:
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        yield "".join(json.dumps(_plain(row)) + "\n" for row in chunk).encode()


async def csv_lines(rows: list) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(COLUMNS)
    for start in range(0, len(rows), 1000):
        for row in rows[start : start + 1000]:
            out.writerow(_plain(row)[name] for name in COLUMNS)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()
