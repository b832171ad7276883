"""Shopify and Stripe webhooks over real HTTP: payloads shaped as their documentation shows,
signed as documented, are stored; tampered, expired and unsigned ones are refused and store
nothing; redeliveries are duplicates. Our Stripe verifier agrees with the `stripe` SDK."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
import pytest
import stripe

from service.sources.stripe import signature

DATA = Path(__file__).parent / "data" / "webhooks"
SHOP = "test-shop.myshopify.com"
SHOPIFY_SECRET = "shpss_first_secret_0123"
SHOPIFY_NEXT = "shpss_second_secret_4567"
STRIPE_SECRET = "whsec_test_secret_abcdef"


def fixture(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def add_secret(server, kind: str, flag: str, account: str, secret: str) -> str:
    return server.scorer("sources", "add", kind, flag, account, stdin=secret + "\n").stdout.strip()


@pytest.fixture(scope="module")
def secrets_added(server) -> dict:
    return {
        "shopify": add_secret(server, "shopify", "--shop", SHOP, SHOPIFY_SECRET),
        "shopify-next": add_secret(server, "shopify", "--shop", SHOP, SHOPIFY_NEXT),
        "stripe": add_secret(server, "stripe", "--account", "acct_test", STRIPE_SECRET),
    }


def shopify_post(
    server,
    topic: str,
    payload: dict,
    event_id: str,
    secret: str = SHOPIFY_SECRET,
    body: bytes | None = None,
    hmac_header: str | None = None,
):
    raw = body if body is not None else json.dumps(payload).encode()
    digest = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Webhook-Id": "wh-" + event_id,
        "X-Shopify-Hmac-Sha256": hmac_header if hmac_header is not None else digest,
    }
    return httpx.post(f"{server.url}/v1/sources/shopify/webhooks", content=raw, headers=headers)


def stripe_post(server, event: dict, header: str | None):
    raw = json.dumps(event)
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return httpx.post(f"{server.url}/v1/sources/stripe/webhooks", content=raw, headers=headers), raw


def features(client, customer: str) -> dict:
    answer = client.get(f"/v1/customers/{customer}/features")
    assert answer.status_code == 200, answer.text
    return answer.json()


def event_count(server) -> int:
    return server.sql("SELECT count(*) FROM events")[0][0]


def test_shopify_orders_refunds_and_consent(server, client, secrets_added):
    order = fixture("shopify_order.json")
    created = shopify_post(server, "orders/create", order, "ev-1")
    assert created.status_code == 200 and created.json()["accepted"] == 1, created.text
    again = shopify_post(server, "orders/create", order, "ev-1")  # Shopify's retry
    assert again.json()["duplicates"] == 1 and again.json()["accepted"] == 0
    paid = shopify_post(server, "orders/paid", order, "ev-2", secret=SHOPIFY_NEXT)  # rotation
    assert paid.status_code == 200 and paid.json()["duplicates"] == 1, paid.text
    refund = shopify_post(server, "refunds/create", fixture("shopify_refund.json"), "ev-3")
    assert refund.json()["accepted"] == 1, refund.text
    customer = shopify_post(server, "customers/update", fixture("shopify_customer.json"), "ev-4")
    assert customer.json()["accepted"] == 3, customer.text  # identify + email + sms consent
    seen = features(client, "115310627314723954")
    assert (seen["orders_total"], seen["revenue_total"]) == (1, 109.01)  # 199.00 - 89.99
    assert seen["consent"]["email"] is True and seen["consent"]["sms"] is False
    test_order = {**order, "id": 1, "test": True}
    ignored = shopify_post(server, "orders/create", test_order, "ev-5")
    assert ignored.status_code == 200 and "test order" in ignored.json()["ignored"]
    guest = {**order, "id": 2, "customer": None}
    assert shopify_post(server, "orders/create", guest, "ev-6").json()["dead_lettered"] == 1
    euros = {**order, "id": 3, "currency": "EUR"}
    assert shopify_post(server, "orders/create", euros, "ev-7").json()["dead_lettered"] == 1
    letters = client.get("/v1/dead-letters?source=shopify").json()["data"]
    reasons = {item["external_id"]: item["reason"] for item in letters}
    assert "guest" in reasons[f"{SHOP}:ev-6"] and "currency" in reasons[f"{SHOP}:ev-7"]


def test_shopify_refuses_what_is_not_signed_by_the_shop(server, secrets_added):
    order = {**fixture("shopify_order.json"), "id": 99}
    before = event_count(server)
    raw = json.dumps(order).encode()
    tampered = raw.replace(b'"199.00"', b'"1999.00"')
    good = base64.b64encode(
        hmac.new(SHOPIFY_SECRET.encode(), raw, hashlib.sha256).digest()
    ).decode()
    cases = [
        shopify_post(server, "orders/create", order, "bad-1", body=tampered, hmac_header=good),
        shopify_post(server, "orders/create", order, "bad-2", hmac_header=""),
        shopify_post(server, "orders/create", order, "bad-3", secret="not-the-secret"),
        shopify_post(server, "orders/create", order, "bad-4", hmac_header="%%%"),
    ]
    assert [answer.status_code for answer in cases] == [401, 401, 401, 401]
    assert all(answer.json()["detail"] for answer in cases)
    assert event_count(server) == before


def recent(event: dict, days_ago: int) -> dict:
    created = int(time.time()) - days_ago * 86400
    event["created"] = created
    event["data"]["object"]["created"] = created
    return event


def test_stripe_checkout_and_refunds(server, client, secrets_added):
    session = recent(fixture("stripe_checkout_session.json"), 10)
    answer, raw = stripe_post(server, session, None)
    assert answer.status_code == 401
    header = stripe.WebhookSignature.generate_signature_header(json.dumps(session), STRIPE_SECRET)
    answer, _ = stripe_post(server, session, header)
    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
    answer, _ = stripe_post(server, session, header)  # Stripe's redelivery
    assert answer.json()["duplicates"] == 1
    charge = {
        "id": "evt_charge_1",
        "type": "charge.succeeded",
        "created": session["created"],
        "data": {
            "object": {
                "id": "ch_3Qabc",
                "amount": 5400,
                "currency": "usd",
                "customer": "cus_Stripe123",
                "metadata": {"customer_id": "shop-c-7"},
                "payment_intent": "pi_3Qabc",
                "created": session["created"],
            }
        },
    }
    header = stripe.WebhookSignature.generate_signature_header(json.dumps(charge), STRIPE_SECRET)
    assert stripe_post(server, charge, header)[0].json()["duplicates"] == 1  # the same order
    refunded = recent(fixture("stripe_charge_refunded.json"), 5)
    for event_id, cumulative in (("evt_r1", 1000), ("evt_r2", 1500), ("evt_r1", 1000)):
        refunded["id"] = event_id
        refunded["data"]["object"]["amount_refunded"] = cumulative
        header = stripe.WebhookSignature.generate_signature_header(
            json.dumps(refunded), STRIPE_SECRET
        )
        assert stripe_post(server, refunded, header)[0].status_code == 200
    seen = features(client, "shop-c-7")
    assert (seen["orders_total"], seen["revenue_total"]) == (1, 39.0)  # 54.00 - 15.00
    listed = recent(fixture("stripe_charge_refunded.json"), 4)
    listed["id"] = "evt_r3"
    listed["data"]["object"]["metadata"] = {}
    listed["data"]["object"]["customer"] = "cus_Listed"
    listed["data"]["object"]["payment_intent"] = "pi_listed"
    listed["data"]["object"]["refunds"] = {
        "data": [{"id": "re_1", "amount": 250, "created": listed["created"], "status": "succeeded"}]
    }
    order = {**charge, "id": "evt_charge_2"}
    order["data"] = {
        "object": {
            **charge["data"]["object"],
            "metadata": {},
            "customer": "cus_Listed",
            "payment_intent": "pi_listed",
            "amount": 1000,
        }
    }
    for event in (order, listed, listed):
        header = stripe.WebhookSignature.generate_signature_header(json.dumps(event), STRIPE_SECRET)
        assert stripe_post(server, event, header)[0].status_code == 200
    assert features(client, "cus_Listed")["revenue_total"] == 7.5


def test_stripe_refuses_tampered_expired_and_unsigned(server, secrets_added):
    session = recent(fixture("stripe_checkout_session.json"), 3)
    session["id"] = "evt_refused"
    before = event_count(server)
    body = json.dumps(session)
    old = int(time.time()) - 301
    cases = {
        "tampered": (
            body.replace("5400", "54000"),
            stripe.WebhookSignature.generate_signature_header(body, STRIPE_SECRET),
        ),
        "expired": (
            body,
            stripe.WebhookSignature.generate_signature_header(body, STRIPE_SECRET, old),
        ),
        "wrong secret": (
            body,
            stripe.WebhookSignature.generate_signature_header(body, "whsec_other"),
        ),
        "unsigned": (body, f"t={int(time.time())}"),
    }
    for name, (raw, header) in cases.items():
        answer = httpx.post(
            f"{server.url}/v1/sources/stripe/webhooks",
            content=raw,
            headers={"Content-Type": "application/json", "Stripe-Signature": header},
        )
        assert answer.status_code == 401, (name, answer.text)
    assert event_count(server) == before


def _sdk_accepts(body: str, header: str, secret: str) -> bool:
    try:
        stripe.Webhook.construct_event(body, header, secret, tolerance=300)
    except stripe.SignatureVerificationError:
        return False
    return True


def test_our_stripe_verifier_agrees_with_the_sdk():
    body = json.dumps(
        {"id": "evt_x", "object": "event", "type": "charge.succeeded", "data": {"object": {}}}
    )
    now = int(time.time())
    sign = stripe.WebhookSignature.generate_signature_header
    valid = sign(body, STRIPE_SECRET, now)
    other = sign(body, "whsec_other", now).split(",")[1]
    cases = [
        (body, valid),
        (body, f"{valid},{other}"),  # several v1: one matching is enough
        (body, f"t={now},{other},{valid.split(',')[1]}"),
        (body.replace("evt_x", "evt_y"), valid),  # tampered
        (body, sign(body, STRIPE_SECRET, now - 301)),  # expired
        (body, sign(body, STRIPE_SECRET, now - 299)),  # just in time
        (body, sign(body, "whsec_other", now)),
        (body, valid.replace("v1=", "v0=")),  # only v1 counts
        (body, f"t={now}"),
    ]
    for raw, header in cases:
        ours = signature.verify(raw.encode(), header, [STRIPE_SECRET], time.time()) is None
        assert ours == _sdk_accepts(raw, header, STRIPE_SECRET), header


def test_sources_cli_lists_fingerprints_never_secrets(server, secrets_added):
    listing = server.scorer("sources", "list").stdout
    assert SHOP in listing and "acct_test" in listing and "sha256:" in listing
    for secret in (SHOPIFY_SECRET, SHOPIFY_NEXT, STRIPE_SECRET):
        assert secret not in listing
    wrong = server.scorer("sources", "remove", "src_nope", check=False)
    assert (
        wrong.returncode == 2
        and "scorer sources list" in wrong.stderr
        and "Traceback" not in wrong.stderr
    )
    empty = server.scorer("sources", "add", "stripe", "--account", "a", check=False)
    assert empty.returncode == 2 and "stdin" in empty.stderr
    unset = server.scorer(
        "sources", "add", "shopify", "--shop", "x", "--secret-env", "NOPE_UNSET", check=False
    )
    assert unset.returncode == 2 and "NOPE_UNSET" in unset.stderr
    # A secret of its own: the module's secrets must stay for the other tests, in any order.
    spare = add_secret(server, "shopify", "--shop", "spare.myshopify.com", "spare-secret")
    removed = server.scorer("sources", "remove", spare)
    assert removed.returncode == 0
    assert spare not in server.scorer("sources", "list").stdout
