"""Scoring one customer: the materialized scores when they are current, else one feature
query and the active ONNX models; then the NBO policy."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from service.config import Settings
from service.features.service import read_features, resolve_as_of
from service.features.stored import features_from_json
from service.features.vector import cold_start_features
from service.ops.metrics import CHURN_PROBABILITY, PCLTV_VALUE, SCORE_READS, SEGMENTS_SERVED
from service.scoring.engine import ModelSet
from service.scoring.materialize import SNAPSHOT_FIELDS, snapshots
from service.scoring.nbo import NboContext, next_best_offer
from service.scoring.transitions import Snapshot


class ModelsUnavailable(RuntimeError):
    pass


def scores_body(
    models: ModelSet, features: dict, known: bool, settings: Settings, explain: bool
) -> dict[str, Any]:
    """Every prediction but the offer (which needs the database)."""
    body = snapshot_body(snapshots(models.score([features]))[0], models, features, known, settings)
    if explain:
        body["reasons"] = {
            "churn": models.reasons("churn", features),
            "pcltv": models.reasons("pcltv", features),
        }
    return body


def snapshot_body(
    scores: Snapshot, models: ModelSet, features: dict, known: bool, settings: Settings
) -> dict[str, Any]:
    """The scores body of one snapshot: computed now, or read from `customer_scores`."""
    outlook = models.outlook(features)
    bounds = models.value_interval
    low, high = bounds.around(scores["pcltv"])
    wait = outlook["next_order_days"]
    next_order = None
    if wait is not None:
        # From the start of the as-of day: features know days, not the moment of the read.
        day = features["as_of"].astimezone(settings.zone).date()
        start = datetime(day.year, day.month, day.day, tzinfo=settings.zone)
        # Past the calendar's end (year 9999) there is no time to name: null, as unknown.
        with contextlib.suppress(OverflowError):
            next_order = (start + timedelta(days=wait)).astimezone(UTC)
    return {
        "customer_id": features["customer_id"],
        "as_of": features["as_of"],
        "known": known,
        "suppressed": False,
        "churn": {
            "probability": scores["churn_probability"],
            "band": scores["churn_band"],
            "horizon_days": models.horizon("churn"),
        },
        "pcltv": {
            "value": scores["pcltv"],
            "interval": {
                "low": round(low, 2),
                "high": round(high, 2),
                "coverage": bounds.coverage,
            },
            "horizon_days": models.horizon("pcltv"),
            "currency": settings.currency,
            "tier": scores["pcltv_tier"],
            "historic_clv": features["revenue_total"],
            "expected_orders": _rounded(outlook["expected_orders"], 4),
            "p_alive": _rounded(outlook["p_alive"], 6),
            "expected_next_order_at": next_order,
        },
        "segment": {
            "name": scores["segment"],
            "r": scores["r"],
            "f": scores["f"],
            "m": scores["m"],
        },
        "model_versions": models.versions,
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


_STORED_SCORES = f"""
SELECT s.as_of, {", ".join(f"s.{name}" for name in SNAPSHOT_FIELDS)},
       s.features, s.model_versions = $2::jsonb AS current_models,
       EXISTS (SELECT 1 FROM score_outbox o WHERE o.customer_id = s.customer_id) AS written
FROM customer_scores s WHERE s.customer_id = $1
"""


async def stored_scores(
    conn: asyncpg.Connection, models: ModelSet, customer_id: str, moment: datetime, day: date
) -> tuple[Snapshot, dict] | None:
    """The materialized scores and features when they are current: of this day, these
    models, and no write of the customer since (its outbox rows are deleted in the
    transaction that stored them); None: compute them."""
    row = await conn.fetchrow(_STORED_SCORES, customer_id, models.versions_json)
    if row is None or row["written"] or row["as_of"] != day or not row["current_models"]:
        return None
    return (
        {name: row[name] for name in SNAPSHOT_FIELDS},
        features_from_json(row["features"], customer_id, moment),
    )


async def score_customer(
    conn: asyncpg.Connection,
    models: ModelSet | None,
    nbo: NboContext,
    settings: Settings,
    customer_id: str | None,
    as_of: datetime | None,
    explain: bool,
    request_context: dict[str, Any],
) -> dict[str, Any]:
    if models is None:
        raise ModelsUnavailable("no active models are loaded")
    moment, day = resolve_as_of(as_of, settings.zone)
    today = datetime.now(UTC).astimezone(settings.zone).date()
    stored = None
    if customer_id and not explain and day == today:
        stored = await stored_scores(conn, models, customer_id, moment, day)
    if stored is not None:
        features = stored[1]
        body = snapshot_body(stored[0], models, features, True, settings)
    else:
        found = await read_features(conn, [customer_id], moment, day) if customer_id else {}
        features = found.get(customer_id) if customer_id else None
        known = features is not None
        if features is None:
            features = cold_start_features(customer_id, moment)
        elif features["consent"]["profiling"] is False:
            return {
                "customer_id": customer_id,
                "as_of": moment,
                "known": True,
                "suppressed": True,
                "model_versions": models.versions,
                "nbo_reason": "profiling_consent_withdrawn",
            }
        body = scores_body(models, features, known, settings, explain)
    SCORE_READS.labels("computed" if stored is None else "stored").inc()
    CHURN_PROBABILITY.observe(body["churn"]["probability"])
    PCLTV_VALUE.observe(body["pcltv"]["value"])
    SEGMENTS_SERVED.labels(body["segment"]["name"]).inc()
    body["next_best_offer"], body["nbo_reason"] = await next_best_offer(
        conn,
        nbo,
        models.propensity,
        features,
        body["segment"]["name"],
        body["pcltv"]["tier"],
        body["churn"]["band"],
        datetime.now(UTC),
        request_context,
    )
    return body
