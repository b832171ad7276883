"""`scorer consume` against a real NATS JetStream: 100,000 events published, the consumer
killed with SIGKILL twice mid-way and restarted; afterwards every feature is exact, nothing
lost, nothing counted twice, and each unusable message is one dead letter."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import signal
import subprocess
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import nats
import pytest

from tests.conftest import SCORER
from tests.nats_server import nats_server

CUSTOMERS = 2000
EVENTS = 100_000


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory):
    with nats_server(tmp_path_factory.mktemp("nats")) as url:
        yield url


def generate(seed: int = 7):
    """The events, in publishing order (with re-sent duplicates and unusable messages), and
    per customer the truth: orders, net revenue, sessions and product views."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=300)
    truth = defaultdict(lambda: {"orders": 0, "revenue": Decimal(0), "sessions": 0, "views": 0})
    messages: list[bytes] = []
    orders: list[list] = []  # [customer, order id, amount not yet refunded]
    invalid = 0
    for n in range(EVENTS):
        customer = f"n-{rng.randrange(CUSTOMERS)}"
        at = (start + timedelta(minutes=rng.randrange(300 * 24 * 60))).isoformat()
        event = {"event_id": f"n-{n}", "customer_id": customer, "occurred_at": at}
        roll = rng.random()
        if roll < 0.25:
            amount = Decimal(rng.randrange(100, 20000)) / 100
            event.update(type="order_completed", order_id=f"o-{n}", amount=str(amount))
            orders.append([customer, f"o-{n}", amount])
            truth[customer]["orders"] += 1
            truth[customer]["revenue"] += amount
        elif roll < 0.30 and orders:
            order = orders[rng.randrange(len(orders))]
            owner, order_id, left = order
            part = (left / 3).quantize(Decimal("0.01"))
            if part <= 0:
                continue
            # Partial refunds only, so the order keeps counting and the truth stays simple.
            order[2] -= part
            event.update(
                customer_id=owner, type="order_refunded", order_id=order_id, amount=str(part)
            )
            truth[owner]["revenue"] -= part
        elif roll < 0.65:
            event["type"] = "session_started"
            truth[customer]["sessions"] += 1
        elif roll < 0.995:
            event["type"] = "product_viewed"
            truth[customer]["views"] += 1
        else:
            invalid += 1
            if rng.random() < 0.5:
                messages.append(b'{"event_id": "broken-' + str(n).encode() + b'", ')
            else:
                event.update(type="order_completed", order_id=f"o-{n}", amount="-1")
                messages.append(json.dumps(event).encode())
            continue
        messages.append(json.dumps(event).encode())
        if rng.random() < 0.01:  # the producer's own retry
            messages.append(messages[-1])
    return messages, truth, invalid


async def publish(url: str, stream: str, subject: str, messages: list[bytes]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name=stream, subjects=[subject])
    for start in range(0, len(messages), 1000):
        await asyncio.gather(
            *(js.publish(subject, data) for data in messages[start : start + 1000])
        )
    await nc.close()


def consumer(server, url: str, stream: str, subject: str, log) -> subprocess.Popen:
    return subprocess.Popen(
        [
            SCORER,
            "consume",
            "--nats",
            url,
            "--stream",
            stream,
            "--subject",
            subject,
            "--batch",
            "500",
        ],
        env={**os.environ, "DATABASE_URL": server.database_url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stored(server) -> int:
    return server.sql("SELECT count(*) FROM events WHERE event_id LIKE 'n-%'")[0][0]


def test_consumer_survives_two_sigkills_exactly(server, client, nats_url, tmp_path):
    messages, truth, invalid = generate()
    stream, subject = f"events-{secrets.token_hex(4)}", f"test.{secrets.token_hex(4)}.events"
    asyncio.run(publish(nats_url, stream, subject, messages))
    expected_events = sum(
        1
        for data in {m for m in messages}
        if b'"amount": "-1"' not in data and b"broken" not in data
    )
    log = (tmp_path / "consume.log").open("w")
    for fraction in (0.25, 0.6):
        running = consumer(server, nats_url, stream, subject, log)
        deadline = time.monotonic() + 120
        while stored(server) < fraction * expected_events:
            assert running.poll() is None, (tmp_path / "consume.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the consumer made no progress"
            time.sleep(0.05)
        running.send_signal(signal.SIGKILL)
        running.wait(timeout=10)
    running = consumer(server, nats_url, stream, subject, log)
    deadline = time.monotonic() + 180
    while stored(server) < expected_events:
        assert running.poll() is None, (tmp_path / "consume.log").read_text()[-3000:]
        assert time.monotonic() < deadline, f"stuck at {stored(server)} of {expected_events}"
        time.sleep(0.2)
    time.sleep(3)  # let it record its status (pending 0) and drain any redelivery
    metrics = client.get("/metrics").text
    running.send_signal(signal.SIGTERM)
    assert running.wait(timeout=30) == 0
    assert stored(server) == expected_events
    rows = server.sql(
        "SELECT customer_id, sum(orders) AS orders, sum(revenue) AS revenue, "
        "sum(sessions) AS sessions, sum(product_views) AS views FROM customer_daily "
        "WHERE customer_id LIKE 'n-%' GROUP BY customer_id"
    )
    seen = {row["customer_id"]: row for row in rows}
    assert set(seen) == set(truth)
    for customer, want in truth.items():
        got = seen[customer]
        assert (got["orders"], got["sessions"], got["views"]) == (
            want["orders"],
            want["sessions"],
            want["views"],
        ), customer
        assert got["revenue"] == want["revenue"], customer
    letters = server.sql("SELECT count(*) FROM dead_letters WHERE source = 'nats'")[0][0]
    assert letters == invalid
    assert 'scorer_nats_consumer_pending{consumer="scorer"} 0.0' in metrics
