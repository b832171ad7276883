"""Each model's reference distributions, recorded in its manifest: its inputs' and its
predictions' bins and shares (`service.modeling.monitoring`) on the customers of its
validation cutoff (the segmentation: its as-of day), where its metrics were measured, so
drift from them says those metrics may no longer describe the customers scored now.

The predictions are the served ones, from the serving graph of the new models, named as
`customer_scores` stores them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

import asyncpg

from service.features.asof import Snapshot, snapshot
from service.features.vector import MODEL_FEATURES
from service.modeling import monitoring
from service.modeling.artifacts import Artifact, Manifest
from service.modeling.runtime import LoadedModel
from service.scoring.engine import ModelSet, Scores

PREDICTIONS = {"churn": ("churn_probability",), "pcltv": ("pcltv",), "segment": ("r", "f", "m")}


def reference_cutoff(manifest: Manifest) -> date:
    window = manifest.training_window
    return date.fromisoformat(window.get("validation_cutoff") or window["as_of"])


def model_reference(manifest: Manifest, shot: Snapshot, scores: Scores) -> dict:
    # Only the feature row's columns: the probabilistic columns pCLTV adds are not stored.
    inputs = [name for name in manifest.features if name in MODEL_FEATURES]
    return {
        "cutoff": str(shot.cutoff),
        "customers": len(shot.customer_ids),
        "features": {
            name: monitoring.reference(shot.X[:, MODEL_FEATURES.index(name)]) for name in inputs
        },
        "predictions": {
            name: monitoring.reference(getattr(scores, name)) for name in PREDICTIONS[manifest.name]
        },
    }


async def record_references(
    artifacts: list[Artifact], snapshot_at: Callable[[date], Awaitable[Snapshot]]
) -> None:
    """Sets the reference of every churn, pCLTV and segment artifact of one set."""
    served = [a for a in artifacts if a.manifest.name in PREDICTIONS]
    models = ModelSet({a.manifest.name: LoadedModel(a) for a in served})
    for artifact in served:
        shot = await snapshot_at(reference_cutoff(artifact.manifest))
        artifact.manifest.reference = model_reference(
            artifact.manifest, shot, models.score(shot.features)
        )


async def rewrite_references(conn: asyncpg.Connection, folders: list[Path]) -> list[Manifest]:
    """`scorer models reference`: the references of trained artifacts recomputed from the
    database they were trained on and written into their manifests; the graphs, and so
    their sha256, stay as they are."""
    artifacts = [Artifact.load(folder) for folder in folders]
    shots: dict[date, Snapshot] = {}

    async def snapshot_at(day: date) -> Snapshot:
        if day not in shots:
            shots[day] = await snapshot(conn, day)
        return shots[day]

    await record_references(artifacts, snapshot_at)
    for folder, artifact in zip(folders, artifacts, strict=True):
        artifact.write_manifest(folder)
    return [artifact.manifest for artifact in artifacts]
