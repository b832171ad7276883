"""The webhooks' admin logic: subscriptions (a secret is shown once, when issued), their
deliveries, redelivery and replay, in PostgreSQL."""

from __future__ import annotations

import json
import secrets
from typing import Any

import asyncpg

from service.audit import service as audit
from service.db import RequestPool
from service.webhooks import signing, targets
from service.webhooks.fanout import change_id
from service.webhooks.schemas import ReplayAfter, ReplaySince, WebhookCreate, WebhookUpdate


class UnknownWebhook(LookupError):
    """No webhook (or no delivery of it) has that id."""


class WebhookDisabled(Exception):
    """The webhook is disabled: nothing can be sent to it until it is enabled."""


def new_webhook_id() -> str:
    return "wh_" + secrets.token_hex(8)


# The previous secret's expiry is shown only while it still signs.
_COLUMNS = """
id, url, description, event_types, filters::text AS filters, enabled, disabled_reason, secret,
CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
    AS previous_secret_expires_at,
created_at, updated_at
"""


def to_webhook(row: asyncpg.Record) -> dict[str, Any]:
    shown = {key: value for key, value in row.items() if key not in ("secret", "filters")}
    return {
        **shown,
        "event_types": list(row["event_types"]),
        "filters": json.loads(row["filters"]),
        "secret_fingerprint": signing.fingerprint(row["secret"]),
    }


# What the audit log shows of a webhook (never its secret).
_AUDITED = ("url", "description", "event_types", "filters", "enabled")


def _audited(row: asyncpg.Record) -> dict[str, Any]:
    shown = to_webhook(row)
    return {field: shown[field] for field in _AUDITED}


def _filters(fields: WebhookCreate | WebhookUpdate) -> str:
    return json.dumps(fields.filters.model_dump(exclude_none=True))


# Created at the feed's current end: a webhook gets the changes committed after it exists
# (earlier ones through a replay).
_CREATE = f"""
INSERT INTO webhook_endpoints
    (id, url, description, event_types, filters, secret, fanned_out_seq)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, (SELECT coalesce(max(seq), 0) FROM score_changes))
RETURNING {_COLUMNS}
"""


async def create(
    pool: RequestPool, fields: WebhookCreate, allow_private: bool, actor: str
) -> tuple[asyncpg.Record, str]:
    """The new webhook and its secret; TargetRefused when its URL may not be a target."""
    await targets.check(fields.url, allow_private)  # before taking a connection: DNS is slow
    secret = signing.new_secret()
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            _CREATE,
            new_webhook_id(),
            fields.url,
            fields.description,
            fields.event_types,
            _filters(fields),
            secret,
        )
        await audit.record(conn, actor, "webhook.created", row["id"], _audited(row))
    return row, secret


async def listing(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id")


async def find(conn: asyncpg.Connection, webhook_id: str, lock: str = "") -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE id = $1 {lock}", webhook_id
    )
    if row is None:
        raise UnknownWebhook(webhook_id)
    return row


# Each field changes only when given ($n_given). Enabling clears the reason and any
# throttle; disabling through the API keeps the reason of an earlier 410.
_UPDATE = f"""
UPDATE webhook_endpoints SET
    url = coalesce($2, url),
    event_types = coalesce($3, event_types),
    filters = coalesce($4::jsonb, filters),
    description = CASE WHEN $5 THEN $6 ELSE description END,
    enabled = coalesce($7, enabled),
    disabled_reason = CASE WHEN $7 IS NULL THEN disabled_reason
                           WHEN $7 THEN NULL
                           WHEN enabled THEN 'disabled through the API'
                           ELSE disabled_reason END,
    throttled_until = CASE WHEN $7 THEN NULL ELSE throttled_until END,
    updated_at = now()
WHERE id = $1
RETURNING {_COLUMNS}
"""


async def update(
    pool: RequestPool, webhook_id: str, changes: WebhookUpdate, allow_private: bool, actor: str
) -> asyncpg.Record:
    """Audited with the fields that changed."""
    given = changes.model_fields_set
    if "url" in given:
        await targets.check(changes.url, allow_private)
    async with pool.acquire() as conn, conn.transaction():
        # Locked, so that no other change lands between the fields read and those written.
        before = await find(conn, webhook_id, lock="FOR NO KEY UPDATE")
        row = await conn.fetchrow(
            _UPDATE,
            webhook_id,
            changes.url if "url" in given else None,
            changes.event_types if "event_types" in given else None,
            _filters(changes) if "filters" in given else None,
            "description" in given,
            changes.description,
            changes.enabled if "enabled" in given else None,
        )
        changed = audit.changed_fields(_audited(before), _audited(row), _AUDITED)
        await audit.record(conn, actor, "webhook.updated", webhook_id, changed)
    return row


async def delete(conn: asyncpg.Connection, webhook_id: str, actor: str) -> asyncpg.Record:
    """Deletes the webhook and its deliveries; returns the webhook as it was."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"DELETE FROM webhook_endpoints WHERE id = $1 RETURNING {_COLUMNS}", webhook_id
        )
        if row is None:
            raise UnknownWebhook(webhook_id)
        await audit.record(conn, actor, "webhook.deleted", webhook_id, {"url": row["url"]})
    return row


# The current secret becomes the previous one, which keeps signing for the overlap; a
# secret that was still overlapping from an earlier rotation stops signing now.
_ROTATE = f"""
UPDATE webhook_endpoints SET
    previous_secret = CASE WHEN $3::float8 > 0 THEN secret END,
    previous_secret_expires_at = CASE WHEN $3::float8 > 0
                                      THEN now() + make_interval(secs => $3::float8) END,
    secret = $2,
    updated_at = now()
