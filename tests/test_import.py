"""`scorer import`: NDJSON and CSV backfills through the API's validation, idempotent."""

from __future__ import annotations

import json


def test_csv_orders_import_is_idempotent_and_reports_rejects(server, client, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer_id,occurred_at,amount,order_id\n"
        "imp-c1,2026-01-02,10.00,A1\n"
        "imp-c1,2026-01-09T08:00:00+00:00,30.5,A2\n"
        "imp-c1,2026-01-09T08:00:00+00:00,30.5,A2\n"  # the same order twice counts once
        "imp-c2,2026-01-03,7,\n"
        "imp-c2,2026-01-03,7,\n"  # no order id: two identical rows are two orders
        "imp-c3,2026-01-03T10:00:00,5,B1\n"  # naive timestamp
        "imp-c3,not-a-date,5,B2\n"
        "imp-c3,2026-01-04,-5,B3\n"
        "imp-c4,2026-01-04\n"
    )
    first = server.scorer("import", str(path))
    assert "accepted 4, duplicates 1, rejected 4" in first.stdout, first.stdout
    rejects = [json.loads(line) for line in path.with_name("orders.csv.rejects.ndjson").open()]
    assert [r["line"] for r in rejects] == [7, 8, 9, 10]
    assert "occurred_at" in rejects[0]["error"] and "amount" in rejects[2]["error"]

    again = server.scorer("import", str(path))
    assert "accepted 0, duplicates 5, rejected 4" in again.stdout, again.stdout

    c1 = client.get("/v1/customers/imp-c1/features", params={"as_of": "2026-01-31T00:00:00Z"})
    assert c1.json()["orders_total"] == 2 and c1.json()["revenue_total"] == 40.5
    c2 = client.get("/v1/customers/imp-c2/features", params={"as_of": "2026-01-31T00:00:00Z"})
    assert c2.json()["orders_total"] == 2 and c2.json()["revenue_total"] == 14.0


def test_ndjson_import_matches_the_api_path(server, client, tmp_path):
    events = [
        {
            "event_id": f"imp-n{i}",
            "customer_id": "imp-n",
            "type": "order_completed",
            "occurred_at": f"2026-02-{i + 1:02d}T12:00:00+00:00",
            "order_id": f"N{i}",
            "amount": "12.25",
        }
        for i in range(5)
    ]
    path = tmp_path / "events.ndjson"
    lines = [json.dumps(e) for e in events] + ["{not json", json.dumps({"type": "identify"})]
    path.write_text("\n".join(lines) + "\n")
    result = server.scorer("import", str(path), "--batch-size", "2")
    assert "accepted 5, duplicates 0, rejected 2" in result.stdout, result.stdout
    # The API sees the imported events as already stored.
    response = client.post("/v1/events", json={"events": events})
    assert response.json() == {"accepted": 0, "duplicates": 5, "rejected": []}
    features = client.get("/v1/customers/imp-n/features", params={"as_of": "2026-02-28T00:00:00Z"})
    assert features.json()["orders_total"] == 5
    assert features.json()["revenue_total"] == 61.25
