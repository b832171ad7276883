"""The sources' pure mappings, table by table: Segment messages, Shopify and Stripe
payloads, NATS message bodies, to the events `POST /v1/events` takes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from service.sources.nats.decoding import decode
from service.sources.segment.mapping import consent_in, event_time, translate
from service.sources.shopify import mapping as shopify
from service.sources.stripe import mapping as stripe
from service.sources.unusable import Unusable

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def track(name: str, **properties) -> dict:
    return {
        "type": "track",
        "messageId": "m",
        "userId": "u",
        "event": name,
        "timestamp": "2026-11-30T10:00:00+00:00",
        "properties": properties,
    }


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("Product Viewed", "product_viewed"),
        ("product_viewed", "product_viewed"),
        ("Product Added", "cart_updated"),
        ("Product Removed", "cart_updated"),
        ("Checkout Started", "checkout_started"),
        ("Email Opened", "email_opened"),
        ("Email Link Clicked", "email_clicked"),
        ("Email Clicked", "email_clicked"),
        ("Wishlist Shared", "custom"),
    ],
)
def test_segment_track_names(name, ours):
    (event,) = translate(track(name, sku="s"), NOW).events
    assert event["type"] == ours and event["properties"]["sku"] == "s"


@pytest.mark.parametrize(
    ("properties", "amount"),
    [
        ({"revenue": 10, "subtotal": 11, "total": 12, "value": 13}, 10),
        ({"subtotal": 11, "total": 12}, 11),
        ({"total": 12, "value": 13}, 12),
        ({"value": 13}, 13),
        ({"products": [{"price": "2.50", "quantity": 2}, {"price": 1}]}, "6.00"),
    ],
)
def test_segment_order_amount_rule(properties, amount):
    (event,) = translate(track("Order Completed", order_id="o", **properties), NOW).events
    assert Decimal(str(event["amount"])) == Decimal(str(amount)) and event["order_id"] == "o"


@pytest.mark.parametrize(
    ("traits", "stated"),
    [
        ({"consent": {"email": True, "sms": False}}, {"email": True, "sms": False}),
        ({"email_opt_in": False, "push_opt_in": True}, {"email": False, "push": True}),
        ({"email": "x@y.z", "unsubscribed": True}, {}),
    ],
)
def test_segment_consent_traits(traits, stated):
    assert consent_in(traits) == stated


@pytest.mark.parametrize(
    ("timestamp", "sent_at", "expected"),
    [
        ("2026-11-30T10:00:00+00:00", None, "2026-11-30T10:00:00+00:00"),
        ("2026-12-01T11:59:00+00:00", "2026-12-01T12:00:00+00:00", "2026-12-01T11:59:00+00:00"),
        # The sender's clock runs 3 hours ahead: what it says is a minute before sending.
        ("2026-12-01T14:59:00+00:00", "2026-12-01T15:00:00+00:00", "2026-12-01T11:59:00+00:00"),
        ("2026-12-01T08:59:00Z", "2026-12-01T09:00:00Z", "2026-12-01T11:59:00+00:00"),
    ],
)
def test_segment_clock_skew(timestamp, sent_at, expected):
    assert event_time({"timestamp": timestamp}, NOW, sent_at).isoformat() == expected


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "track", "userId": "u", "event": "x"}, "messageId"),
        ({"type": "track", "messageId": "m", "event": "x"}, "userId or anonymousId"),
        ({"type": "fly", "messageId": "m", "userId": "u"}, "type"),
        (track("Order Completed"), "order_id"),
        (track("Order Completed", order_id="o"), "revenue"),
        ({**track("x"), "timestamp": "2026-11-30T10:00:00"}, "timestamp"),
        ({"type": "alias", "messageId": "m", "userId": "u"}, "previousId"),
    ],
)
def test_segment_unusable_messages_name_the_field(message, field):
    with pytest.raises(Unusable, match=field):
        translate(message, NOW)


SHOP_ORDER = {
    "id": 5,
    "customer": {"id": 9},
    "processed_at": "2026-11-20T10:00:00-05:00",
    "subtotal_price": "100.00",
    "total_price": "112.00",
    "currency": "USD",
}


def test_shopify_order_refund_and_customer():
    event, order_id = shopify.order_event("shop:e1", SHOP_ORDER)
    assert (event["customer_id"], order_id, event["amount"], event["event_id"]) == (
        "9",
        "5",
        "100.00",
        "shopify:shop:e1",
    )
    refund = {
        "order_id": 5,
        "created_at": "2026-11-21T10:00:00Z",
        "refund_line_items": [{"subtotal": 30}, {"subtotal": "5.5"}],
        "transactions": [
            {"kind": "refund", "status": "success", "amount": "40", "currency": "USD"}
        ],
    }
    assert shopify.refund_event("shop:e2", refund, "9")["amount"] == "35.5"
    shipping_only = {**refund, "refund_line_items": []}
    assert shopify.refund_event("shop:e3", shipping_only, "9")["amount"] == "40"
    customer = {
        "id": 9,
        "updated_at": "2026-11-22T10:00:00Z",
        "email": "a@b.c",
        "email_marketing_consent": {"state": "unsubscribed"},
        "sms_marketing_consent": {"state": "pending"},
    }
    events = shopify.customer_events("shop:e4", customer)
    assert [e["type"] for e in events] == ["identify", "consent_updated"]
    assert (
        events[1]["properties"]["granted"] is False
        and events[1]["properties"]["channel"] == "email"
    )


@pytest.mark.parametrize(
    ("order", "field"),
    [
        ({**SHOP_ORDER, "customer": None}, "guest"),
        ({**SHOP_ORDER, "subtotal_price": "lots"}, "subtotal_price"),
        ({**SHOP_ORDER, "id": None}, "id"),
        ({**SHOP_ORDER, "customer": {"id": "a\x00b"}}, "id"),
    ],
)
def test_shopify_unusable_orders(order, field):
    with pytest.raises(Unusable, match=field):
        shopify.order_event("k", order)


@pytest.mark.parametrize(
    ("minor", "currency", "major"),
    [(5400, "USD", "54.00"), (5400, "JPY", "5400"), (5400, "KWD", "5.400"), (1, "EUR", "0.01")],
)
def test_stripe_minor_units(minor, currency, major):
    assert stripe.major_units(minor, currency, "amount") == major


def test_stripe_orders_and_refunds():
    created = int(NOW.timestamp())
    charge = {
        "id": "ch_1",
        "amount": 5400,
        "currency": "usd",
        "customer": "cus_1",
        "metadata": {"customer_id": "c-1"},
        "payment_intent": "pi_1",
        "created": created,
    }
    event = stripe.order_event({"id": "evt_1", "type": "charge.succeeded"}, charge, "c-1")
    assert (event["order_id"], event["amount"], event["currency"]) == ("pi_1", "54.00", "USD")
    assert stripe.customer_of(charge, "customer_id") == "c-1"
    assert stripe.customer_of({**charge, "metadata": {}}, "customer_id") == "cus_1"
    refunds = [
        {"id": "re_1", "amount": 100, "created": created},
        {"id": "re_2", "amount": 50, "created": created, "status": "failed"},
    ]
    assert [e["event_id"] for e in stripe.refund_events("pi_1", "c-1", refunds, "USD")] == [
        "stripe:re_1"
    ]
    cumulative = {**charge, "amount_refunded": 1500}
    refund = stripe.cumulative_refund_event(
        {"id": "evt_2", "created": created}, cumulative, "c-1", Decimal("10")
    )
    assert refund["amount"] == "5.00"
    assert (
        stripe.cumulative_refund_event(
            {"id": "evt_3", "created": created}, cumulative, "c-1", Decimal("15")
        )
        is None
    )
    with pytest.raises(Unusable, match="customer"):
        stripe.customer_of({"metadata": {}}, "customer_id")


@pytest.mark.parametrize(
    ("data", "events", "letters"),
    [
        (b'{"event_id": "e", "customer_id": "c"}', 1, 0),
        (b'{"events": [{"event_id": "a"}, {"event_id": "b"}]}', 2, 0),
        (b'{"events": []}', 0, 1),
        (b'{"event_id": ', 0, 1),
        (b"\xff\xfe", 0, 1),
        (b'{"a": 1, "a": 2}', 0, 1),
    ],
)
def test_nats_message_bodies(data, events, letters):
    mapped, dead = decode(data, "s:1")
    assert (len(mapped), len(dead)) == (events, letters)
    assert all(letter.source == "nats" and letter.external_id == "s:1" for letter in dead)
