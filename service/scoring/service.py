"""Scoring one customer: one feature query, the active ONNX models, the NBO policy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from service.config import Settings
from service.features.service import read_features, resolve_as_of
from service.features.vector import cold_start_features
from service.ops.metrics import CHURN_PROBABILITY, PCLTV_VALUE, SEGMENTS_SERVED
from service.scoring.engine import ModelSet
from service.scoring.nbo import NboContext, next_best_offer


class ModelsUnavailable(RuntimeError):
    pass


def _money(value: float) -> float:
    return round(float(value), 2)


def scores_body(
    models: ModelSet, features: dict, known: bool, settings: Settings, explain: bool
) -> dict[str, Any]:
    """Every prediction but the offer (which needs the database)."""
    scores = models.score([features])
    body: dict[str, Any] = {
        "customer_id": features["customer_id"],
        "as_of": features["as_of"],
        "known": known,
        "suppressed": False,
        "churn": {
            "probability": round(float(scores.churn_probability[0]), 6),
            "band": scores.churn_bands[0],
            "horizon_days": models.horizon("churn"),
        },
        "pcltv": {
            "value": _money(scores.pcltv[0]),
            "horizon_days": models.horizon("pcltv"),
            "currency": settings.currency,
            "tier": scores.pcltv_tiers[0],
            "historic_clv": features["revenue_total"],
        },
        "segment": {
            "name": scores.segments[0],
            "r": int(scores.r[0]),
            "f": int(scores.f[0]),
            "m": int(scores.m[0]),
        },
        "model_versions": models.versions,
    }
    if explain:
        body["reasons"] = {
            "churn": models.reasons("churn", features),
            "pcltv": models.reasons("pcltv", features),
        }
    return body


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
