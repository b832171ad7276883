"""Signing secrets of the webhook sources: added, listed (never in clear), removed, and
looked up per request (cached a few seconds, so a rotation takes effect within that)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg

KINDS = ("shopify", "stripe")
CACHE_SECONDS = 5.0
MAX_CACHED = 1000


@dataclass(frozen=True)
class SecretRecord:
    id: str
    kind: str
    account: str
    fingerprint: str
    created_at: datetime


def fingerprint(secret: str) -> str:
    """Tells two secrets apart in a listing without showing either."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


async def add(conn: asyncpg.Connection, kind: str, account: str, secret: str) -> SecretRecord:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if not account.strip():
        raise ValueError("the account (shop domain or Stripe account) is empty")
    if len(secret.strip()) < 8:
        raise ValueError("the secret is empty or shorter than 8 characters")
    row = await conn.fetchrow(
        "INSERT INTO source_secrets (id, kind, account, secret) VALUES ($1, $2, $3, $4) "
        "RETURNING id, kind, account, secret, created_at",
        "src_" + secrets.token_hex(6),
        kind,
        account.strip().lower(),
        secret.strip(),
    )
    return _record(row)


async def listing(conn: asyncpg.Connection) -> list[SecretRecord]:
    rows = await conn.fetch(
        "SELECT id, kind, account, secret, created_at FROM source_secrets ORDER BY created_at"
    )
    return [_record(row) for row in rows]


async def remove(conn: asyncpg.Connection, secret_id: str) -> SecretRecord | None:
    """The secret removed (as listed), or None when no secret has the id."""
    row = await conn.fetchrow(
        "DELETE FROM source_secrets WHERE id = $1 RETURNING id, kind, account, secret, created_at",
        secret_id,
    )
    return None if row is None else _record(row)


def _record(row) -> SecretRecord:
    return SecretRecord(
        row["id"], row["kind"], row["account"], fingerprint(row["secret"]), row["created_at"]
    )


class SecretCache:
    """The secrets of (kind, account) for verifying requests; `account` None: every
    account of the kind (Stripe endpoints are not told apart by the request)."""

    def __init__(self, seconds: float = CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._entries: dict[tuple[str, str | None], tuple[float, list[str]]] = {}

    async def get(self, pool, kind: str, account: str | None) -> list[str]:
        key = (kind, account.lower() if account else None)
        cached = self._entries.get(key)
        if cached and time.monotonic() - cached[0] < self.seconds:
            return cached[1]
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT secret FROM source_secrets WHERE kind = $1 "
                "AND ($2::text IS NULL OR account = $2)",
                *key,
            )
        found = [row["secret"] for row in rows]
        # Only known accounts are cached: a flood of made-up shop names must not grow it.
        if found:
            if len(self._entries) >= MAX_CACHED:
                self._entries.clear()
            self._entries[key] = (time.monotonic(), found)
        return found
