"""Scores into `customer_scores`, with the change records they cause, in the caller's
transaction: the one path of the scoring loop, the background sweep and `scorer rescore`.

Writers of one customer are serialised by a transaction lock on the customer (a key
space of its own, so event writers never wait for scoring), which keeps every change
record's `before` equal to the previous record's `after`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import asyncpg

from service.changes.service import NewChange, record
from service.features.service import read_features
from service.features.stored import features_json
from service.scoring.engine import ModelSet, Scores
from service.scoring.transitions import Snapshot, Thresholds, transitions

_LOCK = """
SELECT pg_advisory_xact_lock(hashtextextended('scores:' || id, 0))
FROM (SELECT DISTINCT unnest($1::text[]) AS id ORDER BY 1) k
"""
_TRY_LOCK = """
SELECT id FROM (SELECT DISTINCT unnest($1::text[]) AS id ORDER BY 1) k
WHERE pg_try_advisory_xact_lock(hashtextextended('scores:' || id, 0))
"""
SNAPSHOT_FIELDS = (
    "churn_probability",
    "churn_band",
    "pcltv",
    "pcltv_tier",
    "segment",
    "r",
    "f",
    "m",
)
_STORED = f"""
SELECT customer_id, {", ".join(SNAPSHOT_FIELDS)}, reported
FROM customer_scores WHERE customer_id = ANY($1::text[])
"""
_UPSERT = """
INSERT INTO customer_scores AS s (customer_id, as_of, churn_probability, churn_band, pcltv,
  pcltv_tier, segment, r, f, m, model_versions, features, reported)
SELECT * FROM unnest($1::text[], $2::date[], $3::float8[], $4::text[], $5::float8[],
  $6::text[], $7::text[], $8::int[], $9::int[], $10::int[], $11::jsonb[], $12::jsonb[],
  $13::jsonb[])
ON CONFLICT (customer_id) DO UPDATE SET
  as_of = EXCLUDED.as_of, churn_probability = EXCLUDED.churn_probability,
  churn_band = EXCLUDED.churn_band, pcltv = EXCLUDED.pcltv, pcltv_tier = EXCLUDED.pcltv_tier,
  segment = EXCLUDED.segment, r = EXCLUDED.r, f = EXCLUDED.f, m = EXCLUDED.m,
  model_versions = EXCLUDED.model_versions, features = EXCLUDED.features,
  reported = EXCLUDED.reported, updated_at = now()
"""
# Writes of these customers seen before their features are read are covered by this
# scoring; rows another scorer has claimed are skipped, not waited for (it holds them while
# it waits for our customer lock: waiting would deadlock).
_TAKE_WRITES = """
DELETE FROM score_outbox o
USING (SELECT customer_id, id FROM score_outbox WHERE customer_id = ANY($1::text[])
       FOR UPDATE SKIP LOCKED) t
WHERE o.customer_id = t.customer_id AND o.id = t.id
RETURNING extract(epoch FROM o.marked_at)::float8 AS marked
"""
# Suppressed (profiling consent withdrawn) or not known as of the day: no stored scores.
_FORGET = "DELETE FROM customer_scores WHERE customer_id = ANY($1::text[])"


@dataclass
class Materialized:
    scored: int = 0
    changes: list[NewChange] = field(default_factory=list)
    # When the outbox rows this scoring took were written (epoch seconds), for the lag.
    marked: list[float] = field(default_factory=list)


def snapshots(scores: Scores) -> list[Snapshot]:
    """The scores as the API serves them (same rounding), one per row."""
    return [
        {
            "churn_probability": round(float(p), 6),
            "churn_band": band,
            "pcltv": round(float(v), 2),
            "pcltv_tier": tier,
            "segment": segment,
            "r": int(r),
            "f": int(f),
            "m": int(m),
        }
        for p, band, v, tier, segment, r, f, m in zip(
            scores.churn_probability,
            scores.churn_bands,
            scores.pcltv,
            scores.pcltv_tiers,
            scores.segments,
            scores.r,
            scores.f,
            scores.m,
            strict=True,
        )
    ]


async def materialize(
    conn: asyncpg.Connection,
    models: ModelSet,
    customer_ids: Sequence[str],
    as_of: datetime,
    day: date,
    thresholds: Thresholds,
    wait: bool = True,
) -> Materialized:
    """Score and store `customer_ids` as of `day`. `wait=False` skips customers another
    transaction is scoring (the sweep: they are being refreshed anyway)."""
    if wait:
        await conn.execute(_LOCK, list(customer_ids))
        ids = sorted(set(customer_ids))
    else:
        ids = [row["id"] for row in await conn.fetch(_TRY_LOCK, list(customer_ids))]
    if not ids:
        return Materialized()
    taken = [row["marked"] for row in await conn.fetch(_TAKE_WRITES, ids)]
    found = await read_features(conn, ids, as_of, day)
    rows = [found[i] for i in ids if i in found and found[i]["consent"]["profiling"] is not False]
    scored = {row["customer_id"] for row in rows}
    if len(scored) < len(ids):
        await conn.execute(_FORGET, [i for i in ids if i not in scored])
    if not rows:
        return Materialized(marked=taken)
    new = snapshots(models.score(rows))
    stored_rows = await conn.fetch(_STORED, [row["customer_id"] for row in rows])
    stored = {row["customer_id"]: row for row in stored_rows}
    outcome = Materialized(scored=len(rows), marked=taken)
    reported_column = []
    for row, after in zip(rows, new, strict=True):
        customer_id = row["customer_id"]
        previous = stored.get(customer_id)
        before = None if previous is None else {f: previous[f] for f in SNAPSHOT_FIELDS}
        reported = None if previous is None else json.loads(previous["reported"])
        records, reported = transitions(before, reported, after, thresholds)
        outcome.changes.extend(NewChange(kind, customer_id, b, a) for kind, b, a in records)
        reported_column.append(json.dumps(reported))
    versions = models.versions_json
    await conn.execute(
        _UPSERT,
        [row["customer_id"] for row in rows],
        [day] * len(rows),
        *([s[f] for s in new] for f in SNAPSHOT_FIELDS),
        [versions] * len(rows),
        [features_json(row) for row in rows],
        reported_column,
    )
    await record(conn, outcome.changes)
    return outcome
