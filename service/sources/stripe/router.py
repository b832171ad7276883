"""`POST /v1/sources/stripe/webhooks`: Stripe's events, verified by `Stripe-Signature`."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from service.ops.jsonbody import parse_json
from service.sources.dead_letters import DeadLetter
from service.sources.stripe import mapping, signature
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

SOURCE = "stripe"
router = APIRouter(prefix="/v1/sources/stripe", tags=["sources"])


@router.post(
    "/webhooks",
    **webhook_route(
        "Receive a Stripe webhook event",
        {401: "Missing, wrong or expired Stripe-Signature, or no Stripe secret added"},
    ),
)
async def stripe_webhook(request: Request) -> WebhookReceipt:
    header = request.headers.get("stripe-signature")
    if not header:
        raise refused(SOURCE, "Stripe-Signature: required")
    body = await request.body()
    secrets = await request.app.state.source_secrets.get(request.app.state.pool, SOURCE, None)
    if not secrets:
        raise refused(SOURCE, "no Stripe endpoint secret: add one with `scorer sources add stripe`")
    problem = signature.verify(body, header, secrets, time.time())
    if problem:
        raise refused(SOURCE, problem)
    event = parse_json(body)
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise HTTPException(400, "body: a Stripe event object with an id")
    obj = (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
    kind = event.get("type")
    if kind not in (*mapping.ORDER_TYPES, *mapping.REFUND_TYPES):
        return ignored(SOURCE, f"event type {kind!r} is not one this service maps")
    try:
        if not isinstance(obj, dict):
            raise Unusable("data.object: required, an object")
        return await _store(request, event, kind, obj)
    except Unusable as unusable:
        return await store_delivery(
            request, SOURCE, [], [DeadLetter(SOURCE, str(unusable), event, event["id"])]
        )


async def _store(request: Request, event: dict, kind: str, obj: dict) -> WebhookReceipt:
    key = request.app.state.settings.stripe_customer_metadata_key
    if kind in mapping.ORDER_TYPES:
        customer = mapping.customer_of(obj, key)
        mapped = mapping.order_event(event, obj, customer)
        return await store_delivery(
            request,
            SOURCE,
            [Mapped(mapped, event, event["id"])],
            [],
            [(mapped["order_id"], customer)],
        )
    currency = mapping.currency_of(obj)
    if kind == "refund.created":
        order_id = mapping.order_id_of(
            {"payment_intent": obj.get("payment_intent"), "id": obj.get("charge")}
        )
        customer = await _order_customer(request, order_id)
        events = mapping.refund_events(order_id, customer, [obj], currency)
        return await _store_events(request, event, events)
    order_id = mapping.order_id_of(obj)
    try:
        customer = mapping.customer_of(obj, key)
    except Unusable:
        customer = await _order_customer(request, order_id)
    listed = mapping.listed_refunds(obj)
    if listed is not None:
        return await _store_events(
            request, event, mapping.refund_events(order_id, customer, listed, currency)
        )

    async def cumulative(conn) -> list[Mapped]:
        already = await conn.fetchval(
            "SELECT refunded FROM orders WHERE customer_id = $1 AND order_id = $2",
            customer,
            order_id,
        )
        refund = mapping.cumulative_refund_event(event, obj, customer, already or Decimal(0))
        return [] if refund is None else [Mapped(refund, event, event["id"])]

    return await store_delivery(
        request, SOURCE, [], [], mapped_in_transaction=cumulative, customer=customer
    )


async def _order_customer(request: Request, order_id: str) -> str:
    customer = await order_customer(request, SOURCE, order_id)
    if customer is None:
        raise Unusable(
            f"payment_intent: order {order_id} was never received, so its customer is unknown"
        )
    return customer


async def _store_events(
    request: Request, event: dict, events: list[dict[str, Any]]
) -> WebhookReceipt:
    mapped = [Mapped(item, event, item["event_id"]) for item in events]
    return await store_delivery(request, SOURCE, mapped, [])
