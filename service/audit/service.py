"""Writing and reading the audit log.

Every admin action goes through `record`, in the transaction of the action where the code
allows it, so that an action is logged exactly when it happened. The row is numbered under
a transaction-level lock, released by the commit: ids are in commit order, and a reader
paging "after id N" never skips a row that commits later with a smaller id (the change feed
does the same, service/changes/service.py).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from service.ops.logs import request_id_var

# Any constant shared by every writer; chosen not to collide with the feed's lock.
AUDIT_LOCK = 7_358_404_912
# Who acts when nobody asked: start-up work such as ensuring the bootstrap key.
SYSTEM_ACTOR = "system"

# The lock is taken before the row (and its id) exists: the insert reads from it.
_RECORD = f"""
WITH locked AS (SELECT pg_advisory_xact_lock({AUDIT_LOCK}))
INSERT INTO audit_log (actor, action, subject, details, request_id)
SELECT $1, $2, $3, $4::jsonb, $5 FROM locked
"""


def cli_actor() -> str:
    """The actor of a `scorer` command: `cli:` and the OS user running it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError, ImportError):  # a uid without a name (containers)
        return "cli"


def _json_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


def _arguments(
    actor: str, action: str, subject: str | None, details: dict | None
) -> tuple[str, str, str | None, str, str | None]:
    # Money stays an exact decimal string; times are RFC 3339. The request id, when an API
    # request is being served, ties the entry to that request's log lines.
    details_json = json.dumps(details or {}, default=_json_value)
    return actor, action, subject, details_json, request_id_var.get()


async def record(
    conn: asyncpg.Connection,
    actor: str,
    action: str,
    subject: str | None = None,
    details: dict | None = None,
) -> None:
    """Append one entry. `details` must never hold a secret or a whole API key. The lock it
    takes is held until commit: call it last in the action's transaction."""
    await conn.execute(_RECORD, *_arguments(actor, action, subject, details))


async def record_sa(
    conn: AsyncConnection,
    actor: str,
    action: str,
    subject: str | None = None,
    details: dict | None = None,
) -> None:
    """`record` on a SQLAlchemy connection, in its transaction (which a statement through
    the driver connection beneath it would not have begun yet)."""
    await conn.exec_driver_sql(_RECORD, _arguments(actor, action, subject, details))


def changed_fields(
    before: Mapping[str, Any], after: Mapping[str, Any], fields: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Of `fields`, those whose value differs, each as {"from": old, "to": new}."""
    return {
        field: {"from": before[field], "to": after[field]}
        for field in fields
        if before[field] != after[field]
    }


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


_PAGE = """
SELECT id, at, actor, action, subject, details::text AS details, request_id
FROM audit_log
WHERE id > $1
  AND ($2::text IS NULL OR action = $2)
  AND ($3::text IS NULL OR actor = $3)
  AND ($4::timestamptz IS NULL OR at >= $4)
  AND ($5::timestamptz IS NULL OR at < $5)
ORDER BY id
LIMIT $6
"""


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str | None
    details: dict[str, Any]
    request_id: str | None


async def page(
    conn: asyncpg.Connection, after: int, limit: int, where: AuditFilter
) -> list[AuditEntry]:
    """Entries after id `after`, oldest first."""
    rows = await conn.fetch(
        _PAGE, after, where.action, where.actor, where.since, where.until, limit
    )
    return [AuditEntry(**{**dict(row), "details": json.loads(row["details"])}) for row in rows]
