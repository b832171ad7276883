"""`scorer rescore`: batch scores through the scoring loop's path, with change records only
where scores changed. The server here runs no background work, so only the command
writes scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import running_server


@pytest.fixture(scope="module")
def quiet_server(database_url, tmp_path_factory):
    with running_server(database_url, tmp_path_factory, SCORER_BACKGROUND_WORK="false") as server:
        yield server


def order(customer: str, n: int, days_ago: int, amount: str) -> dict:
    return {
        "event_id": f"{customer}-o{n}",
        "customer_id": customer,
        "type": "order_completed",
        "occurred_at": (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(),
        "order_id": f"{customer}-{n}",
        "amount": amount,
    }


def changes(server, customer_like: str = "rs-%") -> list[dict]:
    return server.sql(
        "SELECT seq, type, customer_id FROM score_changes WHERE customer_id LIKE $1 ORDER BY seq",
        customer_like,
    )


def test_rescore_stores_api_scores_and_records_only_changes(quiet_server):
    client = quiet_server.client(quiet_server.admin_key)
    events = [order(f"rs-{i}", n, 10 * n + i, "25") for i in range(5) for n in range(3)]
    assert client.post("/v1/events", json={"events": events}).json()["accepted"] == 15
    assert quiet_server.sql("SELECT count(*) AS n FROM score_outbox")[0]["n"] == 5
    assert "rescored 5 customer(s)" in quiet_server.scorer("rescore", "--all").stdout
    # What it scored is no longer waiting for the scoring loop.
    assert quiet_server.sql("SELECT count(*) AS n FROM score_outbox")[0]["n"] == 0
    rows = {
        r["customer_id"]: r
        for r in quiet_server.sql("SELECT * FROM customer_scores WHERE customer_id LIKE 'rs-%'")
    }
    assert set(rows) == {f"rs-{i}" for i in range(5)}
    api = client.get("/v1/customers/rs-0/scores").json()
    assert rows["rs-0"]["churn_probability"] == api["churn"]["probability"]
    assert rows["rs-0"]["pcltv"] == api["pcltv"]["value"]
    assert rows["rs-0"]["segment"] == api["segment"]["name"]
    first = changes(quiet_server)
    # A first scoring is a change of every kind, before null.
    assert sorted(c["type"] for c in first if c["customer_id"] == "rs-0") == [
        "churn_band.changed",
        "scores.changed",
        "segment.changed",
        "tier.changed",
    ]

    quiet_server.scorer("rescore", "--all")
    assert changes(quiet_server) == first, "unchanged scores made change records"
    # Rebuilt features mark their customers for rescoring, and the rebuild changes nothing.
    quiet_server.scorer("features", "recompute")
    assert (
        quiet_server.sql("SELECT count(DISTINCT customer_id) AS n FROM score_outbox")[0]["n"] == 5
    )
    quiet_server.scorer("rescore", "--all")
    assert changes(quiet_server) == first

    client.post("/v1/events", json={"events": [order("rs-3", 9, 0, "4000")]})
    quiet_server.scorer("rescore", "--customer", "rs-3")
    later = changes(quiet_server)[len(first) :]
    assert later and {c["customer_id"] for c in later} == {"rs-3"}
    assert min(c["seq"] for c in later) > max(c["seq"] for c in first)
