"""Database plumbing: which PostgreSQL, the async engine, and migrations.

PostgreSQL is the source of truth. Without DATABASE_URL the service starts an
embedded server (pgserver) under SCORER_DATA_DIR, so the same SQL and the same
migrations run everywhere.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

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
    pgdata = (settings.data_dir / "pg").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    with quiet_pgserver() as pgserver:
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    return server.get_uri()


@contextmanager
def quiet_pgserver():
    """The pgserver module, imported lazily (only the embedded mode needs it), without the
    platformdirs warning it triggers where XDG_RUNTIME_DIR is unset (containers, CI): it
    says nothing a user of the embedded database can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver

        yield pgserver


def async_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """asyncpg wants the scheme without a driver suffix."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, pool_size: int = 10, **deadlines) -> AsyncEngine:
    """`deadlines` (those of `RequestPool.open`) bound every statement and wait."""
    options: dict = {}
    if deadlines:
        options = dict(
            pool_timeout=deadlines["acquire_seconds"],
            connect_args={
                "timeout": deadlines["connect_seconds"],
                "server_settings": session_deadlines(**deadlines),
            },
        )
    return create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False, **options
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


class DatabaseUnavailable(Exception):
    """The database cannot answer now (down, restarting, out of connections)."""


class DeadlineExceeded(Exception):
    """The work did not finish within its deadline (statement, lock or connection wait)."""


Result = TypeVar("Result")


class RequestPool:
    """The request handlers' asyncpg pool, with the deadlines a request may spend on it.

    Every connection carries `statement_timeout`, `lock_timeout` and `jit = off` (point
    reads never pay JIT compilation, whatever the planner's estimate after a bulk load);
    waiting for a free connection is bounded by `acquire_seconds`. A wait that timed out
    marks the pool exhausted for a few seconds, which `/readyz` reports.
    """

    EXHAUSTED_FOR_SECONDS = 5.0

    def __init__(self, pool: asyncpg.Pool, acquire_seconds: float) -> None:
        self.pool = pool
        self.acquire_seconds = acquire_seconds
        self._exhausted_at = -1e9

    @classmethod
    async def open(
        cls,
        dsn: str,
        size: int,
        *,
        statement_seconds: float,
        lock_seconds: float,
        connect_seconds: float,
        acquire_seconds: float,
    ) -> RequestPool:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=size,
            max_size=size,
            timeout=connect_seconds,
            reset=_keep_session_state,
            server_settings=session_deadlines(statement_seconds, lock_seconds),
        )
        return cls(pool, acquire_seconds)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            conn = await self.pool.acquire(timeout=self.acquire_seconds)
        except TimeoutError:
            self._exhausted_at = time.monotonic()
            raise DeadlineExceeded("no database connection became free in time") from None
        try:
            yield conn
        except BaseException as error:
            # A connection that failed or was cancelled mid-operation may be left in any
            # protocol state; the pool opens a fresh one rather than hand it out again.
            if isinstance(error, _SPOILING):
                conn.terminate()
            raise
        finally:
            await self.pool.release(conn)

    async def read(self, work: Callable[[asyncpg.Connection], Awaitable[Result]]) -> Result:
        """`work` on a connection, once more after a connection-level failure: reads are
        safe to repeat, and a database that just came back answers the second try."""
        try:
            async with self.acquire() as conn:
                return await work(conn)
        except CONNECTION_ERRORS:
            await asyncio.sleep(0.05)
            async with self.acquire() as conn:
                return await work(conn)

    @property
    def exhausted(self) -> bool:
        return time.monotonic() - self._exhausted_at < self.EXHAUSTED_FOR_SECONDS

    async def close(self) -> None:
        await self.pool.close()


def session_deadlines(statement_seconds: float, lock_seconds: float, **_) -> dict[str, str]:
    return {
        "statement_timeout": str(int(statement_seconds * 1000)),
        "lock_timeout": str(int(lock_seconds * 1000)),
        "jit": "off",
    }


# Failures of the connection itself: the statement did not run, or its connection is gone.
CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


# What leaves a connection unfit to be handed out again.
_SPOILING = (*CONNECTION_ERRORS, asyncio.CancelledError)


async def _keep_session_state(conn: asyncpg.Connection) -> None:
    """Handlers leave no session state (no SET, LISTEN or session locks; advisory
    locks are transaction-scoped), so the default reset query per release is waste."""
