"""Shared plumbing of the benchmarks (`ingest.py`, `score.py`).

A fresh database per run, the service (`scorer serve`) and the bare baseline app
(`bare_app.py`) as subprocesses in their own sessions, readiness polling, and
closed-loop read rounds that alternate between targets (`loadgen.py`), with the
medians and verdicts the reports print.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import LoadResult, percentile, run_load  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
READ_CONNECTIONS = 16


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ database --


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def asyncpg_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"postgresql{sep}{rest}" if scheme.startswith("postgresql+") else url


def server_url() -> str:
    return os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


async def create_database(base_url: str, dbname: str) -> str:
    """CREATE DATABASE `dbname` on the server of `base_url`; returns the server version."""
    admin = await asyncpg.connect(asyncpg_url(base_url))
    try:
        version = await admin.fetchval("SHOW server_version")
        await admin.execute(f'CREATE DATABASE "{dbname}"')
    finally:
        await admin.close()
    return version


async def drop_database(base_url: str, dbname: str) -> None:
    admin = await asyncpg.connect(asyncpg_url(base_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    finally:
        await admin.close()


def pool_size() -> str:
    """The service's DB pool size per worker (SCORER_DB_POOL_SIZE or its default).

    Passed explicitly to the service and to the bare app so both get the same pool.
    """
    configured = os.environ.get("SCORER_DB_POOL_SIZE")
    if configured:
        return configured
    try:
        from service.config import Settings

        return str(Settings.model_fields["db_pool_size"].default)
    except Exception:  # pragma: no cover - the service package is not importable
        return "16"


# ------------------------------------------------------------------- servers --


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # The server runs in its own session: its group is only it and its workers.
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def start_server(name: str, argv: list[str], env: dict[str, str], port: int, logdir: Path):
    log_path = logdir / f"{name}.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Server(name=name, proc=proc, port=port, log_path=log_path)


async def wait_ready(server: Server, path: str = "/readyz", timeout: float = 180.0) -> float:
    """Poll until `path` answers 200; returns seconds waited."""
    t0 = time.perf_counter()
    last = ""
    async with httpx.AsyncClient(timeout=5.0) as client:
        while time.perf_counter() - t0 < timeout:
            if server.proc.poll() is not None:
                raise RuntimeError(
                    f"{server.name} exited with code {server.proc.returncode} before ready:\n"
                    f"{server.log_tail()}"
                )
            try:
                r = await client.get(f"http://127.0.0.1:{server.port}{path}")
                if r.status_code == 200:
                    return time.perf_counter() - t0
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            await asyncio.sleep(0.25)
    raise RuntimeError(
        f"{server.name} not ready after {timeout:.0f}s (last: {last}):\n{server.log_tail()}"
    )


def scorer_command() -> list[str]:
    exe = Path(sys.executable).parent / "scorer"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "service.cli"]


def start_service(
    db_url: str, api_key: str, workers: int, pool: str, logdir: Path, name: str = "service"
) -> Server:
    """`scorer serve --port <free> --workers N` with a bootstrap (admin) key."""
    port = free_port()
    return start_server(
        name,
        [*scorer_command(), "serve", "--port", str(port), "--workers", str(workers)],
        {
            "DATABASE_URL": db_url,
            "SCORER_BOOTSTRAP_API_KEY": api_key,
            "SCORER_DB_POOL_SIZE": pool,
        },
        port,
        logdir,
    )


def start_bare(db_url: str, workers: int, pool: str, logdir: Path) -> Server:
    """`bare_app.py` under uvicorn: FastAPI + asyncpg, one primary-key SELECT."""
    port = free_port()
    return start_server(
        "bare",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(REPO / "benchmarks"),
            "bare_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        {"BARE_DATABASE_URL": asyncpg_url(db_url), "BARE_POOL_SIZE": pool},
        port,
        logdir,
    )


# -------------------------------------------------------------- measurements --


def median(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def fmt_rate(v: float) -> str:
    return f"{v:,.0f}" if not math.isnan(v) else "n/a"


def _proc_cpu(stat: str) -> tuple[int, float]:
    """(process group, CPU seconds) from the text of /proc/<pid>/stat."""
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(*, pgid: int | None = None, pids: Sequence[int] = ()) -> float:
    """CPU seconds used so far by a process group and/or some processes (Linux /proc;
    NaN elsewhere). Processes that already exited are not counted."""
    total = 0.0
    try:
        if pgid is not None:
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    try:
                        group, used = _proc_cpu(Path(entry.path, "stat").read_text())
                    except (OSError, ValueError, IndexError):
                        continue
                    if group == pgid:
                        total += used
        for pid in pids:
            try:
                total += _proc_cpu(Path(f"/proc/{pid}/stat").read_text())[1]
            except (OSError, ValueError, IndexError):
                continue
    except OSError:
        return math.nan
    return total


@dataclass
class ReadOutcome:
    rounds: list[LoadResult] = field(default_factory=list)
    server_cores: list[float] = field(default_factory=list)  # per round, CPU s / wall s
    db_cores: list[float] = field(default_factory=list)  # this database's backends

    @property
    def throughput(self) -> float:
        return median([r.throughput for r in self.rounds])

    def pct(self, q: float) -> float:
        return median([r.pct(q) for r in self.rounds])

    def pooled_pct(self, q: float) -> float:
        return percentile(sorted(x for r in self.rounds for x in r.latencies), q) * 1000.0

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.rounds)

    @property
    def non_2xx(self) -> int:
        return sum(r.non_2xx for r in self.rounds)

    @property
    def io_errors(self) -> int:
        return sum(r.io_errors for r in self.rounds)

    @property
    def client_cpu(self) -> float:
        return median([r.client_cpu_share for r in self.rounds])

    @property
    def server_cpu(self) -> float:
        """Median over rounds of the server's CPU use, in cores."""
        return median(self.server_cores)

    @property
    def db_cpu(self) -> float:
        """Median over rounds of the PostgreSQL backends' CPU use, in cores."""
        return median(self.db_cores)

    @property
    def statuses(self) -> Counter:
        total: Counter = Counter()
        for r in self.rounds:
            total.update(r.statuses)
        return total


