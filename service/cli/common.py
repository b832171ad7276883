"""What every `scorer` command shares: the resolved database and one connection to it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import date

import uvloop

from service.config import Settings
from service.db import driver_connection, export_url_for_children, migrate, open_engine
from service.db import resolve_database_url as resolve_url


def database_url(settings: Settings) -> str:
    url = resolve_url(settings)
    export_url_for_children(url)
    return url


def run_with_connection(settings: Settings, work: Callable[..., Awaitable[int]]) -> int:
    """Run `work(asyncpg_connection, sqlalchemy_connection)` in one engine's connection."""
    url = database_url(settings)
    migrate(url)

    async def main() -> int:
        async with open_engine(url) as engine, engine.connect() as conn:
            async with driver_connection(conn) as raw:
                result = await work(raw, conn)
            await conn.commit()
            return result

    # uvloop, as under `scorer serve`: the driver's I/O is a good part of batch commands.
    return uvloop.run(main())


def fail(message: str) -> int:
    """One line naming the problem for the user; the exit status of a usage error."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def day_argument(text: str) -> date:
    """argparse type of a YYYY-MM-DD flag: a bad value is a one-line usage error."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None
