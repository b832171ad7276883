"""The webhooks' background work: the fan-out loop and the delivery loop, run by every
server process. Processes share the work through PostgreSQL alone (SKIP LOCKED claims), so
any number of them may run, and a restart loses nothing: what is still to be sent is in
the database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import asyncpg
import httpx

from service.config import Settings, WebhookSettings
from service.db import RequestPool
from service.webhooks import delivery, fanout

log = logging.getLogger("scorer.webhooks")

# The loops share the request pool; they hold at most this many of its connections at once,
# so requests keep the rest.
DATABASE_CONNECTIONS = 2
ERROR_PAUSE_SECONDS = 1.0
# Waits before writing an attempt's outcome again when the database failed; past them the
# lease runs out and the delivery is attempted again (same webhook-id, which receivers use
# to ignore repeats).
RECORD_RETRY_PAUSES = (0.2, 1.0, 5.0)


class _Database:
    def __init__(self, pool: RequestPool) -> None:
        self.pool = pool
        self.slots = asyncio.Semaphore(DATABASE_CONNECTIONS)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.slots, self.pool.acquire() as conn:
            yield conn


async def _pause(stop: asyncio.Event, seconds: float, *wake: asyncio.Event) -> None:
    """Sleep `seconds`, or less when `stop` or one of `wake` is set."""
    waiters = [asyncio.ensure_future(event.wait()) for event in (stop, *wake)]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _fan_out_loop(
    db: _Database,
    config: WebhookSettings,
    stop: asyncio.Event,
    queued: asyncio.Event,
    changed: asyncio.Event,
) -> None:
    """Sets `queued` when it queued deliveries, so this process sends them without waiting
    for its next poll; `changed` (set by this process's scoring loop when it recorded
    changes) likewise ends its own wait."""
    first_delay = config.schedule[0]
    while not stop.is_set():
        try:
            async with db.connection() as conn:
                step = await fanout.fan_out(conn, first_delay)
        except Exception:  # the database is down or slow: try again shortly
            log.warning("webhook fan-out failed; retrying", exc_info=True)
            await _pause(stop, ERROR_PAUSE_SECONDS)
            continue
        if step.queued:
            queued.set()
        if not step.more:
            await _pause(stop, config.poll_seconds, changed)
            changed.clear()


class _Deliverer:
    """Keeps up to `concurrency` attempts in flight, claiming more as attempts end."""

    def __init__(
        self,
        db: _Database,
        http: httpx.AsyncClient,
        config: WebhookSettings,
        queued: asyncio.Event,
    ) -> None:
        self.db = db
        self.http = http
        self.config = config
        self.lease = config.timeout_seconds + delivery.LEASE_MARGIN_SECONDS
        self.in_flight: set[asyncio.Task] = set()
        self.finished = asyncio.Event()  # an attempt ended: there is room again
        self.queued = queued

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                # Cleared before claiming: what happens from here on ends the pause below.
                self.finished.clear()
                self.queued.clear()
                room = self.config.concurrency - len(self.in_flight)
                claimed = []
                if room:
                    try:
                        async with self.db.connection() as conn:
                            claimed = await delivery.claim(conn, room, self.lease)
                    except Exception:  # the database is down or slow: try again shortly
                        log.warning("claiming webhook deliveries failed; retrying", exc_info=True)
                        await _pause(stop, ERROR_PAUSE_SECONDS)
                        continue
                for item in claimed:
                    task = asyncio.create_task(self._send(item))
                    self.in_flight.add(task)
                    task.add_done_callback(self._done)
                if len(claimed) < room or not room:
                    await _pause(stop, self.config.poll_seconds, self.finished, self.queued)
        finally:
            await self._drain()

    def _done(self, task: asyncio.Task) -> None:
        self.in_flight.discard(task)
        self.finished.set()

    async def _send(self, item: delivery.Claimed) -> None:
        config = self.config
        try:
            result = await delivery.attempt(
                self.http, item, config.allow_private_targets, config.timeout_seconds
            )
        except Exception:  # a fault of ours: its lease runs out and it is attempted again
            log.exception("webhook attempt %s failed unexpectedly", item.id)
            return
        decision = delivery.decide(result, item.round_attempt, config.schedule)
        for pause in (*RECORD_RETRY_PAUSES, None):
            try:
                async with self.db.connection() as conn:
                    await delivery.record(conn, item, result, decision)
                return
            except Exception:
                if pause is None:
                    log.error("could not record webhook attempt %s", item.id, exc_info=True)
                    return
                log.warning("recording webhook attempt %s failed; retrying", item.id)
                await asyncio.sleep(pause)

    async def _drain(self) -> None:
        """Let attempts in flight end (each is bounded by the timeout) and record them, so
        a shutdown neither repeats nor delays them; cancel what is left after that."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=self.config.timeout_seconds + 1)
        for task in set(self.in_flight):
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


async def run(
    pool: RequestPool,
    settings: Settings,
    stop: asyncio.Event,
    changed: asyncio.Event | None = None,
) -> None:
    """Fan out the change feed into deliveries and deliver them, until `stop` is set;
    idle loops look for work every `SCORER_WEBHOOK_POLL_SECONDS`, or at once when
    `changed` is set (changes recorded in this process)."""
    config = settings.webhook
    db = _Database(pool)
    limits = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=8)
    timeout = httpx.Timeout(config.timeout_seconds)
    queued = asyncio.Event()
    async with httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False) as http:
        await asyncio.gather(
            _fan_out_loop(db, config, stop, queued, changed or asyncio.Event()),
            _Deliverer(db, http, config, queued).run(stop),
        )
