"""The customer profile: when we first and last saw them, their traits and consent."""

from __future__ import annotations

import json

import asyncpg

from service.vocabulary import CONSENT_CHANNELS

_PROFILE_SQL = """
SELECT c.customer_id, c.first_seen_at, c.last_seen_at,
  (SELECT coalesce(jsonb_agg(value ORDER BY occurred_at, event_id), '[]'::jsonb)::text
     FROM customer_facts WHERE customer_id = c.customer_id AND kind = 'traits') AS traits,
  (SELECT coalesce(jsonb_object_agg(kind, value), '{}'::jsonb)::text FROM (
     SELECT DISTINCT ON (kind) kind, value FROM customer_facts
     WHERE customer_id = c.customer_id AND kind LIKE 'consent:%'
     ORDER BY kind, occurred_at DESC, event_id DESC) latest) AS consent
FROM customers c WHERE c.customer_id = $1
"""


async def read_profile(conn: asyncpg.Connection, customer_id: str) -> dict | None:
    row = await conn.fetchrow(_PROFILE_SQL, customer_id)
    if row is None:
        return None
    consent = json.loads(row["consent"])
    traits: dict = {}
    for stated in json.loads(row["traits"]):  # later identify calls override earlier keys
        traits.update(stated)
    return {
        "customer_id": row["customer_id"],
        "first_seen_at": row["first_seen_at"],
        "last_seen_at": row["last_seen_at"],
        "traits": traits,
        "consent": {channel: consent.get(f"consent:{channel}") for channel in CONSENT_CHANNELS},
    }
