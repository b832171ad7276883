"""Live scores benchmark: how long from an accepted write to its customer's fresh scores in
the change feed, idle and under a steady ingest load, measured in one run.

A probe is one order of a customer never seen, posted on its own; its first rescoring
writes change records whose `occurred_at` is the commit of the fresh scores. The lag of a
probe is that moment minus the moment its `POST /v1/events` answered 200 (the write had
committed), on the same machine's clock. Probes go out every 100 ms:

(a) idle: nothing else is written (the baseline);
(b) loaded: meanwhile other customers' orders arrive at `--rate` events/s (2,000) in
    batches of 50, which the scoring loop rescores too.

Reported: probe lag p50/p99 in both phases and their ratio, the ingest rate achieved, the
most writes waiting in the outbox, and the server's own lag histogram
(`scorer_score_lag_seconds`).

    .venv/bin/python benchmarks/live.py [--rate 2000] [--duration 30] [--customers 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    asyncpg_url,
    create_database,
    drop_database,
    log,
    machine_line,
    server_url,
    start_service,
    wait_ready,
    with_database,
)
from loadgen import percentile  # noqa: E402

BATCH = 50
PROBE_EVERY = 0.1


def order(customer: str, n: int, amount: float, days_ago: float = 0.0) -> dict:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    return {
        "event_id": f"{customer}-{n}",
        "customer_id": customer,
        "type": "order_completed",
        "occurred_at": when.isoformat(),
        "order_id": f"{customer}-{n}",
        "amount": f"{amount:.2f}",
    }


async def seed(http: httpx.AsyncClient, customers: int) -> None:
    rng = random.Random(1)
    events = [
        order(f"lc-{i}", k, rng.uniform(5, 300), rng.uniform(1, 300))
        for i in range(customers)
        for k in range(rng.randint(1, 4))
    ]
    for start in range(0, len(events), 500):
        response = await http.post("/v1/events", json={"events": events[start : start + 500]})
        response.raise_for_status()


async def drain(conn: asyncpg.Connection, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while await conn.fetchval("SELECT count(*) FROM score_outbox"):
        if time.monotonic() > deadline:
            raise RuntimeError("the outbox did not drain")
        await asyncio.sleep(0.1)


class Phase:
    def __init__(self, name: str) -> None:
        self.name = name
        self.committed: dict[str, float] = {}  # probe customer -> when its POST answered
        self.events = 0
        self.seconds = 0.0
        self.max_pending = 0


async def probes(http: httpx.AsyncClient, phase: Phase, stop: asyncio.Event) -> None:
    n = 0
    while not stop.is_set():
        customer = f"probe-{phase.name}-{n}"
        n += 1
        response = await http.post("/v1/events", json={"events": [order(customer, 0, 120.0)]})
        response.raise_for_status()
        phase.committed[customer] = time.time()
        await asyncio.sleep(PROBE_EVERY)


async def load(
    http: httpx.AsyncClient, phase: Phase, rate: float, customers: int, stop: asyncio.Event
) -> None:
    rng, n, started = random.Random(2), 0, time.monotonic()
    while not stop.is_set():
        batch = [
            order(f"lc-{rng.randrange(customers)}", 1000 + n + k, rng.uniform(5, 600))
            for k in range(BATCH)
        ]
        n += BATCH
        response = await http.post("/v1/events", json={"events": batch})
        response.raise_for_status()
        phase.events += BATCH
        # Open loop at the target rate: sleep until the next batch is due.
        due = started + n / rate
        await asyncio.sleep(max(due - time.monotonic(), 0))


async def watch_outbox(conn: asyncpg.Connection, phase: Phase, stop: asyncio.Event) -> None:
    while not stop.is_set():
        phase.max_pending = max(
            phase.max_pending, await conn.fetchval("SELECT count(*) FROM score_outbox")
        )
        await asyncio.sleep(0.25)


async def run_phase(
    http: httpx.AsyncClient,
    conn: asyncpg.Connection,
    name: str,
    seconds: float,
    rate: float,
    customers: int,
) -> tuple[Phase, list[float]]:
    phase, stop = Phase(name), asyncio.Event()
    tasks = [
        asyncio.create_task(probes(http, phase, stop)),
        asyncio.create_task(watch_outbox(conn, phase, stop)),
    ]
    if rate:
        tasks.append(asyncio.create_task(load(http, phase, rate, customers, stop)))
    started = time.monotonic()
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    phase.seconds = time.monotonic() - started
    await drain(conn)
    rows = await conn.fetch(
        "SELECT customer_id, extract(epoch FROM min(occurred_at))::float8 AS at FROM score_changes"
        " WHERE customer_id = ANY($1::text[]) GROUP BY customer_id",
        list(phase.committed),
    )
    lags = [row["at"] - phase.committed[row["customer_id"]] for row in rows]
    if len(lags) != len(phase.committed):
        raise RuntimeError(f"{len(phase.committed) - len(lags)} probes never reached the feed")
    return phase, lags


def histogram_quantiles(metrics: str, name: str) -> str:
    buckets = [
        (float(le), float(count))
        for le, count in re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', metrics, re.M)
        if le != "+Inf"
    ]
    total = float(re.search(rf"^{name}_count (\S+)$", metrics, re.M).group(1))
    if not total:
        return "no observations"

    def quantile(q: float) -> str:
        for le, count in buckets:
            if count >= q / 100 * total:
                return f"<= {le:g} s"
        return f"> {buckets[-1][0]:g} s"

    return f"p50 {quantile(50)}, p99 {quantile(99)} over {total:,.0f} writes (seeding included)"


def ms(values: list[float], q: float) -> str:
    return f"{percentile(sorted(values), q) * 1000:,.0f} ms"


async def main_async(args: argparse.Namespace) -> int:
    base = server_url()
    dbname = f"scorer_bench_live_{os.getpid()}"
    version = await create_database(base, dbname)
    db_url = with_database(base, dbname)
    logdir = Path(tempfile.mkdtemp(prefix="bench-live-"))
    key = "cs_bench_" + secrets.token_urlsafe(16)
    log(machine_line(version))
    service = start_service(db_url, key, 1, "16", logdir)
    conn = None
    try:
        await wait_ready(service)
        url = f"http://127.0.0.1:{service.port}"
        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30, limits=limits
        ) as http:
            conn = await asyncpg.connect(asyncpg_url(db_url))
            log(f"seeding {args.customers:,} customers")
            await seed(http, args.customers)
            await drain(conn)
            log(f"idle phase, {args.duration:.0f} s")
            idle, idle_lags = await run_phase(http, conn, "idle", args.duration, 0, args.customers)
            log(f"loaded phase at {args.rate:,.0f} events/s, {args.duration:.0f} s")
            loaded, lags = await run_phase(
                http, conn, "loaded", args.duration, args.rate, args.customers
            )
            metrics = (await http.get("/metrics")).text
    finally:
        if conn is not None:
            await conn.close()
        service.stop()
        await drop_database(base, dbname)
    achieved = loaded.events / loaded.seconds
    p99, base_p99 = percentile(sorted(lags), 99), percentile(sorted(idle_lags), 99)
    print(
        f"idle:   {len(idle_lags)} probes, commit to fresh scores in the feed "
        f"p50 {ms(idle_lags, 50)}, p99 {ms(idle_lags, 99)}"
    )
    print(
        f"loaded: {len(lags)} probes at {achieved:,.0f} events/s (target rate {args.rate:,.0f}), "
        f"p50 {ms(lags, 50)}, p99 {ms(lags, 99)} = {p99 / base_p99:.2f}x idle; "
        f"most writes waiting {loaded.max_pending:,}"
    )
    print(f"server's lag histogram: {histogram_quantiles(metrics, 'scorer_score_lag_seconds')}")
    print(f"verdict: loaded p99 {p99 * 1000:,.0f} ms {'<=' if p99 <= 1 else '>'} 1,000 ms target")
    return 0 if p99 <= 1 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="events/s of the load")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--customers", type=int, default=5000, help="customers of the load")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
