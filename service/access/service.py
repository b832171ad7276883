"""API keys: created once, shown once, stored only as SHA-256 hashes.

Keys are 256-bit random tokens, so a fast unsalted hash is safe (there is
nothing to brute-force); verification is a primary-key lookup of the hash.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.access.models import api_keys

SCOPES = ("events:write", "scores:read", "admin")
KEY_PREFIX = "cs_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:10]


@dataclass(frozen=True)
class ApiKey:
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def check_scopes(scopes: list[str]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return tuple(dict.fromkeys(scopes))


async def create_key(conn: AsyncConnection, name: str, scopes: list[str]) -> tuple[str, ApiKey]:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(name=name, prefix=display_prefix(key), scopes=check_scopes(scopes))
    await conn.execute(
        insert(api_keys).values(
            key_hash=hash_key(key), name=name, prefix=record.prefix, scopes=list(record.scopes)
        )
    )
    return key, record


async def ensure_key(conn: AsyncConnection, key: str, name: str, scopes: list[str]) -> None:
    """Make a given key (e.g. SCORER_BOOTSTRAP_API_KEY) valid with these scopes."""
    statement = pg_insert(api_keys).values(
        key_hash=hash_key(key), name=name, prefix=display_prefix(key), scopes=scopes
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["key_hash"], set_={"scopes": scopes, "revoked_at": None}
        )
    )


async def list_keys(conn: AsyncConnection) -> list[ApiKey]:
    rows = await conn.execute(select(api_keys).order_by(api_keys.c.created_at))
    return [ApiKey(r.name, r.prefix, tuple(r.scopes), r.created_at, r.revoked_at) for r in rows]


async def revoke_key(conn: AsyncConnection, prefix_or_name: str) -> int:
    """Revoke by the shown prefix or by name; returns how many keys were revoked."""
    result = await conn.execute(
        update(api_keys)
        .where(
            (api_keys.c.prefix == prefix_or_name) | (api_keys.c.name == prefix_or_name),
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now().astimezone())
    )
    return result.rowcount


class KeyVerifier:
    """Looks keys up by hash, remembering answers briefly so reads cost no extra query.

    A revoked key stops working within `ttl_seconds`.
    """

    def __init__(self, ttl_seconds: float = 5.0) -> None:
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    async def verify(self, pool: asyncpg.Pool, key: str) -> ApiKey | None:
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        row = await pool.fetchrow(
            "SELECT name, prefix, scopes FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            digest,
        )
        found = ApiKey(row["name"], row["prefix"], tuple(row["scopes"])) if row else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now, found)
        return found
