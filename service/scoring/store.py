"""The process's active models, reloaded when the registry's active versions change.

A background task polls the registry (one tiny query every `poll_seconds`); a
changed version is loaded beside the old one and swapped in with one assignment,
so requests in flight keep a consistent set and none fails during the switch.
"""

from __future__ import annotations

import asyncio
import gc
import logging

import asyncpg

from service.modeling import registry
from service.modeling.runtime import LoadedModel
from service.ops.metrics import MODEL_VERSION
from service.scoring.engine import ModelSet
from service.vocabulary import ValueTiers

log = logging.getLogger("scorer.models")

REQUIRED = ("churn", "pcltv", "segment")


class ModelStore:
    def __init__(self, tiers: ValueTiers) -> None:
        self.tiers = tiers
        self.current: ModelSet | None = None

    @property
    def ready(self) -> bool:
        return self.current is not None and all(n in self.current.models for n in REQUIRED)

    async def refresh(self, conn: asyncpg.Connection) -> bool:
        """Load whatever changed; True when the active set changed."""
        active = await registry.active_versions(conn)
        loaded = self.current.models if self.current else {}
        if {n: m.manifest.version for n, m in loaded.items()} == active:
            return False
        models = {}
        for name, version in active.items():
            if name in loaded and loaded[name].manifest.version == version:
                models[name] = loaded[name]
            else:
                models[name] = LoadedModel(await registry.fetch(conn, name, version))
        self.current = ModelSet(models, self.tiers)
        MODEL_VERSION.clear()
        for name, version in self.current.versions.items():
            if version is not None:
                MODEL_VERSION.labels(name, version).set(1)
        gc.freeze()  # the new sessions are long-lived too (see app.freeze_startup_objects)
        log.info("models loaded", extra={"fields": {"versions": self.current.versions}})
        return True

    async def poll(self, connect, poll_seconds: float) -> None:
        while True:
            await asyncio.sleep(poll_seconds)
            try:
                async with connect() as conn:
                    await self.refresh(conn)
            except Exception:  # keep serving the loaded models; retry next tick
                log.exception("model refresh failed")
