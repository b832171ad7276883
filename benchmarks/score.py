"""Scoring benchmark for Customer Scorer, against a bare baseline measured in the same run.

(a) `GET /v1/customers/{id}/scores` for random known customers at 16 keep-alive
    connections, against `benchmarks/bare_app.py` (FastAPI + asyncpg, one
    primary-key SELECT on the same database, same worker count and DB pool
    size), both driven by `benchmarks/loadgen.py`, rounds alternating between
    the two. Without offers in the catalog a scores request is one feature
    query plus the ONNX models (the offer catalog is re-read at most every 2 s).
    With `--with-offers`, 3 offers are created through `POST /v1/offers` and the
    test runs twice more: once where every request is a customer's first
    decision (logged: lock, history, budget charge, insert), once where the
    decisions of the hour are reused.
(b) `scorer rescore --all`: the rate it prints itself and the rate over the
    whole command's wall clock (process start, model loading included), over
    several runs on consecutive days (`--as-of` the days before the newest event day, and that day),
    as a nightly job would run.

Data: a fresh database `scorer_bench_<pid>` on `DATABASE_URL` (default
postgresql://postgres@127.0.0.1:5432/test), loaded with
`scorer simulate --customers N --days 365 --seed 7` (the simulated year ending
today) and `scorer import`; dropped at the end unless `--keep-db`. The reads start right
after the import, as on a server whose autovacuum has not run (the import analyses what it
wrote; `--analyze` adds a VACUUM ANALYZE first, for comparison).

    .venv/bin/python benchmarks/score.py [--customers 20000] [--duration 15] [--with-offers]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    READ_CONNECTIONS,
    REPO,
    ReadComparison,
    ReadTarget,
    Server,
    alternate_reads,
    asyncpg_url,
    create_database,
    drop_database,
    fmt_rate,
    load_average,
    log,
    machine_line,
    median,
    pool_size,
    run,
    scorer_command,
    server_url,
    start_bare,
    start_service,
    verdict,
    wait_ready,
    with_database,
)
from loadgen import build_get_requests  # noqa: E402

# Targets (see benchmarks/README.md).
TARGET_SCORES_P99_FACTOR = 3.0
TARGET_SCORES_THROUGHPUT_SHARE = 0.40
TARGET_RESCORE_PER_SECOND = 20_000

SAMPLE_REQUESTS = 50_000  # random draws (with replacement) cycled by the load generator
CHECK_CUSTOMERS = 200  # customers read once each, outside the timing, to check the answers

OFFERS = [
    {
        "offer_id": "bench-winback-email",
        "name": "Win-back: 15% off your next order",
        "channel": "email",
        "value": "120",
        "cost": "2",
        "eligibility": {"churn_bands": ["medium", "high"]},
    },
    {
        "offer_id": "bench-loyalty-push",
        "name": "Double loyalty points this week",
        "channel": "push",
        "value": "60",
        "cost": "1",
        "eligibility": {
            "segments": [
                "Champions",
                "Loyal Customers",
                "Potential Loyalists",
                "New Customers",
                "Promising",
            ]
        },
    },
    {
        "offer_id": "bench-free-shipping-web",
        "name": "Free shipping banner",
        "channel": "web",
        "value": "50",
        "cost": "0.5",
    },
]

SIMULATED = re.compile(r"simulated (\d+) customers: (\d+) events written")
IMPORTED = re.compile(r"lines (\d+): accepted (\d+), duplicates (\d+), rejected (\d+)")
RESCORED = re.compile(r"rescored (\d+) customer\(s\) in ([\d.]+) s \(([\d,]+)/s\)")


# ---------------------------------------------------------------- commands --


@dataclass
class Command:
    argv: list[str]
    returncode: int
    seconds: float  # wall clock of the whole process
    stdout: str
    stderr: str

    def tail(self, lines: int = 15) -> str:
        text = (self.stderr.strip() + "\n" + self.stdout.strip()).strip()
        return "\n".join(text.splitlines()[-lines:])


def run_scorer(args: list[str], db_url: str, logdir: Path, name: str) -> Command:
    """`scorer <args>` against the benchmark database; output kept in `logdir/name.log`."""
    argv = [*scorer_command(), *args]
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - t0
    # Progress bars redraw with carriage returns: keep their last state only.
    stderr = "\n".join(line.rsplit("\r", 1)[-1] for line in proc.stderr.splitlines())
    (logdir / f"{name}.log").write_text(
        f"$ {' '.join(argv)}\n# exit {proc.returncode} after {seconds:.2f}s\n"
        f"--- stdout\n{proc.stdout}\n--- stderr\n{stderr}\n"
    )
    return Command(argv, proc.returncode, seconds, proc.stdout, stderr)


def checked(command: Command, what: str) -> Command:
    if command.returncode != 0:
        raise RuntimeError(f"{what} failed with exit code {command.returncode}:\n{command.tail()}")
    return command


@dataclass
class Dataset:
    start: date
    customers: int
    events: int
    simulate_seconds: float
    lines: int
    accepted: int
    duplicates: int
    rejected: int
    import_seconds: float
    known: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


async def load_dataset(args: argparse.Namespace, db_url: str, datadir: Path, logdir: Path):
    start = date.fromisoformat(args.start) if args.start else date.today() - timedelta(args.days)
    out = datadir / "population.ndjson"
    log(
        f"simulating {args.customers:,} customers over {args.days} days from {start} "
        f"(seed {args.seed})"
    )
    sim = checked(
        run_scorer(
            [
                "simulate",
                "--customers",
                str(args.customers),
                "--days",
                str(args.days),
                "--seed",
                str(args.seed),
                "--start",
                start.isoformat(),
                "--out",
                str(out),
                "--quiet",
            ],
            db_url,
            logdir,
            "simulate",
        ),
        "scorer simulate",
    )
    m = SIMULATED.search(sim.stdout + sim.stderr)
    customers, events = (int(m.group(1)), int(m.group(2))) if m else (args.customers, -1)
    log(f"simulated {events:,} events in {sim.seconds:.1f}s; importing (takes a while)")
    imp = checked(run_scorer(["import", str(out)], db_url, logdir, "import"), "scorer import")
    m = IMPORTED.search(imp.stdout + imp.stderr)
    lines, accepted, duplicates, rejected = (int(g) for g in m.groups()) if m else (-1,) * 4
    log(
        f"imported in {imp.seconds:.1f}s: accepted {accepted:,}, duplicates {duplicates:,}, "
        f"rejected {rejected:,}"
    )
    data = Dataset(
        start, customers, events, sim.seconds, lines, accepted, duplicates, rejected, imp.seconds
    )
    conn = await asyncpg.connect(asyncpg_url(db_url))
    try:
        if args.analyze:
            await conn.execute("VACUUM ANALYZE")
        data.known = [
            r["customer_id"]
            for r in await conn.fetch(
                "SELECT customer_id FROM customers WHERE first_seen_day <= current_date ORDER BY 1"
            )
        ]
        for table in ("events", "customer_daily", "orders", "customer_facts"):
            data.rows[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await conn.close()
    return data


# ------------------------------------------------------------------ rescore --


@dataclass
class RescoreRound:
    as_of: str  # "now" or an RFC 3339 time
    ok: bool
    customers: int = 0
    seconds: float = math.nan  # as printed by the command
    rate: float = math.nan  # as printed by the command
    wall: float = math.nan  # the whole process
    changed: int = 0  # change records written (first or changed scores)
    error: str = ""

    @property
    def wall_rate(self) -> float:
        return self.customers / self.wall if self.ok else math.nan


async def bench_rescore(db_url: str, rounds: int, logdir: Path) -> list[RescoreRound]:
    """`scorer rescore --all` once per day for the last `rounds` days, ending with the newest
    event day."""
    now = datetime.now(UTC).replace(microsecond=0)
    out: list[RescoreRound] = []
    conn = await asyncpg.connect(asyncpg_url(db_url))
    try:
        for k in range(rounds):
            days_back = rounds - 1 - k
            extra = []
            as_of = "now"
            if days_back:
                as_of = (now - timedelta(days=days_back)).isoformat()
                extra = ["--as-of", as_of]
            before = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM score_changes")
            cmd = run_scorer(["rescore", "--all", *extra], db_url, logdir, f"rescore-{k + 1}")
            m = RESCORED.search(cmd.stdout)
            if cmd.returncode != 0 or m is None:
                last = cmd.tail(1) or f"exit {cmd.returncode}"
                out.append(RescoreRound(as_of, False, wall=cmd.seconds, error=last))
                log(f"rescore round {k + 1}/{rounds} FAILED (exit {cmd.returncode}): {last}")
                continue
            changed = await conn.fetchval(
                "SELECT count(*) FROM score_changes WHERE seq > $1", before
            )
            r = RescoreRound(
                as_of,
                True,
                customers=int(m.group(1)),
                seconds=float(m.group(2)),
                rate=float(m.group(3).replace(",", "")),
                wall=cmd.seconds,
                changed=changed,
            )
            out.append(r)
            log(
                f"rescore round {k + 1}/{rounds} (as of {as_of}): {r.customers:,} customers, "
                f"{r.rate:,.0f}/s in-command, {r.wall:.2f}s wall clock, "
                f"{r.changed:,} change records"
            )
    finally:
        await conn.close()
    return out


# ------------------------------------------------------------------- scores --


@dataclass
class ScoreCheck:
    """What one read of each of a few customers answered (outside the timing)."""

    statuses: Counter = field(default_factory=Counter)
    known: Counter = field(default_factory=Counter)
    suppressed: int = 0
    segments: Counter = field(default_factory=Counter)
    churn_bands: Counter = field(default_factory=Counter)
    pcltv_tiers: Counter = field(default_factory=Counter)
    nbo_reasons: Counter = field(default_factory=Counter)
    offers: Counter = field(default_factory=Counter)
    versions: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    example: str = ""

    def lines(self, label: str) -> list[str]:
        def top(c: Counter, n: int = 6) -> str:
            total = sum(c.values()) or 1
            return ", ".join(f"{k} {v / total:.0%}" for k, v in c.most_common(n)) or "-"

        n = sum(self.statuses.values())
        out = [
            f"check ({label}): {n} customers read once each -> statuses {dict(self.statuses)}, "
            f"known {self.known.get(True, 0)}, suppressed (profiling consent withdrawn) "
            f"{self.suppressed}",
            f"  segments: {top(self.segments)}",
            f"  churn bands: {top(self.churn_bands)}; pCLTV tiers: {top(self.pcltv_tiers)}",
            f"  nbo_reason: {top(self.nbo_reasons)}"
            + (f"; offers: {top(self.offers)}" if self.offers else ""),
        ]
        out.extend(f"  unexpected: {f}" for f in self.failures)
        return out


async def check_scores(port: int, api_key: str, customers: list[str]) -> ScoreCheck:
    check = ScoreCheck()
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {api_key}"}, timeout=30.0
    ) as client:
        for customer in customers:
            url = f"http://127.0.0.1:{port}/v1/customers/{customer}/scores"
            try:
                r = await client.get(url)
            except httpx.HTTPError as exc:
                check.statuses[type(exc).__name__] += 1
                if len(check.failures) < 3:
                    check.failures.append(f"{customer}: {exc!r}")
                await asyncio.sleep(0.2)
                continue
            check.statuses[r.status_code] += 1
            if r.status_code != 200:
                if len(check.failures) < 3:
                    check.failures.append(f"{customer}: HTTP {r.status_code} {r.text[:200]}")
                continue
            data = r.json()
            check.known[data.get("known")] += 1
            check.versions = data.get("model_versions") or check.versions
            check.nbo_reasons[data.get("nbo_reason")] += 1
            if data.get("suppressed"):
                check.suppressed += 1
                continue
            check.segments[(data.get("segment") or {}).get("name")] += 1
            check.churn_bands[(data.get("churn") or {}).get("band")] += 1
            check.pcltv_tiers[(data.get("pcltv") or {}).get("tier")] += 1
            offer = data.get("next_best_offer")
            if offer:
                check.offers[offer.get("offer_id")] += 1
            if not check.example:
                check.example = json.dumps(data, separators=(",", ":"))
    return check


def get_requests(api_key: str, customers: list[str], resource: str) -> list[bytes]:
    paths = [f"/v1/customers/{c}/{resource}" for c in customers]
    return build_get_requests("127.0.0.1", paths, {"Authorization": f"Bearer {api_key}"})


@dataclass
class Targets:
    """The two servers, and a connection that lists the benchmark database's backends."""

    servers: dict[str, Server]
    monitor: asyncpg.Connection
    dbname: str

    def target(self, name: str, requests, max_requests: int | None = None) -> ReadTarget:
        server = self.servers[name]
        return ReadTarget(name, server.port, requests, max_requests, cpu_pgid=server.proc.pid)

    async def backend_pids(self) -> list[int]:
        rows = await self.monitor.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            self.dbname,
        )
        return [r["pid"] for r in rows]


