"""`scorer rescore`: every customer's current scores, in batches, into `customer_scores`.

A row's `change_seq` takes the next value of one sequence whenever its scores change,
so "what changed since cursor N" is an index range scan.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date, datetime

import asyncpg

from service.features.service import read_features
from service.scoring.engine import ModelSet

CHUNK = 5000

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


async def rescore_customers(
    conn: asyncpg.Connection, models: ModelSet, ids: Sequence[str], as_of: datetime, day: date
) -> int:
    found = await read_features(conn, ids, as_of, day)
    rows = [found[i] for i in ids if i in found]
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
    conn: asyncpg.Connection,
    models: ModelSet,
    as_of: datetime,
    day: date,
    customer_id: str | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    if customer_id is not None:
        return await rescore_customers(conn, models, [customer_id], as_of, day)
    ids = [
        r["customer_id"]
        for r in await conn.fetch(
            "SELECT customer_id FROM customers WHERE first_seen_day <= $1 ORDER BY 1", day
        )
    ]
    done = 0
    for start in range(0, len(ids), CHUNK):
        done += await rescore_customers(conn, models, ids[start : start + CHUNK], as_of, day)
        progress(min(CHUNK, len(ids) - start))
    return done
