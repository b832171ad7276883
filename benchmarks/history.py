"""History benchmark: does a read cost the same for a customer with ten years of daily orders
as for one with a month?

Customers with 30 days, 1, 5 and 10 years of history (one order every day, a session and a
product view every week, an e-mail open every 30 days, a CSAT answer every 90 days, one
consent) are loaded with `scorer import`, in time order, into a fresh database
`scorer_bench_<pid>` on `DATABASE_URL` (default postgresql://postgres@127.0.0.1:5432/test).
Then `GET /v1/customers/{id}/features` and `GET /v1/customers/{id}/scores` are timed per
history length on one keep-alive connection (latency is the cost of one read), in rounds
whose order alternates (`common.alternate_reads`); reported are p50 (median over rounds),
p99 (over all rounds' requests), the CPU of the PostgreSQL backends per request, and the
ratios to the 30-day customers measured in the same run.

    .venv/bin/python benchmarks/history.py [--customers 20] [--duration 9] [--rounds 6]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ReadOutcome,
    ReadTarget,
    alternate_reads,
    asyncpg_url,
    create_database,
    drop_database,
    log,
    machine_line,
    pool_size,
    run,
    server_url,
    start_service,
    verdict,
    wait_ready,
    with_database,
)
from score import IMPORTED, Targets, checked, get_requests, run_scorer, uptime  # noqa: E402

HISTORIES = {"30 days": 30, "1 year": 365, "5 years": 5 * 365, "10 years": 10 * 365}
BASELINE, LONGEST = "30 days", "10 years"
TARGET_RATIO = 1.2  # 10 years / 30 days, p50 of feature reads
ENDPOINTS = ("features", "scores")


def customer_id(history: str, k: int) -> str:
    return f"h{HISTORIES[history]}d-{k:03d}"


def _event(cid: str, i: int, at: datetime, kind: str, **fields) -> tuple[datetime, dict]:
    body = {
        "event_id": f"{cid}-{i}-{kind}",
        "customer_id": cid,
        "type": kind,
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
    }
    return at, {**body, **fields}


def customer_events(cid: str, days: int, last_day: date) -> Iterator[tuple[datetime, dict]]:
    """One customer's events, each with its time: `days` days of history up to `last_day`."""
    first = datetime.combine(last_day - timedelta(days=days - 1), time(12), UTC)
    for i in range(days):
        noon = first + timedelta(days=i)
        if i == 0:
            consent = {"channel": "email", "granted": True}
            yield _event(cid, i, noon - timedelta(hours=1), "consent_updated", properties=consent)
        if i % 7 == 0:
            yield _event(cid, i, noon - timedelta(minutes=2), "session_started")
            yield _event(cid, i, noon - timedelta(minutes=1), "product_viewed")
        amount = f"{20 + i % 37}.{i % 100:02d}"
        yield _event(cid, i, noon, "order_completed", order_id=f"o{i}", amount=amount)
        if i % 30 == 0:
            yield _event(cid, i, noon + timedelta(hours=1), "email_opened")
        if i % 90 == 45:
            csat = {"csat": 1 + i % 5}
            yield _event(cid, i, noon + timedelta(hours=2), "survey_response", properties=csat)


def write_events(path: Path, per_history: int, last_day: date) -> int:
    """All customers' events in time order, as an import of a shop's history would be."""
    events = [
        item
        for history, days in HISTORIES.items()
        for k in range(per_history)
        for item in customer_events(customer_id(history, k), days, last_day)
    ]
    events.sort(key=lambda item: item[0])
    with path.open("w") as out:
        for _, body in events:
            out.write(json.dumps(body) + "\n")
    return len(events)


@dataclass
class Dataset:
    events: int
    import_seconds: float
    accepted: int
    rows: dict[str, int]


async def load(args: argparse.Namespace, db_url: str, logdir: Path) -> Dataset:
    datadir = Path(tempfile.mkdtemp(prefix="scorer-history-data-"))
    try:
        path = datadir / "history.ndjson"
        # Yesterday, so that no event is in the future for the service's clock.
        events = write_events(path, args.customers, datetime.now(UTC).date() - timedelta(days=1))
        log(f"wrote {events:,} events; importing")
        imp = checked(run_scorer(["import", str(path)], db_url, logdir, "import"), "scorer import")
    finally:
        shutil.rmtree(datadir, ignore_errors=True)
    m = IMPORTED.search(imp.stdout + imp.stderr)
    accepted = int(m.group(2)) if m else -1
    log(f"imported in {imp.seconds:.1f}s: accepted {accepted:,}")
    conn = await asyncpg.connect(asyncpg_url(db_url))
    try:
        rows = {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("events", "customer_daily", "orders", "customer_facts")
        }
    finally:
        await conn.close()
    return Dataset(events, imp.seconds, accepted, rows)


async def check_answers(port: int, api_key: str, per_history: int) -> list[str]:
    """One customer of each length read once: every day of history has one order."""
    problems = []
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {api_key}"}, timeout=30.0
    ) as client:
        for history, days in HISTORIES.items():
            cid = customer_id(history, per_history - 1)
            r = await client.get(f"http://127.0.0.1:{port}/v1/customers/{cid}/features")
            body = r.json() if r.status_code == 200 else {}
            if body.get("orders_total") != days:
                problems.append(f"{cid}: HTTP {r.status_code} {r.text[:300]}")
    return problems


def per_request_ms(outcome: ReadOutcome) -> float:
    return outcome.db_cpu / outcome.throughput * 1000.0


