"""`POST /v1/sources/shopify/webhooks`: Shopify's webhooks, verified by their HMAC."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from fastapi import APIRouter, HTTPException, Request

from service.ops.jsonbody import parse_json
from service.sources.dead_letters import DeadLetter
from service.sources.shopify import mapping
from service.sources.unusable import Unusable
from service.sources.webhooks import (
    WebhookReceipt,
    ignored,
    order_customer,
    refused,
    store_delivery,
    webhook_route,
)
from service.sources.write import Mapped

SOURCE = "shopify"
router = APIRouter(prefix="/v1/sources/shopify", tags=["sources"])


def signature_matches(body: bytes, header: str, secrets: list[str]) -> bool:
    """`X-Shopify-Hmac-Sha256`: base64 of HMAC-SHA256 of the raw body with the app secret;
    any of the account's secrets (a rotation) will do."""
    try:
        presented = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        return False
    return any(
        hmac.compare_digest(hmac.new(s.encode(), body, hashlib.sha256).digest(), presented)
        for s in secrets
    )


@router.post(
    "/webhooks",
    **webhook_route(
        "Receive a Shopify webhook",
        {
            400: "The verified body is not JSON or lacks a header Shopify always sends",
            401: "Missing or wrong X-Shopify-Hmac-Sha256, or a shop with no secret",
        },
    ),
)
async def shopify_webhook(request: Request) -> WebhookReceipt:
    shop = request.headers.get("x-shopify-shop-domain", "").strip().lower()
    signature = request.headers.get("x-shopify-hmac-sha256", "")
    if not shop or not signature:
        raise refused(SOURCE, "X-Shopify-Shop-Domain and X-Shopify-Hmac-Sha256 are required")
    body = await request.body()
    secrets = await request.app.state.source_secrets.get(request.app.state.pool, SOURCE, shop)
    if not secrets:
        raise refused(
            SOURCE, f"no secret for shop {shop!r}: add one with `scorer sources add shopify`"
        )
    if not signature_matches(body, signature, secrets):
        raise refused(SOURCE, "X-Shopify-Hmac-Sha256 does not match the body")
    topic = request.headers.get("x-shopify-topic", "")
    delivery = request.headers.get("x-shopify-event-id") or request.headers.get(
        "x-shopify-webhook-id"
    )
    if not delivery:
        raise HTTPException(400, "X-Shopify-Event-Id (or X-Shopify-Webhook-Id): required")
    payload = parse_json(body)
    key = f"{shop}:{delivery}"
    letter = lambda reason: DeadLetter(SOURCE, reason, payload, key)  # noqa: E731
    if not isinstance(payload, dict):
        return await store_delivery(request, SOURCE, [], [letter("body: must be an object")])
    try:
        if topic in mapping.ORDER_TOPICS:
            if payload.get("test") is True and not request.app.state.settings.shopify_test_orders:
                return ignored(SOURCE, "a test order (SCORER_SHOPIFY_TEST_ORDERS is off)")
            event, order_id = mapping.order_event(key, payload)
            return await store_delivery(
                request,
                SOURCE,
                [Mapped(event, payload, key)],
                [],
                [(order_id, event["customer_id"])],
            )
        if topic == "refunds/create":
            order_id = mapping.refund_order_id(payload)
            customer = await order_customer(request, SOURCE, order_id)
            if customer is None:
                raise Unusable(
                    f"order_id: order {order_id} was never received, so its customer is unknown"
                )
            event = mapping.refund_event(key, payload, customer)
            return await store_delivery(request, SOURCE, [Mapped(event, payload, key)], [])
        if topic in mapping.CUSTOMER_TOPICS:
            events = mapping.customer_events(key, payload)
            return await store_delivery(
                request, SOURCE, [Mapped(e, payload, e["event_id"]) for e in events], []
            )
        return ignored(SOURCE, f"topic {topic!r} is not one this service maps")
    except Unusable as problem:
        return await store_delivery(request, SOURCE, [], [letter(str(problem))])
