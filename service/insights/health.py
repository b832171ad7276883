"""Model health: the active model versions with their training metrics, how well the
churn model's probabilities matched what happened over its last complete horizon, and how
far the scored customers' features and predictions have drifted from each model's
reference (`service.modeling.monitoring`).

Calibration re-scores the customers known on the cutoff, `horizon_days` before the
newest complete day (yesterday), from their exact features as of that day (the running
totals, never the events table) with the active models and the serving graph, and
compares with the churn label of training over (cutoff, yesterday]. That costs a
feature read per customer, so it is computed into the daily `model_health` snapshot and
read from there; so is the drift, whose PSI values are stored and compared with the
threshold when read, so a changed threshold applies at once.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta

import asyncpg
import numpy as np

from service.features.asof import snapshot
from service.features.vector import MODEL_FEATURES, feature_matrix
from service.insights.snapshots import latest
from service.modeling import monitoring, registry
from service.modeling.outcomes import churned, labels
from service.modeling.runtime import LoadedModel
from service.scoring.engine import ModelSet
from service.scoring.store import REQUIRED, ModelStore

KIND = "model_health"
# The columns of `customer_scores` each model's predictions are stored in.
PREDICTION_COLUMNS = ("churn_probability", "pcltv", "r", "f", "m")

_ACTIVE = """
SELECT name, version, activated_at, manifest->>'trained_at' AS trained_at,
       manifest->'metrics' AS metrics, manifest->'parameters'->>'kind' AS kind,
       manifest->'reference'->>'cutoff' AS reference_cutoff
FROM model_registry WHERE active ORDER BY name
"""
_STORED = f"SELECT features::text AS features, {', '.join(PREDICTION_COLUMNS)} FROM customer_scores"


def _number(value) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


async def active_models(conn: asyncpg.Connection) -> list[dict]:
    """Each active version with its headline metrics: the numbers of its manifest's
    metrics (what training measured on validation), without the per-candidate detail."""
    models = []
    for row in await conn.fetch(_ACTIVE):
        metrics = json.loads(row["metrics"])
        models.append(
            {
                "name": row["name"],
                "version": row["version"],
                "kind": row["kind"],
                "activated_at": row["activated_at"],
                "trained_at": datetime.fromisoformat(row["trained_at"]),
                "validated_on": metrics.get("validated_on"),
                "reference_cutoff": row["reference_cutoff"],
                "metrics": {
                    name: _number(value)
                    for name, value in metrics.items()
                    if isinstance(value, int | float) and not isinstance(value, bool)
                },
            }
        )
    return models


async def calibration(conn: asyncpg.Connection, models: ModelSet, day: date) -> dict | None:
    """The churn model on its most recent complete horizon before `day`; None when no
    customer was known on the cutoff."""
    horizon = models.horizon("churn")
    end = day - timedelta(days=1)
    cutoff = end - timedelta(days=horizon)
    shot = await snapshot(conn, cutoff)
    if not shot.customer_ids:
        return None
    predicted = models.score(shot.features).churn_probability
    actual = churned((await labels(conn, shot.customer_ids, cutoff, horizon)).orders)
    return {
        "model": "churn",
        "version": models.versions["churn"],
        "horizon_days": horizon,
        "cutoff": str(cutoff),
        "end": str(end),
        "customers": len(actual),
        "predicted_rate": float(np.mean(predicted)),
        "observed_rate": float(np.mean(actual)),
        "brier": monitoring.brier(actual, predicted),
        "ece": monitoring.expected_calibration_error(actual, predicted),
        "bins": [
            {"predicted": p, "observed": o, "customers": n}
            for p, o, n in monitoring.reliability_bins(actual, predicted)
        ],
    }


async def drift(conn: asyncpg.Connection, models: ModelSet) -> dict | None:
    """PSI of every stored feature and prediction against the reference of each active
    model that records one; None when none does or no customer is scored."""
    referenced = {
        name: model.manifest.reference
        for name, model in models.models.items()
        if model.manifest.reference
    }
    rows = await conn.fetch(_STORED)
    if not referenced or not rows:
        return None
    X = feature_matrix(json.loads(row["features"]) for row in rows)
    stored = {
        column: np.array([row[column] for row in rows], dtype=np.float64)
        for column in PREDICTION_COLUMNS
    }

    def entries(name: str, kind: str, values_of) -> list[dict]:
        return [
            {
                "model": name,
                "name": column,
                "psi": monitoring.psi_against(recorded, values_of(column)),
            }
            for column, recorded in referenced[name][kind].items()
        ]

    features, predictions = [], []
    for name in sorted(referenced):
        features += entries(name, "features", lambda c: X[:, MODEL_FEATURES.index(c)])
        predictions += entries(name, "predictions", stored.__getitem__)
    return {
        "customers": len(rows),
        "versions": {name: models.versions[name] for name in sorted(referenced)},
        "features": features,
        "predictions": predictions,
    }


async def _active_set(conn: asyncpg.Connection, store: ModelStore | None) -> ModelSet | None:
    """The serving process's loaded set, or (the CLI, no store) the registry's active
    versions; None until churn, pCLTV and segment are all active."""
    if store is not None:
        return store.current if store.ready else None
    active = await registry.active_versions(conn)
    if not all(name in active for name in REQUIRED):
        return None
    return ModelSet(
        {name: LoadedModel(await registry.fetch(conn, name, v)) for name, v in active.items()}
    )


async def model_health_snapshot(
    conn: asyncpg.Connection, day: date, models: ModelStore | None
) -> dict:
    """The `model_health` payload of `day` (today in the shop's calendar)."""
    active = await _active_set(conn, models)
    if active is None:
        return {"calibration": None, "drift": None}
    return {"calibration": await calibration(conn, active, day), "drift": await drift(conn, active)}


def _past(drift: dict, threshold: float) -> dict:
    """The stored PSI values marked against `threshold`, the names past it listed once."""
    marked = {
        kind: [{**entry, "drifted": entry["psi"] > threshold} for entry in drift[kind]]
        for kind in ("features", "predictions")
    }
    names = [e["name"] for kind in marked.values() for e in kind if e["drifted"]]
    return {**drift, **marked, "threshold": threshold, "drifted": list(dict.fromkeys(names))}


async def model_health(conn: asyncpg.Connection, threshold: float) -> dict:
    """The active models now, with the latest snapshot's calibration and drift (none
    before the first snapshot)."""
    taken = await latest(conn, KIND)
    payload = taken.payload if taken else {"calibration": None, "drift": None}
    drift = payload["drift"]
    return {
        "computed_at": taken.computed_at if taken else None,
        "day": taken.day if taken else None,
        "models": await active_models(conn),
        "calibration": payload["calibration"],
        "drift": _past(drift, threshold) if drift is not None else None,
    }
