"""Writing and reading the change feed.

Every writer of changes goes through `record`, which takes one transaction-level lock
and numbers the rows under it; the lock is released by the commit, so the next writer
numbers its rows only after ours are visible. A reader that has seen seq N has
therefore seen every row below N that will ever exist: polling "after N" never skips
one. (Numbering by a bare sequence does skip: a transaction that took N and commits
after another took and committed N+1 is invisible to a poller that has passed N+1.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

# Any constant shared by every writer; chosen not to collide with hashed keys elsewhere.
FEED_LOCK = 7_358_404_911

CHANGE_TYPES = (
    "scores.changed",
    "segment.changed",
    "churn_band.changed",
    "tier.changed",
    "customer.erased",
    "alert.triggered",
)
ERASED = "customer.erased"
# Not about one customer: `after` holds the alert and what it measured.
ALERT_TRIGGERED = "alert.triggered"


@dataclass(frozen=True)
class NewChange:
    type: str
    customer_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    erasure_id: str | None = None


def wire_fields(change_type: str, before: dict | None, after: dict | None) -> dict:
    """A stored change's before/after as the feed and webhooks send them: an alert's
    record is its `alert`, with no scores before or after."""
    if change_type == ALERT_TRIGGERED:
        return {"before": None, "after": None, "alert": after}
    return {"before": before, "after": after}


_INSERT = """
INSERT INTO score_changes (seq, type, customer_id, occurred_at, before, after, erasure_id)
SELECT nextval('score_changes_seq'), type, customer_id, clock_timestamp(), before, after,
       erasure_id
FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[], $5::text[])
     WITH ORDINALITY AS c(type, customer_id, before, after, erasure_id, position)
ORDER BY position
"""


async def record(conn: asyncpg.Connection, changes: Sequence[NewChange]) -> None:
    """Append `changes` in this order. Must be the last statement of its transaction: the
    feed lock it takes is held until commit, so whatever follows delays every writer."""
    if not changes:
        return
    await conn.execute("SELECT pg_advisory_xact_lock($1)", FEED_LOCK)
    await conn.execute(
        _INSERT,
        [c.type for c in changes],
        [c.customer_id for c in changes],
        [None if c.before is None else json.dumps(c.before) for c in changes],
        [None if c.after is None else json.dumps(c.after) for c in changes],
        [c.erasure_id for c in changes],
    )


@dataclass(frozen=True)
class ChangeFilter:
    types: tuple[str, ...] = ()
    segment: str | None = None
    customer_id: str | None = None

    def sql(self, first_arg: int) -> tuple[str, list]:
        conditions, args = [], []
        if self.types:
            args.append(list(self.types))
            conditions.append(f"type = ANY(${first_arg + len(args) - 1}::text[])")
        if self.segment is not None:
            args.append(self.segment)
            n = first_arg + len(args) - 1
            conditions.append(f"(before->>'segment' = ${n} OR after->>'segment' = ${n})")
        if self.customer_id is not None:
            args.append(self.customer_id)
            conditions.append(f"customer_id = ${first_arg + len(args) - 1}")
        return " AND ".join(conditions) or "true", args


@dataclass
class ChangePage:
    rows: list[asyncpg.Record]
    last_seq: int
    has_more: bool


# A filtered read looks at no more than this many rows past the cursor, so a filter that
# matches nothing costs one bounded scan; the cursor then moves past what was scanned.
SCAN_ROWS = 20_000


async def read_page(
    conn: asyncpg.Connection, after: int, limit: int, where: ChangeFilter
) -> ChangePage:
    condition, args = where.sql(4)
    rows = await conn.fetch(
        f"""
        WITH scanned AS (
          SELECT * FROM score_changes WHERE seq > $1 ORDER BY seq LIMIT $3
        ), hits AS (
          SELECT * FROM scanned WHERE {condition} ORDER BY seq LIMIT $2 + 1
        )
        SELECT seq, type, customer_id, occurred_at, before, after, erasure_id, false AS edge
        FROM hits
        UNION ALL
        SELECT max(seq), NULL, NULL, NULL, NULL, NULL, NULL, count(*) = $3 FROM scanned
        """,
        after,
        limit,
        SCAN_ROWS,
        *args,
    )
    edge = next(row for row in rows if row["type"] is None)
    hits = sorted((row for row in rows if row["type"] is not None), key=lambda r: r["seq"])
    if len(hits) > limit:
        return ChangePage(hits[:limit], hits[limit - 1]["seq"], True)
    if edge["seq"] is None:
        return ChangePage(hits, after, False)
    # Fewer hits than asked: everything scanned has been looked at.
    return ChangePage(hits, edge["seq"], bool(edge["edge"]))


_PURGE = """
DELETE FROM score_changes
WHERE seq IN (SELECT seq FROM score_changes WHERE occurred_at < now() - make_interval(days => $1)
              ORDER BY seq LIMIT $2)
"""


async def purge_expired(conn: asyncpg.Connection, retention_days: int, batch: int = 10_000) -> int:
    """Delete one batch of changes older than the retention; the number deleted."""
    status = await conn.execute(_PURGE, retention_days, batch)
    return int(status.split()[-1])