@dataclass(kw_only=True)
class Phase(ReadComparison):
    """One alternating service-vs-bare read test."""

    key: str
    title: str
    notes: list[str] = field(default_factory=list)
    service_label: str = "service GET /v1/customers/{id}/scores"
    p99_target: float = TARGET_SCORES_P99_FACTOR
    share_target: float = TARGET_SCORES_THROUGHPUT_SHARE


async def random_phase(
    key: str,
    title: str,
    env: Targets,
    api_key: str,
    customers: list[str],
    args: argparse.Namespace,
    seed: int,
) -> Phase:
    """Random known customers (with replacement), same sequence for both targets."""
    rng = random.Random(seed)
    sample = [rng.choice(customers) for _ in range(SAMPLE_REQUESTS)]
    out = await alternate_reads(
        [
            env.target("service", get_requests(api_key, sample, "scores")),
            env.target("bare", get_requests(api_key, sample, "features")),
        ],
        args.duration,
        args.read_rounds,
        args.read_warmup,
        label=key,
        backend_pids=env.backend_pids,
    )
    return Phase(key=key, title=title, service=out["service"], bare=out["bare"])


async def fresh_phase(
    env: Targets,
    api_key: str,
    customers: list[str],
    args: argparse.Namespace,
) -> Phase:
    """Each round a disjoint slice of customers, each asked for at most once: every
    service request is that customer's first decision."""
    per = len(customers) // args.read_rounds
    slices = [customers[k * per : (k + 1) * per] for k in range(args.read_rounds)]
    service_requests = [get_requests(api_key, s, "scores") for s in slices]
    bare_requests = [get_requests(api_key, s, "features") for s in slices]
    # The load generator's connections walk the list with a stride and wrap at its
    # end; stopping a little short keeps a connection that ran ahead from wrapping.
    cap = max(1, per - 8 * READ_CONNECTIONS)
    out = await alternate_reads(
        [
            env.target("service", service_requests.__getitem__, cap),
            env.target("bare", bare_requests.__getitem__),
        ],
        args.duration,
        args.read_rounds,
        args.read_warmup,
        label="first-decision",
        backend_pids=env.backend_pids,
    )
    phase = Phase(
        key="first_decision",
        title="Scores with 3 offers, every request a customer's first decision (logged)",
        service=out["service"],
        bare=out["bare"],
    )
    per_round = args.duration / args.read_rounds
    short = [r for r in phase.service.rounds if r.duration < per_round * 0.98]
    if short:
        covered = ", ".join(f"{r.duration:.1f}s" for r in short)
        phase.notes.append(
            f"NOTE: {len(short)} round(s) ran out of fresh customers ({cap:,} per round) before "
            f"{per_round:.1f}s; their figures cover {covered} (use more --customers)"
        )
    return phase


