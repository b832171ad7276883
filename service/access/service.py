"""API keys: created once, shown once, stored only as SHA-256 hashes.

Keys are 256-bit random tokens, so a fast unsalted hash is safe (there is
nothing to brute-force); verification is a primary-key lookup of the hash.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.access.models import api_keys
from service.db import RequestPool

SCOPES = ("events:write", "scores:read", "privacy", "admin")
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
    rate_limit_per_second: float | None = None  # None: the default limit
    expires_at: datetime | None = None  # None: never

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def check_scopes(scopes: list[str]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return tuple(dict.fromkeys(scopes))


async def create_key(
    conn: AsyncConnection,
    name: str,
    scopes: list[str],
    rate_limit_per_second: float | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, ApiKey]:
    if rate_limit_per_second is not None and rate_limit_per_second < 0:
        raise ValueError("the rate limit must be >= 0 requests per second (0: unlimited)")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(
        name=name,
        prefix=display_prefix(key),
        scopes=check_scopes(scopes),
        rate_limit_per_second=rate_limit_per_second,
        expires_at=expires_at,
    )
    await conn.execute(
        insert(api_keys).values(
            key_hash=hash_key(key),
            name=name,
            prefix=record.prefix,
            scopes=list(record.scopes),
            rate_limit_per_second=rate_limit_per_second,
            expires_at=expires_at,
        )
    )
    return key, record


async def ensure_key(conn: AsyncConnection, key: str, name: str, scopes: list[str]) -> bool:
    """Make a given key (e.g. SCORER_BOOTSTRAP_API_KEY) valid with these scopes, without
    expiry; whether that created or changed it (every worker's start ensures it again)."""
    statement = pg_insert(api_keys).values(
        key_hash=hash_key(key), name=name, prefix=display_prefix(key), scopes=scopes
    )
    stored = api_keys.c
    result = await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["key_hash"],
            set_={"scopes": scopes, "revoked_at": None, "expires_at": None},
            where=(stored.scopes != scopes)
            | stored.revoked_at.is_not(None)
            | stored.expires_at.is_not(None),
        ).returning(stored.key_hash)
    )
    return result.first() is not None


def _key(row) -> ApiKey:
    return ApiKey(
        row.name,
        row.prefix,
        tuple(row.scopes),
        row.created_at,
        row.revoked_at,
        row.rate_limit_per_second,
        row.expires_at,
    )


async def list_keys(conn: AsyncConnection) -> list[ApiKey]:
    rows = await conn.execute(select(api_keys).order_by(api_keys.c.created_at))
    return [_key(row) for row in rows]


async def revoke_key(conn: AsyncConnection, prefix_or_name: str) -> list[ApiKey]:
    """Revoke by the shown prefix or by name; returns the keys revoked."""
    result = await conn.execute(
        update(api_keys)
        .where(
            (api_keys.c.prefix == prefix_or_name) | (api_keys.c.name == prefix_or_name),
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now().astimezone())
        .returning(*api_keys.c)
    )
    return [_key(row) for row in result]


# An expired key is still found: it is refused with its own answer, naming the date.
_ACTIVE_KEY = """
SELECT name, prefix, scopes, rate_limit_per_second, expires_at FROM api_keys
WHERE key_hash = $1 AND revoked_at IS NULL
"""


class KeyVerifier:
    """Looks keys up by hash, remembering answers briefly so reads cost no extra query.

    A revoked key stops working within `ttl_seconds`; an expiry is remembered with the key
    and compared at each request, so it takes effect on time (and a changed expiry within
    `ttl_seconds`). Known keys and unknown ones are remembered apart: the unknown ones in a
    small LRU, so traffic with made-up keys can evict only other made-up keys, never a real
    key's entry.
    """

    def __init__(self, ttl_seconds: float = 5.0, unknown_entries: int = 1024) -> None:
        self.ttl = ttl_seconds
        self.unknown_entries = unknown_entries
        self._known: dict[str, tuple[float, ApiKey]] = {}
        self._unknown: OrderedDict[str, float] = OrderedDict()

    async def verify(self, pool: RequestPool, key: str) -> ApiKey | None:
        digest = hash_key(key)
        now = time.monotonic()
        known = self._known.get(digest)
        if known and now - known[0] < self.ttl:
            return known[1]
        seen_unknown = self._unknown.get(digest)
        if seen_unknown is not None and now - seen_unknown < self.ttl:
            return None
        async with pool.acquire() as conn:
            row = await conn.fetchrow(_ACTIVE_KEY, digest)
        if row is None:
            self._known.pop(digest, None)
            self._unknown[digest] = now
            self._unknown.move_to_end(digest)
            while len(self._unknown) > self.unknown_entries:
                self._unknown.popitem(last=False)
            return None
        found = ApiKey(
            row["name"],
            row["prefix"],
            tuple(row["scopes"]),
            rate_limit_per_second=row["rate_limit_per_second"],
            expires_at=row["expires_at"],
        )
        self._known[digest] = (now, found)
        return found


class RateLimiter:
    """Per-key token buckets in this worker: `rate` requests a second, bursts of up to two
    seconds' worth. A key's own limit overrides the default; 0 means none."""

    BURST_SECONDS = 2.0

    def __init__(self, default_rate: float) -> None:
        self.default_rate = default_rate
        self._buckets: dict[str, list[float]] = {}  # key prefix -> [tokens, last refill]

    def rate_of(self, key: ApiKey) -> float:
        return self.default_rate if key.rate_limit_per_second is None else key.rate_limit_per_second

    def take(self, key: ApiKey) -> RateDecision | None:
        """None when the key has no limit; else whether a request may pass now."""
        rate = self.rate_of(key)
        if rate <= 0:
            return None
        capacity = rate * self.BURST_SECONDS
        now = time.monotonic()
        bucket = self._buckets.setdefault(key.prefix, [capacity, now])
        bucket[0] = min(capacity, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        allowed = bucket[0] >= 1.0
        if allowed:
            bucket[0] -= 1.0
        return RateDecision(
            allowed=allowed,
            limit=capacity,
            remaining=int(bucket[0]),
            retry_after=0.0 if allowed else (1.0 - bucket[0]) / rate,
            reset=(capacity - bucket[0]) / rate,
        )


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: float
    remaining: int
    retry_after: float  # seconds until one request may pass
    reset: float  # seconds until the bucket is full again

    def headers(self) -> dict[str, str]:
        """The IETF RateLimit header fields, and Retry-After when refused."""
        headers = {
            "RateLimit-Limit": str(int(self.limit)),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers
