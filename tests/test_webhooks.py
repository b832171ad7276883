"""Outbound webhooks over real HTTP and PostgreSQL. Changes are written into score_changes
as the scoring loop writes them; a receiver in this process (an HTTP server in a thread)
verifies every request it gets with the `standardwebhooks` library, against each secret
its webhook signs with. The module's server retries on a compressed schedule."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.webhooks import delivery, targets
from tests.conftest import Server, run_sql, running_server, start_server, stop_server
from tests.webhook_receiver import Receiver, wait_until

ENV = {
    "SCORER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    # The specification's ten steps, compressed to 50 s in all.
    "SCORER_WEBHOOK_RETRY_SCHEDULE": "0,0.5,1,2,3,4,5,5,5,5,5,5,5,5",
    "SCORER_WEBHOOK_POLL_SECONDS": "0.1",
    "SCORER_WEBHOOK_TIMEOUT_SECONDS": "5",
}


@dataclass
class Hub:
    """The module's server (one test restarts it), its database and the receiver."""

    server: Server
    database_url: str
    receiver: Receiver
    logs: Path

    def admin(self) -> httpx.Client:
        return self.server.client(self.server.admin_key)

    def stop(self) -> None:
        stop_server(self.server)

    def start(self) -> None:
        log = self.logs / f"server-{time.monotonic_ns()}.log"
        self.server = start_server(self.database_url, log, **ENV)


@pytest.fixture(scope="module")
def hub(database_url, tmp_path_factory):
    receiver = Receiver()
    receiver.start()
    logs = tmp_path_factory.mktemp("servers")
    hub = Hub(start_server(database_url, logs / "server.log", **ENV), database_url, receiver, logs)
    yield hub
    hub.stop()
    receiver.stop()
    unverified = [(r.path, r.problems) for r in receiver.received if r.problems]
    assert not unverified, f"deliveries that did not verify: {unverified[:5]}"


@pytest.fixture
def subscribe(hub, request):
    """Creates webhooks to `receiver.url(path)`, deleted when the test ends (so that no
    test's changes reach another test's webhook)."""
    created = []

    def make(path: str, **fields) -> dict:
        path = f"/{request.node.name}{path}"
        with hub.admin() as http:
            answer = http.post("/v1/webhooks", json={"url": hub.receiver.url(path), **fields})
        assert answer.status_code == 200, answer.text
        hook = answer.json()
        hub.receiver.secrets[path] = [hook["secret"]]
        created.append(hook["id"])
        return {**hook, "path": path}

    yield make
    with hub.admin() as http:
        for webhook_id in created:
            http.delete(f"/v1/webhooks/{webhook_id}")


def scores(band: str = "medium", segment: str = "Need Attention", tier: str = "medium") -> dict:
    return {
        "churn_probability": {"low": 0.2, "medium": 0.5, "high": 0.8}[band],
        "churn_band": band,
        "pcltv": 312.5,
        "pcltv_tier": tier,
        "segment": segment,
        "r": 3,
        "f": 3,
        "m": 3,
    }


def add_change(
    hub: Hub, customer: str, kind: str = "scores.changed", before=None, after=None
) -> int:
    """A committed row of the feed, as the scoring loop writes it; its seq."""
    rows = run_sql(
        hub.database_url,
        "INSERT INTO score_changes (seq, type, customer_id, occurred_at, before, after) "
        "VALUES (nextval('score_changes_seq'), $1, $2, now(), $3::jsonb, $4::jsonb) "
        "RETURNING seq",
        kind,
        customer,
        None if before is None else json.dumps(before),
        None if after is None else json.dumps(after),
    )
    return rows[0]["seq"]