WHERE id = $1
RETURNING {_COLUMNS}
"""


async def rotate_secret(
    conn: asyncpg.Connection, webhook_id: str, overlap_seconds: int, actor: str
) -> tuple[asyncpg.Record, str]:
    secret = signing.new_secret()
    async with conn.transaction():
        row = await conn.fetchrow(_ROTATE, webhook_id, secret, float(overlap_seconds))
        if row is None:
            raise UnknownWebhook(webhook_id)
        rotation = {
            "overlap_seconds": overlap_seconds,
            "secret_fingerprint": signing.fingerprint(secret),
        }
        await audit.record(conn, actor, "webhook.secret_rotated", webhook_id, rotation)
    return row, secret


_DELIVERY_COLUMNS = """
id, endpoint_id, change_seq, type, status, attempts, next_attempt_at, last_attempt_at,
last_status_code, last_error, delivered_at, created_at, attempt_log::text AS attempt_log,
payload
"""

_DELIVERIES = f"""
SELECT {_DELIVERY_COLUMNS}
FROM webhook_deliveries
WHERE endpoint_id = $1 AND ($2::bigint IS NULL OR change_seq < $2)
  AND ($3::text IS NULL OR status = $3)
ORDER BY change_seq DESC
LIMIT $4
"""


def to_delivery(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "webhook_id": row["endpoint_id"],
        "change_id": change_id(row["change_seq"]),
        "type": row["type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "next_attempt_at": row["next_attempt_at"] if row["status"] == "pending" else None,
        "last_attempt_at": row["last_attempt_at"],
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "delivered_at": row["delivered_at"],
        "created_at": row["created_at"],
        "attempt_log": json.loads(row["attempt_log"]),
        "payload": json.loads(row["payload"]),
    }


async def delivery_page(
    conn: asyncpg.Connection, webhook_id: str, before: str | None, status: str | None, limit: int
) -> dict[str, Any]:
    """The webhook's deliveries, newest change first; `before`: a page's `next_cursor`."""
    await find(conn, webhook_id)
    position = None if before is None else int(before)
    rows = await conn.fetch(_DELIVERIES, webhook_id, position, status, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "data": [to_delivery(row) for row in rows],
        "next_cursor": str(rows[-1]["change_seq"]) if more else None,
        "has_more": more,
    }


async def _enabled(conn: asyncpg.Connection, webhook_id: str, lock: str = "") -> int:
    """The webhook's feed position; UnknownWebhook or WebhookDisabled."""
    row = await conn.fetchrow(
        f"SELECT enabled, fanned_out_seq FROM webhook_endpoints WHERE id = $1 {lock}", webhook_id
    )
    if row is None:
        raise UnknownWebhook(webhook_id)
    if not row["enabled"]:
        raise WebhookDisabled(webhook_id)
    return row["fanned_out_seq"]


# Queued again from the start of the retry schedule, under the same id (the webhook-id).
_REDELIVER = f"""
UPDATE webhook_deliveries SET status = 'pending', round_attempts = 0, next_attempt_at = now()
WHERE id = $2 AND endpoint_id = $1
RETURNING {_DELIVERY_COLUMNS}
"""


async def redeliver(
    conn: asyncpg.Connection, webhook_id: str, delivery_id: str, actor: str
) -> asyncpg.Record:
    async with conn.transaction():
        await _enabled(conn, webhook_id)
        row = await conn.fetchrow(_REDELIVER, webhook_id, delivery_id)
        if row is None:
            raise UnknownWebhook(delivery_id)
        details = {"delivery_id": delivery_id, "change_id": change_id(row["change_seq"])}
        await audit.record(conn, actor, "webhook.redelivered", webhook_id, details)
    return row


_FIRST_SINCE = """
SELECT seq FROM score_changes WHERE occurred_at >= $1 ORDER BY occurred_at, seq LIMIT 1
"""


async def replay(
    conn: asyncpg.Connection, webhook_id: str, start: ReplaySince | ReplayAfter, actor: str
) -> tuple[str, str]:
    """Moves the webhook's feed position back, so that the fan-out reads those changes
    again (through the current filters): a change with a delivery is queued again under
    its id, one without gets a delivery. Returns the first and last change id of the
    range sent again (the same id twice: none)."""
    async with conn.transaction():
        position = await _enabled(conn, webhook_id, lock="FOR NO KEY UPDATE")
        if isinstance(start, ReplayAfter):
            after = int(start.after.removeprefix("chg_"))
        else:
            first = await conn.fetchval(_FIRST_SINCE, start.since)
            after = position if first is None else first - 1
        after = min(after, position)
        await conn.execute(
            "UPDATE webhook_endpoints SET fanned_out_seq = $2, updated_at = now() WHERE id = $1",
            webhook_id,
            after,
        )
        sent_again = {
            "requested": start.model_dump(mode="json"),
            "after": change_id(after),
            "through": change_id(position),
        }
        await audit.record(conn, actor, "webhook.replayed", webhook_id, sent_again)
    return change_id(after), change_id(position)
