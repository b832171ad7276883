"""Sources benchmark: Segment-compatible batches and the NATS consumer against
`POST /v1/events`, in one run on one machine.

(a) The same events (orders, page views, product views, 500 to a request, 4 concurrent
    connections) sent as `POST /v1/events` batches and as `POST /v1/batch` Segment
    messages; rounds alternate between the two, each round with fresh customers and ids.
    Target: Segment throughput >= 80% of /v1/events.
(b) `scorer consume` draining N events published one per message to a JetStream stream,
    timed from its first stored event to its last, against the /v1/events rate of (a).

    .venv/bin/python benchmarks/sources.py [--events 20000] [--rounds 3] [--nats-events 50000]

`DATABASE_URL` (default postgresql://postgres@127.0.0.1:5432/test) names the server (a fresh
database is created and dropped); `NATS_URL` (default nats://127.0.0.1:4222) the NATS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import nats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    asyncpg_url,
    bench_run,
    log,
    median,
    scorer_command,
    start_service,
    wait_ready,
)

BATCH = 500
CONNECTIONS = 4
KINDS = ("order", "page", "view")


def events(tag: str, count: int) -> list[dict]:
    start = datetime.now(UTC) - timedelta(days=200)
    made = []
    for n in range(count):
        kind = KINDS[n % 3]
        made.append(
            {
                "id": f"{tag}-{n}",
                "customer": f"{tag}-c{n % 2000}",
                "at": (start + timedelta(minutes=n)).isoformat(),
                "kind": kind,
            }
        )
    return made


def as_event(item: dict) -> dict:
    event = {"event_id": item["id"], "customer_id": item["customer"], "occurred_at": item["at"]}
    if item["kind"] == "order":
        return {**event, "type": "order_completed", "order_id": item["id"], "amount": "25.50"}
    return {**event, "type": "session_started" if item["kind"] == "page" else "product_viewed"}


def as_segment(item: dict) -> dict:
    message = {"messageId": item["id"], "userId": item["customer"], "timestamp": item["at"]}
    if item["kind"] == "order":
        properties = {"order_id": item["id"], "revenue": 25.5, "currency": "USD"}
        return {**message, "type": "track", "event": "Order Completed", "properties": properties}
    if item["kind"] == "page":
        return {**message, "type": "page", "name": "Home"}
    return {**message, "type": "track", "event": "Product Viewed", "properties": {"sku": "s"}}


async def send(url: str, key: str, path: str, bodies: list[dict]) -> float:
    """Events/s of posting `bodies` over CONNECTIONS connections."""
    queue = list(reversed(bodies))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            body = queue.pop()
            answer = await client.post(path, json=body)
            if answer.status_code != 200:
                raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:200]}")

    headers = {"Authorization": f"Bearer {key}"}
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONNECTIONS)))
    return len(bodies) * BATCH / (time.perf_counter() - started)


async def compare_http(url: str, key: str, count: int, rounds: int) -> tuple[float, float]:
    native_rates, segment_rates = [], []
    for round_number in range(rounds):
        items = events(f"r{round_number}e", count)
        chunks = [items[i : i + BATCH] for i in range(0, count, BATCH)]
        native = [{"events": [as_event(x) for x in chunk]} for chunk in chunks]
        native_rates.append(await send(url, key, "/v1/events", native))
        items = events(f"r{round_number}s", count)
        chunks = [items[i : i + BATCH] for i in range(0, count, BATCH)]
        segment = [{"batch": [as_segment(x) for x in chunk]} for chunk in chunks]
        segment_rates.append(await send(url, key, "/v1/batch", segment))
        log(
            f"round {round_number + 1}: /v1/events {native_rates[-1]:,.0f} events/s, "
            f"/v1/batch {segment_rates[-1]:,.0f} events/s"
        )
    return median(native_rates), median(segment_rates)


async def nats_rate(db_url: str, nats_url: str, count: int, logdir: Path) -> float:
    stream, subject = f"bench-{secrets.token_hex(3)}", f"bench.{secrets.token_hex(3)}"
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(name=stream, subjects=[subject])
    items = events("nats", count)
    for start in range(0, count, 1000):
        chunk = items[start : start + 1000]
        await asyncio.gather(
            *(js.publish(subject, json.dumps(as_event(x)).encode()) for x in chunk)
        )
    log(f"published {count:,} events to {stream}")
    consumer = subprocess.Popen(
        [
            *scorer_command(),
            "consume",
            "--nats",
            nats_url,
            "--stream",
            stream,
            "--subject",
            subject,
        ],
        env={**os.environ, "DATABASE_URL": db_url},
        stdout=(logdir / "consume.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    conn = await asyncpg.connect(asyncpg_url(db_url))
    query = "SELECT count(*) FROM events WHERE event_id LIKE 'nats-%'"
    try:
        first = None
        while (stored := await conn.fetchval(query)) < count:
            if consumer.poll() is not None:
                raise RuntimeError((logdir / "consume.log").read_text()[-2000:])
            if stored and first is None:
                first = (time.perf_counter(), stored)
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - first[0]
        return (count - first[1]) / elapsed
    finally:
        consumer.terminate()
        consumer.wait(30)
        await conn.close()
        await js.delete_stream(stream)
        await nc.close()


async def main_async(args: argparse.Namespace) -> int:
    run = await bench_run("sources")
    db_url, key, logdir = run.db_url, run.api_key, run.logdir
    service = start_service(db_url, key, 1, "10", logdir)
    try:
        await wait_ready(service)
        url = f"http://127.0.0.1:{service.port}"
        native, segment = await compare_http(url, key, args.events, args.rounds)
        consumed = await nats_rate(db_url, args.nats_url, args.nats_events, logdir)
    finally:
        service.stop()
        await run.drop()
    share = segment / native
    print(f"POST /v1/events  {native:>9,.0f} events/s (median of {args.rounds} rounds)")
    print(f"POST /v1/batch   {segment:>9,.0f} events/s = {share:.0%} of /v1/events (target >= 80%)")
    print(
        f"scorer consume   {consumed:>9,.0f} events/s = {consumed / native:.0%} of /v1/events "
        f"({args.nats_events:,} events, one per message)"
    )
    return 0 if share >= 0.8 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per target per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nats-events", type=int, default=50_000)
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