async def create_offers(port: int, api_key: str) -> list[str]:
    created = []
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {api_key}"}, timeout=30.0
    ) as client:
        for offer in OFFERS:
            r = await client.post(f"http://127.0.0.1:{port}/v1/offers", json=offer)
            if r.status_code != 200:
                raise RuntimeError(
                    f"POST /v1/offers {offer['offer_id']}: HTTP {r.status_code} {r.text[:300]}"
                )
            created.append(r.json()["offer_id"])
    return created


@dataclass
class Decisions:
    rows: int
    customers: int
    reasons: Counter

    def __sub__(self, other: Decisions) -> Decisions:
        reasons = Counter(self.reasons)
        reasons.subtract(other.reasons)
        return Decisions(self.rows - other.rows, self.customers - other.customers, +reasons)

    def mix(self) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in self.reasons.most_common()) or "-"


async def decision_stats(db_url: str) -> Decisions:
    conn = await asyncpg.connect(asyncpg_url(db_url))
    try:
        rows = await conn.fetchval("SELECT count(*) FROM offer_decisions")
        customers = await conn.fetchval("SELECT count(DISTINCT customer_id) FROM offer_decisions")
        reasons = Counter(
            {
                r["reason"]: r["n"]
                for r in await conn.fetch(
                    "SELECT reason, count(*) AS n FROM offer_decisions GROUP BY reason"
                )
            }
        )
    finally:
        await conn.close()
    return Decisions(rows, customers, reasons)


