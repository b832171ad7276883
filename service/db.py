"""Database plumbing: which PostgreSQL, the async engine, and migrations.

PostgreSQL is the source of truth. Without DATABASE_URL the service starts an
embedded server (pgserver) under SCORER_DATA_DIR, so the same SQL and the same
migrations run everywhere.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path

import asyncpg
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from service.config import Settings

metadata = MetaData()

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def resolve_database_url(settings: Settings) -> str:
    """A plain postgresql:// URL, starting the embedded server when none is configured."""
    if settings.database_url:
        return settings.database_url
    import pgserver  # imported lazily: only the embedded mode needs it

    pgdata = (settings.data_dir / "pg").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    return server.get_uri()


def async_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """asyncpg wants the scheme without a driver suffix."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False
    )


@asynccontextmanager
async def driver_connection(conn: AsyncConnection) -> AsyncIterator[asyncpg.Connection]:
    """The asyncpg connection under a SQLAlchemy one, for COPY and array-bound bulk SQL."""
    raw = await conn.get_raw_connection()
    yield raw.driver_connection


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


@lru_cache
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("postgresql://unused/x")).get_current_head()


def export_url_for_children(url: str) -> None:
    """Worker processes and subcommands must reuse the one resolved database."""
    os.environ["DATABASE_URL"] = url


@asynccontextmanager
async def open_engine(url: str, pool_size: int = 2) -> AsyncIterator[AsyncEngine]:
    """An engine for one CLI command, disposed when it ends."""
    engine = create_engine(url, pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()