def _cores(value: float, throughput: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.2f} cores (~{value / throughput * 1000:.2f} ms per request)"


@dataclass(kw_only=True)
class ReadComparison:
    """The service against the bare endpoint in one alternating read test, and its targets:
    service p99 at most `p99_target` times the bare p99, service throughput at least
    `share_target` of the bare's."""

    service: ReadOutcome
    bare: ReadOutcome
    service_label: str  # the service's request, as the table shows it
    p99_target: float
    share_target: float

    @property
    def p99_factor(self) -> float:
        return self.service.pct(99) / self.bare.pct(99)

    @property
    def throughput_share(self) -> float:
        return self.service.throughput / self.bare.throughput

    @property
    def p99_ok(self) -> bool:
        return self.p99_factor <= self.p99_target

    @property
    def throughput_ok(self) -> bool:
        return self.throughput_share >= self.share_target

    @property
    def clean(self) -> bool:
        return not (self.service.non_2xx or self.service.io_errors)

    def report_lines(self) -> list[str]:
        """Both sides' figures, CPU and rounds, the verdicts, and a warning per side that
        answered with errors."""
        svc, base = self.service, self.bare
        lines = [
            f"    {'target':<40} {'p50 ms':>8} {'p99 ms':>8} {'pooled p99':>10} {'req/s':>9} "
            f"{'errors':>7} {'client CPU':>10}"
        ]
        for label, res in ((self.service_label, svc), ("bare FastAPI+asyncpg PK SELECT", base)):
            lines.append(
                f"    {label[:40]:<40} {res.pct(50):>8.2f} {res.pct(99):>8.2f} "
                f"{res.pooled_pct(99):>10.2f} {res.throughput:>9,.0f} "
                f"{res.non_2xx + res.io_errors:>7} {res.client_cpu:>10.0%}"
            )
        for label, res in (("service", svc), ("bare", base)):
            if not (math.isnan(res.server_cpu) and math.isnan(res.db_cpu)):
                lines.append(
                    f"    CPU, {label:<7}: server process "
                    f"{_cores(res.server_cpu, res.throughput)}; "
                    f"PostgreSQL backends {_cores(res.db_cpu, res.throughput)}"
                )
        for i, (s, b) in enumerate(zip(svc.rounds, base.rounds, strict=False), 1):
            lines.append(
                f"      round {i}: service p50 {s.pct(50):.2f} p99 {s.pct(99):.2f} ms "
                f"{s.throughput:,.0f} req/s | bare p50 {b.pct(50):.2f} p99 {b.pct(99):.2f} ms "
                f"{b.throughput:,.0f} req/s"
            )
        lines += [
            f"    service p99 / bare p99      : {self.p99_factor:.2f}x  -> target <= "
            f"{self.p99_target:.0f}x: {verdict(self.p99_ok)}",
            f"    service req/s / bare req/s  : {self.throughput_share:.1%}  -> target >= "
            f"{self.share_target:.0%}: {verdict(self.throughput_ok)}",
        ]
        for label, res in (("service", svc), ("bare", base)):
            if res.non_2xx or res.io_errors:
                lines.append(
                    f"    WARNING {label}: {res.non_2xx:,} non-2xx answers and {res.io_errors} "
                    f"I/O errors of {res.requests:,} (statuses "
                    f"{dict(sorted(res.statuses.items()))}); its figures include them"
                )
        return lines

    def markdown_rows(self, what: str) -> list[str]:
        svc, base = self.service, self.bare
        return [
            f"| {what}: p50, ms ({READ_CONNECTIONS} conns) | {svc.pct(50):.2f} | "
            f"{base.pct(50):.2f} | {svc.pct(50) / base.pct(50):.2f}x | — | — |",
            f"| {what}: p99, ms ({READ_CONNECTIONS} conns) | {svc.pct(99):.2f} | "
            f"{base.pct(99):.2f} | {self.p99_factor:.2f}x | ≤ {self.p99_target:.0f}x | "
            f"{verdict(self.p99_ok)} |",
            f"| {what}: throughput, req/s | {fmt_rate(svc.throughput)} | "
            f"{fmt_rate(base.throughput)} | {self.throughput_share:.1%} | "
            f"≥ {self.share_target:.0%} | {verdict(self.throughput_ok)} |",
        ]


