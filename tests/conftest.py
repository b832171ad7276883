"""Shared fixtures: a database of its own per test module, and the real service over HTTP.

`DATABASE_URL` (a server we may create databases on) is used when set; otherwise
the embedded PostgreSQL (pgserver). Each test module that asks for `database_url`
(or `server`, or `client`) gets a fresh, migrated `scorer_test_<random>`, dropped when
the module is done, and a `scorer serve` of its own on it: modules never see each
other's data, so they pass alone and in any order (pytest-randomly shuffles them).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from service.db import asyncpg_dsn, migrate

ROOT = Path(__file__).resolve().parent.parent
SCORER = str(Path(sys.executable).with_name("scorer"))


def _server_url() -> str:
    return os.environ.get("DATABASE_URL") or _embedded_server_url()


@functools.cache
def _embedded_server_url() -> str:
    """An embedded PostgreSQL of this run, stopped and deleted when the run ends."""
    import pgserver

    # pgserver stops its server at interpreter exit and logs it, after pytest has closed
    # the streams its handlers write to; its routine INFO lines are not test output.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    pgdata = Path(tempfile.mkdtemp(prefix="customer-scorer-test-pg-"))
    return pgserver.get_server(pgdata, cleanup_mode="delete").get_uri()


def run_sql(url: str, query: str, *args, fetch: bool = True):
    async def go():
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return await (conn.fetch(query, *args) if fetch else conn.execute(query, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, migrated database on the test server, dropped afterwards."""
    server = _server_url()
    name = f"scorer_test_{secrets.token_hex(4)}"
    run_sql(server, f'CREATE DATABASE "{name}"', fetch=False)
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        run_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', fetch=False)


def scorer(database_url: str, *args: str) -> subprocess.CompletedProcess:
    """Run the `scorer` CLI against a database; fails the test on a non-zero exit."""
    result = subprocess.run(
        [SCORER, *args],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, f"scorer {' '.join(args)}:\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """This module's own migrated database."""
    with fresh_database() as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    admin_key: str
    database_url: str
    process: subprocess.Popen
    log_path: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "DATABASE_URL": self.database_url}

    def scorer(
        self, *args: str, check: bool = True, stdin: str = ""
    ) -> subprocess.CompletedProcess:
        """Run the `scorer` CLI against this server's database, `stdin` as its input."""
        return subprocess.run(
            [SCORER, *args],
            input=stdin,
            env=self.env(),
            capture_output=True,
            text=True,
            check=check,
            timeout=600,
        )

    def sql(self, query: str, *args):
        return run_sql(self.database_url, query, *args)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_server(database_url: str, log_path: Path, **env: str) -> Server:
    port = free_port()
    key = "cs_test_" + secrets.token_urlsafe(24)
    process = subprocess.Popen(
        [SCORER, "serve", "--port", str(port)],
        env={**os.environ, "DATABASE_URL": database_url, "SCORER_BOOTSTRAP_API_KEY": key, **env},
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log_path)
    except RuntimeError:
        process.kill()
        raise
    return Server(url, key, database_url, process, log_path)


def wait_ready(url: str, process: subprocess.Popen, log_path: Path, seconds: float = 60) -> None:
    """Until `url` answers /readyz with 200; fails with the log if the process exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready in {seconds:.0f} s:\n{log_path.read_text()}")


def stop_server(server: Server) -> int:
    server.process.send_signal(signal.SIGTERM)
    return server.process.wait(timeout=60)


# The admin and privacy routes that change something or hand out personal data: each
# answered 2xx must have left an audit entry carrying its request id.
AUDITED_ROUTES = [
    re.compile(pattern)
    for pattern in (
        r"^(POST) /v1/offers$",
        r"^(PUT|DELETE) /v1/offers/[^/]+$",
        r"^(POST) /v1/webhooks$",
        r"^(PATCH|DELETE) /v1/webhooks/[^/]+$",
        r"^(POST) /v1/webhooks/[^/]+/(rotate-secret|replay)$",
        r"^(POST) /v1/webhooks/[^/]+/deliveries/[^/]+/redeliver$",
        r"^(DELETE) /v1/customers/[^/]+$",
        r"^(GET) /v1/customers/[^/]+/export$",
        r"^(POST) /v1/insights/(alerts|snapshots)$",
        r"^(DELETE) /v1/insights/alerts/[^/]+$",
    )
]


def unaudited_requests(server: Server) -> list[str]:
    """The audited routes this server answered with success whose request id no audit
    entry carries."""
    done = {}
    for line in server.log_path.read_text().splitlines():
        entry = json.loads(line) if line.startswith("{") else {}
        call = f"{entry.get('method')} {entry.get('path')}"
        succeeded = entry.get("message") == "request" and 200 <= entry.get("status", 0) < 300
        if succeeded and any(route.match(call) for route in AUDITED_ROUTES):
            done[entry["request_id"]] = call
    if not done:
        return []
    rows = server.sql(
        "SELECT request_id FROM audit_log WHERE request_id = ANY($1::text[])", list(done)
    )
    return sorted(call for request, call in done.items() if request not in {r[0] for r in rows})


@contextmanager
def running_server(database_url: str, tmp_path_factory, **env: str) -> Iterator[Server]:
    """`scorer serve` on `database_url` (settings in `env`) until the block ends; then every
    admin action it served must be in the audit trail."""
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    running = start_server(database_url, log_path, **env)
    try:
        yield running
    finally:
        try:
            stop_server(running)
        except subprocess.TimeoutExpired:
            running.process.kill()  # never leave a server behind on the shared machine
            raise
    assert unaudited_requests(running) == [], "admin actions without an audit entry"


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory) -> Iterator[Server]:
    """This module's own `scorer serve`, on this module's database."""
    with running_server(database_url, tmp_path_factory) as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client(server.admin_key) as http:
        yield http


def pytest_terminal_summary(terminalreporter, config) -> None:
    """Name pytest-randomly's seed at the end too: `-q` hides the header that shows it."""
    if config.pluginmanager.hasplugin("randomly"):
        seed = config.getoption("randomly_seed")
        terminalreporter.write_line(f"pytest-randomly: same order again: --randomly-seed={seed}")