def report_lines(outcomes: dict[str, ReadOutcome]) -> list[str]:
    lines = []
    for endpoint in ENDPOINTS:
        base = outcomes[f"{endpoint} {BASELINE}"]
        lines.append(
            f"  GET /v1/customers/{{id}}/{endpoint}\n"
            f"    {'history':<9} {'requests':>8} {'p50 ms':>7} {'p99 ms':>7} {'PG CPU ms':>9}"
            f" {'p50 ratio':>9} {'p99 ratio':>9} {'PG CPU ratio':>12} {'errors':>6}"
        )
        for history in HISTORIES:
            res = outcomes[f"{endpoint} {history}"]
            lines.append(
                f"    {history:<9} {res.requests:>8,} {res.pct(50):>7.2f} "
                f"{res.pooled_pct(99):>7.2f} {per_request_ms(res):>9.3f} "
                f"{res.pct(50) / base.pct(50):>8.2f}x "
                f"{res.pooled_pct(99) / base.pooled_pct(99):>8.2f}x "
                f"{per_request_ms(res) / per_request_ms(base):>11.2f}x "
                f"{res.non_2xx + res.io_errors:>6}"
            )
    features = outcomes[f"features {LONGEST}"], outcomes[f"features {BASELINE}"]
    ratio = features[0].pct(50) / features[1].pct(50)
    lines.append(
        f"  features p50, {LONGEST} / {BASELINE}: {ratio:.2f}x -> target <= {TARGET_RATIO}x: "
        f"{verdict(ratio <= TARGET_RATIO)}"
    )
    return lines


def markdown_rows(outcomes: dict[str, ReadOutcome]) -> list[str]:
    rows = [
        "| history | features p50 | features p99 | scores p50 | scores p99 | "
        "features p50 / 30 days |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for history in HISTORIES:
        f, s = outcomes[f"features {history}"], outcomes[f"scores {history}"]
        base = outcomes[f"features {BASELINE}"]
        rows.append(
            f"| {history} | {f.pct(50):.2f} | {f.pooled_pct(99):.2f} | {s.pct(50):.2f} | "
            f"{s.pooled_pct(99):.2f} | {f.pct(50) / base.pct(50):.2f}x |"
        )
    return rows


async def measure(args: argparse.Namespace, env: Targets, api_key: str) -> dict:
    port = env.servers["service"].port
    targets = [
        ReadTarget(
            f"{endpoint} {history}",
            port,
            get_requests(
                api_key, [customer_id(history, k) for k in range(args.customers)], endpoint
            ),
            cpu_pgid=env.servers["service"].proc.pid,
        )
        for endpoint in ENDPOINTS
        for history in HISTORIES
    ]
    return await alternate_reads(
        targets,
        args.duration,
        args.rounds,
        args.warmup,
        label="history",
        connections=1,
        backend_pids=env.backend_pids,
    )


async def main_async(args: argparse.Namespace) -> int:
    base_url = server_url()
    dbname = f"scorer_bench_{os.getpid()}"
    db_url = with_database(base_url, dbname)
    api_key = "bench_" + secrets.token_urlsafe(24)
    logdir = Path(tempfile.mkdtemp(prefix="scorer-history-bench-"))
    started = datetime.now(UTC)
    uptime_start = uptime()
    log(f"uptime at start: {uptime_start}; logs in {logdir}")
    pg_version = await create_database(base_url, dbname)
    service = monitor = None
    try:
        data = await load(args, db_url, logdir)
        service = start_service(db_url, api_key, 1, pool_size(), logdir)
        await wait_ready(service)
        monitor = await asyncpg.connect(asyncpg_url(base_url))
        env = Targets({"service": service}, monitor, dbname)
        problems = await check_answers(service.port, api_key, args.customers)
        outcomes = await measure(args, env, api_key)
    finally:
        if monitor is not None:
            await monitor.close()
        if service is not None:
            service.stop()
        if args.keep_db:
            log(f"kept database {dbname}")
        else:
            await drop_database(base_url, dbname)

    elapsed = (datetime.now(UTC) - started).total_seconds()
    out = [
        "",
        "Customer Scorer history benchmark",
        f"run     : {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min in all",
        f"machine : {machine_line(pg_version)}",
        f"load    : start {uptime_start}; end {uptime()}",
        f"data    : {args.customers} customers per history length, {data.events:,} events "
        f"(accepted {data.accepted:,}) imported in {data.import_seconds:.0f}s; rows: "
        + ", ".join(f"{t} {n:,}" for t, n in data.rows.items()),
        f"reads   : 1 connection, 1 worker, {args.rounds} alternating rounds x "
        f"{args.duration / args.rounds:.1f}s per target (+{args.warmup:.1f}s warm-up), as_of now;"
        " p50 = median over rounds, p99 over all requests, PG CPU = PostgreSQL backends' CPU "
        "per request",
        *report_lines(outcomes),
        *(f"  unexpected answer: {p}" for p in problems),
        "",
        *markdown_rows(outcomes),
    ]
    print("\n".join(out))
    errors = sum(o.non_2xx + o.io_errors for o in outcomes.values())
    return 2 if problems or errors else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=20, help="customers per history (20)")
    p.add_argument("--duration", type=float, default=9.0, help="measured s per target (9)")
    p.add_argument("--rounds", type=int, default=6, help="alternating rounds (6)")
    p.add_argument("--warmup", type=float, default=0.5, help="warm-up s per target round (0.5)")
    p.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(main_async, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
