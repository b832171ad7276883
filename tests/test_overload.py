"""Overload answers: admission control sheds with a fast 503, per-key rate limits answer 429
with `Retry-After` and `RateLimit-*`, made-up keys cannot evict real ones from the cache."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time

import asyncpg
import httpx
import pytest

from service.access.service import KeyVerifier, hash_key
from service.db import RequestPool, asyncpg_dsn
from tests.conftest import run_sql, start_server, stop_server


@pytest.fixture(scope="module")
def narrow_server(database_url, tmp_path_factory):
    """A server admitting one request at a time."""
    running = start_server(
        database_url,
        tmp_path_factory.mktemp("narrow") / "server.log",
        SCORER_MAX_REQUESTS_IN_FLIGHT="1",
    )
    yield running
    stop_server(running)


def test_requests_past_the_in_flight_bound_get_a_fast_503(narrow_server):
    server = narrow_server

    async def hold_lock() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(server.database_url))
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE customer_daily IN ACCESS EXCLUSIVE MODE")
                await asyncio.sleep(3)
        finally:
            await conn.close()

    locker = threading.Thread(target=asyncio.run, args=(hold_lock(),))
    locker.start()
    time.sleep(0.5)
    slow: dict = {}

    def read_blocked() -> None:
        with server.client(server.admin_key) as http:
            slow["response"] = http.get("/v1/customers/nobody/features")

    reader = threading.Thread(target=read_blocked)
    reader.start()
    time.sleep(0.3)  # the first request now waits for the lock
    with server.client(server.admin_key) as http:
        started = time.monotonic()
        shed = http.get("/v1/customers/nobody/features")
        elapsed = time.monotonic() - started
        assert http.get("/readyz").status_code in (200, 503)  # never shed itself
    reader.join()
    locker.join()
    assert shed.status_code == 503, shed.text
    assert elapsed < 0.5
    assert shed.headers["retry-after"] == "1"
    assert shed.json()["request_id"] == shed.headers["x-request-id"]
    assert "in flight" in shed.json()["detail"]
    assert slow["response"].status_code == 504  # its lock wait ran out (lock_timeout)


def test_a_key_over_its_rate_limit_gets_429_with_rate_limit_headers(server):
    key = "cs_test_" + secrets.token_urlsafe(24)
    run_sql(
        server.database_url,
        "INSERT INTO api_keys (key_hash, name, prefix, scopes, rate_limit_per_second) "
        "VALUES ($1, 'limited', $2, ARRAY['scores:read'], 1)",
        hash_key(key),
        key[:10],
        fetch=False,
    )
    with server.client(key) as http:
        answers = [http.get("/v1/customers/nobody/features") for _ in range(4)]
    assert [a.status_code for a in answers[:2]] == [404, 404]  # a burst of two seconds' worth
    limited = answers[2]
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-limit"] == "2"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert int(limited.headers["ratelimit-reset"]) >= 1
    assert "rate limit" in limited.json()["detail"]
    with server.client(server.admin_key) as http:  # other keys are not affected
        assert http.get("/v1/customers/nobody/features").status_code == 404


def test_made_up_keys_cannot_evict_a_real_key(server):
    key = "cs_test_" + secrets.token_urlsafe(24)
    run_sql(
        server.database_url,
        "INSERT INTO api_keys (key_hash, name, prefix, scopes) "
        "VALUES ($1, 'cached', $2, ARRAY['scores:read'])",
        hash_key(key),
        key[:10],
        fetch=False,
    )

    async def flood() -> tuple[object, KeyVerifier]:
        pool = await RequestPool.open(
            asyncpg_dsn(server.database_url),
            2,
            statement_seconds=2,
            lock_seconds=1,
            connect_seconds=2,
            acquire_seconds=1,
        )
        verifier = KeyVerifier(ttl_seconds=60, unknown_entries=100)
        try:
            assert await verifier.verify(pool, key) is not None
            for _ in range(1000):
                assert await verifier.verify(pool, "cs_" + secrets.token_urlsafe(32)) is None
            await pool.close()  # from here, an answer can only come from the cache
            return await verifier.verify(pool, key), verifier
        finally:
            await pool.close()

    found, verifier = asyncio.run(flood())
    assert found is not None and found.name == "cached"
    assert len(verifier._unknown) == 100


def test_unknown_keys_are_still_refused_under_a_flood(server):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(50):
            answer = http.get(
                "/v1/customers/x/features",
                headers={"Authorization": "Bearer nope" + secrets.token_hex(8)},
            )
            assert answer.status_code == 401
            assert answer.json()["request_id"]
