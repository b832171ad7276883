"""Ingest and feature-read benchmark for Customer Scorer, against raw baselines.

One run, on one machine, with the numbers printed next to their baselines:

(a) ingest: `POST /v1/events` in batches of 500 over several concurrent
    connections (the service maintains features in the same transaction),
    against a raw asyncpg `COPY` of the same rows into a bare, index-free table,
    both in batches of 500 and as one COPY of all rows.
(b) feature reads: `GET /v1/customers/{id}/features` for random known
    customers at 16 connections, against `benchmarks/bare_app.py` (FastAPI +
    asyncpg, one primary-key SELECT on the same database, same worker count),
    both driven by the same load generator (`benchmarks/loadgen.py`).

Machines are noisy, so every figure is a median over rounds (reads alternate
between the two targets round by round), with p50/p99 latencies.

    .venv/bin/python benchmarks/ingest.py [--events 200000] [--duration 15] [--workers 1]

`DATABASE_URL` (default postgresql://postgres@127.0.0.1:5432/test) names the
server; a fresh database `scorer_bench_<pid>` is created there and dropped at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import secrets
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    READ_CONNECTIONS,
    ReadComparison,
    ReadOutcome,
    ReadTarget,
    Server,
    alternate_reads,
    asyncpg_url,
    create_database,
    drop_database,
    fmt_rate,
    log,
    machine_line,
    median,
    pool_size,
    run,
    server_url,
    start_bare,
    start_service,
    verdict,
    wait_ready,
    with_database,
)
from loadgen import build_get_requests, percentile  # noqa: E402

BATCH = 500

# Targets (see benchmarks/README.md).
TARGET_INGEST_EPS = 10_000
TARGET_INGEST_VS_COPY = 0.25
TARGET_READ_P99_FACTOR = 2.0
TARGET_READ_THROUGHPUT_SHARE = 0.50


# --------------------------------------------------------------------- data --


@dataclass
class Workload:
    warmup_events: list[dict]
    events: list[dict]
    customers: list[str]
    type_mix: Counter


CATEGORIES = ["shoes", "outerwear", "tops", "accessories", "home", "beauty", "kids", "sport"]
CHANNELS = ["email", "sms", "push", "web", "profiling"]


def generate_events(n: int, n_customers: int, seed: int, prefix: str) -> tuple[list[dict], Counter]:
    """Deterministic, realistic mixed events for `n_customers` over the last year.

    Customers have skewed activity (a few heavy, a long tail). Events come in
    time order, as a backfill or a live stream would deliver them; refunds
    refer to earlier orders of the same customer.
    """
    rng = random.Random(seed)
    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    start = anchor - timedelta(days=365)
    span = (anchor - start).total_seconds()
    weights = [1.0 / (k + 1) ** 0.7 for k in range(n_customers)]
    customer_ids = [f"{prefix}c{k:07d}" for k in range(n_customers)]
    rng.shuffle(customer_ids)  # heavy customers are not the lowest ids
    cum = []
    total = 0.0
    for w in weights:
        total += w
        cum.append(total)
    picks = rng.choices(customer_ids, cum_weights=cum, k=n)
    types = [
        ("product_viewed", 33),
        ("session_started", 20),
        ("cart_updated", 10),
        ("email_opened", 9),
        ("order_completed", 8),
        ("checkout_started", 5),
        ("email_clicked", 4),
        ("support_ticket", 2),
        ("order_refunded", 2),
        ("survey_response", 2),
        ("consent_updated", 2),
        ("identify", 3),
    ]
    type_names = [t for t, _ in types]
    type_weights = [w for _, w in types]
    open_orders: dict[str, list[tuple[str, Decimal]]] = {}
    events: list[dict] = []
    mix: Counter = Counter()
    for i, customer in enumerate(picks):
        ts = start + timedelta(seconds=span * (i + rng.random()) / n)
        etype = rng.choices(type_names, weights=type_weights)[0]
        if etype == "order_refunded" and not open_orders.get(customer):
            etype = "product_viewed"
        event: dict = {
            "event_id": f"{prefix}e{seed}-{i:09d}",
            "customer_id": customer,
            "type": etype,
            "occurred_at": ts.isoformat(timespec="milliseconds"),
        }
        props: dict
        if etype == "order_completed":
            amount = Decimal(f"{rng.lognormvariate(3.6, 0.7):.2f}")
            order_id = f"{prefix}o{i:09d}"
            open_orders.setdefault(customer, []).append((order_id, amount))
            event.update(order_id=order_id, amount=str(amount), currency="USD")
            props = {
                "items": rng.randint(1, 6),
                "channel": rng.choice(["web", "app", "store"]),
                "coupon": rng.random() < 0.15,
            }
        elif etype == "order_refunded":
            orders = open_orders[customer]
            order_id, amount = orders.pop(rng.randrange(len(orders)))
            if rng.random() < 0.4:
                amount = (amount * Decimal(rng.randint(10, 90)) / 100).quantize(Decimal("0.01"))
            event.update(order_id=order_id, amount=str(amount), currency="USD")
            props = {"reason": rng.choice(["damaged", "size", "changed_mind", "late"])}
        elif etype == "product_viewed":
            props = {
                "product_id": f"p{rng.randint(1, 5000):05d}",
                "category": rng.choice(CATEGORIES),
                "price": round(rng.uniform(5, 250), 2),
            }
        elif etype == "session_started":
            props = {
                "channel": rng.choice(["web", "app"]),
                "device": rng.choice(["mobile", "desktop", "tablet"]),
                "utm_source": rng.choice(["google", "newsletter", "direct", "instagram"]),
            }
        elif etype == "cart_updated":
            props = {"product_id": f"p{rng.randint(1, 5000):05d}", "quantity": rng.randint(1, 4)}
        elif etype == "checkout_started":
            props = {"cart_value": round(rng.uniform(10, 400), 2), "items": rng.randint(1, 6)}
        elif etype in ("email_opened", "email_clicked"):
            props = {"campaign_id": f"cmp{rng.randint(1, 60):03d}"}
        elif etype == "support_ticket":
            props = {"topic": rng.choice(["delivery", "refund", "product", "account"])}
        elif etype == "survey_response":
            props = {"csat": rng.randint(1, 5), "nps": rng.randint(0, 10)}
        elif etype == "consent_updated":
            props = {"channel": rng.choice(CHANNELS), "granted": rng.random() < 0.8}
        else:  # identify
            props = {
                "traits": {
                    "country": rng.choice(["US", "CA", "GB", "DE", "FR"]),
                    "plan": rng.choice(["free", "plus", "pro"]),
                }
            }
        event["properties"] = props
        events.append(event)
        mix[etype] += 1
    return events, mix


def build_workload(n: int, n_customers: int, warmup: int, seed: int) -> Workload:
    events, mix = generate_events(n, n_customers, seed, prefix="")
    warm, _ = generate_events(warmup, max(100, warmup // 20), seed + 1, prefix="w")
    customers = sorted({e["customer_id"] for e in events})
    return Workload(warmup_events=warm, events=events, customers=customers, type_mix=mix)


def batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def copy_record(event: dict) -> tuple:
    amount = event.get("amount")
    return (
        event["event_id"],
        event["customer_id"],
        event["type"],
        datetime.fromisoformat(event["occurred_at"]),
        event.get("order_id"),
        Decimal(amount) if amount is not None else None,
        json.dumps(event["properties"], separators=(",", ":")),
    )


# -------------------------------------------------------------- measurements --


@dataclass
class IngestRound:
    events: int
    seconds: float
    batch_latencies: list[float]

    @property
    def rate(self) -> float:
        return self.events / self.seconds


@dataclass
class IngestOutcome:
    rounds: list[IngestRound] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    http_errors: Counter = field(default_factory=Counter)
    sample_rejections: list[str] = field(default_factory=list)

    @property
    def median_rate(self) -> float:
        return median([r.rate for r in self.rounds])

    @property
    def overall_rate(self) -> float:
        return sum(r.events for r in self.rounds) / sum(r.seconds for r in self.rounds)

    def batch_pct(self, q: float) -> float:
        lat = sorted(x for r in self.rounds for x in r.batch_latencies)
        return percentile(lat, q) * 1000.0


async def post_batches(
    client: httpx.AsyncClient,
    url: str,
    bodies: list[bytes],
    connections: int,
    outcome: IngestOutcome,
) -> tuple[float, list[float]]:
    """POST every body over `connections` concurrent keep-alive connections."""
    queue_index = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal queue_index
        while queue_index < len(bodies):
            body = bodies[queue_index]
            queue_index += 1
            for attempt in range(3):
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, content=body)
                except httpx.HTTPError as exc:
                    outcome.http_errors[type(exc).__name__] += 1
                    if attempt == 2:
                        raise
                    continue
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    outcome.http_errors[r.status_code] += 1
                    if len(outcome.sample_rejections) < 5:
                        outcome.sample_rejections.append(f"HTTP {r.status_code}: {r.text[:300]}")
                    if r.status_code >= 500 and attempt < 2:
                        continue  # count it, then retry the batch (idempotent)
                    break
                data = r.json()
                outcome.accepted += data.get("accepted", 0)
                outcome.duplicates += data.get("duplicates", 0)
                rejected = data.get("rejected") or []
                outcome.rejected += len(rejected)
                for item in rejected[: max(0, 5 - len(outcome.sample_rejections))]:
                    outcome.sample_rejections.append(json.dumps(item)[:300])
                break

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - t0, latencies


async def bench_http_ingest(
    port: int, api_key: str, work: Workload, connections: int, rounds: int
) -> IngestOutcome:
    url = f"http://127.0.0.1:{port}/v1/events"
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def encode(events: list[dict]) -> list[bytes]:
        return [
            json.dumps({"events": b}, separators=(",", ":")).encode()
            for b in batches(events, BATCH)
        ]

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    outcome = IngestOutcome()
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=120.0) as client:
        warm = IngestOutcome()
        await post_batches(client, url, encode(work.warmup_events), connections, warm)
        log(
            f"ingest warm-up: {len(work.warmup_events)} events, accepted {warm.accepted}, "
            f"rejected {warm.rejected}, http errors {dict(warm.http_errors)}"
        )
        all_batches = batches(work.events, BATCH)
        per_round = math.ceil(len(all_batches) / rounds)
        for k in range(rounds):
            chunk = all_batches[k * per_round : (k + 1) * per_round]
            if not chunk:
                break
            bodies = encode([e for b in chunk for e in b])
            n = sum(len(b) for b in chunk)
            seconds, lat = await post_batches(client, url, bodies, connections, outcome)
            outcome.rounds.append(IngestRound(events=n, seconds=seconds, batch_latencies=lat))
            log(
                f"HTTP ingest round {k + 1}/{rounds}: {n} events in {seconds:.2f}s = "
                f"{n / seconds:,.0f} events/s"
            )
    return outcome


COPY_COLUMNS = [
    "event_id",
    "customer_id",
    "type",
    "occurred_at",
    "order_id",
    "amount",
    "properties",
]


@dataclass
class CopyOutcome:
    batched: list[float] = field(default_factory=list)  # events/s per round
    single: list[float] = field(default_factory=list)


async def bench_copy(dsn: str, work: Workload, connections: int, rounds: int) -> CopyOutcome:
    records = [copy_record(e) for e in work.events]
    chunks = batches(records, BATCH)
    conns = [await asyncpg.connect(dsn) for _ in range(connections)]
    admin = conns[0]
    await admin.execute(
        """
        CREATE TABLE bench_copy_events (
            event_id    text        NOT NULL,
            customer_id text        NOT NULL,
            type        text        NOT NULL,
            occurred_at timestamptz NOT NULL,
            order_id    text,
            amount      numeric(18, 4),
            properties  jsonb       NOT NULL
        )
        """
    )
    outcome = CopyOutcome()
    try:
        # Warm-up: types, catalog caches and the table's first extents.
        await admin.copy_records_to_table(
            "bench_copy_events", records=records[:5000], columns=COPY_COLUMNS
        )
        for k in range(rounds):
            await admin.execute("TRUNCATE bench_copy_events")
            index = 0

            async def worker(conn: asyncpg.Connection) -> None:
                nonlocal index
                while index < len(chunks):
                    chunk = chunks[index]
                    index += 1
                    await conn.copy_records_to_table(
                        "bench_copy_events", records=chunk, columns=COPY_COLUMNS
                    )

            t0 = time.perf_counter()
            await asyncio.gather(*(worker(c) for c in conns))
            batched = len(records) / (time.perf_counter() - t0)
            await admin.execute("TRUNCATE bench_copy_events")
            t0 = time.perf_counter()
            await admin.copy_records_to_table(
                "bench_copy_events", records=records, columns=COPY_COLUMNS
            )
            single = len(records) / (time.perf_counter() - t0)
            outcome.batched.append(batched)
            outcome.single.append(single)
            log(
                f"COPY round {k + 1}/{rounds}: batches of {BATCH} {batched:,.0f} rows/s, "
                f"one COPY {single:,.0f} rows/s"
            )
        count = await admin.fetchval("SELECT count(*) FROM bench_copy_events")
        assert count == len(records), (count, len(records))
    finally:
        await admin.execute("DROP TABLE IF EXISTS bench_copy_events")
        for c in conns:
            await c.close()
    return outcome


async def bench_reads(
    targets: dict[str, int],
    api_key: str,
    customers: list[str],
    duration: float,
    rounds: int,
    warmup: float,
    seed: int,
) -> dict[str, ReadOutcome]:
    rng = random.Random(seed)
    sample = [rng.choice(customers) for _ in range(50_000)]
    paths = [f"/v1/customers/{c}/features" for c in sample]
    headers = {"Authorization": f"Bearer {api_key}"}
    requests = build_get_requests("127.0.0.1", paths, headers)
    return await alternate_reads(
        [ReadTarget(name, port, requests) for name, port in targets.items()],
        duration,
        rounds,
        warmup,
    )


# ------------------------------------------------------------------- report --


async def sanity_checks(port: int, api_key: str, customers: list[str]) -> list[str]:
    """Every known customer must answer 200 with the contract's fields."""
    notes = []
    keys = ("orders_total", "revenue_total", "sessions_30d", "orders_365d", "recency_days")
    statuses: Counter = Counter()
    failures: list[str] = []
    shown = False
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {api_key}"}, timeout=10.0
    ) as client:
        for customer in customers:
            url = f"http://127.0.0.1:{port}/v1/customers/{customer}/features"
            try:
                r = await client.get(url)
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
                if len(failures) < 3:
                    failures.append(f"{customer}: {exc!r}")
                await asyncio.sleep(0.2)
                continue
            statuses[r.status_code] += 1
            if r.status_code != 200:
                if len(failures) < 3:
                    failures.append(f"{customer}: HTTP {r.status_code} {r.text[:160]}")
                continue
            data = r.json()
            if not shown:
                shown = True
                notes.append(
                    f"sample features {customer}: "
                    + ", ".join(f"{k}={data.get(k)!r}" for k in keys if k in data)
                )
                missing = [k for k in keys if k not in data]
                if missing:
                    notes.append(f"feature response lacks contract fields {missing}")
    notes.append(
        f"check: {len(customers)} known customers read once each -> statuses {dict(statuses)}"
    )
    notes.extend(f"  unexpected: {f}" for f in failures)
    return notes


