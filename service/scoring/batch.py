"""`scorer rescore`: customers' scores as of a day into `customer_scores`, in batches,
through the scoring loop's own path (so the change feed sees what it changed).

Chunks of customers go to a few connections at once: while PostgreSQL computes one
chunk's features, this process scores and stores another's (the chunks are disjoint, so
their customer locks never meet; only the change records' commit takes turns).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime

import asyncpg

from service.scoring.engine import ModelSet
from service.scoring.materialize import materialize
from service.scoring.transitions import Thresholds

CHUNK = 1000
CONNECTIONS = 3

_CUSTOMERS = """
SELECT customer_id FROM customers WHERE customer_id > $1 AND first_seen_day <= $2
ORDER BY 1 LIMIT $3
"""


async def rescore(
    pool: asyncpg.Pool,
    models: ModelSet,
    as_of: datetime,
    day: date,
    thresholds: Thresholds,
    customer_id: str | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Every customer known as of `day` (or one); the number scored. `pool` needs
    CONNECTIONS connections."""

    async def score(ids: list[str]) -> int:
        async with pool.acquire() as conn, conn.transaction():
            done = await materialize(conn, models, ids, as_of, day, thresholds)
        progress(len(ids))
        return done.scored

    if customer_id is not None:
        return await score([customer_id])
    chunks: asyncio.Queue[list[str] | None] = asyncio.Queue(maxsize=CONNECTIONS)

    async def list_customers() -> None:
        after = ""
        async with pool.acquire() as conn:
            while ids := [
                r["customer_id"] for r in await conn.fetch(_CUSTOMERS, after, day, CHUNK)
            ]:
                after = ids[-1]
                await chunks.put(ids)
        for _ in range(CONNECTIONS):
            await chunks.put(None)

    async def work() -> int:
        scored = 0
        while (ids := await chunks.get()) is not None:
            scored += await score(ids)
        return scored

    lister = asyncio.create_task(list_customers())
    counts = await asyncio.gather(*(work() for _ in range(CONNECTIONS)))
    await lister
    return sum(counts)
