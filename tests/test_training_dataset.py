"""One feature definition, two executions: the offline training vector of a customer at
cutoff C equals the online `GET .../features?as_of=C` vector."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import numpy as np
import pytest

from service.db import asyncpg_dsn
from service.features.asof import snapshot
from service.features.vector import feature_matrix
from service.modeling.outcomes import labels

START = date(2025, 3, 1)


@pytest.fixture(scope="module")
def simulated(server, tmp_path_factory) -> list[str]:
    events = tmp_path_factory.mktemp("pit") / "pit.ndjson"
    server.scorer(
        "simulate",
        "--customers",
        "300",
        "--days",
        "120",
        "--seed",
        "5",
        "--start",
        str(START),
        "--out",
        str(events),
        "--quiet",
    )
    # The simulator's ids (c000001…) are shared by every run: prefix them for this module.
    text = events.read_text().replace('"customer_id":"c', '"customer_id":"pit-c')
    events.write_text(text.replace('"event_id":"sim-', '"event_id":"pit-sim-'))
    server.scorer("import", str(events))
    rows = server.sql("SELECT customer_id FROM customers WHERE customer_id LIKE 'pit-%'")
    return sorted(row["customer_id"] for row in rows)


def offline(database_url: str, cutoff: date, ids: list[str]):
    async def go():
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            shot = await snapshot(conn, cutoff, ids)
            return shot, await labels(conn, shot.customer_ids, cutoff, 30)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_offline_vectors_equal_online_reads(server, client, simulated):
    rng = random.Random(11)
    for _ in range(6):
        cutoff = START + timedelta(days=rng.randrange(5, 115))
        ids = rng.sample(simulated, 25)
        shot, _ = offline(server.database_url, cutoff, ids)
        as_of = datetime.combine(cutoff, time(12), tzinfo=UTC).isoformat()
        online = []
        for customer_id in ids:
            response = client.get(f"/v1/customers/{customer_id}/features", params={"as_of": as_of})
            if response.status_code == 404:
                assert customer_id not in shot.customer_ids
                continue
            online.append(response.json())
        assert [row["customer_id"] for row in online] == shot.customer_ids
        np.testing.assert_array_equal(feature_matrix(online), shot.X)
        for offline_row, online_row in zip(shot.features, online, strict=True):
            for name in ("orders_total", "revenue_total", "recency_days", "consent", "last_csat"):
                assert offline_row[name] == online_row[name], (name, offline_row["customer_id"])


def test_labels_come_from_after_the_cutoff_only(server, simulated):
    cutoff = START + timedelta(days=60)
    shot, future = offline(server.database_url, cutoff, simulated)
    ends = server.sql(
        "SELECT customer_id, count(*) AS n FROM orders WHERE customer_id = ANY($1) "
        "AND day > $2 AND day <= $3 AND amount IS NOT NULL AND NOT (refunded > 0 AND "
        "refunded >= amount) GROUP BY customer_id",
        shot.customer_ids,
        cutoff,
        cutoff + timedelta(days=30),
    )
    expected = {row["customer_id"]: row["n"] for row in ends}
    for customer_id, orders in zip(shot.customer_ids, future.orders, strict=True):
        assert orders == expected.get(customer_id, 0)
