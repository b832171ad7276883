"""The background work of a process: the scoring loop and change-feed retention (and,
wired in beside them, webhook delivery). `scorer serve` runs it in each worker unless
`SCORER_BACKGROUND_WORK=false`; `scorer worker` runs it alone. Several processes share
the work through PostgreSQL row locks, so any number may run."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from service.changes.service import purge_expired
from service.config import Settings
from service.db import session_deadlines
from service.scoring.freshness import LoopSettings, ScoringLoop
from service.scoring.store import ModelStore
from service.scoring.transitions import Thresholds

log = logging.getLogger("scorer.background")

RETENTION_EVERY_SECONDS = 60.0
# Background statements may take longer than a request's deadline (a batch of 500
# customers) but must never hang on a lock for long.
_STATEMENT_SECONDS, _LOCK_SECONDS = 30.0, 5.0


async def open_pool(dsn: str, size: int = 3) -> asyncpg.Pool:
    settings = session_deadlines(statement_seconds=_STATEMENT_SECONDS, lock_seconds=_LOCK_SECONDS)
    return await asyncpg.create_pool(dsn, min_size=1, max_size=size, server_settings=settings)


def scoring_loop(pool: asyncpg.Pool, models: ModelStore, settings: Settings) -> ScoringLoop:
    thresholds = Thresholds(settings.changes.churn_delta, settings.changes.pcltv_ratio)
    return ScoringLoop(
        pool, models, settings.zone, LoopSettings(settings.scoring_batch, thresholds=thresholds)
    )


async def keep_retention(pool: asyncpg.Pool, days: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            async with pool.acquire() as conn:
                while await purge_expired(conn, days):
                    pass
        except Exception:  # retention is retried next round; it must not end the process
            log.exception("change feed retention failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RETENTION_EVERY_SECONDS)


class Background:
    """Started in a lifespan or by `scorer worker`; `stop()` lets each loop finish its
    batch (a batch is one transaction, so stopping mid-way loses nothing either)."""

    def __init__(self, pool: asyncpg.Pool, models: ModelStore, settings: Settings) -> None:
        self.pool = pool
        self._stop = asyncio.Event()
        loops = [
            scoring_loop(pool, models, settings).run(self._stop),
            keep_retention(pool, settings.changes.retention_days, self._stop),
        ]
        self._tasks = [asyncio.create_task(loop) for loop in loops]

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks)

    async def stop(self, seconds: float = 10.0) -> None:
        self._stop.set()
        _, pending = await asyncio.wait(self._tasks, timeout=seconds)
        for task in pending:
            task.cancel()
        await self.pool.close()
