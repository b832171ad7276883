"""The Segment-compatible API, driven by the real Segment and RudderStack server-side clients
against a live server: the features equal those of the equivalent `POST /v1/events` calls,
anonymous visitors join their customer once identified, and retries count nothing twice."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

NOW = datetime.now(UTC).replace(microsecond=0)
TIMESTAMP_FIELDS = ("first_seen_at", "first_order_at", "last_order_at")


def at(days_ago: int, hour: int = 12) -> datetime:
    return (NOW - timedelta(days=days_ago)).replace(hour=hour, minute=0, second=0)


def journey(user: str, visitor: str, tag: str) -> list[tuple[str, dict]]:
    """(client method, keyword arguments): a known customer's calls, then an anonymous
    visit (views, a page, an order) that an identify later ties to the customer."""
    calls = [
        (
            "identify",
            dict(
                user_id=user,
                traits={"email": f"{user}@x.test", "consent": {"email": True}},
                timestamp=at(30),
            ),
        ),
        ("page", dict(user_id=user, name="Home", timestamp=at(30))),
        (
            "track",
            dict(
                user_id=user,
                event="Product Viewed",
                properties={"product_id": "p1"},
                timestamp=at(29),
            ),
        ),
        (
            "track",
            dict(
                user_id=user,
                event="Product Added",
                properties={"product_id": "p1", "price": 40},
                timestamp=at(29),
            ),
        ),
        (
            "track",
            dict(
                user_id=user,
                event="Checkout Started",
                properties={"order_id": f"{tag}-o1"},
                timestamp=at(29),
            ),
        ),
        (
            "track",
            dict(
                user_id=user,
                event="Order Completed",
                properties={
                    "order_id": f"{tag}-o1",
                    "revenue": 40.5,
                    "total": 52.25,
                    "currency": "USD",
                },
                timestamp=at(29),
            ),
        ),
        (
            "track",
            dict(
                user_id=user,
                event="Order Refunded",
                properties={"order_id": f"{tag}-o1", "revenue": 10},
                timestamp=at(20),
            ),
        ),
        (
            "track",
            dict(
                user_id=user,
                event="Order Completed",
                properties={"order_id": f"{tag}-o2", "revenue": "99.99", "currency": "USD"},
                timestamp=at(10),
            ),
        ),
        (
            "track",
            dict(
                user_id=user, event="Email Opened", properties={"email_id": "e1"}, timestamp=at(9)
            ),
        ),
        (
            "track",
            dict(
                user_id=user,
                event="Email Link Clicked",
                properties={"email_id": "e1"},
                timestamp=at(9),
            ),
        ),
        (
            "track",
            dict(user_id=user, event="Wishlist Shared", properties={"items": 3}, timestamp=at(8)),
        ),
        (
            "track",
            dict(
                anonymous_id=visitor,
                event="Product Viewed",
                properties={"product_id": "p2"},
                timestamp=at(5),
            ),
        ),
        ("page", dict(anonymous_id=visitor, name="Sale", timestamp=at(5))),
        (
            "track",
            dict(
                anonymous_id=visitor,
                event="Order Completed",
                properties={"order_id": f"{tag}-o3", "revenue": 20},
                timestamp=at(4),
            ),
        ),
        (
            "identify",
            dict(user_id=user, anonymous_id=visitor, traits={"plan": "gold"}, timestamp=at(3)),
        ),
    ]
    # Fixed message ids: sending the journey again is what a client's retry sends.
    return [(method, {**kw, "message_id": f"{tag}-{n}"}) for n, (method, kw) in enumerate(calls)]


def equivalent_events(customer: str, tag: str) -> list[dict]:
    """What the same journey is as POST /v1/events calls, all with the customer's id."""

    def event(n, kind, days_ago, **fields):
        return {
            "event_id": f"{tag}-eq-{n}",
            "customer_id": customer,
            "type": kind,
            "occurred_at": at(days_ago).isoformat(),
            **fields,
        }

    return [
        event(1, "identify", 30, properties={"traits": {"email": "x"}}),
        event(2, "consent_updated", 30, properties={"channel": "email", "granted": True}),
        event(3, "session_started", 30),
        event(4, "product_viewed", 29),
        event(5, "cart_updated", 29),
        event(6, "checkout_started", 29),
        event(7, "order_completed", 29, order_id="o1", amount="40.5"),
        event(8, "order_refunded", 20, order_id="o1", amount="10"),
        event(9, "order_completed", 10, order_id="o2", amount="99.99"),
        event(10, "email_opened", 9),
        event(11, "email_clicked", 9),
        event(12, "custom", 8, properties={"name": "Wishlist Shared"}),
        event(13, "product_viewed", 5),
        event(14, "session_started", 5),
        event(15, "order_completed", 4, order_id="o3", amount="20"),
        event(16, "identify", 3, properties={"traits": {"plan": "gold"}}),
    ]


