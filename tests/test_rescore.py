"""`scorer rescore`: batch scores through the same models, with a change sequence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def order(customer: str, n: int, days_ago: int, amount: str) -> dict:
    return {
        "event_id": f"{customer}-o{n}",
        "customer_id": customer,
        "type": "order_completed",
        "occurred_at": (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(),
        "order_id": f"{customer}-{n}",
        "amount": amount,
    }


def test_rescore_stores_api_scores_and_bumps_sequence_only_on_change(server, client):
    events = [order(f"rs-{i}", n, 10 * n + i, "25") for i in range(5) for n in range(3)]
    assert client.post("/v1/events", json={"events": events}).json()["accepted"] == 15
    output = server.scorer("rescore", "--all").stdout
    assert "rescored" in output
    rows = {
        r["customer_id"]: r
        for r in server.sql("SELECT * FROM customer_scores WHERE customer_id LIKE 'rs-%'")
    }
    assert set(rows) == {f"rs-{i}" for i in range(5)}
    api = client.get("/v1/customers/rs-0/scores").json()
    assert rows["rs-0"]["churn_probability"] == api["churn"]["probability"]
    assert rows["rs-0"]["pcltv"] == api["pcltv"]["value"]
    assert rows["rs-0"]["segment"] == api["segment"]["name"]

    server.scorer("rescore", "--all")
    again = {
        r["customer_id"]: r["change_seq"]
        for r in server.sql(
            "SELECT customer_id, change_seq FROM customer_scores WHERE customer_id LIKE 'rs-%'"
        )
    }
    assert again == {c: r["change_seq"] for c, r in rows.items()}, "unchanged scores moved"

    client.post("/v1/events", json={"events": [order("rs-3", 9, 0, "400")]})
    server.scorer("rescore", "--customer", "rs-3")
    after = {
        r["customer_id"]: r["change_seq"]
        for r in server.sql(
            "SELECT customer_id, change_seq FROM customer_scores WHERE customer_id LIKE 'rs-%'"
        )
    }
    assert after["rs-3"] > max(again.values())
    assert {c: s for c, s in after.items() if c != "rs-3"} == {
        c: s for c, s in again.items() if c != "rs-3"
    }
