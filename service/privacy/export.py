"""Exporting a customer: everything held about them as one JSON document, streamed.

The document is read in one repeatable-read transaction, so its parts agree with each other
however long the stream takes; the long lists (changes, decisions, events) are read through
cursors and sent as they come, so a customer with years of events costs no more memory than
one with a week.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.changes.cursor import change_id
from service.customers.service import read_profile
from service.events.fingerprint import canonical_amount
from service.features.schemas import Features
from service.features.service import read_features, resolve_as_of
from service.vocabulary import ORDER_TYPES

_CONSENT_HISTORY = """
SELECT substr(kind, length('consent:') + 1) AS channel, value::text AS granted, occurred_at,
       event_id, source
FROM customer_facts WHERE customer_id = $1 AND kind LIKE 'consent:%'
ORDER BY occurred_at, event_id
"""
_SCORES = """
SELECT as_of, churn_probability, churn_band, pcltv, pcltv_tier, segment, r, f, m,
       model_versions::text AS model_versions, updated_at
FROM customer_scores WHERE customer_id = $1
"""
_CHANGES = """
SELECT seq, type, occurred_at, before::text AS before, after::text AS after
FROM score_changes WHERE customer_id = $1 ORDER BY seq
"""
_DECISIONS = """
SELECT decision_id, decided_at, offer_id, "group", reason, propensity, expected_value,
       model_version, context::text AS context
FROM offer_decisions WHERE customer_id = $1 ORDER BY decided_at, decision_id
"""
_LINKS = """
SELECT anonymous_id, linked_at FROM identity_links WHERE customer_id = $1 ORDER BY linked_at
"""
_DEAD_LETTERS = """
SELECT source, reason, payload::text AS payload, first_seen_at, last_seen_at
FROM dead_letters WHERE customer_id = $1 ORDER BY id
"""
_EVENTS = """
SELECT event_id, customer_id, type, occurred_at, order_id, amount, properties::text AS properties
FROM events WHERE customer_id = $1 ORDER BY occurred_at, event_id
"""


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return canonical_amount(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_value, ensure_ascii=False, separators=(",", ":"))


def _consent(row: asyncpg.Record) -> dict:
    return {**dict(row), "granted": json.loads(row["granted"])}


def _change(row: asyncpg.Record) -> dict:
    return {
        "id": change_id(row["seq"]),
        "type": row["type"],
        "occurred_at": row["occurred_at"],
        "before": None if row["before"] is None else json.loads(row["before"]),
        "after": None if row["after"] is None else json.loads(row["after"]),
    }


def _decision(row: asyncpg.Record) -> dict:
    return {**dict(row), "context": json.loads(row["context"])}


def _dead_letter(row: asyncpg.Record) -> dict:
    return {**dict(row), "payload": json.loads(row["payload"])}


def _event_of(currency: str) -> Callable[[asyncpg.Record], dict]:
    """An event as `POST /v1/events` takes it (orders in the service's one currency)."""

    def event(row: asyncpg.Record) -> dict:
        shaped = {
            "event_id": row["event_id"],
            "customer_id": row["customer_id"],
            "type": row["type"],
            "occurred_at": row["occurred_at"],
            "properties": json.loads(row["properties"]),
        }
        if row["type"] in ORDER_TYPES:
            shaped.update(order_id=row["order_id"], amount=row["amount"], currency=currency)
        return shaped

    return event


async def _head(conn: asyncpg.Connection, customer_id: str, zone: ZoneInfo) -> dict | None:
    profile = await read_profile(conn, customer_id)
    if profile is None:
        return None
    moment, day = resolve_as_of(None, zone)
    features = (await read_features(conn, [customer_id], moment, day)).get(customer_id)
    scores = await conn.fetchrow(_SCORES, customer_id)
    return {
        "customer_id": customer_id,
        "exported_at": moment,
        "profile": profile,
        "consent_history": [_consent(r) for r in await conn.fetch(_CONSENT_HISTORY, customer_id)],
        "features": None if features is None else Features(**features).model_dump(mode="json"),
        "scores": None
        if scores is None
        else {**dict(scores), "model_versions": json.loads(scores["model_versions"])},
        "identity_links": [dict(row) for row in await conn.fetch(_LINKS, customer_id)],
        "dead_letters": [_dead_letter(r) for r in await conn.fetch(_DEAD_LETTERS, customer_id)],
    }


async def _array(
    conn: asyncpg.Connection, sql: str, customer_id: str, shape: Callable[[asyncpg.Record], dict]
) -> AsyncIterator[str]:
    separator = ""
    async for row in conn.cursor(sql, customer_id, prefetch=1000):
        yield separator + _dumps(shape(row))
        separator = ","


async def open_export(
    connect: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]],
    customer_id: str,
    zone: ZoneInfo,
    currency: str,
) -> AsyncIterator[str] | None:
    """The document's pieces, its head already read (so that a caller can answer "unknown"
    before sending anything); None when nothing is held about the customer."""
    pieces = _export_stream(connect, customer_id, zone, currency)
    head = await anext(pieces)
    if head is None:
        await pieces.aclose()
        return None

    async def document() -> AsyncIterator[str]:
        yield head
        async for piece in pieces:
            yield piece

    return document()


async def _export_stream(
    connect: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]],
    customer_id: str,
    zone: ZoneInfo,
    currency: str,
) -> AsyncIterator[str | None]:
    """The document in pieces, read on a connection from `connect` held for the whole
    stream; the first piece is None when nothing is held about the customer (then the
    stream ends)."""
    async with connect() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        head = await _head(conn, customer_id, zone)
        if head is None:
            yield None
            return
        yield _dumps(head)[:-1]  # the object stays open for the streamed lists
        lists = (
            ("score_changes", _CHANGES, _change),
            ("offer_decisions", _DECISIONS, _decision),
            ("events", _EVENTS, _event_of(currency)),
        )
        for name, sql, shape in lists:
            yield f',"{name}":['
            async for piece in _array(conn, sql, customer_id, shape):
                yield piece
            yield "]"
        yield "}"
