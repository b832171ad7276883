"""The background work of a process: the scoring loop, webhook fan-out and delivery,
change-feed retention, raw-event retention (when SCORER_EVENT_RETENTION_DAYS is set), and
the insight snapshots and alerts.
`scorer serve` runs it in each worker unless `SCORER_BACKGROUND_WORK=false`; `scorer worker`
runs it alone. Several processes share the work through PostgreSQL row locks, so any number
may run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from service.changes.service import purge_expired
from service.config import Settings
from service.db import RequestPool
from service.events.retention import purge_events
from service.insights import alerts, refresh
from service.scoring.freshness import LoopSettings, ScoringLoop
from service.scoring.store import ModelStore
from service.scoring.transitions import Thresholds
from service.webhooks import dispatcher
from service.webhooks.delivery import purge_finished

log = logging.getLogger("scorer.background")

RETENTION_EVERY_SECONDS = 60.0
# Background statements may take longer than a request's deadline (a batch of 500
# customers) but must never hang on a lock for long.
_STATEMENT_SECONDS, _LOCK_SECONDS = 30.0, 5.0


# The scoring loop, retention and insights hold one connection each, webhook delivery up
# to two.
POOL_SIZE = 5


async def open_pool(dsn: str) -> RequestPool:
    """A pool of its own, so background work never takes a request's connection."""
    return await RequestPool.open(
        dsn,
        POOL_SIZE,
        statement_seconds=_STATEMENT_SECONDS,
        lock_seconds=_LOCK_SECONDS,
        connect_seconds=5.0,
        acquire_seconds=_STATEMENT_SECONDS,
    )


def scoring_loop(
    pool: RequestPool, models: ModelStore, settings: Settings, changed: asyncio.Event
) -> ScoringLoop:
    thresholds = Thresholds(settings.changes.churn_delta, settings.changes.pcltv_ratio)
    loop_settings = LoopSettings(settings.scoring_batch, thresholds=thresholds)
    return ScoringLoop(pool, models, settings.zone, loop_settings, changed)


async def keep_retention(pool: RequestPool, settings: Settings, stop: asyncio.Event) -> None:
    """Change records, and finished webhook deliveries of them, past the feed's retention;
    raw events past theirs, if set (each batch its own transaction, rows skipped when
    another process is deleting them)."""
    days = settings.changes.retention_days
    while not stop.is_set():
        try:
            async with pool.acquire() as conn:
                while await purge_expired(conn, days):
                    pass
                while await purge_finished(conn, days):
                    pass
                if settings.event_retention_days is not None:
                    today = datetime.now(UTC).astimezone(settings.zone).date()
                    await purge_events(conn, today, settings.event_retention_days)
        except Exception:  # retention is retried next round; it must not end the process
            log.exception("retention failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RETENTION_EVERY_SECONDS)


async def keep_insights(
    pool: RequestPool, models: ModelStore, settings: Settings, stop: asyncio.Event
) -> None:
    """Today's insight snapshots every SCORER_INSIGHTS_REFRESH_SECONDS (the daily kinds
    once a day), the alerts every SCORER_INSIGHTS_ALERT_SECONDS."""
    every = settings.insights
    refreshed_at = -every.refresh_seconds
    while not stop.is_set():
        today = datetime.now(UTC).astimezone(settings.zone).date()
        try:
            async with pool.acquire() as conn:
                if time.monotonic() - refreshed_at >= every.refresh_seconds:
                    context = refresh.SnapshotContext(today, settings.zone, models)
                    await refresh.refresh(conn, context, every_kind=False)
                    refreshed_at = time.monotonic()
                await alerts.evaluate(conn, today)
        except Exception:  # retried next round; it must not end the process
            log.exception("insights refresh failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(every.alert_seconds, every.refresh_seconds))


class Background:
    """Started in a lifespan or by `scorer worker`; `stop()` lets each loop finish its
    batch (a batch is one transaction, so stopping mid-way loses nothing either)."""

    def __init__(self, pool: RequestPool, models: ModelStore, settings: Settings) -> None:
        self.pool = pool
        self.grace_seconds = settings.webhook.timeout_seconds + 5.0
        self._stop = asyncio.Event()
        changed = asyncio.Event()  # the scoring loop recorded changes: fan them out now
        loops = [
            scoring_loop(pool, models, settings, changed).run(self._stop),
            keep_retention(pool, settings, self._stop),
            keep_insights(pool, models, settings, self._stop),
            dispatcher.run(pool, settings, self._stop, changed),
        ]
        self._tasks = [asyncio.create_task(loop) for loop in loops]

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks)

    async def stop(self, seconds: float | None = None) -> None:
        """Webhook attempts in flight end (at most their timeout) and are recorded first."""
        self._stop.set()
        seconds = seconds or self.grace_seconds
        _, pending = await asyncio.wait(self._tasks, timeout=seconds)
        for task in pending:
            task.cancel()
        await self.pool.close()
