"""`scorer rescore`: customers' scores as of a day into `customer_scores`, in batches,
through the scoring loop's own path (so the change feed sees what it changed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import asyncpg

from service.scoring.engine import ModelSet
from service.scoring.materialize import materialize
from service.scoring.transitions import Thresholds

CHUNK = 1000


async def rescore(
    conn: asyncpg.Connection,
    models: ModelSet,
    as_of: datetime,
    day: date,
    thresholds: Thresholds,
    customer_id: str | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Every customer known as of `day` (or one); the number scored."""
    if customer_id is not None:
        async with conn.transaction():
            done = await materialize(conn, models, [customer_id], as_of, day, thresholds)
        return done.scored
    scored, after = 0, ""
    while True:
        ids = [
            row["customer_id"]
            for row in await conn.fetch(
                "SELECT customer_id FROM customers WHERE customer_id > $1 AND first_seen_day <= $2"
                " ORDER BY 1 LIMIT $3",
                after,
                day,
                CHUNK,
            )
        ]
        if not ids:
            return scored
        after = ids[-1]
        # One transaction per chunk: the feed lock is held only for its tail.
        async with conn.transaction():
            done = await materialize(conn, models, ids, as_of, day, thresholds)
        scored += done.scored
        progress(len(ids))