def deliveries(hub: Hub, hook: dict, **params) -> dict:
    with hub.admin() as http:
        answer = http.get(f"/v1/webhooks/{hook['id']}/deliveries", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def recorded(hub: Hub, hook: dict, count: int) -> dict:
    """The webhook's deliveries once `count` of them are recorded as delivered."""

    def done() -> dict | None:
        page = deliveries(hub, hook)
        delivered = [d for d in page["data"] if d["status"] == "delivered"]
        return page if len(delivered) >= count else None

    return wait_until(done, 5, f"{count} deliveries recorded")


def test_a_subscription_shows_its_secret_once(hub, subscribe):
    hook = subscribe(
        "/crm",
        description="CRM",
        event_types=["segment.changed"],
        filters={"segment_left": "Champions"},
    )
    assert hook["id"].startswith("wh_")
    secret = hook["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
    with hub.admin() as http:
        read = http.get(f"/v1/webhooks/{hook['id']}").json()
        listed = http.get("/v1/webhooks").json()["data"]
        assert secret not in json.dumps(read) + json.dumps(listed) and "secret" not in read
        assert read["secret_fingerprint"] == hook["secret_fingerprint"]
        assert read["filters"]["segment_left"] == "Champions"
        assert read["event_types"] == ["segment.changed"] and read["description"] == "CRM"
        assert hook["id"] in {webhook["id"] for webhook in listed}
        answer = http.patch(
            f"/v1/webhooks/{hook['id']}",
            json={"description": None, "event_types": ["tier.changed"], "enabled": False},
        )
        assert answer.status_code == 200, answer.text
        paused = answer.json()
        assert paused["description"] is None and paused["event_types"] == ["tier.changed"]
        assert not paused["enabled"] and paused["disabled_reason"] == "disabled through the API"
        assert paused["filters"]["segment_left"] == "Champions", "left out: unchanged"
        resumed = http.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": True}).json()
        assert resumed["enabled"] and resumed["disabled_reason"] is None
        deleted = http.delete(f"/v1/webhooks/{hook['id']}")
        assert deleted.status_code == 200 and deleted.json()["id"] == hook["id"]
        assert http.get(f"/v1/webhooks/{hook['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hook"}, "body.url"),
        ({"url": "http://user:password@example.com/hook"}, "body.url"),
        ({"url": "example.com/hook"}, "body.url"),
        ({"url": "https://example.com/hook\n"}, "body.url"),
        ({"event_types": ["order.created"]}, "body.event_types.0"),
        ({"event_types": []}, "body.event_types"),
        ({"event_types": ["tier.changed", "tier.changed"]}, "body.event_types"),
        ({"filters": {"churn_band_entered": "extreme"}}, "body.filters.churn_band_entered"),
        ({"filters": {"ltv_above": 3}}, "body.filters.ltv_above"),
        ({"description": "a\x00b"}, "body.description"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_bad_input_names_the_field(hub, body, field):
    with hub.admin() as http:
        answer = http.post("/v1/webhooks", json={"url": "https://example.com/hook", **body})
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["detail"]


def test_unusable_targets_and_ids(hub, subscribe):
    hook = subscribe("/ids")
    with hub.admin() as http:
        answer = http.post("/v1/webhooks", json={"url": "http://127.0.0.1:99999/hook"})
        assert answer.status_code == 400 and answer.json()["detail"].startswith("url: ")
        assert http.get("/v1/webhooks/wh_0123456789abcdef").status_code == 404
        assert http.get("/v1/webhooks/not-an-id").status_code == 422
        unknown = f"/v1/webhooks/{hook['id']}/deliveries/msg_{'0' * 24}/redeliver"
        assert http.post(unknown).status_code == 404
        both = {"after": "chg_1", "since": "2026-01-01T00:00:00Z"}
        assert http.post(f"/v1/webhooks/{hook['id']}/replay", json=both).status_code == 422
        assert http.post(f"/v1/webhooks/{hook['id']}/replay", json={}).status_code == 422


def test_private_targets_are_refused_unless_allowed(database_url, tmp_path_factory):
    with (
        running_server(database_url, tmp_path_factory, SCORER_BACKGROUND_WORK="false") as strict,
        strict.client(strict.admin_key) as http,
    ):
        for url in (
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/hook",
            "http://100.64.0.1/hook",
            "http://[::1]/hook",
            "http://[::ffff:192.168.0.1]/hook",
            "http://224.0.0.1/hook",
            "http://0.0.0.0/hook",
        ):
            answer = http.post("/v1/webhooks", json={"url": url})
            assert answer.status_code == 400, (url, answer.text)
            assert answer.json()["detail"].startswith("url: "), answer.text
        public = http.post("/v1/webhooks", json={"url": "https://93.184.215.14/hook"})
        assert public.status_code == 200, public.text
        path = f"/v1/webhooks/{public.json()['id']}"
        moved = http.patch(path, json={"url": "http://192.168.1.1/hook"})
        assert moved.status_code == 400 and moved.json()["detail"].startswith("url: ")
        assert http.delete(path).status_code == 200


def test_each_attempt_checks_the_target_again_and_connects_to_what_it_checked():
    with pytest.raises(targets.TargetRefused, match="loopback"):
        asyncio.run(targets.request_for("http://localhost:9/hook", allow_private=False))
    pinned = asyncio.run(targets.request_for("http://93.184.215.14:8443/h?k=1", False))
    assert pinned.url == "http://93.184.215.14:8443/h?k=1"
    assert pinned.headers == {"Host": "93.184.215.14:8443"}


def test_deliveries_are_signed_and_verify(hub, subscribe):
    hook = subscribe("/signed")
    seqs = [
        add_change(hub, f"signed-{n}", before=scores() if n else None, after=scores("high"))
        for n in range(3)
    ]
    got = hub.receiver.wait_delivered(hook["path"], 3)
    assert sorted(r.change_id for r in got) == sorted(f"chg_{seq}" for seq in seqs)
    for request in got:
        assert not request.problems, request.problems
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-id"].startswith("msg_")
        assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
        document = request.document
        assert document["type"] == "scores.changed"
        assert document["timestamp"] == document["data"]["occurred_at"]
        assert set(document["data"]) == {"id", "customer_id", "occurred_at", "before", "after"}
        assert document["data"]["after"] == scores("high")
    first = next(r for r in got if r.document["data"]["customer_id"] == "signed-0")
    assert first.document["data"]["before"] is None
    listed = recorded(hub, hook, 3)
    assert {d["id"] for d in listed["data"]} == {r.headers["webhook-id"] for r in got}
    for item in listed["data"]:
        assert item["attempts"] == 1 and item["last_status_code"] == 200
        assert item["attempt_log"][0]["status_code"] == 200 and item["delivered_at"]
    with hub.admin() as http:
        metrics = http.get("/metrics").text
    assert 'scorer_webhook_deliveries_total{outcome="delivered"}' in metrics
    latency = [line for line in metrics.splitlines() if "delivery_latency_seconds_count" in line]
    assert latency and float(latency[0].split()[-1]) >= 3
    assert "scorer_webhook_deliveries_pending" in metrics


def test_a_change_caused_by_an_ingested_event_is_delivered(hub, subscribe):
    """The whole path: an order is stored, the scoring loop rescores its customer, the
    change goes into the feed, and the webhook delivers it, verified."""
    hook = subscribe("/ingested", event_types=["churn_band.changed"])
    order = {
        "event_id": "ingested-1",
        "customer_id": "ingested-1",
        "type": "order_completed",
        "occurred_at": datetime.now(UTC).isoformat(),
        "order_id": "ingested-1",
        "amount": "80",
    }
    with hub.admin() as http:
        assert http.post("/v1/events", json={"events": [order]}).json()["accepted"] == 1
        scores_now = http.get("/v1/customers/ingested-1/scores").json()
    (got,) = hub.receiver.wait_delivered(hook["path"], 1)
    assert not got.problems, got.problems
    data = got.document["data"]
    assert got.document["type"] == "churn_band.changed"
    assert data["customer_id"] == "ingested-1" and data["before"] is None
    assert data["after"]["churn_band"] == scores_now["churn"]["band"]


def test_a_rotation_signs_with_the_old_and_the_new_secret(hub, subscribe):
    hook = subscribe("/rotation")
    old, path = hook["secret"], hook["path"]
    with hub.admin() as http:
        rotated = http.post(f"/v1/webhooks/{hook['id']}/rotate-secret").json()
    new = rotated["secret"]
    assert new != old and rotated["secret_fingerprint"] != hook["secret_fingerprint"]
    overlap = datetime.fromisoformat(rotated["previous_secret_expires_at"]) - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < overlap <= timedelta(hours=24)
    hub.receiver.secrets[path] = [old, new]  # each must verify on its own
    add_change(hub, "rotation-1")
    (during,) = hub.receiver.wait_delivered(path, 1)
    assert len(during.headers["webhook-signature"].split(" ")) == 2 and not during.problems

    with hub.admin() as http:
        again = http.post(
            f"/v1/webhooks/{hook['id']}/rotate-secret", json={"overlap_seconds": 0}
        ).json()
    assert again["previous_secret_expires_at"] is None
    hub.receiver.secrets[path] = [again["secret"]]
    add_change(hub, "rotation-2")
    after = hub.receiver.wait_delivered(path, 2)[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1 and not after.problems
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(after.body, after.headers)


def test_filters_choose_the_changes(hub, subscribe):
    high = subscribe(
        "/high", event_types=["churn_band.changed"], filters={"churn_band_entered": "high"}
    )
    left = subscribe("/left-champions", filters={"segment_left": "Champions"})
    band, seg = "churn_band.changed", "segment.changed"
    changes = [
        ("up", band, scores("medium"), scores("high")),
        ("first", band, None, scores("high")),
        ("down", band, scores("high"), scores("medium")),
        ("stays", band, scores("high"), scores("high")),
        ("other-type", "scores.changed", scores("low"), scores("high")),
        ("out", seg, scores(segment="Champions"), scores(segment="Loyal Customers")),
        ("in", seg, scores(segment="Loyal Customers"), scores(segment="Champions")),
        ("drift", "scores.changed", scores(segment="Champions"), scores(segment="At Risk")),
        ("last", band, scores("low"), scores("high")),
    ]
    last = [add_change(hub, f"filters-{name}", *change) for name, *change in changes][-1]
    wait_until(
        lambda: run_sql(
            hub.database_url,
            "SELECT bool_and(fanned_out_seq >= $1) AS done FROM webhook_endpoints "
            "WHERE id = ANY($2::text[])",
            last,
            [high["id"], left["id"]],
        )[0]["done"],
        10,
        "the fan-out past the last change",
    )
    for hook, expected in ((high, {"up", "first", "last"}), (left, {"out", "drift"})):
        hub.receiver.wait_delivered(hook["path"], len(expected))
        sent = {r.document["data"]["customer_id"] for r in hub.receiver.delivered(hook["path"])}
        assert sent == {f"filters-{name}" for name in expected}
        assert len(deliveries(hub, hook)["data"]) == len(expected)


def test_nothing_is_lost_while_the_receiver_is_down(hub, subscribe, database_url, tmp_path_factory):
    hook = subscribe("/outage")
    path, receiver = hook["path"], hub.receiver
    # A second server process shares the work through the database.
    with running_server(database_url, tmp_path_factory, **ENV):
        started = time.monotonic()
        receiver.stop()  # connections refused
        seqs = []
        for n in range(6):
            seqs.append(add_change(hub, f"outage-{n}"))
            time.sleep(2)
        time.sleep(3)
        receiver.failing[path] = 503  # up again, but unavailable
        receiver.start()
        for n in range(6, 9):
            seqs.append(add_change(hub, f"outage-{n}"))
            time.sleep(2)
        time.sleep(max(0.0, 30 - (time.monotonic() - started)))
        del receiver.failing[path]
        got = receiver.wait_delivered(path, len(seqs), seconds=30)
    assert Counter(r.change_id for r in got) == Counter(f"chg_{seq}" for seq in seqs)
    requests = receiver.at(path)
    assert any(r.status == 503 for r in requests)
    for seq in seqs:
        attempts = [r for r in requests if r.change_id == f"chg_{seq}"]
        assert len({r.headers["webhook-id"] for r in attempts}) == 1, "one id for all attempts"
        assert len({r.body for r in attempts}) == 1, "the same bytes every time"
    errors = [
        entry["error"] or ""
        for item in deliveries(hub, hook, status="delivered")["data"]
        for entry in item["attempt_log"]
    ]
    assert any("ConnectError" in error for error in errors)
    assert any(error.startswith("HTTP 503") for error in errors)


def test_gone_disables_the_webhook_and_stops_what_was_pending(hub, subscribe):
    hook = subscribe("/gone")
    path = hook["path"]
    hub.receiver.scripts[path] = deque([(503, {})])
    hub.receiver.failing[path] = 410
    add_change(hub, "gone-1")
    add_change(hub, "gone-2")
    with hub.admin() as http:
        url = f"/v1/webhooks/{hook['id']}"
        disabled = wait_until(
            lambda: (read := http.get(url).json())["enabled"] is False and read, 10, "disabling"
        )
        assert "410 Gone" in disabled["disabled_reason"]
        statuses = {d["status"] for d in deliveries(hub, hook)["data"]}
        assert statuses == {"failed", "cancelled"}
        del hub.receiver.failing[path]
        paused = add_change(hub, "gone-3")  # fanned out once the webhook is enabled again
        time.sleep(0.5)
        assert len(deliveries(hub, hook)["data"]) == 2
        assert http.post(f"{url}/replay", json={"after": "chg_0"}).status_code == 409
        assert http.patch(url, json={"enabled": True}).json()["enabled"]
        (resumed,) = hub.receiver.wait_delivered(path, 1)
        assert resumed.change_id == f"chg_{paused}"


def test_retry_after_is_honoured(hub, subscribe):
    hook = subscribe("/throttled")
    hub.receiver.scripts[hook["path"]] = deque([(429, {"Retry-After": "2"})])
    add_change(hub, "throttled-1")
    hub.receiver.wait_delivered(hook["path"], 1)
    refused, accepted = hub.receiver.at(hook["path"])
    assert (refused.status, accepted.status) == (429, 200)
    assert accepted.at - refused.at >= 2.0, "not before the receiver asked"
    assert accepted.headers["webhook-id"] == refused.headers["webhook-id"]


def test_retry_decisions():
    now = datetime.now(UTC)
    schedule = (0.0, 5.0, 300.0)

    def after(status: int | None, attempt: int, retry_after: float | None = None):
        result = delivery.Result(now, status, None, 1.0, retry_after=retry_after)
        return delivery.decide(result, attempt, schedule)

    assert after(204, 1).status == "delivered"
    retry = after(500, 1)
    assert retry.status == "pending" and 4.5 <= retry.delay <= 5.5
    assert after(None, 2).delay >= 270
    assert after(500, 3).status == "failed", "the schedule has three attempts"
    assert after(410, 1).gone and after(410, 1).status == "failed"
    throttled = after(503, 1, retry_after=200000)
    assert throttled.throttle == delivery.MAX_RETRY_AFTER_SECONDS == throttled.delay
    date = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 28 <= delivery.retry_after_seconds(date, now) <= 30
    assert delivery.retry_after_seconds("120", now) == 120
    assert delivery.retry_after_seconds("soon", now) is None


def test_listing_redelivery_and_replay(hub, subscribe):
    hook = subscribe("/replay")
    path = hook["path"]
    seqs = [add_change(hub, f"replay-{n}") for n in range(3)]
    first_ids = {r.change_id: r.headers["webhook-id"] for r in hub.receiver.wait_delivered(path, 3)}
    recorded(hub, hook, 3)
    page = deliveries(hub, hook, limit=2)
    assert [d["change_id"] for d in page["data"]] == [f"chg_{seqs[2]}", f"chg_{seqs[1]}"]
    assert page["has_more"] and page["next_cursor"]
    rest = deliveries(hub, hook, limit=2, before=page["next_cursor"])
    assert [d["change_id"] for d in rest["data"]] == [f"chg_{seqs[0]}"]
    assert not rest["has_more"] and rest["next_cursor"] is None
    assert deliveries(hub, hook, status="failed")["data"] == []

    oldest = rest["data"][0]
    with hub.admin() as http:
        url = f"/v1/webhooks/{hook['id']}"
        again = http.post(f"{url}/deliveries/{oldest['id']}/redeliver")
        assert again.status_code == 200 and again.json()["status"] == "pending"
        redelivered = wait_until(
            lambda: [
                r for r in hub.receiver.delivered(path) if r.headers["webhook-id"] == oldest["id"]
            ][1:],
            10,
            "the redelivery",
        )
        original = next(
            r for r in hub.receiver.delivered(path) if r.change_id == oldest["change_id"]
        )
        assert redelivered[0].body == original.body

        replay = http.post(f"{url}/replay", json={"after": f"chg_{seqs[0]}"}).json()
        assert replay == {
            "webhook_id": hook["id"],
            "after": f"chg_{seqs[0]}",
            "through": f"chg_{seqs[2]}",
        }
        hub.receiver.wait_delivered(path, 6)
        occurred = run_sql(
            hub.database_url, "SELECT occurred_at FROM score_changes WHERE seq = $1", seqs[0]
        )[0]["occurred_at"]
        since = http.post(f"{url}/replay", json={"since": occurred.isoformat()}).json()
        assert since["after"] == f"chg_{seqs[0] - 1}"
        got = hub.receiver.wait_delivered(path, 9)
    assert Counter(r.change_id for r in got) == {
        f"chg_{seqs[0]}": 3,
        f"chg_{seqs[1]}": 3,
        f"chg_{seqs[2]}": 3,
    }
    assert all(r.headers["webhook-id"] == first_ids[r.change_id] for r in got), "same ids"


def test_deliveries_survive_a_restart(hub, subscribe):
    hook = subscribe("/restart")
    path = hook["path"]
    hub.receiver.failing[path] = 503
    seqs = [add_change(hub, f"restart-{n}") for n in range(3)]
    wait_until(
        lambda: {r.change_id for r in hub.receiver.at(path)} >= {f"chg_{s}" for s in seqs},
        10,
        "first attempts",
    )
    hub.stop()
    seqs.append(add_change(hub, "restart-3"))  # while no server runs
    pending = run_sql(
        hub.database_url,
        "SELECT count(*) AS n FROM webhook_deliveries "
        "WHERE endpoint_id = $1 AND status = 'pending'",
        hook["id"],
    )[0]["n"]
    assert pending == 3
    del hub.receiver.failing[path]
    hub.start()
    got = hub.receiver.wait_delivered(path, 4)
    assert sorted(r.change_id for r in got) == sorted(f"chg_{s}" for s in seqs)
    for seq in seqs[:3]:
        ids = {
            r.headers["webhook-id"] for r in hub.receiver.at(path) if r.change_id == f"chg_{seq}"
        }
        assert len(ids) == 1
