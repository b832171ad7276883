"""`scorer stop-db`: stop the embedded PostgreSQL under SCORER_DATA_DIR/pg.

Commands leave it running, so the next one starts at once; `scorer demo` stops it when the
demo ends, unless other sessions still use it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
from pathlib import Path

import asyncpg

from service.cli.common import UsageError, load_settings
from service.config import Settings
from service.db import asyncpg_dsn, quiet_pgserver

# Started by root, pgserver runs PostgreSQL as this system user (PostgreSQL refuses root),
# and pg_ctl must run as the server's user.
_SERVER_USER = "pgserver" if os.geteuid() == 0 else None

_OTHER_SESSIONS = """
SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""


def pgdata(settings: Settings) -> Path:
    """Where `service.db` starts the embedded server."""
    return (settings.data_dir / "pg").resolve()


def _running(folder: Path) -> bool:
    """As pg_ctl judges it: a postmaster.pid naming a live process."""
    try:
        os.kill(int((folder / "postmaster.pid").read_text().split()[0]), 0)
    except PermissionError:
        return True  # alive, under another user
    except (OSError, ValueError, IndexError):
        return False
    return True


def stop_embedded(settings: Settings) -> str:
    """Fast shutdown (open sessions are ended); returns what happened, for the user."""
    folder = pgdata(settings)
    if not _running(folder):
        return f"the embedded PostgreSQL under {folder} is not running"
    try:
        with quiet_pgserver() as pgserver:
            pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=folder, user=_SERVER_USER)
    except subprocess.CalledProcessError as error:
        raise UsageError(f"pg_ctl could not stop {folder} (exit {error.returncode})") from error
    return f"stopped the embedded PostgreSQL under {folder}"


async def _other_sessions(url: str) -> int:
    try:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    except (OSError, asyncpg.PostgresError):
        return 0  # not running any more: nobody to leave it up for
    try:
        return await conn.fetchval(_OTHER_SESSIONS)
    finally:
        await conn.close()


def release_embedded(settings: Settings, url: str) -> str:
    """At the end of `scorer demo`: stop the server unless someone else is connected."""
    others = asyncio.run(_other_sessions(url))
    if others:
        return (
            f"the embedded PostgreSQL stays up: {others} other session(s) use it "
            "(`scorer stop-db` stops it)"
        )
    return stop_embedded(settings)


def cmd_stop_db(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.database_url:
        raise UsageError(
            "DATABASE_URL is set: stop-db stops only the embedded PostgreSQL "
            "(stop an external server with its own tools)"
        )
    print(stop_embedded(settings))
    return 0


def add_commands(sub) -> None:
    stop = sub.add_parser("stop-db", help="stop the embedded PostgreSQL (SCORER_DATA_DIR/pg)")
    stop.set_defaults(func=cmd_stop_db)
