"""Concurrent batches touching the same customers and events: nothing double counted,
nothing lost, no deadlock (per-customer advisory locks, sorted)."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

AS_OF = "2026-03-01T00:00:00Z"


def stream(prefix: str) -> list[dict]:
    events = []
    for i in range(240):
        customer = f"{prefix}-c{i % 6}"
        day = 1 + i % 27
        if i % 4 == 0:
            events.append(
                {
                    "event_id": f"{prefix}-o{i}",
                    "customer_id": customer,
                    "type": "order_completed",
                    "occurred_at": f"2026-02-{day:02d}T10:00:00Z",
                    "order_id": f"o{i}",
                    "amount": f"{10 + i % 7}.25",
                }
            )
        elif i % 4 == 1:
            events.append(
                {
                    "event_id": f"{prefix}-r{i}",
                    "customer_id": f"{prefix}-c{(i - 1) % 6}",
                    "type": "order_refunded",
                    "occurred_at": f"2026-02-{day:02d}T12:00:00Z",
                    "order_id": f"o{i - 1}",
                    "amount": "3",
                }
            )
        else:
            events.append(
                {
                    "event_id": f"{prefix}-s{i}",
                    "customer_id": customer,
                    "type": "session_started",
                    "occurred_at": f"2026-02-{day:02d}T09:00:00Z",
                }
            )
    return events


def features(client, prefix: str) -> list[dict]:
    rows = []
    for n in range(6):
        body = client.get(f"/v1/customers/{prefix}-c{n}/features", params={"as_of": AS_OF}).json()
        rows.append({k: v for k, v in body.items() if k not in ("customer_id", "as_of")})
    return rows


def test_concurrent_overlapping_batches_equal_one_sequential_ingest(server, client):
    sequential = stream("seq")
    for start in range(0, len(sequential), 60):
        client.post("/v1/events", json={"events": sequential[start : start + 60]})

    events = stream("par")
    writers = 6

    def post_all(seed: int) -> tuple[int, int]:
        order = events[:]
        random.Random(seed).shuffle(order)
        accepted = duplicates = 0
        with server.client(server.admin_key) as http:
            for start in range(0, len(order), 40):
                body = http.post("/v1/events", json={"events": order[start : start + 40]}).json()
                assert body["rejected"] == [], body
                accepted += body["accepted"]
                duplicates += body["duplicates"]
        return accepted, duplicates

    with ThreadPoolExecutor(writers) as pool:
        results = list(pool.map(post_all, range(writers)))
    assert sum(a for a, _ in results) == len(events)
    assert sum(d for _, d in results) == len(events) * (writers - 1)
    # Timestamps in the feature rows name the same instants for both prefixes.
    assert features(client, "par") == features(client, "seq")
