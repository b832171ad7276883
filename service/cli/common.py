"""What every `scorer` command shares: user errors, settings, the resolved database and one
connection to it, and the flag types (`--as-of` is read the same way by every command)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
import uvloop
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.config import Settings, get_settings
from service.db import asyncpg_dsn, driver_connection, export_url_for_children, migrate, open_engine
from service.db import resolve_database_url as resolve_url
from service.features.retention import newest_day
from service.timefmt import Timestamp


class UsageError(Exception):
    """A mistake the user can fix; the message names the problem and the fix, on one line."""


def fail(message: str) -> int:
    """One line naming the problem for the user; the exit status of a usage error."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as error:
        raise UsageError(_settings_problem(error)) from error
    except ZoneInfoNotFoundError as error:
        # zoneinfo raises a KeyError here, which pydantic passes through unconverted.
        raise UsageError(
            f"SCORER_TIMEZONE: {error.args[0]}; use an IANA name such as UTC or Europe/Berlin"
        ) from error


def _settings_problem(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        path = "_".join(str(part) for part in item["loc"]).upper()
        variable = path if path == "DATABASE_URL" else f"SCORER_{path}"
        problems.append(f"{variable}={item['input']!r}: {item['msg']}")
    return "; ".join(problems) + " (see the settings table of the README)"


def database_url(settings: Settings) -> str:
    """The configured (or embedded) database, checked to be reachable before any work."""
    url = resolve_url(settings)
    _check_reachable(url)
    export_url_for_children(url)
    return url


@lru_cache
def _check_reachable(url: str) -> None:
    """One connection attempt (once per process), so that an unreachable or missing database
    is one line naming it rather than a traceback from whichever layer connects first."""
    try:
        dsn = asyncpg_dsn(url)
    except ArgumentError as error:
        raise UsageError(f"DATABASE_URL is not a postgresql:// URL ({error})") from error
    where = make_url(dsn)
    server = f"PostgreSQL at {where.host or 'localhost'}:{where.port or 5432}"

    async def connect() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        await conn.close()

    try:
        asyncio.run(connect())
    except asyncpg.InvalidCatalogNameError as error:
        raise UsageError(
            f"{error} on {server}: create it (createdb {where.database}) "
            "or point DATABASE_URL at an existing database"
        ) from error
    except asyncpg.InvalidAuthorizationSpecificationError as error:
        raise UsageError(f"{server} refused the login: {error}; fix DATABASE_URL") from error
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise UsageError(
            f"cannot reach {server} ({error}): start it, or fix DATABASE_URL "
            "(leave it unset for the embedded PostgreSQL under SCORER_DATA_DIR)"
        ) from error


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


def day_argument(text: str) -> date:
    """argparse type of a YYYY-MM-DD flag: a bad value is a one-line usage error."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type of a count or a number of days."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of 1 or more: {text!r}")
    return value


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = TypeAdapter(Timestamp)
AS_OF_HELP = (
    "a day (2026-01-31) or an RFC 3339 timestamp with offset (2026-01-31T12:00:00Z), "
    "read as its day in SCORER_TIMEZONE; default: the newest event day"
)

AS_OF_TODAY_HELP = (
    "the day to count from (2026-01-31, or an RFC 3339 timestamp with offset, read as its "
    "day in SCORER_TIMEZONE); default: today"
)


def as_of_argument(text: str) -> date | datetime:
    """argparse type of `--as-of` (and `--cutoff`): a day, or a timestamp as the API takes."""
    try:
        if _DAY.fullmatch(text):
            return date.fromisoformat(text)
        if not _DAY.match(text):
            raise ValueError("neither a day nor a timestamp")
        return _TIMESTAMP.validate_python(text)
    except ValidationError as error:
        reason = error.errors()[0]["msg"].removeprefix("Value error, ")
    except ValueError as error:
        reason = str(error)
    raise argparse.ArgumentTypeError(
        f"{text!r}: {reason}; give a day (2026-01-31) "
        "or an RFC 3339 timestamp with offset (2026-01-31T12:00:00Z)"
    )


def day_of(value: date | datetime, zone: ZoneInfo) -> date:
    """The calendar day of an `--as-of` value, as the API resolves `as_of`."""
    return value.astimezone(zone).date() if isinstance(value, datetime) else value


async def as_of_day(conn: asyncpg.Connection, value: date | datetime | None, zone: ZoneInfo):
    """The day a batch command works as of: `--as-of`'s, else the newest day of data (one
    default for train, evaluate and rescore, so their results line up)."""
    newest = await newest_day(conn)
    if newest is None:
        raise UsageError("no events in the database yet: load some with `scorer import FILE` first")
    return newest if value is None else day_of(value, zone)
