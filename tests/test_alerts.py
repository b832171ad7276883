"""Insight alerts end to end: an alert defined through the API fires exactly once when the
scores cross its threshold, and the `alert.triggered` change reaches a webhook receiver
(signatures checked with `standardwebhooks`) and the change feed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import running_server
from tests.webhook_receiver import Receiver, wait_until

NOW = datetime.now(UTC).replace(microsecond=0)
ENV = {
    "SCORER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    "SCORER_WEBHOOK_POLL_SECONDS": "0.1",
    "SCORER_INSIGHTS_ALERT_SECONDS": "0.2",
}


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()
    assert not [r.problems for r in receiver.received if r.problems]


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    with running_server(database_url, tmp_path_factory, **ENV) as server:
        yield server


def orders(customers: range, days_ago: int) -> list[dict]:
    return [
        {
            "event_id": f"al-{c}",
            "customer_id": f"al-{c}",
            "type": "order_completed",
            "occurred_at": (NOW - timedelta(days=days_ago)).isoformat(),
            "order_id": f"al-o{c}",
            "amount": "80.00",
        }
        for c in customers
    ]


def scored(server, count: int) -> None:
    wait_until(
        lambda: (
            server.sql("SELECT count(*) FROM customer_scores")[0][0] == count
            and not server.sql("SELECT 1 FROM score_outbox LIMIT 1")
        ),
        30,
        f"{count} scored customers",
    )


def evaluated_after(server, client, alert_id: str, moment: datetime) -> dict:
    def done():
        alert = client.get(f"/v1/insights/alerts/{alert_id}").json()
        evaluated = alert["evaluated_at"]
        return alert if evaluated and datetime.fromisoformat(evaluated) > moment else None

    return wait_until(done, 15, "an evaluation of the alert")


def test_a_crossing_fires_once_and_reaches_the_webhook(server, receiver):
    with server.client(server.admin_key) as client:
        hook = client.post(
            "/v1/webhooks",
            json={"url": receiver.url("/alerts"), "event_types": ["alert.triggered"]},
        )
        assert hook.status_code == 200, hook.text
        receiver.secrets["/alerts"] = [hook.json()["secret"]]

        # Recent buyers: few of them likely to churn.
        assert client.post("/v1/events", json={"events": orders(range(4), 3)}).status_code == 200
        scored(server, 4)
        alert = client.post(
            "/v1/insights/alerts",
            json={
                "name": "churn risk up",
                "metric": "churn_band_share",
                "operator": "above",
                "threshold": 0.5,
            },
        )
        assert alert.status_code == 200, alert.text
        alert = alert.json()
        assert alert["subject"] == "high" and alert["firing"] is False
        calm = evaluated_after(server, client, alert["alert_id"], datetime.now(UTC))
        assert calm["firing"] is False and calm["last_value"] < 0.5

        # Lapsed buyers, last seen most of a year ago, outnumber them: the share crosses.
        lapsed = client.post("/v1/events", json={"events": orders(range(4, 14), 300)})
        assert lapsed.status_code == 200
        scored(server, 14)
        fired = wait_until(
            lambda: (
                (a := client.get(f"/v1/insights/alerts/{alert['alert_id']}").json())["firing"] and a
            ),
            15,
            "the alert to fire",
        )
        high = server.sql("SELECT count(*) FROM customer_scores WHERE churn_band = 'high'")[0][0]
        assert fired["last_value"] == pytest.approx(high / 14)
        assert fired["triggered_count"] == 1

        [delivery] = receiver.wait_delivered("/alerts", 1)
        document = delivery.document
        assert document["type"] == "alert.triggered"
        assert document["data"]["customer_id"] is None
        sent = document["data"]["alert"]
        assert sent["alert_id"] == alert["alert_id"] and sent["metric"] == "churn_band_share"
        assert sent["value"] == pytest.approx(high / 14) and sent["threshold"] == 0.5

        # Still past the threshold for many more evaluations: no second firing.
        later = evaluated_after(server, client, alert["alert_id"], datetime.now(UTC))
        evaluated_after(
            server, client, alert["alert_id"], datetime.fromisoformat(later["evaluated_at"])
        )
        time.sleep(0.5)  # a second delivery, were there one, has had time to arrive
        assert len(receiver.at("/alerts")) == 1
        feed = client.get("/v1/changes", params={"types": "alert.triggered"}).json()["data"]
        assert [(c["type"], c["alert"]["alert_id"]) for c in feed] == [
            ("alert.triggered", alert["alert_id"])
        ]
        assert client.get(f"/v1/insights/alerts/{alert['alert_id']}").json()["triggered_count"] == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"metric": "segment_share"}, "subject"),
        ({"metric": "churn_band_share", "subject": "purple"}, "subject"),
        ({"metric": "customers", "subject": "high"}, "subject"),
        ({"metric": "mood"}, "metric"),
        ({"metric": "customers", "operator": "beyond"}, "operator"),
        ({"metric": "customers", "threshold": "lots"}, "threshold"),
    ],
)
def test_a_bad_alert_names_its_field(server, fields, field):
    body = {"name": "x", "operator": "above", "threshold": 1, **fields}
    with server.client(server.admin_key) as client:
        answer = client.post("/v1/insights/alerts", json=body)
    assert answer.status_code == 422, answer.text
    assert any(e["field"].endswith(field) or field in e["error"] for e in answer.json()["errors"])


def test_alerts_are_listed_deleted_and_audited(server):
    with server.client(server.admin_key) as client:
        made = client.post(
            "/v1/insights/alerts",
            json={"name": "few", "metric": "customers", "operator": "below", "threshold": 1},
        ).json()
        assert made["alert_id"] in {
            a["alert_id"] for a in client.get("/v1/insights/alerts").json()["data"]
        }
        gone = client.delete(f"/v1/insights/alerts/{made['alert_id']}")
        assert gone.status_code == 200 and gone.json()["alert_id"] == made["alert_id"]
        assert client.get(f"/v1/insights/alerts/{made['alert_id']}").status_code == 404
        assert client.delete(f"/v1/insights/alerts/{made['alert_id']}").status_code == 404
    actions = server.sql(
        "SELECT action FROM audit_log WHERE subject = $1 ORDER BY id", made["alert_id"]
    )
    assert [row[0] for row in actions] == ["alert.created", "alert.deleted"]
