"""The model registry in PostgreSQL: every registered version, which one is active.

Model bytes live in the registry too, so every worker on every host loads exactly
the same artifact. On disk, `models/` holds what ships (registered by `ensure_shipped`);
`scorer train` writes elsewhere (SCORER_DATA_DIR/models) and registers what it trained.
"""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg

from service.audit import service as audit
from service.modeling.artifacts import MODELS_DIR, Artifact, Manifest, shipped_versions

# A version registered again keeps its row, but gains the drift reference it was
# registered without (`scorer models reference` adds one to a trained artifact).
_REGISTER = """
INSERT INTO model_registry (name, version, manifest, model, explainer)
VALUES ($1, $2, $3::jsonb, $4, $5)
ON CONFLICT (name, version) DO UPDATE
SET manifest = model_registry.manifest
  || jsonb_build_object('reference', EXCLUDED.manifest->'reference')
WHERE coalesce(model_registry.manifest->'reference', '{}') = '{}'
  AND EXCLUDED.manifest->'reference' <> '{}'
"""


async def register(conn: asyncpg.Connection, folder: Path) -> Manifest:
    artifact = Artifact.load(folder)
    manifest = artifact.manifest
    await conn.execute(
        _REGISTER,
        manifest.name,
        manifest.version,
        manifest.to_json(),
        artifact.graph,
        artifact.explainer,
    )
    return manifest


async def activate(conn: asyncpg.Connection, name: str, version: str) -> str | None:
    """Make `version` the active one of `name`; returns the version it replaced (None: none
    was active), which is the version to activate again to roll back."""
    async with conn.transaction():
        found = await conn.fetchval(
            "SELECT 1 FROM model_registry WHERE name = $1 AND version = $2", name, version
        )
        if not found:
            raise LookupError(f"no registered {name} model version {version}")
        previous = await conn.fetchval(
            "SELECT version FROM model_registry WHERE name = $1 AND active", name
        )
        await conn.execute(
            "UPDATE model_registry SET active = (version = $2), "
            "activated_at = CASE WHEN version = $2 THEN now() ELSE activated_at END "
            "WHERE name = $1",
            name,
            version,
        )
    return previous


async def active_versions(conn: asyncpg.Connection) -> dict[str, str]:
    rows = await conn.fetch("SELECT name, version FROM model_registry WHERE active")
    return {row["name"]: row["version"] for row in rows}


async def fetch(conn: asyncpg.Connection, name: str, version: str) -> Artifact:
    row = await conn.fetchrow(
        "SELECT manifest::text AS manifest, model, explainer FROM model_registry "
        "WHERE name = $1 AND version = $2",
        name,
        version,
    )
    if row is None:
        raise LookupError(f"no registered {name} model version {version}")
    manifest = Manifest.from_dict(json.loads(row["manifest"]))
    return Artifact(manifest, bytes(row["model"]), row["explainer"])


async def list_models(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT name, version, active, registered_at, activated_at, "
        "manifest->'metrics' AS metrics FROM model_registry ORDER BY name, version"
    )


async def ensure_shipped(conn: asyncpg.Connection, models_dir: Path = MODELS_DIR) -> None:
    """Register the shipped versions; activate the newest where none is active yet."""
    active = await active_versions(conn)
    for name, versions in shipped_versions(models_dir).items():
        for version in versions:
            await register(conn, models_dir / name / version)
        if versions and name not in active:
            async with conn.transaction():
                previous = await activate(conn, name, versions[-1])
                details = {"name": name, "version": versions[-1], "previous_version": previous}
                subject = f"{name}@{versions[-1]}"
                await audit.record(conn, audit.SYSTEM_ACTOR, "model.activated", subject, details)
