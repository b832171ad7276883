"""The committed OpenAPI document and the migrations must match the code."""

from __future__ import annotations

import asyncio
import json

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

import service.tables  # noqa: F401
from service.db import async_url, metadata
from service.openapi import OPENAPI_PATH, render


def test_openapi_json_is_current():
    committed = OPENAPI_PATH.read_text()
    assert json.loads(committed) == json.loads(render()), (
        "openapi/openapi.json is stale: run `python -m service.openapi`"
    )


def test_every_route_declares_a_response_model():
    document = json.loads(render())
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            assert "200" in operation["responses"], f"{method} {path}"


def test_migrations_match_table_definitions(database_url):
    """`alembic check`: applying the migrations yields exactly the declared tables."""

    async def differences():
        engine = create_async_engine(async_url(database_url))
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        await engine.dispose()
        return diff

    assert asyncio.run(differences()) == []
