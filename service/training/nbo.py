"""The NBO acceptance model's training set, from the decision log and `offer_accepted`.

Each treatment decision that made an offer is one impression; it was accepted when an
`offer_accepted` event names its decision_id (recorded on the decision as `accepted_at`,
which outlives the event's retention). Features are as of the day before the
decision (no same-day leakage), from the same feature query as everything else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta

import asyncpg

from service.features.asof import end_of_day
from service.features.service import read_features
from service.training.propensity import ShownOffer

_IMPRESSIONS = """
SELECT d.customer_id, d.decision_id, d.decided_at, d.offer_id, d.action_probability,
       d.accepted_at IS NOT NULL AS accepted
FROM offer_decisions d
WHERE d.offer_id IS NOT NULL AND d."group" = 'treatment' AND d.decided_at::date <= $1
ORDER BY d.decided_at
"""

SegmentOf = Callable[[list[dict]], list[str]]


async def impressions(
    conn: asyncpg.Connection, as_of: date, segment_of: SegmentOf
) -> list[ShownOffer]:
    by_day: dict[date, list[asyncpg.Record]] = defaultdict(list)
    for row in await conn.fetch(_IMPRESSIONS, as_of):
        by_day[row["decided_at"].date() - timedelta(days=1)].append(row)
    shown: list[ShownOffer] = []
    for day, rows in sorted(by_day.items()):
        found = await read_features(conn, [r["customer_id"] for r in rows], end_of_day(day), day)
        known = [r for r in rows if r["customer_id"] in found]
        features = [found[r["customer_id"]] for r in known]
        segments = segment_of(features) if features else []
        shown.extend(
            ShownOffer(f, r["offer_id"], r["accepted"], s, r["action_probability"])
            for r, f, s in zip(known, features, segments, strict=True)
        )
    return shown
