"""Faults under load, against a PostgreSQL cluster of this module's own (pgserver's
binaries, TCP on a free port), so it can be stopped, locked and crashed:

- PostgreSQL stopped for 10 s, then started again: no bare 500, no connection reset, every
  failed answer a JSON 503/504 with `Retry-After` and the request id, and the service
  answering again within 2 s of PostgreSQL's return;
- a table locked for 30 s: no request waits longer than its deadline plus 0.5 s, and routes
  that do not touch the table keep answering;
- the server killed with SIGKILL mid-ingest and every batch replayed: features exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import pgserver
import pytest
from pgserver.utils import ensure_user_exists

from tests.conftest import SCORER, free_port, run_sql
from tests.reference import ReferenceModel, differences

READ_DEADLINE, WRITE_DEADLINE = 2.0, 10.0
AS_OF = "2026-03-01T00:00:00Z"


class Cluster:
    """A private PostgreSQL: initdb, then pg_ctl start/stop on 127.0.0.1:<port>."""

    def __init__(self) -> None:
        self.user = "pgserver" if os.geteuid() == 0 else None  # postgres refuses root
        self.root = Path(tempfile.mkdtemp(prefix="scorer-faults-"))
        self.root.chmod(0o755)
        self.pgdata = self.root / "pgdata"
        self.port = free_port()
        if self.user:
            ensure_user_exists(self.user)
            shutil.chown(self.root, self.user)
        pgserver.initdb(["--auth=trust", "-U", "postgres"], pgdata=self.pgdata, user=self.user)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root}"
        log = str(self.root / "postgres.log")
        pgserver.pg_ctl(
            ["-w", "-o", options, "-l", log, "start"], pgdata=self.pgdata, user=self.user
        )

    def stop(self) -> None:
        pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.user)

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    running = Cluster()
    running.start()
    yield running
    running.remove()


@dataclass
class Server:
    url: str
    key: str
    database_url: str
    process: subprocess.Popen

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_server(database_url: str, log: Path, key: str) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [SCORER, "serve", "--port", str(port)],
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "SCORER_BOOTSTRAP_API_KEY": key,
            "SCORER_READ_DEADLINE_SECONDS": str(READ_DEADLINE),
            "SCORER_WRITE_DEADLINE_SECONDS": str(WRITE_DEADLINE),
        },
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", key, database_url, process)
    wait_until(lambda: ready(server), 60, f"server not ready:\n{log.read_text()[-3000:]}")
    return server


def ready(server: Server) -> bool:
    if server.process.poll() is not None:
        raise RuntimeError(f"server exited with {server.process.returncode}")
    try:
        return httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(condition, seconds: float, message: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(message)


@pytest.fixture
def server(cluster, tmp_path):
    name = f"faults_{secrets.token_hex(4)}"
    run_sql(cluster.url, f'CREATE DATABASE "{name}"', fetch=False)
    database_url = cluster.url.rsplit("/", 1)[0] + f"/{name}"
    running = start_server(
        database_url, tmp_path / "server.log", "cs_test_" + secrets.token_hex(16)
    )
    yield running
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(timeout=60)


@dataclass
class Outcome:
    route: str
    started: float
    seconds: float
    status: int | None = None
    body: dict | str | None = None
    headers: dict = field(default_factory=dict)
    transport_error: str | None = None


class Load:
    """Reads and ingest from a few keep-alive clients, every answer recorded."""

    def __init__(self, server: Server, customers: int = 20) -> None:
        self.server = server
        self.customers = customers
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._batch = 0

    def __enter__(self) -> Load:
        for work in (self._read, self._read, self._profile, self._ingest):
            thread = threading.Thread(target=self._loop, args=(work,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _loop(self, work) -> None:
        with self.server.client() as http:
            n = 0
            while not self._stop.is_set():
                route, request = work(n)
                started = time.monotonic()
                outcome = Outcome(route, started, 0.0)
                try:
                    response = request(http)
                    outcome.status = response.status_code
                    outcome.headers = dict(response.headers)
                    try:
                        outcome.body = response.json()
                    except ValueError:
                        outcome.body = response.text
                except httpx.TransportError as error:
                    outcome.transport_error = repr(error)
                outcome.seconds = time.monotonic() - started
                with self._lock:
                    self.outcomes.append(outcome)
                n += 1
                time.sleep(0.01)

    def _read(self, n: int):
        customer = f"f-c{n % self.customers}"
        return "scores", lambda http: http.get(f"/v1/customers/{customer}/scores")

    def _profile(self, n: int):
        customer = f"f-c{n % self.customers}"
        return "profile", lambda http: http.get(f"/v1/customers/{customer}")

    def _ingest(self, n: int):
        with self._lock:
            self._batch += 1
            batch = self._batch
        events = [
            {
                "event_id": f"f-b{batch}-{i}",
                "customer_id": f"f-c{i % self.customers}",
                "type": "session_started",
                "occurred_at": "2026-02-10T10:00:00Z",
            }
            for i in range(20)
        ]
        return "ingest", lambda http: http.post("/v1/events", json={"events": events})

    def between(self, start: float, end: float) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if start <= o.started < end]


def seed(server: Server, customers: int = 20) -> None:
    events = [
        {
            "event_id": f"f-seed-{i}",
            "customer_id": f"f-c{i}",
            "type": "order_completed",
            "occurred_at": "2026-02-01T10:00:00Z",
            "order_id": f"o{i}",
            "amount": "25.00",
        }
        for i in range(customers)
    ]
    with server.client() as http:
        assert http.post("/v1/events", json={"events": events}).json()["accepted"] == customers


def assert_failures_are_retryable(outcomes: list[Outcome]) -> None:
    resets = [o.transport_error for o in outcomes if o.transport_error]
    assert not resets, f"{len(resets)} connection errors, e.g. {resets[:3]}"
    failed = [o for o in outcomes if o.status != 200]
    assert all(o.status in (503, 504) for o in failed), sorted({o.status for o in failed})
    for outcome in failed:
        assert isinstance(outcome.body, dict), outcome.body
        assert outcome.body["detail"] and outcome.body["request_id"], outcome.body
        assert outcome.headers.get("retry-after"), outcome.headers
        assert outcome.headers.get("content-type") == "application/json"


def test_database_stopped_for_ten_seconds(cluster, server):
    seed(server)
    with Load(server) as load:
        time.sleep(2)
        cluster.stop()
        stopped_at = time.monotonic()
        time.sleep(10)
        restarting_at = time.monotonic()
        cluster.start()
        back_at = time.monotonic()
        recovered = wait_until(
            lambda: (
                any(o.status == 200 for o in load.between(back_at, 1e18) if o.route == "scores")
                and any(o.status == 200 for o in load.between(back_at, 1e18) if o.route == "ingest")
            ),
            10,
            "no successful read and ingest within 10 s of PostgreSQL's return",
        )
        ready_after = wait_until(lambda: ready(server), 10, "/readyz never recovered")
        time.sleep(2)
    outcomes = load.outcomes
    during = load.between(stopped_at, restarting_at)
    statuses = Counter((o.route, o.status) for o in during)
    assert during and all(o.status in (503, 504) for o in during), statuses
    assert_failures_are_retryable(outcomes)
    assert recovered <= 2.0, f"answering again {recovered:.2f} s after PostgreSQL's return"
    assert ready_after <= 2.0 + recovered
    print(
        f"\n{len(outcomes)} requests, {len([o for o in outcomes if o.status != 200])} "
        f"answered 503/504, recovered {recovered:.2f} s after restart"
    )


def test_table_locked_for_thirty_seconds(cluster, server):
    seed(server)

    async def hold_lock(seconds: float) -> None:
        conn = await asyncpg.connect(server.database_url)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE customer_daily IN ACCESS EXCLUSIVE MODE")
                await asyncio.sleep(seconds)
        finally:
            await conn.close()

    with Load(server) as load:
        time.sleep(1)
        locked_at = time.monotonic()
        asyncio.run(hold_lock(30))
        unlocked_at = time.monotonic()
        time.sleep(2)
    outcomes = load.between(locked_at, unlocked_at)
    assert_failures_are_retryable(load.outcomes)
    slowest = {
        route: max((o.seconds for o in outcomes if o.route == route), default=0.0)
        for route in ("scores", "profile", "ingest")
    }
    assert slowest["scores"] <= READ_DEADLINE + 0.5, slowest
    assert slowest["profile"] <= READ_DEADLINE + 0.5, slowest
    assert slowest["ingest"] <= WRITE_DEADLINE + 0.5, slowest
    profiles = [o for o in outcomes if o.route == "profile"]
    assert profiles and all(o.status == 200 for o in profiles), "untouched tables kept answering"
    after = load.between(unlocked_at + 1, 1e18)
    assert after and all(o.status == 200 for o in after if o.route == "scores")
    print(f"\nslowest answers while locked: {slowest}")


def test_killed_mid_ingest_then_replayed_gives_exact_features(cluster, server, tmp_path):
    batches = [stream_batch(b) for b in range(60)]
    sent = threading.Event()

    def post_until_killed() -> None:
        with server.client() as http:
            for number, batch in enumerate(batches):
                if number == 20:
                    sent.set()
                try:
                    http.post("/v1/events", json={"events": batch})
                except httpx.TransportError:
                    return  # the server is gone

    writer = threading.Thread(target=post_until_killed)
    writer.start()
    assert sent.wait(60)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)
    writer.join(timeout=60)
    restarted = start_server(server.database_url, tmp_path / "restarted.log", server.key)
    server.process = restarted.process  # the fixture stops whichever runs now
    reference = ReferenceModel()
    with restarted.client() as http:
        for batch in batches:
            assert http.post("/v1/events", json={"events": batch}).status_code == 200
            reference.ingest(batch)
        as_of = datetime.fromisoformat(AS_OF.replace("Z", "+00:00"))
        for customer in reference.customers():
            got = http.get(f"/v1/customers/{customer}/features", params={"as_of": AS_OF})
            assert got.status_code == 200, got.text
            assert differences(reference.features(customer, as_of), got.json()) == {}


def stream_batch(number: int) -> list[dict]:
    """Orders, refunds (some before their order) and sessions for a few customers."""
    events = []
    for i in range(25):
        n = number * 25 + i
        customer = f"k-c{n % 9}"
        day = 1 + n % 27
        if n % 5 == 0:
            events.append(
                {
                    "event_id": f"k-o{n}",
                    "customer_id": customer,
                    "type": "order_completed",
                    "occurred_at": f"2026-02-{day:02d}T10:00:00Z",
                    "order_id": f"o{n}",
                    "amount": f"{10 + n % 7}.25",
                }
            )
        elif n % 5 == 1:
            events.append(
                {
                    "event_id": f"k-r{n}",
                    "customer_id": f"k-c{(n - 1) % 9}",
                    "type": "order_refunded",
                    "occurred_at": f"2026-02-{day:02d}T12:00:00Z",
                    "order_id": f"o{n - 1 if n % 2 else n + 4}",
                    "amount": "3",
                }
            )
        else:
            events.append(
                {
                    "event_id": f"k-s{n}",
                    "customer_id": customer,
                    "type": "session_started",
                    "occurred_at": f"2026-02-{day:02d}T09:00:00Z",
                }
            )
    return events
