"""Fan-out: the change feed becomes deliveries, for each webhook in feed order.

Each webhook keeps the last change it has read (`fanned_out_seq`). A step claims a webhook
that is behind the feed (`FOR NO KEY UPDATE SKIP LOCKED`, so processes never share one and
none waits for another), reads the changes after its position, inserts a delivery for each
that its types and filters select and moves its position past every change read, all in
one transaction: a change is fanned out exactly once, whichever process dies where.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from service.changes.service import ERASED, wire_fields

# Changes read per webhook and transaction.
BATCH = 500
# Webhooks served per step (each in a transaction of its own).
WEBHOOKS_PER_STEP = 20

# The score of a snapshot each filter compares.
_FILTERED_SCORES = {"churn_band": "churn_band", "segment": "segment", "tier": "pcltv_tier"}


@dataclass(frozen=True)
class Change:
    seq: int
    type: str
    customer_id: str | None
    occurred_at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    erasure_id: str | None = None


def new_delivery_id() -> str:
    # No "." ever: the id is the first part of the signed "{id}.{timestamp}.{body}".
    return "msg_" + secrets.token_hex(12)


def change_id(seq: int) -> str:
    return f"chg_{seq}"


def wire_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def matches(filters: dict[str, str], change: Change) -> bool:
    """Every filter holds between the change's before and after snapshots. An erasure
    passes every filter: whoever may have been sent the customer's scores hears of it; so
    does an alert, which is about no one customer's scores."""
    if change.customer_id is None:
        return True
    for name, wanted in filters.items():
        score, _, direction = name.rpartition("_")
        key = _FILTERED_SCORES[score]
        before = (change.before or {}).get(key)
        after = (change.after or {}).get(key)
        if direction == "entered" and not (after == wanted and before != wanted):
            return False
        if direction == "left" and not (before == wanted and after != wanted):
            return False
    return True


def body(change: Change) -> str:
    """The payload, serialized once: every attempt sends (and signs) these same bytes."""
    occurred = wire_time(change.occurred_at)
    document = {
        "type": change.type,
        "timestamp": occurred,
        "data": {
            "id": change_id(change.seq),
            "customer_id": change.customer_id,
            "occurred_at": occurred,
            **wire_fields(change.type, change.before, change.after),
        },
    }
    if change.type == ERASED:
        document["data"]["erasure_id"] = change.erasure_id
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


_CLAIM = """
SELECT id, fanned_out_seq, event_types, filters::text AS filters
FROM webhook_endpoints
WHERE enabled AND fanned_out_seq < (SELECT coalesce(max(seq), 0) FROM score_changes)
ORDER BY fanned_out_seq
LIMIT 1
FOR NO KEY UPDATE SKIP LOCKED
"""

_READ = """
SELECT seq, type, customer_id, occurred_at, before::text AS before, after::text AS after,
       erasure_id
FROM score_changes
WHERE seq > $1
ORDER BY seq
LIMIT $2
"""

# A change that already has a delivery for the webhook meets it again only after a replay
# moved the webhook's position back: the delivery is queued again, under the same id.
_INSERT = """
INSERT INTO webhook_deliveries AS d
    (id, endpoint_id, change_seq, type, occurred_at, payload, customer_id, next_attempt_at)
SELECT u.id, $1, u.seq, u.type, u.occurred_at, u.payload, u.customer_id,
       now() + make_interval(secs => $7)
FROM unnest($2::text[], $3::bigint[], $4::text[], $5::timestamptz[], $6::text[], $8::text[])
    AS u(id, seq, type, occurred_at, payload, customer_id)
ON CONFLICT (endpoint_id, change_seq) DO UPDATE
SET status = 'pending', round_attempts = 0, next_attempt_at = excluded.next_attempt_at
"""

_ADVANCE = "UPDATE webhook_endpoints SET fanned_out_seq = $2 WHERE id = $1"


def _change(row: asyncpg.Record) -> Change:
    return Change(
        seq=row["seq"],
        type=row["type"],
        customer_id=row["customer_id"],
        occurred_at=row["occurred_at"],
        before=None if row["before"] is None else json.loads(row["before"]),
        after=None if row["after"] is None else json.loads(row["after"]),
        erasure_id=row["erasure_id"],
    )


@dataclass(frozen=True)
class Batch:
    read: int  # changes read
    queued: int  # deliveries created or queued again


async def fan_out_one(conn: asyncpg.Connection, first_delay: float) -> Batch | None:
    """Fan out the next batch of one webhook that is behind the feed; None when no webhook
    is behind (or all those are being served)."""
    async with conn.transaction():
        endpoint = await conn.fetchrow(_CLAIM)
        if endpoint is None:
            return None
        rows = await conn.fetch(_READ, endpoint["fanned_out_seq"], BATCH)
        changes = [_change(row) for row in rows]
        if not changes:  # the newest change was deleted between the two statements
            return None
        types, filters = set(endpoint["event_types"]), json.loads(endpoint["filters"])
        chosen = [c for c in changes if c.type in types and matches(filters, c)]
        if chosen:
            await conn.execute(
                _INSERT,
                endpoint["id"],
                [new_delivery_id() for _ in chosen],
                [c.seq for c in chosen],
                [c.type for c in chosen],
                [c.occurred_at for c in chosen],
                [body(c) for c in chosen],
                first_delay,
                [c.customer_id for c in chosen],
            )
        await conn.execute(_ADVANCE, endpoint["id"], changes[-1].seq)
    return Batch(len(changes), len(chosen))


@dataclass(frozen=True)
class Step:
    more: bool  # a webhook had a full batch: more is waiting, step again at once
    queued: int


async def fan_out(conn: asyncpg.Connection, first_delay: float) -> Step:
    """A step over the webhooks that are behind."""
    more, queued = False, 0
    for _ in range(WEBHOOKS_PER_STEP):
        batch = await fan_out_one(conn, first_delay)
        if batch is None:
            break
        more, queued = more or batch.read == BATCH, queued + batch.queued
    return Step(more, queued)
