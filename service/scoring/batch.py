"""`scorer rescore`: every customer's current scores, in batches, into `customer_scores`.

A row's `change_seq` takes the next value of one sequence whenever its scores change,
so "what changed since cursor N" is an index range scan.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Sequence
from datetime import date, datetime

import asyncpg

from service.features.service import read_features
from service.scoring.engine import ModelSet

CHUNK = 5000
READ_AHEAD = 2

_UPSERT = """
INSERT INTO customer_scores AS s (customer_id, as_of, churn_probability, churn_band, pcltv,
  pcltv_tier, segment, r, f, m, model_versions, change_seq)
SELECT u.*, nextval('customer_scores_change_seq')
FROM unnest($1::text[], $2::date[], $3::float8[], $4::text[], $5::float8[], $6::text[],
            $7::text[], $8::int[], $9::int[], $10::int[], $11::jsonb[]) AS u
ON CONFLICT (customer_id) DO UPDATE SET
  as_of = EXCLUDED.as_of, churn_probability = EXCLUDED.churn_probability,
  churn_band = EXCLUDED.churn_band, pcltv = EXCLUDED.pcltv, pcltv_tier = EXCLUDED.pcltv_tier,
  segment = EXCLUDED.segment, r = EXCLUDED.r, f = EXCLUDED.f, m = EXCLUDED.m,
  model_versions = EXCLUDED.model_versions, change_seq = EXCLUDED.change_seq, updated_at = now()
WHERE (s.churn_probability, s.pcltv, s.segment, s.r, s.f, s.m, s.model_versions)
  IS DISTINCT FROM (EXCLUDED.churn_probability, EXCLUDED.pcltv, EXCLUDED.segment,
                    EXCLUDED.r, EXCLUDED.f, EXCLUDED.m, EXCLUDED.model_versions)
"""


async def _features(conn: asyncpg.Connection, ids: Sequence[str], as_of, day) -> list[dict]:
    found = await read_features(conn, ids, as_of, day)
    return [found[i] for i in ids if i in found]


async def _store(conn: asyncpg.Connection, models: ModelSet, rows: list[dict], day) -> int:
    if not rows:
        return 0
    scores = models.score(rows)
    versions = json.dumps(models.versions, sort_keys=True)
    await conn.execute(
        _UPSERT,
        [row["customer_id"] for row in rows],
        [day] * len(rows),
        [round(float(p), 6) for p in scores.churn_probability],
        scores.churn_bands,
        [round(float(v), 2) for v in scores.pcltv],
        scores.pcltv_tiers,
        scores.segments,
        scores.r.tolist(),
        scores.f.tolist(),
        scores.m.tolist(),
        [versions] * len(rows),
    )
    return len(rows)


async def rescore(
    pool: asyncpg.Pool,
    models: ModelSet,
    as_of: datetime,
    day: date,
    customer_id: str | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Chunks are pipelined: PostgreSQL computes the features of the next READ_AHEAD chunks
    on their own connections (one core each) while this process scores and stores the
    current one on another. `pool` needs READ_AHEAD + 1 connections."""

    async def features(ids: Sequence[str]) -> list[dict]:
        async with pool.acquire() as reader:
            return await _features(reader, ids, as_of, day)

    async with pool.acquire() as writer:
        if customer_id is not None:
            return await _store(writer, models, await features([customer_id]), day)
        ids = [
            r["customer_id"]
            for r in await writer.fetch(
                "SELECT customer_id FROM customers WHERE first_seen_day <= $1 ORDER BY 1", day
            )
        ]
        chunks = deque(ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK))
        pending: deque[asyncio.Task] = deque()
        done = 0
        while chunks or pending:
            while chunks and len(pending) < READ_AHEAD:
                pending.append(asyncio.create_task(features(chunks.popleft())))
            await asyncio.sleep(0)  # let the queries reach the server before scoring
            rows = await pending.popleft()
            done += await _store(writer, models, rows, day)
            progress(len(rows))
        return done