async def main_async(args: argparse.Namespace) -> int:
    base_url = server_url()
    dbname = f"scorer_bench_{os.getpid()}"
    db_url = with_database(base_url, dbname)
    api_key = "bench_" + secrets.token_urlsafe(24)
    logdir = Path(tempfile.mkdtemp(prefix="scorer-bench-"))
    pool = pool_size()

    log(f"generating {args.events:,} events for {args.customers:,} customers (seed {args.seed})")
    t0 = time.perf_counter()
    work = build_workload(args.events, args.customers, args.warmup_events, args.seed)
    log(f"generated in {time.perf_counter() - t0:.1f}s; {len(work.customers):,} distinct customers")

    pg_version = await create_database(base_url, dbname)
    log(f"created database {dbname}")

    servers: list[Server] = []
    report: list[str] = []
    exit_code = 0
    try:
        service = start_service(db_url, api_key, args.workers, pool, logdir)
        service_port = service.port
        servers.append(service)
        waited = await wait_ready(service)
        log(f"service ready on :{service_port} after {waited:.1f}s (log {service.log_path})")

        # (a) ingest: baseline first (service idle), then the service.
        copy = await bench_copy(asyncpg_url(db_url), work, args.connections, args.copy_rounds)
        ingest = await bench_http_ingest(
            service_port, api_key, work, args.connections, args.ingest_rounds
        )

        conn = await asyncpg.connect(asyncpg_url(db_url))
        await conn.execute("VACUUM ANALYZE")
        known = await conn.fetchval("SELECT count(*) FROM customers")
        stored = await conn.fetchval("SELECT count(*) FROM events")
        await conn.close()

        # (b) feature reads vs the bare endpoint.
        # Same DB pool size per worker as the service.
        bare = start_bare(db_url, args.workers, pool, logdir)
        bare_port = bare.port
        servers.append(bare)
        await wait_ready(bare)
        log(f"bare app ready on :{bare_port}")
        notes = await sanity_checks(
            service_port, api_key, random.Random(args.seed).sample(work.customers, 100)
        )
        reads = await bench_reads(
            {"service": service_port, "bare": bare_port},
            api_key,
            work.customers,
            args.duration,
            args.read_rounds,
            args.read_warmup,
            args.seed,
        )
    except Exception:
        for s in servers:
            log(f"--- {s.name} log tail ---\n{s.log_tail()}")
        raise
    finally:
        for s in servers:
            s.stop()
        if args.keep_db:
            log(f"kept database {dbname}")
        else:
            await drop_database(base_url, dbname)
            log(f"dropped database {dbname}")

    # ---- numbers
    http_rate = ingest.median_rate
    copy_b = median(copy.batched)
    copy_s = median(copy.single)
    ratio_b = http_rate / copy_b
    ratio_s = http_rate / copy_s
    feature_reads = ReadComparison(
        service=reads["service"],
        bare=reads["bare"],
        service_label="service GET /v1/customers/{id}/features",
        p99_target=TARGET_READ_P99_FACTOR,
        share_target=TARGET_READ_THROUGHPUT_SHARE,
    )
    checks = {
        "ingest_eps": http_rate >= TARGET_INGEST_EPS,
        "ingest_vs_copy500": ratio_b >= TARGET_INGEST_VS_COPY,
        "ingest_vs_copy_all": ratio_s >= TARGET_INGEST_VS_COPY,
        "read_p99": feature_reads.p99_ok,
        "read_tput": feature_reads.throughput_ok,
    }

    w = report.append
    w("")
    w("=" * 78)
    w("Customer Scorer benchmark")
    w("=" * 78)
    w(f"machine     : {machine_line(pg_version)}")
    w(
        f"setup       : service workers={args.workers}, database {dbname} (fresh), "
        f"DB pool per worker {pool} "
        "for both apps, client and servers on the same host"
    )
    w(
        f"workload    : {args.events:,} events ({args.warmup_events:,} more for warm-up), "
        f"{len(work.customers):,} customers, batches of {BATCH}, seed {args.seed}"
    )
    mix = ", ".join(f"{t} {n / args.events:.0%}" for t, n in work.type_mix.most_common())
    w(f"event mix   : {mix}")
    w("")
    w(
        f"(a) Ingest — HTTP with {args.connections} connections, {len(ingest.rounds)} rounds; "
        f"COPY {args.copy_rounds} rounds"
    )
    for i, r in enumerate(ingest.rounds, 1):
        w(f"    HTTP round {i}: {r.events:,} events in {r.seconds:.2f}s = {r.rate:,.0f} events/s")
    w(
        f"    HTTP POST /v1/events        : {fmt_rate(http_rate):>10} events/s (median; overall "
        f"{fmt_rate(ingest.overall_rate)}), batch latency p50 {ingest.batch_pct(50):.0f} ms, "
        f"p99 {ingest.batch_pct(99):.0f} ms"
    )
    w(
        f"    COPY in batches of {BATCH} ({args.connections} conns): {fmt_rate(copy_b):>10} "
        f"events/s (median of {', '.join(fmt_rate(v) for v in copy.batched)})"
    )
    w(
        f"    one COPY of all rows        : {fmt_rate(copy_s):>10} events/s "
        f"(median of {', '.join(fmt_rate(v) for v in copy.single)})"
    )
    w(f"    HTTP / COPY-500             : {ratio_b:.1%}")
    w(f"    HTTP / COPY-all             : {ratio_s:.1%}")
    w(
        f"    responses: accepted {ingest.accepted:,}, duplicates {ingest.duplicates:,}, "
        f"rejected {ingest.rejected:,}, HTTP errors {dict(ingest.http_errors) or 0}; "
        f"rows: events {stored:,}, customers {known:,}"
    )
    for s in ingest.sample_rejections:
        w(f"    sample problem: {s}")
    w(
        f"    target ingest >= {TARGET_INGEST_EPS:,} events/s          : "
        f"{verdict(checks['ingest_eps'])} ({fmt_rate(http_rate)})"
    )
    w(
        f"    target ingest >= {TARGET_INGEST_VS_COPY:.0%} of COPY in batches of {BATCH}: "
        f"{verdict(checks['ingest_vs_copy500'])} ({ratio_b:.1%})"
    )
    w(
        f"    target ingest >= {TARGET_INGEST_VS_COPY:.0%} of one COPY of all rows : "
        f"{verdict(checks['ingest_vs_copy_all'])} ({ratio_s:.1%})"
    )
    w("")
    w(
        f"(b) Feature reads — {READ_CONNECTIONS} connections, "
        f"{args.read_rounds} alternating rounds "
        f"x {args.duration / args.read_rounds:.1f}s per target (+{args.read_warmup:.0f}s warm-up "
        f"each), random known customers"
    )
    for line in feature_reads.report_lines():
        w(line)
    for n in notes:
        w(f"    {n}")
    w("")
    w("Markdown (for the README):")
    w("")
    w(
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPUs, PostgreSQL {pg_version}, "
        f"{args.workers} worker(s), client on the same host; "
        f"{args.events:,} events, {len(work.customers):,} customers."
    )
    w("")
    w("| measure | service | baseline | ratio | target | result |")
    w("|---|---:|---:|---:|---|---|")
    w(
        f"| ingest, events/s (batches of {BATCH}, {args.connections} conns) | "
        f"{fmt_rate(http_rate)} | — | — | ≥ {TARGET_INGEST_EPS:,} | "
        f"{verdict(checks['ingest_eps'])} |"
    )
    w(
        f"| ingest vs raw COPY in batches of {BATCH} | {fmt_rate(http_rate)} | "
        f"{fmt_rate(copy_b)} | "
        f"{ratio_b:.1%} | ≥ {TARGET_INGEST_VS_COPY:.0%} | {verdict(checks['ingest_vs_copy500'])} |"
    )
    w(
        f"| ingest vs one raw COPY of all rows | {fmt_rate(http_rate)} | {fmt_rate(copy_s)} | "
        f"{ratio_s:.1%} | ≥ {TARGET_INGEST_VS_COPY:.0%} | {verdict(checks['ingest_vs_copy_all'])} |"
    )
    for row in feature_reads.markdown_rows("feature read"):
        w(row)
    w("")
    print("\n".join(report), flush=True)
    if ingest.rejected or ingest.http_errors or not feature_reads.clean:
        exit_code = 2  # numbers printed, but the run was not clean
    return exit_code


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Customer Scorer ingest + feature-read benchmark against raw baselines."
    )
    p.add_argument("--events", type=int, default=200_000, help="events to ingest (200,000)")
    p.add_argument(
        "--duration",
        type=float,
        default=15.0,
        help="measured seconds of the read test per target, over all rounds (15)",
    )
    p.add_argument("--workers", type=int, default=1, help="service and bare-app workers (1)")
    p.add_argument(
        "--customers",
        type=int,
        default=None,
        help="distinct customers (default events / 20, at least 1,000)",
    )
    p.add_argument(
        "--connections",
        type=int,
        default=4,
        help="concurrent connections for ingest (HTTP and COPY in batches) (4)",
    )
    p.add_argument("--ingest-rounds", type=int, default=5)
    p.add_argument("--copy-rounds", type=int, default=5)
    p.add_argument("--read-rounds", type=int, default=3)
    p.add_argument("--read-warmup", type=float, default=2.0, help="seconds per read round (2)")
    p.add_argument("--warmup-events", type=int, default=5_000)
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    args = p.parse_args(argv)
    if args.customers is None:
        args.customers = max(1_000, args.events // 20)
    if args.events < BATCH * args.ingest_rounds:
        p.error(f"--events must be at least {BATCH * args.ingest_rounds}")
    return args


def main(argv: list[str] | None = None) -> int:
    return run(main_async, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
