"""Overload: 300 keep-alive connections against one worker, with and without admission
control, measured in the same run.

Both targets are `scorer serve` (1 worker) on the same database of simulated customers:
"admission" with the default `SCORER_MAX_REQUESTS_IN_FLIGHT` (64), "unbounded" with the
bound out of reach. Rounds alternate between them. Reported per target: throughput of
answered requests, p50/p99 of the admitted (200) answers, the share shed with 503/429,
other statuses and connection errors. Target: admitted p99 ≤ 1 s with admission control.
Clients are closed-loop and wait `Retry-After` when shed, as the SDKs calling us do
(`--ignore-retry-after`: they retry at once, which turns shedding itself into the load).

    .venv/bin/python benchmarks/overload.py [--customers 2000] [--connections 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    asyncpg_url,
    create_database,
    drop_database,
    free_port,
    log,
    machine_line,
    median,
    scorer_command,
    server_url,
    start_server,
    wait_ready,
    with_database,
)
from loadgen import build_get_requests, percentile, run_load  # noqa: E402

TARGETS = {"admission": "64", "unbounded": "1000000"}


def prepare(db_url: str, customers: int, folder: Path) -> list[str]:
    events = folder / "events.ndjson"
    for args in (
        ["simulate", "--customers", str(customers), "--days", "365", "--seed", "7"]
        + ["--out", str(events), "--quiet"],
        ["import", str(events)],
    ):
        subprocess.run(
            [*scorer_command(), *args],
            env={**os.environ, "DATABASE_URL": db_url},
            check=True,
            capture_output=True,
        )

    async def known() -> list[str]:
        conn = await asyncpg.connect(asyncpg_url(db_url))
        try:
            rows = await conn.fetch("SELECT customer_id FROM customers ORDER BY 1")
            return [row["customer_id"] for row in rows]
        finally:
            await conn.close()

    return asyncio.run(known())


async def measure(args: argparse.Namespace, db_url: str, ids: list[str], logdir: Path) -> dict:
    key = "cs_bench_" + secrets.token_urlsafe(24)
    servers = {}
    for name, bound in TARGETS.items():
        port = free_port()
        servers[name] = start_server(
            name,
            [*scorer_command(), "serve", "--port", str(port)],
            {
                "DATABASE_URL": db_url,
                "SCORER_BOOTSTRAP_API_KEY": key,
                "SCORER_MAX_REQUESTS_IN_FLIGHT": bound,
            },
            port,
            logdir,
        )
    results: dict[str, list] = {name: [] for name in TARGETS}
    try:
        for server in servers.values():
            await wait_ready(server)
        paths = [f"/v1/customers/{c}/scores" for c in ids]
        requests = build_get_requests("127.0.0.1", paths, {"Authorization": f"Bearer {key}"})
        for round_number in range(args.rounds):
            for name, server in servers.items():
                result = await run_load(
                    "127.0.0.1",
                    server.port,
                    requests,
                    connections=args.connections,
                    duration=args.duration,
                    warmup=args.warmup,
                    honour_retry_after=not args.ignore_retry_after,
                )
                log(f"round {round_number} {name}: {result.summary()}")
                results[name].append(result)
    finally:
        for server in servers.values():
            server.stop()
    return results


def report(results: dict, connections: int) -> None:
    print(f"\n{connections} connections, 1 worker, GET /v1/customers/{{id}}/scores\n")
    print("| target | answered req/s | admitted p50 ms | admitted p99 ms | shed 503/429 | "
          "other non-200 | connection errors |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rounds in results.items():
        admitted = sorted(t for r in rounds for t in r.by_status.get(200, []))
        total = sum(r.requests for r in rounds)
        shed = sum(r.statuses.get(503, 0) + r.statuses.get(429, 0) for r in rounds)
        other = sum(n for r in rounds for s, n in r.statuses.items() if s not in (200, 503, 429))
        throughput = median([r.throughput for r in rounds])
        p50, p99 = (percentile(admitted, q) * 1000 for q in (50, 99))
        errors = sum(r.io_errors for r in rounds)
        print(
            f"| {name} | {throughput:,.0f} | {p50:.1f} | {p99:.1f} | "
            f"{shed / max(total, 1):.1%} | {other} | {errors} |"
        )
    admitted = sorted(t for r in results["admission"] for t in r.by_status.get(200, []))
    p99 = percentile(admitted, 99)
    print(f"\nadmitted p99 with admission control: {p99 * 1000:.0f} ms (target ≤ 1000 ms): "
          f"{'PASS' if p99 <= 1.0 else 'MISS'}")  # fmt: skip


async def main_async(args: argparse.Namespace) -> int:
    base = server_url()
    dbname = f"scorer_overload_{secrets.token_hex(4)}"
    version = await create_database(base, dbname)
    db_url = with_database(base, dbname)
    try:
        with tempfile.TemporaryDirectory() as folder:
            log(f"loading {args.customers} simulated customers")
            ids = await asyncio.to_thread(prepare, db_url, args.customers, Path(folder))
            log(machine_line(version))
            results = await measure(args, db_url, ids, Path(folder))
        report(results, args.connections)
    finally:
        await drop_database(base, dbname)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--ignore-retry-after",
        action="store_true",
        help="clients retry at once when shed (default: they wait Retry-After, as SDKs do)",
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