@dataclass
class ReadTarget:
    """One side of an alternating read test.

    `requests` is either the request list (cycled) or a function of the round
    index returning that round's list; `max_requests` caps a round's requests,
    warm-up included (e.g. to send each request of a round's list at most once).
    """

    name: str
    port: int
    requests: Sequence[bytes] | Callable[[int], Sequence[bytes]]
    max_requests: int | None = None
    cpu_pgid: int | None = None  # the server's process group, to account its CPU use

    def for_round(self, k: int) -> Sequence[bytes]:
        return self.requests(k) if callable(self.requests) else self.requests


async def alternate_reads(
    targets: list[ReadTarget],
    duration: float,
    rounds: int,
    warmup: float,
    label: str = "read",
    connections: int = READ_CONNECTIONS,
    backend_pids: Callable[[], Awaitable[list[int]]] | None = None,
) -> dict[str, ReadOutcome]:
    """`rounds` rounds of `duration / rounds` measured seconds per target (after
    `warmup` seconds each), the targets' order alternating round by round.

    With a target's `cpu_pgid`, and `backend_pids` (the PostgreSQL backends of the
    benchmark database, whose server is on this host), the CPU each used during a
    round (warm-up included) is recorded as cores: CPU seconds / wall seconds."""
    out = {t.name: ReadOutcome() for t in targets}
    per_round = duration / rounds
    for k in range(rounds):
        order = targets if k % 2 == 0 else targets[::-1]  # alternate who goes first
        for target in order:
            pids = await backend_pids() if backend_pids else []
            t0 = time.perf_counter()
            server0 = cpu_seconds(pgid=target.cpu_pgid) if target.cpu_pgid else math.nan
            db0 = cpu_seconds(pids=pids) if pids else math.nan
            result = await run_load(
                "127.0.0.1",
                target.port,
                target.for_round(k),
                connections=connections,
                duration=per_round,
                warmup=warmup,
                max_requests=target.max_requests,
            )
            wall = time.perf_counter() - t0
            server = (cpu_seconds(pgid=target.cpu_pgid) - server0) / wall
            db = (cpu_seconds(pids=pids) - db0) / wall
            outcome = out[target.name]
            outcome.rounds.append(result)
            outcome.server_cores.append(server)
            outcome.db_cores.append(db)
            cpu = ""
            if not math.isnan(server):
                cpu += f" | server CPU {server:.2f} cores"
            if not math.isnan(db):
                cpu += f" | PostgreSQL CPU {db:.2f} cores"
            log(f"{label} round {k + 1}/{rounds} {target.name:>8}: {result.summary()}{cpu}")
    return out


# -------------------------------------------------------------------- report --


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:  # pragma: no cover - not on this platform
        return "n/a"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine_line(pg_version: str) -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, PostgreSQL {pg_version}"
    )


def run(main_async: Callable, *args) -> int:
    """Run `main_async(*args)` on uvloop when available."""
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.Runner()
    with runner:
        return runner.run(main_async(*args))


@dataclass
class BenchRun:
    """A benchmark's fresh database, log folder and admin key."""

    base_url: str
    dbname: str
    db_url: str
    logdir: Path
    api_key: str

    async def drop(self) -> None:
        await drop_database(self.base_url, self.dbname)


async def bench_run(name: str) -> BenchRun:
    """`scorer_bench_<name>_<pid>` on DATABASE_URL's server, a temporary log folder and a
    bootstrap key; logs the machine line first."""
    base = server_url()
    dbname = f"scorer_bench_{name}_{os.getpid()}"
    version = await create_database(base, dbname)
    log(machine_line(version))
    logdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    key = "cs_bench_" + secrets.token_urlsafe(16)
    return BenchRun(base, dbname, with_database(base, dbname), logdir, key)
