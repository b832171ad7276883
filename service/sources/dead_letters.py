"""Dead letters: what a source sent that could not be stored, with the reason."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.ops.metrics import DEAD_LETTERS_STORED


@dataclass(frozen=True)
class DeadLetter:
    source: str
    reason: str
    payload: Any
    external_id: str | None = None
    customer_id: str | None = None


# A retried message that still cannot be used updates its row instead of adding one.
_RECORD = """
INSERT INTO dead_letters AS d (source, external_id, customer_id, reason, payload)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[])
ON CONFLICT (source, external_id) WHERE external_id IS NOT NULL DO UPDATE
SET reason = excluded.reason, payload = excluded.payload, customer_id = excluded.customer_id,
    attempts = d.attempts + 1, last_seen_at = now()
"""


async def record(conn: asyncpg.Connection, letters: list[DeadLetter]) -> None:
    if not letters:
        return
    # One row per (source, external_id) in a statement: ON CONFLICT cannot touch a row twice.
    unique: dict[object, DeadLetter] = {}
    for position, letter in enumerate(letters):
        key = (letter.source, letter.external_id) if letter.external_id else position
        unique[key] = letter
    rows = list(unique.values())
    await conn.execute(
        _RECORD,
        [letter.source for letter in rows],
        [_text(letter.external_id) for letter in rows],
        [_text(letter.customer_id) for letter in rows],
        [_text(letter.reason) for letter in rows],
        [storable_json(letter.payload) for letter in rows],
    )


def _text(value: str | None) -> str | None:
    # PostgreSQL text holds neither NUL nor lone surrogates; a dead letter must still store.
    if value is None:
        return None
    return value.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\u0000")


def storable_json(payload: Any) -> str:
    """`payload` as JSON that jsonb takes (see `_storable`)."""
    try:
        return json.dumps(_storable(payload), ensure_ascii=True, allow_nan=False, default=str)
    except ValueError:  # a non-finite number: jsonb has none, so keep the whole thing as text
        return json.dumps({"unstorable_payload": repr(payload)})


def _storable(value: Any) -> Any:
    """jsonb refuses NUL characters; the letter keeps them visible as text instead."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(str(key)): _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    return value


_COUNTS = "SELECT source, count(*) AS n FROM dead_letters GROUP BY source"


async def refresh_gauge(conn: asyncpg.Connection) -> None:
    """Dead letters held, by source, for /metrics, whichever process wrote them."""
    for row in await conn.fetch(_COUNTS):
        DEAD_LETTERS_STORED.labels(source=row["source"]).set(row["n"])


_LIST = """
SELECT id, source, external_id, customer_id, reason, payload::text AS payload, attempts,
       first_seen_at, last_seen_at
FROM dead_letters
WHERE id > $1 AND ($2::text IS NULL OR source = $2)
ORDER BY id
LIMIT $3
"""


@dataclass(frozen=True)
class StoredDeadLetter:
    id: int
    source: str
    external_id: str | None
    customer_id: str | None
    reason: str
    payload: Any
    attempts: int
    first_seen_at: datetime
    last_seen_at: datetime


async def page(
    conn: asyncpg.Connection, after: int, limit: int, source: str | None
) -> list[StoredDeadLetter]:
    rows = await conn.fetch(_LIST, after, source, limit)
    return [
        StoredDeadLetter(**{**dict(row), "payload": json.loads(row["payload"])}) for row in rows
    ]
