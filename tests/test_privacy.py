"""Erasure and export over real HTTP, PostgreSQL, NATS and the sources' real clients: a
customer with events from every way in is exported (and the export rebuilds the same
features in an empty service), then erased: a pg_dump holds no trace of them, every source
re-sending their old events gets duplicates, and a webhook receiver hears `customer.erased`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import nats
import pgserver
import pytest
import stripe
from segment.analytics.client import Client as SegmentClient

from tests.conftest import SCORER, fresh_database, running_server
from tests.nats_server import nats_server
from tests.test_shop_webhooks import SHOP, SHOPIFY_SECRET
from tests.test_shop_webhooks import shopify_post as signed_shopify_post
from tests.webhook_receiver import Receiver, wait_until

DATA = Path(__file__).parent / "data" / "webhooks"
STRIPE_SECRET = "whsec_privacy_secret_abcdef"
# Numeric, as Shopify's customer ids are; unlike anything else the database holds.
ERASED = "7340012345678"
KEPT = "kept-customer-1"
TRAITS = {
    "email": "erinna.eraseworth@example.org",
    "first_name": "Erinna",
    "last_name": "Eraseworth",
    "phone": "+15550001111",
}
VISITOR = "anon-visitor-9f3c2e"
NOW = datetime.now(UTC).replace(microsecond=0)
STREAM, SUBJECT = "privacy", "privacy.events"
ENV = {
    "SCORER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    "SCORER_WEBHOOK_POLL_SECONDS": "0.1",
}


def moment(days_ago: float) -> datetime:
    return NOW - timedelta(days=days_ago)


def at(days_ago: float) -> str:
    return moment(days_ago).isoformat()


@pytest.fixture(scope="module")
def hub(database_url, tmp_path_factory):
    receiver = Receiver()
    receiver.start()
    with running_server(database_url, tmp_path_factory, **ENV) as server:
        yield server, receiver
    receiver.stop()


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory):
    with nats_server(tmp_path_factory.mktemp("nats")) as url:
        yield url


def key(server, name: str, scopes: str) -> str:
    return server.scorer("keys", "create", "--name", name, "--scopes", scopes).stdout.strip()


def api_events(customer: str, tag: str) -> list[dict]:
    return [
        {
            "event_id": f"{tag}-order-1",
            "customer_id": customer,
            "type": "order_completed",
            "occurred_at": at(40),
            "order_id": f"{tag}-o1",
            "amount": "80.00",
            "currency": "USD",
        },
        {
            "event_id": f"{tag}-refund-1",
            "customer_id": customer,
            "type": "order_refunded",
            "occurred_at": at(39),
            "order_id": f"{tag}-o1",
            "amount": "20.00",
        },
        {
            "event_id": f"{tag}-session-1",
            "customer_id": customer,
            "type": "session_started",
            "occurred_at": at(3),
            "properties": {"device": "ios"},
        },
        {
            "event_id": f"{tag}-consent-1",
            "customer_id": customer,
            "type": "consent_updated",
            "occurred_at": at(30),
            "properties": {"channel": "email", "granted": True},
        },
        {
            "event_id": f"{tag}-survey-1",
            "customer_id": customer,
            "type": "survey_response",
            "occurred_at": at(10),
            "properties": {"csat": 4},
        },
        {
            "event_id": f"{tag}-identify-1",
            "customer_id": customer,
            "type": "identify",
            "occurred_at": at(30),
            "properties": {"traits": {"nickname": f"{tag}-nickname", "city": f"{tag}-city"}},
        },
    ]


def segment_calls(user: str) -> list[tuple[str, dict]]:
    return [
        ("track", {"anonymous_id": VISITOR, "event": "Product Viewed", "timestamp": moment(6)}),
        (
            "identify",
            {
                "user_id": user,
                "anonymous_id": VISITOR,
                "traits": {**TRAITS, "consent": {"sms": True}},
                "timestamp": moment(5),
            },
        ),
        (
            "track",
            {
                "user_id": user,
                "event": "Order Completed",
                "properties": {"order_id": "seg-o1", "revenue": 35.5, "currency": "USD"},
                "timestamp": moment(4),
            },
        ),
    ]


def run_segment(server, write_key: str) -> None:
    errors: list = []
    sdk = SegmentClient(
        write_key=write_key,
        host=server.url,
        on_error=lambda e, batch: errors.append(e),
        max_retries=2,
        upload_size=10,
    )
    for method, arguments in segment_calls(ERASED):
        getattr(sdk, method)(**arguments)
    sdk.flush()
    assert errors == []


def shopify_post(server, topic: str, payload: dict, event_id: str) -> dict:
    answer = signed_shopify_post(server, topic, payload, event_id)
    assert answer.status_code == 200, answer.text
    return answer.json()


def shopify_deliveries() -> list[tuple[str, dict, str]]:
    order = json.loads((DATA / "shopify_order.json").read_text())
    person = json.loads((DATA / "shopify_customer.json").read_text())
    customer = {**person, "id": int(ERASED), **TRAITS}
    order = {
        **order,
        "id": 99887766,
        "email": TRAITS["email"],
        "customer": {"id": int(ERASED), "email": TRAITS["email"]},
    }
    return [
        ("orders/create", order, "pv-1"),
        ("customers/update", customer, "pv-2"),
        ("orders/create", {**order, "id": 99887767, "currency": "EUR"}, "pv-3"),  # dead letter
    ]


def stripe_delivery() -> str:
    event = json.loads((DATA / "stripe_checkout_session.json").read_text())
    event["id"] = "evt_privacy_1"
    event["created"] = int(NOW.timestamp()) - 86400
    session = event["data"]["object"]
    session.update(id="cs_privacy_1", payment_intent="pi_privacy_1", created=event["created"])
    session["metadata"] = {"customer_id": ERASED}
    return json.dumps(event)


def stripe_post(server, raw: str) -> dict:
    header = stripe.WebhookSignature.generate_signature_header(raw, STRIPE_SECRET)
    answer = httpx.post(
        f"{server.url}/v1/sources/stripe/webhooks",
        content=raw,
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def nats_messages() -> list[bytes]:
    events = [
        {
            "event_id": f"nats-view-{n}",
            "customer_id": ERASED,
            "type": "product_viewed",
            "occurred_at": at(2 + n),
            "properties": {"sku": f"SKU-{n}"},
        }
        for n in range(2)
    ]
    return [json.dumps(event).encode() for event in events]


async def publish(url: str, messages: list[bytes], create: bool) -> None:
    connection = await nats.connect(url)
    stream = connection.jetstream()
    if create:
        await stream.add_stream(name=STREAM, subjects=[SUBJECT])
    for data in messages:
        await stream.publish(SUBJECT, data)
    await connection.close()


def consume_until(server, url: str, marker: str, log: Path) -> None:
    """Run `scorer consume` until the event `marker` is stored."""
    process = subprocess.Popen(
        [SCORER, "consume", "--nats", url, "--stream", STREAM, "--subject", SUBJECT],
        env={**os.environ, "DATABASE_URL": server.database_url},
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            lambda: server.sql("SELECT 1 FROM events WHERE event_id = $1", marker),
            60,
            f"the consumer to store {marker}",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def import_file(tmp_path: Path) -> Path:
    path = tmp_path / "history.ndjson"
    rows = [
        {
            "event_id": "import-order-1",
            "customer_id": ERASED,
            "type": "order_completed",
            "occurred_at": at(200),
            "order_id": "import-o1",
            "amount": "120.00",
        },
        {
            "event_id": "import-click-1",
            "customer_id": ERASED,
            "type": "email_clicked",
            "occurred_at": at(20),
        },
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def segment_unusable(server, write_key: str) -> None:
    """A message naming the customer that no source can attribute: a dead letter without a
    customer, whose payload holds the id."""
    body = {"batch": [{"messageId": "pv-bogus", "type": "bogus", "userId": ERASED}]}
    answer = httpx.post(
        f"{server.url}/v1/batch",
        json=body,
        headers={"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()},
    )
    assert answer.status_code == 200, answer.text


def features(http: httpx.Client, customer: str, as_of: str) -> dict:
    answer = http.get(f"/v1/customers/{customer}/features", params={"as_of": as_of})
    assert answer.status_code == 200, answer.text
    return answer.json()


def pg_dump(database_url: str) -> str:
    """A plain dump by the embedded server's pg_dump (new enough for any server we use)."""
    binary = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"
    done = subprocess.run(
        [str(binary), "--no-owner", "--dbname", database_url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def world(hub, nats_url, tmp_path_factory):
    """The customer, fed by every source, scored, offered, and watched by a webhook."""
    server, receiver = hub
    tmp = tmp_path_factory.mktemp("privacy")
    write_key = key(server, "writer", "events:write")
    privacy_key = key(server, "dpo", "privacy")
    reader_key = key(server, "reader", "scores:read")
    server.scorer("sources", "add", "shopify", "--shop", SHOP, stdin=SHOPIFY_SECRET + "\n")
    server.scorer("sources", "add", "stripe", "--account", "acct_p", stdin=STRIPE_SECRET + "\n")
    with server.client(server.admin_key) as admin:
        hook = admin.post("/v1/webhooks", json={"url": receiver.url("/privacy")}).json()
        receiver.secrets["/privacy"] = [hook["secret"]]
        offer = {"offer_id": "p-10", "name": "10% off", "channel": "email", "value": 30, "cost": 1}
        assert admin.post("/v1/offers", json=offer).status_code in (200, 201)
    with server.client(write_key) as writer:
        for customer in (ERASED, KEPT):
            tag = "api" if customer == ERASED else "kept"
            posted = writer.post("/v1/events", json={"events": api_events(customer, tag)})
            assert posted.json()["accepted"] == 6, posted.text
    run_segment(server, write_key)
    segment_unusable(server, write_key)
    shopify = [shopify_post(server, *delivery) for delivery in shopify_deliveries()]
    stripe_event = stripe_delivery()
    assert stripe_post(server, stripe_event)["accepted"] == 1
    asyncio.run(publish(nats_url, nats_messages(), create=True))
    consume_until(server, nats_url, "nats-view-1", tmp / "consume.log")
    history = import_file(tmp)
    server.scorer("import", str(history))
    with server.client(reader_key) as reader:
        scored = reader.post(
            "/v1/score",
            json={"customer_id": ERASED, "context": {"cart_value": 12.5, "email": TRAITS["email"]}},
        )
        assert scored.status_code == 200, scored.text
    wait_until(
        lambda: server.sql(
            "SELECT 1 FROM webhook_deliveries WHERE customer_id = $1 AND status = 'delivered'",
            ERASED,
        ),
        30,
        "a delivered change of the customer",
    )
    return {
        "server": server,
        "receiver": receiver,
        "write_key": write_key,
        "privacy_key": privacy_key,
        "reader_key": reader_key,
        "shopify": shopify,
        "stripe_event": stripe_event,
        "history": history,
        "tmp": tmp,
        "nats_url": nats_url,
    }


def check_every_source_reached_the_customer(world) -> None:
    server = world["server"]
    sources = {
        row["source"]
        for row in server.sql("SELECT DISTINCT source FROM events WHERE customer_id = $1", ERASED)
    }
    assert sources == {"api", "segment", "shopify", "stripe", "nats", "import"}
    assert world["shopify"][2]["dead_lettered"] == 1
    letters = server.sql(
        "SELECT customer_id FROM dead_letters WHERE payload::text LIKE $1", "%bogus%"
    )
    assert [row["customer_id"] for row in letters] == [None]


def check_export_holds_everything_and_rebuilds_the_same_features(world, tmp_path_factory):
    server = world["server"]
    as_of = NOW.isoformat()
    with server.client(world["reader_key"]) as reader:
        assert reader.get(f"/v1/customers/{ERASED}/export").status_code == 403
        ours = features(reader, ERASED, as_of)
    with server.client(world["privacy_key"]) as dpo:
        answer = dpo.get(f"/v1/customers/{ERASED}/export")
        assert answer.status_code == 200, answer.text
        assert dpo.get("/v1/customers/nobody-at-all/export").status_code == 404
    document = answer.json()
    stored = server.sql("SELECT count(*) FROM events WHERE customer_id = $1", ERASED)[0][0]
    assert len(document["events"]) == stored
    assert document["profile"]["traits"]["email"] == TRAITS["email"]
    history = {(c["channel"], c["granted"], c["source"]) for c in document["consent_history"]}
    assert {("email", True, "api"), ("sms", True, "segment"), ("email", True, "shopify")} <= history
    assert document["features"]["orders_total"] == ours["orders_total"]
    assert document["scores"] is not None and document["score_changes"]
    assert [link["anonymous_id"] for link in document["identity_links"]] == [VISITOR]
    decisions = document["offer_decisions"]
    assert decisions and decisions[0]["context"]["cart_value"] == 12.5
    assert "email" not in decisions[0]["context"], "context keys the policy never reads"
    assert {letter["source"] for letter in document["dead_letters"]} >= {"shopify"}
    with (
        fresh_database() as empty,
        running_server(empty, tmp_path_factory) as other,
        other.client(other.admin_key) as http,
    ):
        events = document["events"]
        for start in range(0, len(events), 1000):
            sent = http.post("/v1/events", json={"events": events[start : start + 1000]})
            assert sent.status_code == 200 and not sent.json()["rejected"], sent.text
        assert features(http, ERASED, as_of) == ours


def check_erasure_leaves_no_trace_and_replays_are_duplicates(world) -> None:
    server, receiver = world["server"], world["receiver"]
    event_ids = [
        r["event_id"]
        for r in server.sql("SELECT event_id FROM events WHERE customer_id = $1", ERASED)
    ]
    assert len(event_ids) >= 14
    with server.client(server.admin_key) as admin:
        spent = admin.get("/v1/offers/p-10").json()["spent"]
    with server.client(world["reader_key"]) as reader:
        before_kept = features(reader, KEPT, NOW.isoformat())
        assert reader.delete(f"/v1/customers/{ERASED}").status_code == 403
    with server.client(world["privacy_key"]) as dpo:
        answer = dpo.delete(f"/v1/customers/{ERASED}")
        assert answer.status_code == 200, answer.text
        erasure = answer.json()
        again = dpo.delete(f"/v1/customers/{ERASED}").json()
    assert erasure["previously_erased"] is False and again["previously_erased"] is True
    deleted = erasure["deleted"]
    assert deleted["events"] == len(event_ids) and deleted["identity_links"] == 1
    assert deleted["dead_letters"] == 2
    assert deleted["offer_decisions"] >= 1
    assert deleted["customer_scores"] == 1 and deleted["score_changes"] >= 1

    # Every source sends the customer's old events again: nothing comes back.
    with server.client(world["write_key"]) as writer:
        resent = writer.post("/v1/events", json={"events": api_events(ERASED, "api")}).json()
    assert resent == {"accepted": 0, "duplicates": 6, "rejected": []}
    run_segment(server, world["write_key"])
    segment_unusable(server, world["write_key"])
    for delivery in shopify_deliveries():
        assert shopify_post(server, *delivery)["accepted"] == 0
    assert stripe_post(server, world["stripe_event"]) == {
        "accepted": 0,
        "duplicates": 1,
        "dead_lettered": 0,
        "ignored": None,
    }
    marker = {
        "event_id": "nats-marker",
        "customer_id": "marker",
        "type": "session_started",
        "occurred_at": at(1),
    }
    asyncio.run(publish(world["nats_url"], [*nats_messages(), json.dumps(marker).encode()], False))
    consume_until(server, world["nats_url"], "nats-marker", world["tmp"] / "consume.log")
    imported = server.scorer("import", str(world["history"]))
    assert "accepted 0, duplicates 2" in imported.stdout + imported.stderr

    dump = pg_dump(server.database_url)
    found = [value for value in [ERASED, VISITOR, *event_ids, *TRAITS.values()] if value in dump]
    assert found == []
    assert "api-nickname" not in dump and "api-city" not in dump and "kept-city" in dump

    # The change went out, signed, naming the erasure and not the customer.
    def erased_delivery():
        return [
            r
            for r in receiver.delivered("/privacy")
            if r.document["data"].get("erasure_id") == erasure["erasure_id"]
        ]

    received = wait_until(erased_delivery, 30, "customer.erased at the receiver")
    assert len(received) == 1 and received[0].problems == []
    data = received[0].document["data"]
    assert data["customer_id"] is None and data["erasure_id"] == erasure["erasure_id"]
    with server.client(world["reader_key"]) as reader:
        feed = reader.get("/v1/changes", params={"types": "customer.erased"}).json()["data"]
        assert [c["erasure_id"] for c in feed].count(erasure["erasure_id"]) == 1
        assert again["erasure_id"] not in [c["erasure_id"] for c in feed]
        assert reader.get(f"/v1/customers/{ERASED}").status_code == 404
        assert features(reader, KEPT, NOW.isoformat()) == before_kept
    with server.client(server.admin_key) as admin:
        assert admin.get("/v1/offers/p-10").json()["spent"] == spent, "money once committed"
        trail = admin.get("/v1/audit", params={"limit": 1000}).json()["data"]
    done = {(entry["actor"], entry["action"], entry["subject"]) for entry in trail}
    erasure_name = "erasure:" + erasure["erasure_id"]
    assert ("dpo", "customer.erased", erasure["erasure_id"]) in done
    assert ("dpo", "customer.exported", erasure_name) in done, "exports name the erasure now"
    actions = {entry["action"] for entry in trail}
    # Every admin action this module performed is in the trail.
    assert {"key.created", "source.added", "webhook.created", "offer.created"} <= actions


def test_export_then_erasure_of_a_customer_of_every_source(world, tmp_path_factory):
    """One story, in its order: the customer is fed by every source, exported (and the
    export rebuilds them elsewhere), then erased."""
    check_every_source_reached_the_customer(world)
    check_export_holds_everything_and_rebuilds_the_same_features(world, tmp_path_factory)
    check_erasure_leaves_no_trace_and_replays_are_duplicates(world)


def test_an_erasure_racing_writes_leaves_nothing_behind(world):
    """Writers keep sending a customer's events while they are erased: whatever landed before
    the erasure is gone with it, whatever came after is a duplicate."""
    server = world["server"]
    racer = "racer-5b1e"
    stop = threading.Event()
    answers: list[dict] = []

    def write() -> None:
        with server.client(world["write_key"]) as writer:
            n = 0
            while not stop.is_set():
                event = {
                    "event_id": f"race-{n}",
                    "customer_id": racer,
                    "type": "order_completed",
                    "occurred_at": at(1),
                    "order_id": f"race-o{n}",
                    "amount": "5",
                }
                answers.append(writer.post("/v1/events", json={"events": [event]}).json())
                n += 1

    writers = [threading.Thread(target=write) for _ in range(3)]
    for thread in writers:
        thread.start()
    wait_until(lambda: len(answers) > 20, 30, "writes to race with")
    with server.client(world["privacy_key"]) as dpo:
        erasure = dpo.delete(f"/v1/customers/{racer}")
    after = len(answers)
    wait_until(lambda: len(answers) > after + 20, 30, "writes after the erasure")
    stop.set()
    for thread in writers:
        thread.join()
    assert erasure.status_code == 200 and erasure.json()["deleted"]["events"] > 0
    assert [answer for answer in answers if answer.get("rejected") != []] == []
    assert answers[-1] == {"accepted": 0, "duplicates": 1, "rejected": []}
    for table in ("events", "orders", "customer_daily", "customers", "score_outbox"):
        assert server.sql(f"SELECT count(*) FROM {table} WHERE customer_id = $1", racer)[0][0] == 0
    time.sleep(1.5)  # the scoring loop's next rounds find nobody to score
    assert (
        server.sql("SELECT count(*) FROM customer_scores WHERE customer_id = $1", racer)[0][0] == 0
    )


def test_the_command_line_exports_and_erases(world, tmp_path):
    server = world["server"]
    with server.client(world["write_key"]) as writer:
        events = api_events("cli-customer", "cli")
        assert writer.post("/v1/events", json={"events": events}).json()["accepted"] == 6
    out = tmp_path / "export.json"
    server.scorer("customers", "export", "cli-customer", "--out", str(out))
    document = json.loads(out.read_text())
    assert sorted(e["event_id"] for e in document["events"]) == sorted(
        e["event_id"] for e in events
    )
    with server.client(world["privacy_key"]) as dpo:
        api = dpo.get("/v1/customers/cli-customer/export").json()
    for name in ("profile", "consent_history", "events", "offer_decisions"):
        assert document[name] == api[name], name
    refused = server.scorer("customers", "erase", "cli-customer", check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "--yes" in refused.stderr and "Traceback" not in refused.stderr
    unknown = server.scorer("customers", "export", "nobody-here", check=False)
    assert unknown.returncode == 2 and "nothing is held" in unknown.stderr
    erased = json.loads(server.scorer("customers", "erase", "cli-customer", "--yes").stdout)
    assert erased["deleted"]["events"] == 6 and erased["previously_erased"] is False
    actors = server.sql(
        "SELECT actor FROM audit_log WHERE action = 'customer.erased' AND subject = $1",
        erased["erasure_id"],
    )
    assert [row["actor"] for row in actors][0].startswith("cli")
