"""The scoring loop: keeps `customer_scores` fresh.

Each pass first drains the outbox (customers written since they were last scored), in
batches claimed with `FOR UPDATE SKIP LOCKED` so that any number of processes share it;
when the outbox is empty it sweeps customers whose stored scores are of an earlier day or
other models (day rollover, model activation), one batch at a time, so fresh writes are
never queued behind a sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import asyncpg

from service.db import RequestPool
from service.ops.metrics import (
    CHANGES_RECORDED,
    CUSTOMERS_RESCORED,
    OUTBOX_PENDING,
    SCORE_LAG_SECONDS,
)
from service.scoring.materialize import Materialized, materialize
from service.scoring.store import ModelStore
from service.scoring.transitions import Thresholds

log = logging.getLogger("scorer.scoring")

_CLAIM = """
DELETE FROM score_outbox o
USING (SELECT customer_id, id FROM score_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) c
WHERE o.customer_id = c.customer_id AND o.id = c.id
RETURNING o.customer_id, extract(epoch FROM o.marked_at)::float8 AS marked
"""
_STALE = """
SELECT c.customer_id FROM customers c LEFT JOIN customer_scores s USING (customer_id)
WHERE c.customer_id > $1 AND c.first_seen_day <= $2
  AND (s.customer_id IS NULL OR s.as_of <> $2 OR s.model_versions <> $3::jsonb)
ORDER BY c.customer_id
LIMIT $4
"""


@dataclass
class LoopSettings:
    batch: int = 500
    idle_seconds: float = 0.05
    thresholds: Thresholds = Thresholds()


class ScoringLoop:
    def __init__(
        self,
        pool: RequestPool,
        models: ModelStore,
        zone: ZoneInfo,
        settings: LoopSettings,
        changed: asyncio.Event | None = None,
    ) -> None:
        self.pool, self.models, self.zone, self.settings = pool, models, zone, settings
        # Set whenever a batch recorded changes: what sends them need not wait for a poll.
        self.changed = changed or asyncio.Event()
        # The sweep's target (day, model versions) last completed, and the pass under way.
        self._swept: tuple | None = None
        self._pass: tuple | None = None
        self._after = ""

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                worked = await self.step()
            except Exception:  # a failed pass (database gone, a bad row) must not end the loop
                log.exception("scoring pass failed; retrying")
                worked = False
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.idle_seconds)

    async def step(self) -> bool:
        """One batch of work; False when there was none."""
        models = self.models.current
        if models is None:
            return False
        return await self.rescore_written() or await self.sweep_stale()

    def _now(self) -> tuple[datetime, object]:
        now = datetime.now(UTC)
        return now, now.astimezone(self.zone).date()

    async def rescore_written(self) -> bool:
        models = self.models.current
        async with self.pool.acquire() as conn, conn.transaction():
            claimed = await conn.fetch(_CLAIM, self.settings.batch)
            if not claimed:
                return False
            moment, day = self._now()
            ids = [row["customer_id"] for row in claimed]
            done = await materialize(conn, models, ids, moment, day, self.settings.thresholds)
        self._recorded(done, "written", [row["marked"] for row in claimed])
        return True

    async def sweep_stale(self) -> bool:
        models = self.models.current
        moment, day = self._now()
        versions = models.versions_json
        target = (day, versions)
        if target == self._swept:
            return False
        if target != self._pass:
            self._pass, self._after = target, ""
        async with self.pool.acquire() as conn, conn.transaction():
            ids = [
                row["customer_id"]
                for row in await conn.fetch(_STALE, self._after, day, versions, self.settings.batch)
            ]
            if not ids:
                self._swept = target
                return False
            self._after = ids[-1]
            done = await materialize(
                conn, models, ids, moment, day, self.settings.thresholds, wait=False
            )
        self._recorded(done, "sweep", [])
        return True

    def _recorded(self, done: Materialized, reason: str, claimed: list[float]) -> None:
        committed = time.time()
        if done.changes:
            self.changed.set()
        for marked in (*claimed, *done.marked):
            SCORE_LAG_SECONDS.observe(max(committed - marked, 0.0))
        CUSTOMERS_RESCORED.labels(reason).inc(done.scored)
        for change in done.changes:
            CHANGES_RECORDED.labels(change.type).inc()


async def refresh_gauge(conn: asyncpg.Connection) -> None:
    """Writes not yet rescored, for /metrics, whichever process drains them."""
    OUTBOX_PENDING.set(await conn.fetchval("SELECT count(*) FROM score_outbox"))
