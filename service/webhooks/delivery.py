"""Delivery: claim due deliveries, make one signed attempt each, record what happened.

A claim (`FOR UPDATE SKIP LOCKED`) leases the delivery for longer than an attempt can
take and commits at once, so no transaction stays open while a receiver answers; a process
that dies mid-attempt leaves the lease to run out and the delivery to another process. The
outcome is written only if the delivery is still at the attempt that was claimed.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx

from service.ops.metrics import (
    WEBHOOK_DELIVERIES,
    WEBHOOK_DELIVERIES_PENDING,
    WEBHOOK_DELIVERY_LATENCY,
)
from service.webhooks import signing, targets

log = logging.getLogger("scorer.webhooks")

# Past an attempt's timeout, how much longer a claim is held before others may take it.
LEASE_MARGIN_SECONDS = 15.0
# A receiver's Retry-After is honoured up to a day (the schedule's longest default step).
MAX_RETRY_AFTER_SECONDS = 86400.0
JITTER = 0.1
# Of a non-2xx answer, the start of the body is kept as the error, to debug the receiver.
ERROR_BODY_BYTES = 256
KEPT_ATTEMPTS = 50
USER_AGENT = "customer-scorer-webhooks/1"
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Claimed:
    id: str
    endpoint_id: str
    url: str
    signing_secrets: list[str]
    payload: str
    occurred_at: datetime
    attempt: int
    round_attempt: int
    delivered_before: bool


@dataclass(frozen=True)
class Result:
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Decision:
    status: str  # pending, delivered or failed
    outcome: str  # for the metric: delivered, retrying, failed, gone
    delay: float | None = None  # pending: seconds until the next attempt
    throttle: float | None = None  # seconds none of the webhook's deliveries may go out
    gone: bool = False


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def jittered(seconds: float) -> float:
    """±10%, so that deliveries that failed together do not all come back together."""
    return seconds * random.uniform(1 - JITTER, 1 + JITTER)


def decide(result: Result, round_attempt: int, schedule: tuple[float, ...]) -> Decision:
    """What follows attempt `round_attempt` (1-based, since the delivery was queued)."""
    if result.delivered:
        return Decision("delivered", "delivered")
    if result.status_code == 410:
        return Decision("failed", "gone", gone=True)
    if round_attempt >= len(schedule):
        return Decision("failed", "failed")
    delay = jittered(schedule[round_attempt])
    throttle = None
    if result.status_code in (429, 503) and result.retry_after is not None:
        # Never sooner than the receiver asked, nor than the schedule's next step.
        throttle = min(result.retry_after, MAX_RETRY_AFTER_SECONDS)
        delay = max(delay, throttle)
    return Decision("pending", "retrying", delay=delay, throttle=throttle)


# Per webhook that may be sent to now (enabled, not throttled), in random order, its due
# deliveries: a paused webhook's backlog is never scanned, and a webhook catching up after an
# outage does not always go first.
_CLAIM = """
WITH due AS (
    SELECT d.id
    FROM (SELECT id FROM webhook_endpoints
          WHERE enabled AND (throttled_until IS NULL OR throttled_until <= now())
          ORDER BY random()) e
    CROSS JOIN LATERAL (
        SELECT id FROM webhook_deliveries
        WHERE endpoint_id = e.id AND status = 'pending' AND next_attempt_at <= now()
          AND (leased_until IS NULL OR leased_until <= now())
        ORDER BY next_attempt_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED
    ) d
    LIMIT $1
)
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, round_attempts = d.round_attempts + 1,
    leased_until = now() + make_interval(secs => $2)
FROM due, webhook_endpoints e
WHERE d.id = due.id AND e.id = d.endpoint_id
RETURNING d.id, d.endpoint_id, e.url, e.secret,
    CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous,
    d.payload, d.occurred_at, d.attempts, d.round_attempts, d.delivered_at IS NOT NULL AS sent
"""


async def claim(conn: asyncpg.Connection, limit: int, lease_seconds: float) -> list[Claimed]:
    rows = await conn.fetch(_CLAIM, limit, lease_seconds)
    return [
        Claimed(
            id=row["id"],
            endpoint_id=row["endpoint_id"],
            url=row["url"],
            signing_secrets=[row["secret"], *([row["previous"]] if row["previous"] else [])],
            payload=row["payload"],
            occurred_at=row["occurred_at"],
            attempt=row["attempts"],
            round_attempt=row["round_attempts"],
            delivered_before=row["sent"],
        )
        for row in rows
    ]


def _describe(error: BaseException) -> str:
    text = str(error) or repr(error)
    return f"{type(error).__name__}: {text}"


def _storable(text: str) -> str:
    return _UNSTORABLE.sub("?", text)


async def _start_of_body(response: httpx.Response) -> str:
    kept = b""
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) >= ERROR_BODY_BYTES:
            break
    return kept[:ERROR_BODY_BYTES].decode("utf-8", "replace")


async def attempt(
    http: httpx.AsyncClient, claimed: Claimed, allow_private: bool, timeout: float
) -> Result:
    """One POST of the delivery, signed for this attempt's timestamp."""
    at = datetime.now(UTC)
    started = time.monotonic()

    def result(status_code: int | None, error: str | None, **extra) -> Result:
        duration = round((time.monotonic() - started) * 1000, 1)
        return Result(at, status_code, error and _storable(error), duration, **extra)

    try:
        target = await targets.request_for(claimed.url, allow_private)
    except targets.TargetRefused as refused:
        return result(None, f"target refused: {refused}")
    timestamp = int(time.time())
    body = claimed.payload.encode()
    headers = {
        **target.headers,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": claimed.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(
            claimed.signing_secrets, claimed.id, timestamp, body
        ),
    }
    try:
        async with (
            asyncio.timeout(timeout),
            http.stream(
                "POST", target.url, content=body, headers=headers, extensions=target.extensions
            ) as response,
        ):
            status = response.status_code
            # Read (the start of) the body in every case: a connection whose answer was read
            # to its end goes back to the pool, one left unread is closed, and a new one
            # per delivery costs a TCP (and TLS) handshake each.
            start = await _start_of_body(response)
            if 200 <= status < 300:
                return result(status, None)
            error = f"HTTP {status}: {start}" if start.strip() else f"HTTP {status}"
            if 300 <= status < 400:
                error += " (redirects are not followed: update the webhook's url)"
            wait = retry_after_seconds(response.headers.get("retry-after"), at)
            return result(status, error, retry_after=wait)
    except TimeoutError:
        return result(None, f"no answer within {timeout:g} s")
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as error:
        return result(None, _describe(error))