async def customers_with_offer(db_url: str) -> tuple[list[str], int]:
    """Customers whose latest decision made an offer (reused for an hour), and how many
    customers have a latest decision without one."""
    conn = await asyncpg.connect(asyncpg_url(db_url))
    try:
        latest = await conn.fetch(
            """
            SELECT DISTINCT ON (customer_id) customer_id, offer_id
            FROM offer_decisions ORDER BY customer_id, decided_at DESC
            """
        )
    finally:
        await conn.close()
    with_offer = [r["customer_id"] for r in latest if r["offer_id"] is not None]
    return with_offer, len(latest) - len(with_offer)


# ------------------------------------------------------------------- report --


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"load average: {load_average()}"


# --------------------------------------------------------------------- main --


async def main_async(args: argparse.Namespace) -> int:
    base_url = server_url()
    dbname = f"scorer_bench_{os.getpid()}"
    db_url = with_database(base_url, dbname)
    api_key = "bench_" + secrets.token_urlsafe(24)
    logdir = Path(tempfile.mkdtemp(prefix="scorer-score-bench-"))
    datadir = Path(tempfile.mkdtemp(prefix="scorer-score-data-"))
    pool = pool_size()
    started = datetime.now(UTC)
    uptime_start = uptime()
    log(f"uptime at start: {uptime_start}")
    log(f"logs in {logdir}")

    pg_version = await create_database(base_url, dbname)
    log(f"created database {dbname}")

    servers: list[Server] = []
    monitor: asyncpg.Connection | None = None
    phases: list[Phase] = []
    checks: dict[str, list[tuple[str, ScoreCheck]]] = {}
    decisions: Decisions | None = None
    ready_info: dict = {}
    try:
        data = await load_dataset(args, db_url, datadir, logdir)
        shutil.rmtree(datadir, ignore_errors=True)
        if not data.known:
            raise RuntimeError("no known customers after the import")

        # (b) batch rescoring first, with the machine to ourselves (no servers yet).
        rescore = await bench_rescore(db_url, args.rescore_rounds, logdir)

        service = start_service(db_url, api_key, args.workers, pool, logdir)
        servers.append(service)
        bare = start_bare(db_url, args.workers, pool, logdir)
        servers.append(bare)
        waited = await wait_ready(service)
        log(f"service ready on :{service.port} after {waited:.1f}s (log {service.log_path})")
        await wait_ready(bare)
        log(f"bare app ready on :{bare.port}")
        async with httpx.AsyncClient(timeout=10.0) as client:
            ready_info = (await client.get(f"http://127.0.0.1:{service.port}/readyz")).json()
        # Lists the benchmark database's backends from another database, so it is
        # not one of them; their CPU use is read from /proc when PostgreSQL is local.
        monitor = await asyncpg.connect(asyncpg_url(base_url))
        env = Targets({"service": service, "bare": bare}, monitor, dbname)

        rng = random.Random(args.seed)
        shuffled = data.known[:]
        rng.shuffle(shuffled)

        # (a) scores without offers.
        checks["no_offers"] = [
            ("no offers", await check_scores(service.port, api_key, shuffled[:CHECK_CUSTOMERS]))
        ]
        phases.append(
            await random_phase(
                "no_offers",
                "Scores, no offers (one feature query + the ONNX models)",
                env,
                api_key,
                data.known,
                args,
                args.seed,
            )
        )

        if args.with_offers:
            created = await create_offers(service.port, api_key)
            log(f"created offers {created}; waiting for the service's offer cache (2 s)")
            await asyncio.sleep(2.5)
            # Decisions are per customer and reused for an hour: the check and each
            # round of the first-decision test use customers nobody asked for yet.
            checks["first_decision"] = [
                (
                    "3 offers, first decisions",
                    await check_scores(service.port, api_key, shuffled[:CHECK_CUSTOMERS]),
                )
            ]
            before = await decision_stats(db_url)
            phase = await fresh_phase(env, api_key, shuffled[CHECK_CUSTOMERS:], args)
            logged = await decision_stats(db_url) - before
            twice = logged.rows - logged.customers
            phase.notes.append(
                f"decisions logged during this test: {logged.rows:,} for {logged.customers:,} "
                "customers"
                + (
                    f" ({twice:,} asked for twice, concurrently or at a round's end)"
                    if twice
                    else " (each customer's first)"
                )
            )
            phase.notes.append(f"  reasons: {logged.mix()}")
            phases.append(phase)

            with_offer, without_offer = await customers_with_offer(db_url)
            if with_offer:
                before = await decision_stats(db_url)
                phase = await random_phase(
                    "reused_decision",
                    "Scores with 3 offers, the offer decided this hour reused",
                    env,
                    api_key,
                    with_offer,
                    args,
                    args.seed + 1,
                )
                logged = await decision_stats(db_url) - before
                phase.notes.append(
                    f"random customers among the {len(with_offer):,} whose latest decision "
                    f"(this hour) made an offer; decisions logged during this test: "
                    f"{logged.rows:,}"
                )
                phase.notes.append(
                    f"not included: {without_offer:,} customers whose latest decision made no "
                    "offer (control group, no consent, no positive value...): their reused "
                    "answer carries no offer, a cheaper response than the one measured"
                )
                phases.append(phase)
            decisions = await decision_stats(db_url)
    except Exception:
        for s in servers:
            log(f"--- {s.name} log tail ---\n{s.log_tail()}")
        raise
    finally:
        if monitor is not None:
            await monitor.close()
        for s in servers:
            s.stop()
        shutil.rmtree(datadir, ignore_errors=True)
        if args.keep_db:
            log(f"kept database {dbname}")
        else:
            await drop_database(base_url, dbname)
            log(f"dropped database {dbname}")

    # ---- report
    ok_rounds = [r for r in rescore if r.ok]
    rescore_rate = median([r.rate for r in ok_rounds])
    rescore_wall = median([r.wall_rate for r in ok_rounds])
    rescore_ok = bool(ok_rounds) and rescore_rate >= TARGET_RESCORE_PER_SECOND
    versions = ready_info.get("models") or checks["no_offers"][0][1].versions

    report: list[str] = []
    w = report.append
    w("")
    w("=" * 78)
    w("Customer Scorer scoring benchmark")
    w("=" * 78)
    elapsed = (datetime.now(UTC) - started).total_seconds()
    w(f"run         : {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min in all")
    w(f"machine     : {machine_line(pg_version)}")
    w(f"load (start): {uptime_start}")
    w(f"load (end)  : {uptime()}")
    w(
        "              other processes may share these CPUs; client, servers and PostgreSQL "
        "all run here"
    )
    w(
        f"setup       : service workers={args.workers}, DB pool {pool} per worker for both the "
        f"service and the bare app; database {dbname} (fresh, "
        f"{'kept' if args.keep_db else 'dropped at the end'})"
    )
    w(
        f"data        : scorer simulate --customers {data.customers:,} --days {args.days} "
        f"--seed {args.seed} --start {data.start} -> {data.events:,} events in "
        f"{data.simulate_seconds:.1f}s"
    )
    w(
        f"              scorer import: {data.lines:,} lines, accepted {data.accepted:,}, "
        f"duplicates {data.duplicates:,}, rejected {data.rejected:,} in "
        f"{data.import_seconds:.0f}s ({data.lines / data.import_seconds:,.0f} lines/s)"
    )
    w(
        f"              rows: {len(data.known):,} customers known today, "
        + ", ".join(f"{t} {n:,}" for t, n in data.rows.items())
    )
    w(f"models      : {', '.join(f'{k}={v}' for k, v in versions.items()) or 'n/a'}")
    w("")
    for i, phase in enumerate(phases):
        letter = "(a)" if i == 0 else "   "
        w(
            f"{letter} {phase.title} — {READ_CONNECTIONS} connections, {args.read_rounds} "
            f"alternating rounds x {args.duration / args.read_rounds:.1f}s per target "
            f"(+{args.read_warmup:.0f}s warm-up each)"
        )
        if phase.key == "no_offers":
            w("    No offers exist: a scores request checks the API key (cached 5 s), runs one")
            w("    feature query (that customer's customer_daily, orders and customer_facts rows)")
            w("    and the churn, pCLTV and segment ONNX models; the offer catalog is re-read at")
            w("    most every 2 s. The bare app (no auth) runs one primary-key SELECT on")
            w("    customers: GET /v1/customers/{id}/features, same customers in the same order.")
        for line in phase.report_lines():
            w(line)
        for n in phase.notes:
            w(f"    {n}")
        for label, check in checks.get(phase.key, []):
            for line in check.lines(label):
                w(f"    {line}")
            if phase.key == "no_offers" and check.example:
                w(f"    sample answer: {check.example[:400]}")
        w("")
    if decisions is not None:
        report.pop()  # the blank line after the last test
        w(
            f"    offer_decisions at the end: {decisions.rows:,} rows for "
            f"{decisions.customers:,} customers ({decisions.mix()})"
        )
        w(
            "    offers: "
            + "; ".join(
                f"{o['offer_id']} ({o['channel']}, value {o['value']}, cost {o['cost']}, "
                f"{json.dumps(o.get('eligibility') or 'anyone')})"
                for o in OFFERS
            )
        )
        w("")
    w(
        f"(b) Batch rescoring — scorer rescore --all, {args.rescore_rounds} run(s) as a nightly "
        "job on consecutive days"
    )
    w(
        f"    (--as-of now-{args.rescore_rounds - 1}d, ..., the last without --as-of), "
        "no server running; the first run writes every row"
    )
    for i, r in enumerate(rescore, 1):
        if not r.ok:
            w(f"    run {i} (as of {r.as_of}): FAILED after {r.wall:.1f}s: {r.error}")
            continue
        w(
            f"    run {i} (as of {r.as_of[:10] if r.as_of != 'now' else 'now'}): "
            f"{r.customers:,} customers in {r.seconds:.2f}s = {r.rate:,.0f}/s as printed; "
            f"whole command {r.wall:.2f}s = {r.wall_rate:,.0f}/s; "
            f"{r.changed:,} change records"
        )
    w(
        f"    median, as printed (scoring loop)  : {fmt_rate(rescore_rate):>8} customers/s "
        f"-> target >= {TARGET_RESCORE_PER_SECOND:,}: "
        f"{verdict(rescore_ok) if ok_rounds else 'n/a (failed)'}"
    )
    w(
        f"    median, whole command (wall clock) : {fmt_rate(rescore_wall):>8} customers/s "
        "(process start, imports and model loading included)"
    )
    w("")
    w("Markdown (for the README):")
    w("")
    w(
        f"Measured {started:%Y-%m-%d} on {os.cpu_count()} CPUs (load average at start "
        f"{uptime_start.rsplit('load average:', 1)[-1].strip()}), PostgreSQL {pg_version}, "
        f"{args.workers} worker(s), client on the same host; {data.customers:,} simulated "
        f"customers, {data.events:,} events over {args.days} days."
    )
    w("")
    w("| measure | service | baseline | ratio | target | result |")
    w("|---|---:|---:|---:|---|---|")
    labels = {
        "no_offers": "scores, no offers",
        "first_decision": "scores, 3 offers, first decision",
        "reused_decision": "scores, 3 offers, decision reused",
    }
    for phase in phases:
        for row in phase.markdown_rows(labels[phase.key]):
            w(row)
    w(
        f"| batch rescore (`scorer rescore --all`), customers/s, median of {len(ok_rounds)} | "
        f"{fmt_rate(rescore_rate)} | — | — | ≥ {TARGET_RESCORE_PER_SECOND:,} | "
        f"{verdict(rescore_ok) if ok_rounds else 'n/a'} |"
    )
    w(
        f"| batch rescore, whole command incl. start-up, customers/s | {fmt_rate(rescore_wall)} "
        "| — | — | — | — |"
    )
    w("")
    print("\n".join(report), flush=True)
    clean = (
        all(p.clean for p in phases)
        and len(ok_rounds) == len(rescore)
        and all(set(c.statuses) <= {200} for pairs in checks.values() for _, c in pairs)
    )
    return 0 if clean else 2  # 2: numbers printed, but the run was not clean


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Customer Scorer scores + batch-rescore benchmark against a bare baseline."
    )
    p.add_argument("--customers", type=int, default=20_000, help="simulated customers (20,000)")
    p.add_argument("--days", type=int, default=365, help="simulated days (365)")
    p.add_argument("--seed", type=int, default=7, help="simulation seed (7)")
    p.add_argument(
        "--start",
        default=None,
        help="first simulated day, YYYY-MM-DD (default: today - days, so the data ends today)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=15.0,
        help="measured seconds per target and test, over all rounds (15)",
    )
    p.add_argument("--read-rounds", type=int, default=3, help="alternating rounds per test (3)")
    p.add_argument("--read-warmup", type=float, default=2.0, help="warm-up seconds per round (2)")
    p.add_argument("--workers", type=int, default=1, help="service and bare-app workers (1)")
    p.add_argument("--rescore-rounds", type=int, default=3, help="scorer rescore --all runs (3)")
    p.add_argument(
        "--with-offers",
        action="store_true",
        help="also create 3 offers and measure first and reused decisions",
    )
    p.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    p.add_argument(
        "--analyze", action="store_true", help="VACUUM ANALYZE after the import, before reading"
    )
    args = p.parse_args(argv)
    if args.customers < 100:
        p.error("--customers must be at least 100")
    if args.read_rounds < 1 or args.rescore_rounds < 1:
        p.error("--read-rounds and --rescore-rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return run(main_async, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
