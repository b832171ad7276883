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
    answer = client.post("/v1/events", json={"events": EVENTS})
    assert answer.json()["accepted"] == len(EVENTS)
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


EVENTS = [
    order(f"in-{c}", n, 5 + 30 * n + c, str(20 + 40 * c))
    for c in range(12)
    for n in range(1 + c % 4)
]


def test_distribution_counts_the_customers_scores(client, scored):
    body = client.get("/v1/insights/distribution").json()
    assert body["customers"] == len(scored)
    for name, read in (
        ("segments", lambda s: s["segment"]["name"]),
        ("tiers", lambda s: s["pcltv"]["tier"]),
        ("churn_bands", lambda s: s["churn"]["band"]),
    ):
        expected: dict[str, int] = {}
        for scores in scored.values():
            expected[read(scores)] = expected.get(read(scores), 0) + 1
        assert {g["name"]: g["customers"] for g in body[name]} == expected
        assert sum(g["share"] for g in body[name]) == pytest.approx(1.0)


def test_snapshots_feed_trends_and_cohorts(client, scored):
    taken = client.post("/v1/insights/snapshots")
    assert taken.status_code == 200, taken.text
    assert {"distribution", "cohorts"} <= set(taken.json()["kinds"])
    [today] = client.get("/v1/insights/trends", params={"days": 7}).json()["days"]
    now = client.get("/v1/insights/distribution").json()
    assert {k: today[k] for k in now} == now
    assert today["day"] == taken.json()["day"]

    # Cohorts recomputed here from the orders sent: month of the first order, then per
    # month the customers who ordered and their revenue.
    months: dict[str, dict[str, float]] = {}
    for event in EVENTS:
        month = event["occurred_at"][:7]
        months.setdefault(event["customer_id"], {}).setdefault(month, 0.0)
        months[event["customer_id"]][month] += float(event["amount"])
    cohorts = client.get("/v1/insights/cohorts", params={"months": 240}).json()["cohorts"]
    by_month = {c["month"]: c for c in cohorts}
    first = {customer: min(spent) for customer, spent in months.items()}
    assert sorted(by_month) == sorted(set(first.values()))
    for month, cohort in by_month.items():
        members = [c for c, m in first.items() if m == month]
        assert cohort["customers"] == len(members)
        assert cohort["months"][0]["active"] == len(members)
        for cell in cohort["months"]:
            year, number = divmod(
                int(month[:4]) * 12 + int(month[5:]) - 1 + cell["months_since"], 12
            )
            later = f"{year:04d}-{number + 1:02d}"
            buyers = [c for c in members if later in months[c]]
            assert cell["active"] == len(buyers)
            assert cell["share"] == pytest.approx(len(buyers) / len(members))
            assert cell["revenue"] == pytest.approx(sum(months[c][later] for c in buyers))
        assert cohort["revenue"] == pytest.approx(sum(sum(months[c].values()) for c in members))
    assert len(client.get("/v1/insights/cohorts", params={"months": 2}).json()["cohorts"]) == min(
        2, len(cohorts)
    )


def test_movements_follow_the_change_feed(client, scored):
    feed = client.get("/v1/changes", params={"types": "segment.changed", "limit": 1000}).json()
    ends: dict[str, list] = {}
    for change in feed["data"]:
        before = change["before"] and change["before"]["segment"]
        ends.setdefault(change["customer_id"], [before, None])[1] = change["after"]["segment"]
    expected: dict[tuple, int] = {}
    for start, end in ends.values():
        if start != end:
            expected[(start, end)] = expected.get((start, end), 0) + 1
    body = client.get("/v1/insights/movements", params={"by": "segment", "days": 7}).json()
    assert {(c["from"], c["to"]): c["customers"] for c in body["cells"]} == expected
    assert body["moved"] == sum(expected.values()) >= len(scored)  # all first scored this week


def test_movements_stop_at_the_feeds_retention(client):
    body = client.get("/v1/insights/movements", params={"days": 90}).json()
    span = datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"])
    assert body["shortened"] is True and span == timedelta(days=30)
    assert client.get("/v1/insights/movements").json()["shortened"] is False


def test_offers_without_decisions_have_no_uplift(client):
    body = client.get("/v1/insights/offers").json()
    assert body["treatment"] == {"decisions": 0, "accepted": 0} and body["uplift"] is None


def test_insights_need_a_key(server):
    with server.client(None) as anonymous:
        assert anonymous.get("/v1/insights/distribution").status_code == 401
