"""Malformed input is refused with a clear message naming the problem, never a 500.

Per-event problems: the bad event goes in a batch with a valid one; the response is
200, the bad event alone is rejected (with an error naming the field), nothing of it
is stored, and the valid event of the same batch is stored (read back through the
features). Request-level problems: the status (400/413/415/422) and a `detail` that
names the problem.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

VALID_AT = "2024-05-01T12:00:00Z"
READ_AS_OF = "2024-05-02T00:00:00Z"
RAW = "__raw__:"  # a string value "__raw__:<token>" is sent as the bare JSON token


def encode(document: Any) -> bytes:
    """JSON with escapes for everything non-ASCII (so lone surrogates survive) and raw
    tokens (numbers Python cannot hold, NaN, ...) spliced in."""
    text = json.dumps(document, ensure_ascii=True, allow_nan=True)
    while f'"{RAW}' in text:
        start = text.index(f'"{RAW}')
        end = text.index('"', start + 1)
        text = text[:start] + text[start + len(RAW) + 1 : end] + text[end + 1 :]
    return text.encode()


def session(customer_id: str, event_id: str, **extra) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "type": "session_started",
        "occurred_at": VALID_AT,
        **extra,
    }


def order(customer_id: str, event_id: str, **extra) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "type": "order_completed",
        "occurred_at": VALID_AT,
        "order_id": "o-1",
        "amount": "19.99",
        **extra,
    }


def typed(kind: str, properties: Any) -> Callable[[str, str], dict]:
    return lambda c, e: {**session(c, e), "type": kind, "properties": properties}


def without(field: str, make=order) -> Callable[[str, str], dict]:
    def build(c: str, e: str) -> dict:
        event = make(c, e)
        del event[field]
        return event

    return build


def future() -> str:
    return (datetime.now(UTC) + timedelta(minutes=10)).isoformat()


# (id, builder(customer_id, event_id) -> bad event, field the error must name)
BAD_EVENTS: list[tuple[str, Callable[[str, str], Any], str]] = [
    # wrong types
    ("customer_id-number", lambda c, e: session(12345, e), "customer_id"),
    ("customer_id-null", lambda c, e: session(None, e), "customer_id"),
    ("event_id-number", lambda c, e: session(c, 42), "event_id"),
    ("type-number", lambda c, e: {**session(c, e), "type": 7}, "type"),
    ("amount-bool", lambda c, e: order(c, e, amount=True), "amount"),
    ("amount-object", lambda c, e: order(c, e, amount={"value": 1}), "amount"),
    ("amount-list", lambda c, e: order(c, e, amount=[1]), "amount"),
    ("amount-abc", lambda c, e: order(c, e, amount="abc"), "amount"),
    ("amount-empty-string", lambda c, e: order(c, e, amount=""), "amount"),
    ("amount-hex", lambda c, e: order(c, e, amount="0x10"), "amount"),
    ("occurred_at-bool", lambda c, e: session(c, e, occurred_at=True), "occurred_at"),
    # missing fields
    ("missing-event_id", without("event_id", session), "event_id"),
    ("missing-customer_id", without("customer_id", session), "customer_id"),
    ("missing-type", without("type", session), "type"),
    ("missing-occurred_at", without("occurred_at", session), "occurred_at"),
    ("order-missing-order_id", without("order_id"), "order_id"),
    ("order-missing-amount", without("amount"), "amount"),
    (
        "refund-missing-order_id",
        lambda c, e: without("order_id")(c, e) | {"type": "order_refunded"},
        "order_id",
    ),
    (
        "refund-missing-amount",
        lambda c, e: without("amount")(c, e) | {"type": "order_refunded"},
        "amount",
    ),
    # timestamps
    (
        "naive-timestamp",
        lambda c, e: session(c, e, occurred_at="2024-05-01T12:00:00"),
        "occurred_at",
    ),
    ("date-only", lambda c, e: session(c, e, occurred_at="2024-05-01"), "occurred_at"),
    ("future-timestamp", lambda c, e: session(c, e, occurred_at=future()), "occurred_at"),
    (
        "far-future-timestamp",
        lambda c, e: session(c, e, occurred_at="9999-12-31T23:59:59-23:59"),
        "occurred_at",
    ),
    ("before-1970", lambda c, e: session(c, e, occurred_at="1969-12-31T23:59:59Z"), "occurred_at"),
    ("year-1", lambda c, e: session(c, e, occurred_at="0001-01-01T00:00:00+01:00"), "occurred_at"),
    (
        "impossible-date",
        lambda c, e: session(c, e, occurred_at="2024-02-30T00:00:00Z"),
        "occurred_at",
    ),
    (
        "offset-out-of-range",
        lambda c, e: session(c, e, occurred_at="2024-05-01T00:00:00+25:00"),
        "occurred_at",
    ),
    ("timestamp-garbage", lambda c, e: session(c, e, occurred_at="yesterday"), "occurred_at"),
    # amounts
    ("negative-amount", lambda c, e: order(c, e, amount="-0.01"), "amount"),
    ("negative-amount-number", lambda c, e: order(c, e, amount=-5), "amount"),
    ("amount-nan-string", lambda c, e: order(c, e, amount="NaN"), "amount"),
    ("amount-infinity-string", lambda c, e: order(c, e, amount="Infinity"), "amount"),
    ("amount-overflows-double", lambda c, e: order(c, e, amount=RAW + "1e400"), "amount"),
    ("amount-too-large", lambda c, e: order(c, e, amount="1e13"), "amount"),
    ("amount-5-decimals", lambda c, e: order(c, e, amount="1.23456"), "amount"),
    ("amount-5-decimals-number", lambda c, e: order(c, e, amount=1.23456), "amount"),
    ("refund-negative", lambda c, e: order(c, e, type="order_refunded", amount="-1"), "amount"),
    # currency
    ("wrong-currency", lambda c, e: order(c, e, currency="EUR"), "currency"),
    ("lowercase-currency", lambda c, e: order(c, e, currency="usd"), "currency"),
    ("currency-not-iso", lambda c, e: order(c, e, currency="DOLLARS"), "currency"),
    ("currency-number", lambda c, e: order(c, e, currency=840), "currency"),
    # order fields on other events
    ("currency-on-session", lambda c, e: session(c, e, currency="USD"), "currency"),
    ("amount-on-session", lambda c, e: session(c, e, amount="1"), "amount"),
    ("order_id-on-session", lambda c, e: session(c, e, order_id="o-1"), "order_id"),
    # type and shape
    ("unknown-type", lambda c, e: {**session(c, e), "type": "order_placed"}, "type"),
    ("extra-unknown-field", lambda c, e: session(c, e, coupon="X"), "coupon"),
    ("properties-list", lambda c, e: session(c, e, properties=[1, 2]), "properties"),
    ("properties-string", lambda c, e: session(c, e, properties="{}"), "properties"),
    ("properties-null", lambda c, e: session(c, e, properties=None), "properties"),
    (
        "properties-too-many-keys",
        lambda c, e: session(c, e, properties={f"k{i}": i for i in range(101)}),
        "properties",
    ),
    ("event-string", lambda c, e: "session_started", "event"),
    ("event-null", lambda c, e: None, "event"),
    ("event-list", lambda c, e: [session(c, e)], "event"),
    ("event-number", lambda c, e: 1, "event"),
    # identifiers: control characters, length, whitespace
    ("customer_id-nul", lambda c, e: session(c + "\u0000", e), "customer_id"),
    ("customer_id-newline", lambda c, e: session(c + "\n", e), "customer_id"),
    ("customer_id-del", lambda c, e: session(c + "\x7f", e), "customer_id"),
    ("customer_id-c1-control", lambda c, e: session(c + "\x85x", e), "customer_id"),
    ("customer_id-tab-inside", lambda c, e: session("a\tb" + c, e), "customer_id"),
    ("customer_id-surrogate", lambda c, e: session(c + "\ud800", e), "customer_id"),
    ("customer_id-empty", lambda c, e: session("", e), "customer_id"),
    ("customer_id-leading-space", lambda c, e: session(" " + c, e), "customer_id"),
    ("customer_id-129-chars", lambda c, e: session(c + "x" * (129 - len(c)), e), "customer_id"),
    ("customer_id-huge", lambda c, e: session("x" * 200_000, e), "customer_id"),
    ("event_id-nul", lambda c, e: session(c, e + "\u0000"), "event_id"),
    ("event_id-newline", lambda c, e: session(c, "\n" + e), "event_id"),
    ("event_id-del", lambda c, e: session(c, e + "\x7f"), "event_id"),
    ("event_id-129-chars", lambda c, e: session(c, e + "x" * (129 - len(e))), "event_id"),
    ("event_id-trailing-space", lambda c, e: session(c, e + " "), "event_id"),
    ("event_id-surrogate", lambda c, e: session(c, e + "\udc00"), "event_id"),
    ("order_id-nul", lambda c, e: order(c, e, order_id="o\u0000"), "order_id"),
    ("order_id-newline", lambda c, e: order(c, e, order_id="o\n1"), "order_id"),
    ("order_id-del", lambda c, e: order(c, e, order_id="\x7f"), "order_id"),
    ("order_id-129-chars", lambda c, e: order(c, e, order_id="o" * 129), "order_id"),
    ("order_id-empty", lambda c, e: order(c, e, order_id=""), "order_id"),
    ("order_id-number", lambda c, e: order(c, e, order_id=17), "order_id"),
    # per-type properties
    (
        "consent-invalid-channel",
        typed("consent_updated", {"channel": "fax", "granted": True}),
        "channel",
    ),
    ("consent-missing-channel", typed("consent_updated", {"granted": True}), "channel"),
    ("consent-missing-granted", typed("consent_updated", {"channel": "email"}), "granted"),
    (
        "consent-granted-string",
        typed("consent_updated", {"channel": "sms", "granted": "yes"}),
        "granted",
    ),
    ("consent-granted-int", typed("consent_updated", {"channel": "sms", "granted": 1}), "granted"),
    ("csat-6", typed("survey_response", {"csat": 6}), "csat"),
    ("csat-0", typed("survey_response", {"csat": 0}), "csat"),
    ("csat-string", typed("survey_response", {"csat": "5"}), "csat"),
    ("csat-fraction", typed("survey_response", {"csat": 4.5}), "csat"),
    ("csat-bool", typed("survey_response", {"csat": True}), "csat"),
    ("nps-11", typed("survey_response", {"nps": 11}), "nps"),
    ("nps-negative", typed("survey_response", {"nps": -1}), "nps"),
    ("survey-without-answers", typed("survey_response", {"comment": "great"}), "properties"),
    ("identify-without-traits", typed("identify", {"email": "a@b.c"}), "traits"),
    ("identify-traits-not-object", typed("identify", {"traits": ["gold"]}), "traits"),
    ("offer_accepted-without-decision_id", typed("offer_accepted", {}), "decision_id"),
    (
        "offer_accepted-decision_id-number",
        typed("offer_accepted", {"decision_id": 5}),
        "decision_id",
    ),
    # properties content that PostgreSQL's JSONB cannot store
    (
        "properties-nul-in-value",
        lambda c, e: session(c, e, properties={"note": "a\u0000b"}),
        "properties",
    ),
    ("properties-nul-in-key", lambda c, e: session(c, e, properties={"a\u0000": 1}), "properties"),
    ("properties-nul-nested", typed("identify", {"traits": {"name": ["x\u0000"]}}), "properties"),
    (
        "properties-surrogate",
        lambda c, e: session(c, e, properties={"note": "\ud83d"}),
        "properties",
    ),
    (
        "properties-number-overflows-double",
        lambda c, e: session(c, e, properties={"score": RAW + "1e400"}),
        "properties?",  # "?": rejected naming properties, or stored
    ),
    (
        "traits-number-overflows-double",
        typed("identify", {"traits": {"ltv": RAW + "-1e999"}}),
        "properties?",
    ),
]


def post_raw(client, content: bytes, content_type: str = "application/json"):
    return client.post("/v1/events", content=content, headers={"Content-Type": content_type})


@pytest.mark.parametrize(("build", "field"), [pytest.param(b, f, id=i) for i, b, f in BAD_EVENTS])
@pytest.mark.parametrize("bad_first", [True, False], ids=["bad-first", "bad-last"])
def test_bad_event_is_rejected_alone(client, build, field, bad_first):
    prefix = "bad" + uuid.uuid4().hex[:10]
    bad_customer, good_customer = f"{prefix}-x", f"{prefix}-ok"
    bad = build(bad_customer, f"{prefix}-bad")
    good = session(good_customer, f"{prefix}-good")
    events = [bad, good] if bad_first else [good, bad]
    response = post_raw(client, encode({"events": events}))
    assert response.status_code == 200, response.text
    body = response.json()
    if field == "properties?" and not body["rejected"]:
        # JSON allows any magnitude and JSONB stores numerics exactly: storing it is fine too
        assert body["accepted"] == 2, body
        return
    field = field.rstrip("?")
    assert body["accepted"] == 1, body
    assert body["duplicates"] == 0, body
    assert len(body["rejected"]) == 1, body
    rejection = body["rejected"][0]
    assert rejection["index"] == (0 if bad_first else 1), body
    assert field in rejection["error"], f"error should name {field!r}: {rejection['error']!r}"
    if isinstance(bad, dict) and bad.get("event_id") == f"{prefix}-bad":
        assert rejection["event_id"] == f"{prefix}-bad", body

    stored = client.get(f"/v1/customers/{good_customer}/features", params={"as_of": READ_AS_OF})
    assert stored.status_code == 200, stored.text
    assert stored.json()["sessions_30d"] == 1
    if isinstance(bad, dict) and bad.get("customer_id") == bad_customer:
        nothing = client.get(f"/v1/customers/{bad_customer}/features", params={"as_of": READ_AS_OF})
        assert nothing.status_code == 404, f"rejected event was stored: {nothing.text}"


def test_boundary_values_are_accepted(client):
    """The edges of the rules are valid: 128-char ids, 4 decimals, 0, 1e12, nps-only
    surveys, currency stated explicitly, non-ASCII printable ids."""
    prefix = "ok" + uuid.uuid4().hex[:10]
    customer = prefix + "-" + "é" * (128 - len(prefix) - 1)
    events = [
        session(customer, prefix + "e" * (128 - len(prefix))),
        order(customer, f"{prefix}-o1", order_id="o" * 128, amount="0.0001", currency="USD"),
        order(customer, f"{prefix}-o2", order_id="o2", amount=0),
        order(customer, f"{prefix}-o3", order_id="o3", amount="1e12"),
        order(customer, f"{prefix}-o4", order_id="o4", amount=12.3456),
        typed("survey_response", {"nps": 0})(customer, f"{prefix}-s1"),
        typed("survey_response", {"csat": 5, "nps": 10})(customer, f"{prefix}-s2"),
        typed("consent_updated", {"channel": "profiling", "granted": False})(
            customer, f"{prefix}-c1"
        ),
        typed("identify", {"traits": {}})(customer, f"{prefix}-i1"),
        session(customer, f"{prefix}-t1", occurred_at="1970-01-01T00:00:00Z"),
        session(customer, f"{prefix}-t2", occurred_at=datetime.now(UTC).isoformat()),
    ]
    response = post_raw(client, encode({"events": events}))
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": len(events), "duplicates": 0, "rejected": []}
    features = client.get(f"/v1/customers/{customer}/features", params={"as_of": READ_AS_OF})
    assert features.status_code == 200, features.text
    body = features.json()
    assert body["orders_total"] == 4
    assert body["revenue_total"] == pytest.approx(1e12 + 12.35)
    assert body["last_csat"] == 5
    assert body["consent"]["profiling"] is False


def many_events(n: int) -> bytes:
    return encode({"events": [session("c", f"e{i}") for i in range(n)]})


def big_body() -> bytes:
    padding = "x" * (1024 * 1024)
    return encode({"events": [session("c", "e", properties={"pad": padding})]})


# (id, body bytes, content type, expected status, words the detail must contain)
BAD_REQUESTS: list[tuple[str, bytes, str, int, tuple[str, ...]]] = [
    ("truncated-json", b'{"events": [', "application/json", 400, ("JSON",)),
    ("text-plain-garbage", b"hello, this is not JSON", "text/plain", 415, ("JSON",)),
    ("form-encoded", b"events=1&b=2", "application/x-www-form-urlencoded", 415, ("JSON",)),
    ("empty-body", b"", "application/json", 400, ("JSON",)),
    ("invalid-utf8", b'{"events": ["\xff\xfe"]}', "application/json", 400, ("JSON",)),
    ("trailing-garbage", b'{"events": []} x', "application/json", 400, ("JSON",)),
    ("nan-literal", b'{"events": [{"amount": NaN}]}', "application/json", 400, ("NaN",)),
    (
        "infinity-literal",
        b'{"events": [{"amount": Infinity}]}',
        "application/json",
        400,
        ("Infinity",),
    ),
    (
        "deeply-nested",
        b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
        "application/json",
        400,
        ("JSON",),
    ),
    ("body-list", b"[]", "application/json", 422, ("events",)),
    ("body-list-of-events", encode([session("c", "e")]), "application/json", 422, ("events",)),
    ("body-string", b'"events"', "application/json", 422, ("events",)),
    ("body-null", b"null", "application/json", 422, ("events",)),
    ("body-number", b"42", "application/json", 422, ("events",)),
    ("events-missing", b"{}", "application/json", 422, ("events",)),
    ("events-misspelled", b'{"event": []}', "application/json", 422, ("events",)),
    ("events-object", b'{"events": {"a": 1}}', "application/json", 422, ("events", "list")),
    ("events-string", b'{"events": "[]"}', "application/json", 422, ("events", "list")),
    ("events-null", b'{"events": null}', "application/json", 422, ("events", "list")),
    ("events-empty", b'{"events": []}', "application/json", 422, ("events",)),
    ("events-1001", many_events(1001), "application/json", 422, ("events", "1000")),
    (
        "unknown-top-level-field",
        b'{"events": [{}], "source": "crm"}',
        "application/json",
        422,
        ("source",),
    ),
    ("body-over-1MiB", big_body(), "application/json", 413, ("bytes",)),
]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "words"),
    [pytest.param(b, t, s, w, id=i) for i, b, t, s, w in BAD_REQUESTS],
)
def test_bad_request(client, content, content_type, status, words):
    response = post_raw(client, content, content_type)
    assert response.status_code == status, response.text[:500]
    detail = response.json()["detail"]
    assert isinstance(detail, str), detail
    for word in words:
        assert word.lower() in detail.lower(), f"detail should mention {word!r}: {detail!r}"


def test_body_over_1MiB_without_content_length_is_413(client):
    """Chunked upload: the limit is enforced on the stream, not only on the header."""
    body = big_body()

    def chunks():
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = client.post(
        "/v1/events", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text[:500]
    assert "bytes" in response.json()["detail"]


def test_exactly_1000_events_are_accepted(client):
    prefix = "max" + uuid.uuid4().hex[:10]
    events = [session(f"{prefix}-c{i % 7}", f"{prefix}-e{i}") for i in range(1000)]
    response = post_raw(client, encode({"events": events}))
    assert response.status_code == 200, response.text[:500]
    assert response.json()["accepted"] == 1000


@pytest.mark.parametrize("kind", ["orders-one-day", "refunds-one-order"])
def test_many_maximal_amounts_are_not_a_500(client, kind):
    """Every amount is valid (<= 1e12), but 100 of them on one customer-day (or as refunds
    of one order) sum to 1e14. Storing them or rejecting the overflowing ones (naming
    `amount`) are both fine; a 500 that also loses the batch's other events is not."""
    prefix = "lim" + uuid.uuid4().hex[:10]
    customer, good_customer = f"{prefix}-x", f"{prefix}-ok"
    if kind == "orders-one-day":
        events = [
            order(customer, f"{prefix}-o{i}", order_id=f"o{i}", amount="1e12") for i in range(100)
        ]
    else:
        events = [order(customer, f"{prefix}-o", amount="1e12")] + [
            order(customer, f"{prefix}-r{i}", type="order_refunded", amount="1e12")
            for i in range(100)
        ]
    events.append(session(good_customer, f"{prefix}-good"))
    response = post_raw(client, encode({"events": events}))
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert all("amount" in r["error"] for r in body["rejected"]), body
    assert body["accepted"] + len(body["rejected"]) == len(events), body
    stored = client.get(f"/v1/customers/{good_customer}/features", params={"as_of": READ_AS_OF})
    assert stored.status_code == 200, stored.text
    features = client.get(f"/v1/customers/{customer}/features", params={"as_of": READ_AS_OF})
    assert features.status_code == 200, features.text
    if kind == "orders-one-day":
        assert features.json()["revenue_total"] == pytest.approx(
            1e12 * features.json()["orders_total"]
        )
    else:
        assert features.json()["orders_total"] == 0
        assert features.json()["revenue_total"] == 0


