"""Erasing a customer: every row that holds them, in one transaction, then a tombstone and a
`customer.erased` change that carries no personal data.

The erasure takes the locks of every writer of the customer (the write path's, the scoring
loop's and the offer log's) and of every webhook's fan-out, so nothing it deletes can be
written again behind it: a write that waited for it finds the tombstone, a fan-out that
waited finds the changes gone.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.audit import service as audit
from service.changes.service import ERASED, NewChange, record
from service.events import tombstones
from service.events.service import lock_keys
from service.sources.segment.service import ANONYMOUS_KEY

# Tables keyed by customer_id, in the order they are emptied.
_CUSTOMER_TABLES = (
    "events",
    "orders",
    "customer_daily",
    "customer_facts",
    "customers",
    "customer_scores",
    "score_changes",
    "offer_decisions",
    "source_orders",
    "webhook_deliveries",
)
_LOCK_WRITERS = """
SELECT pg_advisory_xact_lock(hashtextextended('scores:' || $1, 0)),
       pg_advisory_xact_lock(hashtextextended('offer_decisions:' || $1, 0))
"""
_LOCK_FAN_OUT = "SELECT id FROM webhook_endpoints ORDER BY id FOR NO KEY UPDATE"
_UNLINK = "DELETE FROM identity_links WHERE customer_id = $1 RETURNING anonymous_id"
_OUTBOX = "DELETE FROM score_outbox WHERE customer_id = $1"
_HELD = "DELETE FROM anonymous_events WHERE anonymous_id = ANY($1::text[])"
_PSEUDONYMISE_AUDIT = "UPDATE audit_log SET subject = $2 WHERE subject = $1"
# Letters naming the customer (or one of their anonymous ids), and letters a source could not
# attribute whose payload holds the id as a value anywhere: a scan, but of a table that only
# holds what could not be stored.
_DEAD_LETTERS = """
DELETE FROM dead_letters
WHERE customer_id = ANY($1::text[])
   OR (customer_id IS NULL AND jsonb_path_exists(payload, $2::jsonpath, $3::jsonb))
"""


def _dead_letter_match(ids: list[str]) -> tuple[str, str]:
    """A JSON path matching any value equal to one of `ids`, and its variables. Shops send
    numeric ids as JSON numbers (Shopify's customer.id): those match too."""
    variables: dict[str, str | int] = {}
    for n, value in enumerate(ids):
        variables[f"s{n}"] = value
        if value.isascii() and value.isdigit():
            variables[f"n{n}"] = int(value)
    condition = " || ".join(f"@ == ${name}" for name in variables)
    return f"$.** ? ({condition})", json.dumps(variables)


@dataclass(frozen=True)
class ErasureOutcome:
    erasure_id: str
    erased_at: datetime
    previously_erased: bool
    deleted: dict[str, int]


def _count(status: str) -> int:
    return int(status.split()[-1])


async def erase(
    conn: asyncpg.Connection, customer_id: str, actor: str, deadline_seconds: float
) -> ErasureOutcome:
    """Erase `customer_id` in one transaction, audited as `actor`'s; the rows deleted by
    table."""
    async with conn.transaction():
        milliseconds = int(deadline_seconds * 1000)
        await conn.execute(f"SET LOCAL statement_timeout = {milliseconds}")
        await conn.execute(f"SET LOCAL lock_timeout = {milliseconds}")
        # Writes first (no outbox row is added behind us), then the outbox: a rescoring that
        # claimed the customer's rows waits for the scoring lock, which is taken only once it
        # is done (the other order deadlocks with it); then nothing scores them again.
        await lock_keys(conn, [customer_id])
        deleted: dict[str, int] = {"score_outbox": _count(await conn.execute(_OUTBOX, customer_id))}
        await conn.execute(_LOCK_WRITERS, customer_id)
        await conn.execute(_LOCK_FAN_OUT)
        anonymous = [row["anonymous_id"] for row in await conn.fetch(_UNLINK, customer_id)]
        deleted["identity_links"] = len(anonymous)
        deleted["anonymous_events"] = _count(await conn.execute(_HELD, anonymous))
        for table in _CUSTOMER_TABLES:
            status = await conn.execute(f"DELETE FROM {table} WHERE customer_id = $1", customer_id)
            deleted[table] = _count(status)
        named = [customer_id, *anonymous]
        letters = await conn.execute(_DEAD_LETTERS, named, *_dead_letter_match(named))
        deleted["dead_letters"] = _count(letters)
        for anonymous_id in anonymous:
            await tombstones.bury(conn, ANONYMOUS_KEY + anonymous_id)
        newly = await tombstones.bury(conn, customer_id)
        erasure_id = "era_" + secrets.token_hex(12)
        erased_at = await conn.fetchval("SELECT clock_timestamp()")
        # The audit trail keeps who exported or erased the customer, under the erasure's
        # name instead of theirs.
        deleted["audit_log"] = _count(
            await conn.execute(_PSEUDONYMISE_AUDIT, customer_id, "erasure:" + erasure_id)
        )
        details = {"deleted": deleted, "previously_erased": not newly}
        await audit.record(conn, actor, "customer.erased", erasure_id, details)
        # Erasing again what is gone changes nothing that anyone was told about.
        if newly or any(deleted.values()):
            await record(conn, [NewChange(ERASED, None, None, None, erasure_id)])
    return ErasureOutcome(erasure_id, erased_at, not newly, deleted)
