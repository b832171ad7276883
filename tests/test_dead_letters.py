"""Dead letters: a source's unusable message is kept with its reason, listed to admins and
counted in /metrics; a retried one updates its letter instead of adding another."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

from service.config import Settings
from service.db import asyncpg_dsn
from service.events.validation import EventRules
from service.sources.dead_letters import DeadLetter
from service.sources.write import Mapped, store_mapped


def _order(event_id: str, amount: object, currency: str = "USD") -> dict:
    return {
        "event_id": event_id,
        "customer_id": "c-dl",
        "type": "order_completed",
        "occurred_at": "2026-11-01T10:00:00+00:00",
        "order_id": f"o-{event_id}",
        "amount": amount,
        "currency": currency,
    }


RULES = EventRules.from_settings(Settings())


def _store(database_url: str, source: str, mapped: list, unmappable: list):
    async def go():
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            return await store_mapped(conn, RULES, source, mapped, unmappable, datetime.now(UTC))
        finally:
            await conn.close()

    return asyncio.run(go())


def test_store_mapped_dead_letters_what_fails_and_keeps_the_rest(server):
    mapped = [
        Mapped(_order("dl-1", "10.00"), {"messageId": "dl-1", "n": 1}, "dl-1"),
        Mapped(_order("dl-2", "10.00", "EUR"), {"messageId": "dl-2", "n": 2}, "dl-2"),
        Mapped(_order("dl-3", "-5"), {"messageId": "dl-3", "text": "nul\x00here"}, "dl-3"),
    ]
    unmappable = [DeadLetter("segment", "userId or anonymousId: required", {"x": 1}, "dl-4")]
    outcome = _store(server.database_url, "segment", mapped, unmappable)
    again = _store(server.database_url, "segment", mapped, unmappable)
    rows = server.sql(
        "SELECT external_id, reason, payload::text AS payload, attempts FROM dead_letters "
        "WHERE source = 'segment' AND external_id LIKE 'dl-%' ORDER BY external_id"
    )
    assert (outcome.accepted, outcome.duplicates, len(outcome.dead_lettered)) == (1, 0, 3)
    assert (again.accepted, again.duplicates) == (0, 1)
    assert [row["external_id"] for row in rows] == ["dl-2", "dl-3", "dl-4"]
    assert "currency" in rows[0]["reason"] and "amount" in rows[1]["reason"]
    assert [row["attempts"] for row in rows] == [2, 2, 2]
    assert "nul\\\\u0000here" in rows[1]["payload"]  # NUL kept visible, as text


def test_dead_letters_are_listed_to_admins_and_counted(server, client):
    _store(
        server.database_url, "nats", [Mapped(_order("dl-n1", "x"), {"raw": "dl-n1"}, "dl-n1")], []
    )
    first = client.get("/v1/dead-letters?source=nats&limit=1")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["data"][0]["source"] == "nats" and "amount" in body["data"][0]["reason"]
    assert body["data"][0]["payload"] == {"raw": "dl-n1"}
    after = client.get(f"/v1/dead-letters?source=nats&after={body['next_cursor']}")
    assert after.json()["data"] == [] and after.json()["has_more"] is False
    bad = client.get("/v1/dead-letters?after=abc")
    assert bad.status_code == 422 and "after" in bad.text
    metrics = client.get("/metrics")
    assert 'scorer_dead_letters{source="nats"} 1.0' in metrics.text