# (id, path under /v1/customers/, query, expected status, word in detail)
BAD_READS = [
    ("as_of-naive", "c/features", {"as_of": "2024-05-01T00:00:00"}, 422, "as_of"),
    ("as_of-date-only", "c/features", {"as_of": "2024-05-01"}, 422, "as_of"),
    ("as_of-garbage", "c/features", {"as_of": "soon"}, 422, "as_of"),
    # out of the representable range once converted to UTC: 422 (or 404), not a 500
    (
        "as_of-year-1-with-offset",
        "c/features",
        {"as_of": "0001-01-01T00:00:00+01:00"},
        (404, 422),
        None,
    ),
    (
        "as_of-year-9999-with-offset",
        "c/features",
        {"as_of": "9999-12-31T23:59:59-01:00"},
        (404, 422),
        None,
    ),
    ("customer_id-129-chars", "x" * 129 + "/features", {}, 422, "customer_id"),
    ("customer_id-nul", "a%00b/features", {}, (404, 422), "customer"),
    ("profile-customer_id-nul", "a%00b", {}, (404, 422), "customer"),
    ("customer_id-newline", "a%0Ab/features", {}, (404, 422), "customer"),
]


@pytest.mark.parametrize(
    ("path", "query", "status", "word"),
    [pytest.param(p, q, s, w, id=i) for i, p, q, s, w in BAD_READS],
)
def test_bad_feature_read(client, path, query, status, word):
    response = client.get(f"/v1/customers/{path}", params=query)
    expected = status if isinstance(status, tuple) else (status,)
    assert response.status_code in expected, response.text[:500]
    if word is not None:
        assert word in response.json()["detail"], response.text[:500]
