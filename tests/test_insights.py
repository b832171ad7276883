"""The insights API over real HTTP: equity by group equals the sum of the customers' own
scores answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.webhook_receiver import wait_until

NOW = datetime.now(UTC).replace(microsecond=0)


def order(customer: str, n: int, days_ago: int, amount: str) -> dict:
    return {
        "event_id": f"{customer}-{n}",
        "customer_id": customer,
        "type": "order_completed",
        "occurred_at": (NOW - timedelta(days=days_ago)).isoformat(),
        "order_id": f"{customer}-o{n}",
        "amount": amount,
    }


@pytest.fixture(scope="module")
def scored(server):
    with server.client(server.admin_key) as client:
        return _scored(server, client)


def _scored(server, client):
    events = [
        order(f"in-{c}", n, 5 + 30 * n + c, str(20 + 40 * c))
        for c in range(12)
        for n in range(1 + c % 4)
    ]
    assert client.post("/v1/events", json={"events": events}).json()["accepted"] == len(events)
    customers = [f"in-{c}" for c in range(12)]
    wait_until(
        lambda: (
            server.sql(
                "SELECT count(*) FROM customer_scores WHERE customer_id = ANY($1)", customers
            )[0][0]
            == len(customers)
            and not server.sql("SELECT 1 FROM score_outbox LIMIT 1")
        ),
        30,
        "stored scores",
    )
    return {c: client.get(f"/v1/customers/{c}/scores").json() for c in customers}


@pytest.mark.parametrize(("by", "field"), [("tier", "tier"), ("segment", "name")])
def test_equity_adds_up_the_customers_scores(client, scored, by, field):
    answer = client.get("/v1/insights/equity", params={"by": by})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected: dict[str, list[float]] = {}
    for scores in scored.values():
        part = scores["pcltv"] if by == "tier" else scores["segment"]
        expected.setdefault(part[field], []).append(scores["pcltv"]["value"])
    groups = {group["name"]: group for group in body["groups"]}
    assert set(groups) == set(expected)
    for name, values in expected.items():
        assert groups[name]["customers"] == len(values)
        assert groups[name]["pcltv"] == pytest.approx(sum(values), abs=0.01 * len(values))
    historic = sum(s["pcltv"]["historic_clv"] for s in scored.values())
    assert body["total"]["customers"] == len(scored)
    assert body["total"]["historic"] == pytest.approx(historic, abs=0.01)


def test_a_bad_grouping_names_the_parameter(client):
    answer = client.get("/v1/insights/equity", params={"by": "colour"})
    assert answer.status_code == 422 and "query.by" in answer.text
