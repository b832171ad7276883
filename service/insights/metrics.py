"""The metrics alerts watch: what each means, what it may be about, and how it is read
(once per evaluation) from the live scores and the snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import asyncpg

from service.insights.service import distribution
from service.insights.snapshots import latest, on_day
from service.vocabulary import CHURN_BANDS, SEGMENTS, VALUE_TIERS


@dataclass(frozen=True)
class Metric:
    description: str
    subjects: tuple[str, ...] | None  # None: no subject; () any (a feature's name)
    default_subject: str | None = None


METRICS = {
    "churn_band_share": Metric(
        "Share of scored customers in a churn band (0–1).", CHURN_BANDS, "high"
    ),
    "segment_share": Metric("Share of scored customers in a segment (0–1).", SEGMENTS),
    "tier_share": Metric("Share of scored customers in a pCLTV tier (0–1).", VALUE_TIERS),
    "customers": Metric("Scored customers.", None),
    "equity_change_week": Metric(
        "Relative change of total pCLTV (or `historic` value) since the snapshot 7 days "
        "before (−0.1: fell by 10%).",
        ("pcltv", "historic"),
        "pcltv",
    ),
    "drift_psi": Metric(
        "PSI of a feature or prediction against training, from the latest model-health "
        "snapshot; without a subject, the largest.",
        (),
    ),
}
SHARES = {"churn_band_share": "churn_bands", "segment_share": "segments", "tier_share": "tiers"}


@dataclass
class Readings:
    """What the metrics are read from, each fetched once per evaluation."""

    now: dict
    week_ago: dict | None
    drift: dict | None

    def value(self, metric: str, subject: str | None) -> float | None:
        if metric == "customers":
            return float(self.now["customers"])
        if metric in SHARES:
            total = self.now["customers"]
            counts = {g["name"]: g["customers"] for g in self.now[SHARES[metric]]}
            return counts.get(subject, 0) / total if total else None
        if metric == "equity_change_week":
            before = (self.week_ago or {}).get(subject)
            return (self.now[subject] - before) / before if before else None
        return self._psi(subject)

    def _psi(self, subject: str | None) -> float | None:
        if not self.drift:
            return None
        measured = {
            row["name"]: row["psi"]
            for row in self.drift.get("features", []) + self.drift.get("predictions", [])
            if row.get("psi") is not None
        }
        if subject is None:
            return max(measured.values(), default=None)
        return measured.get(subject)


async def readings(conn: asyncpg.Connection, today: date) -> Readings:
    week_ago = await on_day(conn, "distribution", today - timedelta(days=7))
    health = await latest(conn, "model_health")
    return Readings(
        now=await distribution(conn),
        week_ago=None if week_ago is None else week_ago.payload,
        drift=None if health is None else health.payload.get("drift"),
    )
