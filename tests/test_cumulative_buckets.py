"""The running totals of the daily rows: kept exact by the online upkeep and by migration
0010's backfill, and rewritten only from the earliest day a batch touches."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from alembic import command

from service.db import alembic_config
from service.features.definitions import BUCKET_COLUMNS, cumulative
from tests.conftest import fresh_database, run_sql

_RUNNING = ", ".join(
    f"sum({c}) OVER (PARTITION BY customer_id ORDER BY day) AS {c}" for c in BUCKET_COLUMNS
)
_STORED = ", ".join(f"{cumulative(c)} AS {c}" for c in BUCKET_COLUMNS)


def totals_are_running_sums(sql, customer_id: str) -> None:
    """Every row's totals equal the sum of its customer's rows up to its day."""
    where = "WHERE customer_id = $1 ORDER BY day"
    stored = sql(f"SELECT day, {_STORED} FROM customer_daily {where}", customer_id)
    running = sql(f"SELECT day, {_RUNNING} FROM customer_daily {where}", customer_id)
    assert stored and [tuple(r) for r in stored] == [tuple(r) for r in running]


def row_versions(sql, customer_id: str) -> dict[date, str]:
    rows = sql(
        "SELECT day, xmin::text AS v FROM customer_daily WHERE customer_id = $1", customer_id
    )
    return {row["day"]: row["v"] for row in rows}


def post(client, customer_id: str, *events: tuple[str, str, dict]) -> None:
    body = [
        {
            "event_id": f"{customer_id}-{uuid.uuid4().hex[:8]}",
            "customer_id": customer_id,
            "type": kind,
            "occurred_at": f"{day}T12:00:00Z",
            **fields,
        }
        for kind, day, fields in events
    ]
    response = client.post("/v1/events", json={"events": body})
    assert response.status_code == 200 and response.json()["accepted"] == len(body), response.text


def order(day: str, order_id: str, amount: str) -> tuple[str, str, dict]:
    return ("order_completed", day, {"order_id": order_id, "amount": amount})


def test_writes_rewrite_the_totals_from_the_earliest_day_they_touch(server, client):
    customer = "cum-" + uuid.uuid4().hex[:8]
    post(
        client,
        customer,
        order("2024-03-01", "o1", "10.5"),
        order("2024-03-05", "o2", "20"),
        ("session_started", "2024-03-05", {}),
        order("2024-03-10", "o3", "30.25"),
    )
    totals_are_running_sums(server.sql, customer)

    before = row_versions(server.sql, customer)
    post(client, customer, ("session_started", "2024-03-10", {}))
    after = row_versions(server.sql, customer)
    changed = {day for day in after if after[day] != before[day]}
    assert changed == {date(2024, 3, 10)}, "an event of the last day rewrites that row only"

    before = after
    post(client, customer, order("2024-03-03", "o4", "1"))
    after = row_versions(server.sql, customer)
    assert after[date(2024, 3, 1)] == before[date(2024, 3, 1)]
    assert {d for d in before if after[d] != before[d]} == {date(2024, 3, 5), date(2024, 3, 10)}
    totals_are_running_sums(server.sql, customer)

    # A full refund of the first order restates its day, whenever it is sent.
    refund = ("order_refunded", "2024-03-11", {"order_id": "o1", "amount": "10.5"})
    post(client, customer, refund)
    totals_are_running_sums(server.sql, customer)
    features = client.get(
        f"/v1/customers/{customer}/features", params={"as_of": "2024-03-11T00:00:00Z"}
    ).json()
    assert features["orders_total"] == 3 and features["revenue_total"] == 51.25
    assert features["orders_7d"] == 2 and features["revenue_7d"] == 50.25
    assert features["first_order_at"].startswith("2024-03-03")
    assert features["sessions_30d"] == 2


def test_migration_backfills_the_totals_of_existing_rows():
    with fresh_database() as url:
        config = alembic_config(url)
        command.downgrade(config, "0009")
        run_sql(
            url,
            "INSERT INTO customer_daily (customer_id, day, orders, sessions, revenue) VALUES "
            "('a', '2024-01-02', 1, 0, 5.5), ('a', '2024-01-01', 2, 3, 1.25), "
            "('b', '2024-01-01', 0, 4, 0), ('a', '2024-02-01', 0, 1, 0)",
            fetch=False,
        )
        command.upgrade(config, "head")
        rows = run_sql(
            url,
            "SELECT customer_id, day, cum_orders, cum_sessions, cum_revenue FROM customer_daily "
            "ORDER BY customer_id, day",
        )
        assert [tuple(r) for r in rows] == [
            ("a", date(2024, 1, 1), 2, 3, Decimal("1.2500")),
            ("a", date(2024, 1, 2), 3, 3, Decimal("6.7500")),
            ("a", date(2024, 2, 1), 3, 4, Decimal("6.7500")),
            ("b", date(2024, 1, 1), 0, 4, Decimal("0.0000")),
        ]
        totals_are_running_sums(lambda q, *a: run_sql(url, q, *a), "a")