@pytest.fixture(scope="module")
def write_key(server) -> str:
    made = server.scorer("keys", "create", "--name", "segment", "--scopes", "events:write")
    return made.stdout.strip()


def features(client: httpx.Client, customer: str) -> dict:
    answer = client.get(f"/v1/customers/{customer}/features", params={"as_of": NOW.isoformat()})
    assert answer.status_code == 200, answer.text
    return answer.json()


def assert_same_features(ours: dict, theirs: dict) -> None:
    for name in TIMESTAMP_FIELDS:
        # The clients' timestamps are corrected for clock skew by the request's latency.
        gap = abs(datetime.fromisoformat(ours.pop(name)) - datetime.fromisoformat(theirs.pop(name)))
        assert gap < timedelta(seconds=30), (name, gap)
    for item in (ours, theirs):
        item.pop("customer_id")
    assert ours == theirs


def run_client(client, calls: list[tuple[str, dict]], errors: list) -> None:
    for method, arguments in calls:
        getattr(client, method)(**arguments)
    client.flush()
    assert errors == []


@pytest.mark.parametrize("library", ["segment", "rudderstack"])
def test_real_client_journey_equals_the_events_api(server, client, write_key, library):
    user, visitor, tag = f"{library}-user", f"{library}-visitor", library
    errors: list = []
    kind = SegmentClient if library == "segment" else RudderClient
    sdk = kind(
        write_key=write_key,
        host=server.url,
        on_error=lambda e, batch: errors.append(e),
        max_retries=2,
        upload_size=5,
    )
    run_client(sdk, journey(user, visitor, tag), errors)
    # The visitor's events were held, then joined the customer when identify linked them.
    assert (
        server.sql("SELECT count(*) FROM anonymous_events WHERE anonymous_id = $1", visitor)[0][0]
        == 0
    )
    reference = f"{library}-reference"
    posted = client.post("/v1/events", json={"events": equivalent_events(reference, tag)})
    assert posted.json()["accepted"] == 16, posted.text
    ours = features(client, user)
    assert ours["orders_total"] == 3 and ours["revenue_total"] == 150.49
    assert ours["consent"]["email"] is True
    assert_same_features(ours, features(client, reference))
    # The client's retry (the same messages again) counts nothing twice.
    before = features(client, user)
    run_client(sdk, journey(user, visitor, tag), errors)
    assert features(client, user) == before
    assert server.sql("SELECT count(*) FROM dead_letters WHERE customer_id = $1", user)[0][0] == 0


