"""Tombstones of erased customers: keyed hashes of their ids, so that the write path can
tell an erased customer's events (counted as duplicates, never stored again) without the
database keeping any erased id in clear.

The key is a random secret the service makes on its first erasure and keeps in
`privacy_secrets`: every process must hash with the same key for ever (a changed key would
let every erased customer back in), and the database is the one place all processes share.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

import asyncpg

SECRET_NAME = "tombstones"

# Null while nothing was ever erased: the write path then pays one index probe, no hashing.
_SECRET_IF_ANY_ERASED = """
SELECT secret FROM privacy_secrets
WHERE name = $1 AND EXISTS (SELECT 1 FROM erased_customers)
"""
_ERASED = "SELECT id_hash FROM erased_customers WHERE id_hash = ANY($1::bytea[])"
_ENSURE_SECRET = """
INSERT INTO privacy_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING
"""
_SECRET = "SELECT secret FROM privacy_secrets WHERE name = $1"
_BURY = "INSERT INTO erased_customers (id_hash) VALUES ($1) ON CONFLICT DO NOTHING"


def id_hash(secret: bytes, customer_id: str) -> bytes:
    return hmac.new(secret, customer_id.encode(), hashlib.sha256).digest()


async def erased_among(conn: asyncpg.Connection, customer_ids: Iterable[str]) -> set[str]:
    """Those of `customer_ids` that were erased."""
    ids = set(customer_ids)
    if not ids:
        return set()
    secret = await conn.fetchval(_SECRET_IF_ANY_ERASED, SECRET_NAME)
    if secret is None:
        return set()
    by_hash = {id_hash(secret, customer_id): customer_id for customer_id in ids}
    rows = await conn.fetch(_ERASED, list(by_hash))
    return {by_hash[row["id_hash"]] for row in rows}


async def bury(conn: asyncpg.Connection, customer_id: str) -> bool:
    """Tombstone `customer_id`; False when it already was."""
    await conn.execute(_ENSURE_SECRET, SECRET_NAME, secrets.token_bytes(32))
    secret = await conn.fetchval(_SECRET, SECRET_NAME)
    status = await conn.execute(_BURY, id_hash(secret, customer_id))
    return status == "INSERT 0 1"