_RECORD = """
UPDATE webhook_deliveries SET
    status = $3,
    next_attempt_at = CASE WHEN $4::float8 IS NULL THEN next_attempt_at
                           ELSE now() + make_interval(secs => $4) END,
    leased_until = NULL,
    last_attempt_at = $5,
    last_status_code = $6,
    last_error = $7,
    delivered_at = CASE WHEN $3 = 'delivered' THEN now() ELSE delivered_at END,
    attempt_log = (CASE WHEN jsonb_array_length(attempt_log) >= $9
                        THEN attempt_log - 0 ELSE attempt_log END) || jsonb_build_array($8::jsonb)
WHERE id = $1 AND attempts = $2 AND status = 'pending'
"""

_THROTTLE = """
UPDATE webhook_endpoints
SET throttled_until = greatest(coalesce(throttled_until, now()), now() + make_interval(secs => $2))
WHERE id = $1
"""

# 410 Gone: the receiver wants no more; what was still to be sent to it is cancelled.
_GONE = """
UPDATE webhook_endpoints
SET enabled = false, disabled_reason = $2, throttled_until = NULL, updated_at = now()
WHERE id = $1
"""
_CANCEL = """
UPDATE webhook_deliveries SET status = 'cancelled', leased_until = NULL
WHERE endpoint_id = $1 AND status = 'pending' AND id <> $2
"""


async def record(
    conn: asyncpg.Connection, claimed: Claimed, result: Result, decision: Decision
) -> None:
    entry = {
        "attempt": claimed.attempt,
        "at": result.at.isoformat(),
        "status_code": result.status_code,
        "error": result.error,
        "duration_ms": result.duration_ms,
    }
    async with conn.transaction():
        written = await conn.execute(
            _RECORD,
            claimed.id,
            claimed.attempt,
            decision.status,
            decision.delay,
            result.at,
            result.status_code,
            result.error,
            json.dumps(entry),
            KEPT_ATTEMPTS,
        )
        if written == "UPDATE 0":  # cancelled, or claimed again after the lease ran out
            return
        if decision.throttle:
            await conn.execute(_THROTTLE, claimed.endpoint_id, decision.throttle)
        if decision.gone:
            reason = f"the receiver answered 410 Gone at {result.at.isoformat()}"
            await conn.execute(_GONE, claimed.endpoint_id, reason)
            await conn.execute(_CANCEL, claimed.endpoint_id, claimed.id)
    WEBHOOK_DELIVERIES.labels(outcome=decision.outcome).inc()
    fields = {
        "delivery": claimed.id,
        "webhook": claimed.endpoint_id,
        "attempt": claimed.attempt,
        "status_code": result.status_code,
        "error": result.error,
        "outcome": decision.outcome,
        "ms": result.duration_ms,
    }
    log.info("webhook attempt", extra={"fields": fields})
    if decision.status == "delivered" and not claimed.delivered_before:
        WEBHOOK_DELIVERY_LATENCY.observe((datetime.now(UTC) - claimed.occurred_at).total_seconds())


_PENDING = "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"


async def refresh_gauge(conn: asyncpg.Connection) -> None:
    """Deliveries still to be sent, for /metrics, whichever process will send them."""
    WEBHOOK_DELIVERIES_PENDING.set(await conn.fetchval(_PENDING))


_PURGE_FINISHED = """
DELETE FROM webhook_deliveries
WHERE id IN (SELECT id FROM webhook_deliveries
             WHERE status <> 'pending' AND occurred_at < now() - make_interval(days => $1)
             LIMIT $2)
"""


async def purge_finished(conn: asyncpg.Connection, retention_days: int, batch: int = 10_000) -> int:
    """Delete one batch of finished deliveries (delivered, failed, cancelled) of changes past
    the feed's retention, which replay can no longer reach anyway; the number deleted."""
    status = await conn.execute(_PURGE_FINISHED, retention_days, batch)
    return int(status.split()[-1])