def post(
    server,
    path: str,
    body: object,
    key: str | None,
    *,
    basic: bool = True,
    raw: bytes | None = None,
    headers: dict | None = None,
):
    sent = {"Content-Type": "application/json", **(headers or {})}
    if key and basic:
        sent["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    data = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(server.url + path, content=data, headers=sent, timeout=30)


def message(n: str, **fields) -> dict:
    return {"messageId": n, "timestamp": at(2).isoformat(), **fields}


def test_answers_in_the_clients_shape(server, write_key):
    ok = post(
        server, "/v1/track", message("shape-1", userId="shape", event="Product Viewed"), write_key
    )
    assert ok.status_code == 200 and ok.json() == {"success": True}
    bad_json = post(server, "/v1/batch", None, write_key, raw=b'{"batch": [')
    assert bad_json.status_code == 400 and {"code", "message"} <= set(bad_json.json())
    no_key = post(server, "/v1/batch", {"batch": []}, None)
    assert no_key.status_code == 401 and no_key.json()["code"] == "unauthorized"
    reader = server.scorer(
        "keys", "create", "--name", "reader", "--scopes", "scores:read"
    ).stdout.strip()
    assert post(server, "/v1/batch", {"batch": []}, reader).status_code == 403
    in_body = post(
        server,
        "/v1/batch",
        {"writeKey": write_key, "batch": [message("shape-2", userId="shape", type="page")]},
        None,
    )
    assert in_body.status_code == 200, in_body.text
    not_a_batch = post(server, "/v1/batch", {"batch": {"type": "track"}}, write_key)
    assert not_a_batch.status_code == 400 and "batch" in not_a_batch.json()["message"]
    wrong_route = post(
        server,
        "/v1/identify",
        message("shape-3", userId="shape", type="track", event="x"),
        write_key,
    )
    assert wrong_route.status_code == 200  # the envelope is fine; the message is dead-lettered
    letter = server.sql("SELECT reason FROM dead_letters WHERE external_id = 'shape-3'")
    assert "type" in letter[0]["reason"]
    gzipped = gzip.compress(
        json.dumps({"batch": [message("shape-4", userId="shape", type="page")]}).encode()
    )
    assert (
        post(
            server, "/v1/batch", None, write_key, raw=gzipped, headers={"Content-Encoding": "gzip"}
        ).status_code
        == 200
    )
    assert features(server.client(server.admin_key), "shape")["sessions_30d"] == 2


def test_unusable_messages_are_dead_lettered_with_their_reason(server, client, write_key):
    batch = [
        message(
            "dl-1",
            type="track",
            userId="dl",
            event="Order Completed",
            properties={"order_id": "o", "revenue": 5, "currency": "EUR"},
        ),
        message(
            "dl-2",
            type="track",
            userId="dl",
            event="Order Completed",
            properties={"order_id": "o2", "revenue": "lots"},
        ),
        message("dl-3", type="track", event="Product Viewed"),
        message(
            "dl-4",
            type="track",
            userId="dl",
            event="Order Completed",
            properties={"order_id": "o3"},
        ),
        message("dl-5", type="track", userId="dl", event="Product Viewed"),
    ]
    assert post(server, "/v1/batch", {"batch": batch}, write_key).json() == {"success": True}
    letters = client.get("/v1/dead-letters?source=segment&limit=1000").json()["data"]
    reasons = {item["external_id"]: item["reason"] for item in letters}
    assert "currency" in reasons["dl-1"] and "amount" in reasons["dl-2"]
    assert "userId or anonymousId" in reasons["dl-3"] and "revenue" in reasons["dl-4"]
    assert "dl-5" not in reasons and features(client, "dl")["product_views_30d"] == 1
    metrics = client.get("/metrics").text
    assert 'scorer_dead_letters{source="segment"}' in metrics


def test_clock_skew_is_corrected_with_sent_at(server, client, write_key):
    ahead = timedelta(hours=3)  # the sender's clock runs three hours fast
    sent = datetime.now(UTC) + ahead
    happened = sent - timedelta(minutes=1)
    batch = {
        "sentAt": sent.isoformat(),
        "batch": [
            message(
                "skew-1",
                type="track",
                userId="skew",
                event="Order Completed",
                timestamp=happened.isoformat(),
                properties={"order_id": "o", "revenue": 1},
            )
        ],
    }
    assert post(server, "/v1/batch", batch, write_key).status_code == 200
    stored = server.sql("SELECT occurred_at FROM events WHERE event_id = 'skew-1'")
    assert stored, server.sql("SELECT reason FROM dead_letters WHERE external_id = 'skew-1'")
    expected = datetime.now(UTC) - timedelta(minutes=1)
    assert abs(stored[0]["occurred_at"] - expected) < timedelta(seconds=30)


def test_identity_links_follow_first_link_wins(server, client, write_key):
    calls = [
        message(
            "id-1",
            type="track",
            anonymousId="anon-a",
            event="Order Completed",
            properties={"order_id": "a1", "revenue": 30},
        ),
        message("id-2", type="alias", previousId="anon-a", userId="cust-a"),
        message("id-3", type="identify", anonymousId="anon-a", userId="cust-b", traits={}),
        message("id-4", type="track", anonymousId="anon-a", event="Product Viewed"),
    ]
    assert post(server, "/v1/batch", {"batch": calls[:1]}, write_key).status_code == 200
    assert (
        server.sql("SELECT count(*) FROM anonymous_events WHERE anonymous_id = 'anon-a'")[0][0] == 1
    )
    assert client.get("/v1/customers/cust-a/features").status_code == 404
    assert post(server, "/v1/batch", {"batch": calls[1:]}, write_key).status_code == 200
    a = features(client, "cust-a")
    assert (a["orders_total"], a["revenue_total"], a["product_views_30d"]) == (1, 30.0, 1)
    assert client.get("/v1/customers/cust-b/features").status_code == 200  # its identify stored
    letter = server.sql("SELECT reason FROM dead_letters WHERE external_id = 'id-3:link'")
    assert "already linked" in letter[0]["reason"]
    # Re-sending the anonymous order now that the visitor is known: a duplicate.
    assert post(server, "/v1/batch", {"batch": calls[:1]}, write_key).status_code == 200
    assert features(client, "cust-a")["orders_total"] == 1
    # A held message re-sent with other content is a conflict, not a second event.
    held = [message("id-5", type="page", anonymousId="anon-z", name="x")]
    assert post(server, "/v1/batch", {"batch": held}, write_key).status_code == 200
    held[0]["name"] = "y"
    assert post(server, "/v1/batch", {"batch": held}, write_key).status_code == 200
    assert (
        "conflict"
        in server.sql("SELECT reason FROM dead_letters WHERE external_id = 'id-5'")[0]["reason"]
    )


def test_hostile_messages_are_dead_letters_never_errors(server, client, write_key):
    hostile = [
        message("h-1", type="track", anonymousId="nul\x00id", event="Product Viewed"),
        message("h-2", type="track", userId=" padded ", event="Product Viewed"),
        message(
            "h-3",
            type="track",
            userId="h",
            event="Order Completed",
            sentAt="9999-12-31T00:00:00+00:00",
            timestamp="0001-01-01T00:00:00+00:00",
            properties={"order_id": "o"},
        ),
        message(
            "h-4",
            type="track",
            userId="h",
            event="Order Refunded",
            properties={"order_id": "o", "products": [{"price": "1e999999", "quantity": 9}]},
        ),
        message("h-5", type="identify", userId="h", traits={"consent": {"fax": True}}),
        message("h-6", type="alias", userId="h"),
        message("h-7", type="track", userId=123, event="Product Viewed"),
        {"type": "track", "userId": "h", "event": "Product Viewed"},
    ]
    answer = post(server, "/v1/batch", {"batch": hostile}, write_key)
    assert answer.status_code == 200, answer.text
    letters = {
        row["external_id"]: row["reason"]
        for row in server.sql(
            "SELECT external_id, reason FROM dead_letters WHERE source = 'segment'"
        )
    }
    assert "anonymousId" in letters["h-1"] and "userId" in letters["h-2"]
    assert "sentAt" in letters["h-3"] and "products" in letters["h-4"]
    assert "consent" in letters["h-5"] and "previousId" in letters["h-6"]
    assert features(client, "123")["product_views_30d"] == 1  # numeric ids are read as text


def test_the_write_key_is_never_kept(server, write_key):
    held = {**message("wk-1", anonymousId="wk-visitor", name="x"), "writeKey": write_key}
    assert post(server, "/v1/page", held, None).status_code == 200
    broken = {**message("wk-2", userId="wk", event="Order Completed"), "writeKey": write_key}
    assert post(server, "/v1/track", broken, None).status_code == 200
    kept = server.sql(
        "SELECT message::text AS m FROM anonymous_events WHERE event_id = 'wk-1' "
        "UNION ALL SELECT payload::text FROM dead_letters WHERE external_id = 'wk-2'"
    )
    assert len(kept) == 2 and not any(write_key in row["m"] for row in kept)
