"""Scoring one customer: one feature query, the active ONNX models, the NBO policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from service.config import Settings
from service.features.service import read_features, resolve_as_of
from service.features.vector import cold_start_features
from service.scoring.engine import ModelSet


class ModelsUnavailable(RuntimeError):
    pass


def _money(value: float) -> float:
    return round(float(value), 2)


def scores_body(
    models: ModelSet, features: dict, known: bool, settings: Settings, explain: bool
) -> dict[str, Any]:
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
        "next_best_offer": None,
        "nbo_reason": "no_offers",
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
    settings: Settings,
    customer_id: str | None,
    as_of: datetime | None,
    explain: bool,
) -> dict[str, Any]:
    if models is None:
        raise ModelsUnavailable("no active models are loaded")
    moment, day = resolve_as_of(as_of, settings.zone)
    found = await read_features(conn, [customer_id], moment, day) if customer_id else {}
    features = found.get(customer_id) if customer_id else None
    if features is None:
        return scores_body(
            models, cold_start_features(customer_id, moment), False, settings, explain
        )
    if features["consent"]["profiling"] is False:
        return {
            "customer_id": customer_id,
            "as_of": moment,
            "known": True,
            "suppressed": True,
            "model_versions": models.versions,
            "nbo_reason": "profiling_consent_withdrawn",
        }
    return scores_body(models, features, True, settings, explain)
