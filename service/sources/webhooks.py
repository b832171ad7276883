"""What the signed-webhook sources (Shopify, Stripe) share: the receipt they answer, and
storing a delivery's events with the platform orders they name, in one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
from fastapi import HTTPException, Request
from pydantic import BaseModel, Field

from service.events import tombstones
from service.events.service import in_write_transaction, lock_keys
from service.ops.metrics import WEBHOOKS_RECEIVED, WEBHOOKS_REFUSED
from service.ops.responses import error_responses
from service.sources.dead_letters import DeadLetter
from service.sources.write import Mapped, store_in_transaction


class WebhookReceipt(BaseModel):
    accepted: int = Field(description="Events stored now.")
    duplicates: int = Field(description="Events already stored (a redelivery).")
    dead_lettered: int = Field(description="Events kept as dead letters (GET /v1/dead-letters).")
    ignored: str | None = Field(None, description="Why nothing was stored on purpose, if so.")


async def store_delivery(
    request: Request,
    source: str,
    mapped: list[Mapped],
    letters: list[DeadLetter],
    orders: list[tuple[str, str]] = (),
    mapped_in_transaction: Callable[[asyncpg.Connection], Awaitable[list[Mapped]]] | None = None,
    customer: str | None = None,
) -> WebhookReceipt:
    """Store a delivery's events; `orders` (order id, customer id) are remembered so that a
    later refund naming only the order finds its customer. `mapped_in_transaction` maps
    events from what the database holds, under the lock of `customer`."""
    pool = request.app.state.pool
    settings = request.app.state.settings

    async def work():
        if orders:
            # Under the customers' locks, as an erasure is: an erased customer's orders are
            # not remembered again.
            await lock_keys(conn, [customer_id for _, customer_id in orders])
            erased = await tombstones.erased_among(conn, [c for _, c in orders])
            await conn.executemany(
                "INSERT INTO source_orders (source, order_id, customer_id) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING",
                [(source, order, customer) for order, customer in orders if customer not in erased],
            )
        events = list(mapped)
        if mapped_in_transaction is not None:
            await lock_keys(conn, [customer])
            events += await mapped_in_transaction(conn)
        return await store_in_transaction(
            conn, request.app.state.event_rules, source, events, letters, datetime.now(UTC)
        )

    async with pool.acquire() as conn:
        outcome = await in_write_transaction(conn, settings.write_deadline_seconds, work)
    WEBHOOKS_RECEIVED.labels(source=source, outcome="stored").inc()
    return WebhookReceipt(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        dead_lettered=len(outcome.dead_lettered),
    )


async def order_customer(request: Request, source: str, order_id: str) -> str | None:
    async with request.app.state.pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT customer_id FROM source_orders WHERE source = $1 AND order_id = $2",
            source,
            order_id,
        )


def ignored(source: str, why: str) -> WebhookReceipt:
    WEBHOOKS_RECEIVED.labels(source=source, outcome="ignored").inc()
    return WebhookReceipt(accepted=0, duplicates=0, dead_lettered=0, ignored=why)


def refused(source: str, detail: str) -> HTTPException:
    """The 401 of a delivery whose signature does not hold: nothing of it is stored."""
    WEBHOOKS_REFUSED.labels(source=source).inc()
    return HTTPException(401, detail)


def webhook_route(summary: str, statuses: dict[int, str]) -> dict:
    """The route options of a signed webhook: any JSON body, no API key (the signature is
    the authentication), the statuses it can answer."""
    return {
        "response_model": WebhookReceipt,
        "summary": summary,
        "openapi_extra": {
            "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
            "security": [],
        },
        "responses": error_responses(
            authenticated=False, validated=False, body=True, extra=statuses
        ),
    }
