"""Live scores benchmark: how long from an accepted write to its customer's fresh scores in
the change feed, and to the webhook delivering that change, idle and under a steady ingest
load, measured in one run.

A probe is one order of a customer never seen, posted on its own; its first rescoring
writes change records whose `occurred_at` is the commit of the fresh scores, and a webhook
(a receiver in this process, on loopback: the service runs with
SCORER_WEBHOOK_ALLOW_PRIVATE_TARGETS=true) gets one of them: the webhook subscribes to
customers entering New Customers, as a CRM would to one transition (the probes make it,
the load's known customers rarely do), or with `--firehose` to every churn band change
(the load makes about one per ten events, all delivered). The lags of a probe
are those moments minus the moment its `POST /v1/events` answered 200 (the write had
committed), on the same machine's clock. Probes go out every 100 ms:

(a) idle: nothing else is written (the baseline);
(b) loaded: meanwhile other customers' orders arrive at `--rate` events/s (2,000) in
    batches of 50, which the scoring loop rescores too.

Reported: probe lags (feed, webhook) p50/p99 in both phases and the loaded/idle ratio, the
ingest rate achieved, the most writes waiting in the outbox, and the server's own lag
histogram (`scorer_score_lag_seconds`). Target: commit-to-webhook p99 <= 1 s under load.

    .venv/bin/python benchmarks/live.py [--rate 2000] [--duration 30] [--customers 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    asyncpg_url,
    bench_run,
    log,
    scorer_command,
    start_server,
    start_service,
    wait_ready,
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


class Receiver:
    """A minimal HTTP/1.1 endpoint on loopback: answers 204 and notes when each probe's
    delivery arrived (the first, should a retry follow)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.deliveries = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                body = json.loads(await reader.readexactly(length))
                at = time.time()
                self.deliveries += 1
                self.arrived.setdefault(body["data"]["customer_id"], at)
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


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
    receiver: Receiver,
    name: str,
    seconds: float,
    rate: float,
    customers: int,
) -> tuple[Phase, list[float], list[float]]:
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
    deadline = time.monotonic() + 30
    while not set(phase.committed) <= set(receiver.arrived):
        if time.monotonic() > deadline:
            raise RuntimeError("some probes' webhooks never arrived")
        await asyncio.sleep(0.1)
    delivered = [receiver.arrived[c] - at for c, at in phase.committed.items()]
    return phase, lags, delivered


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
    run = await bench_run("live")
    db_url, key, logdir = run.db_url, run.api_key, run.logdir
    shape = "API and worker processes" if args.separate_worker else "one process, background in it"
    log(f"deployment: {shape}")
    os.environ["SCORER_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"  # the receiver is on loopback
    if args.separate_worker:
        # The API in one process, the background work in a `scorer worker` beside it.
        os.environ["SCORER_BACKGROUND_WORK"] = "false"
    service = start_service(db_url, key, 1, "16", logdir)
    worker = None
    if args.separate_worker:
        worker = start_server(
            "worker", [*scorer_command(), "worker"], {"DATABASE_URL": db_url}, 0, logdir
        )
    receiver, conn = Receiver(), None
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
            port = await receiver.start()
            hook: dict = {"url": f"http://127.0.0.1:{port}/hook"}
            if args.firehose:
                hook["event_types"] = ["churn_band.changed"]
            else:
                # What a CRM subscribes to: one transition, which the probes make.
                hook["event_types"] = ["segment.changed"]
                hook["filters"] = {"segment_entered": "New Customers"}
            (await http.post("/v1/webhooks", json=hook)).raise_for_status()
            phases = {}
            for name, rate in (("idle", 0.0), ("loaded", args.rate)):
                log(f"{name} phase: {rate:,.0f} events/s besides the probes, {args.duration:.0f} s")
                phases[name] = await run_phase(
                    http, conn, receiver, name, args.duration, rate, args.customers
                )
            metrics = (await http.get("/metrics")).text
    finally:
        await receiver.stop()
        if conn is not None:
            await conn.close()
        service.stop()
        if worker is not None:
            worker.stop()
        await run.drop()
    loaded = phases["loaded"][0]
    achieved = loaded.events / loaded.seconds
    print(
        f"load: {achieved:,.0f} events/s achieved (target {args.rate:,.0f}), most writes "
        f"waiting {loaded.max_pending:,}, {receiver.deliveries:,} webhook deliveries in all"
    )
    for index, what in ((1, "commit -> fresh scores in the feed"), (2, "commit -> webhook")):
        idle_values, loaded_values = phases["idle"][index], phases["loaded"][index]
        ratio = percentile(sorted(loaded_values), 99) / percentile(sorted(idle_values), 99)
        print(
            f"{what:<36} idle p50 {ms(idle_values, 50)}, p99 {ms(idle_values, 99)} | "
            f"loaded p50 {ms(loaded_values, 50)}, p99 {ms(loaded_values, 99)} "
            f"({ratio:.2f}x idle p99; {len(loaded_values)} probes)"
        )
    print(f"server's lag histogram: {histogram_quantiles(metrics, 'scorer_score_lag_seconds')}")
    pattern = r'^scorer_webhook_deliveries_total{outcome="(\w+)"} (\S+)$'
    outcomes = re.findall(pattern, metrics, re.M)
    print("webhook attempts by outcome: " + ", ".join(f"{o} {float(n):,.0f}" for o, n in outcomes))
    p99 = percentile(sorted(phases["loaded"][2]), 99)
    print(f"verdict: commit -> webhook p99 under load {p99 * 1000:,.0f} ms (target <= 1,000 ms)")
    return 0 if p99 <= 1 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="events/s of the load")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--customers", type=int, default=5000, help="customers of the load")
    parser.add_argument(
        "--firehose",
        action="store_true",
        help="subscribe the webhook to every churn band change (the load makes ~10 per 100 "
        "events) instead of customers entering New Customers (the probes)",
    )
    parser.add_argument(
        "--separate-worker",
        action="store_true",
        help="serve with SCORER_BACKGROUND_WORK=false and run the background in `scorer worker`",
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
