"""`/v1/webhooks` (admin): subscriptions to the change feed, their deliveries, redelivery,
replay and secret rotation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request

from service.deps import ADMIN_BEARER, Admin, PageCursor, Pool
from service.ops.jsonbody import StrictJsonRoute
from service.ops.responses import error_responses
from service.webhooks import service
from service.webhooks.schemas import (
    DELIVERY_ID_PATTERN,
    WEBHOOK_ID_PATTERN,
    Delivery,
    DeliveryPage,
    DeliveryStatus,
    Replay,
    ReplayAfter,
    ReplaySince,
    SecretRotation,
    Webhook,
    WebhookCreate,
    WebhookList,
    WebhookUpdate,
    WebhookWithSecret,
)
from service.webhooks.targets import TargetRefused

router = APIRouter(
    prefix="/v1/webhooks",
    route_class=StrictJsonRoute,
    tags=["webhooks"],
    dependencies=[Depends(ADMIN_BEARER)],
)

WebhookId = Annotated[str, Path(pattern=WEBHOOK_ID_PATTERN, description="wh_…")]
DeliveryId = Annotated[str, Path(pattern=DELIVERY_ID_PATTERN, description="msg_…")]
_REFUSED_URL = {
    400: "`url` may not be a target: it does not resolve, or resolves to a "
    "private, loopback, link-local, multicast or reserved address"
}
_UNKNOWN = {404: "Unknown webhook"}
_DISABLED = {409: "The webhook is disabled: enable it first"}


def _allow_private(request: Request) -> bool:
    return request.app.state.settings.webhook.allow_private_targets


AllowPrivate = Annotated[bool, Depends(_allow_private)]


@contextmanager
def _answers() -> Iterator[None]:
    """The domain's refusals as HTTP answers naming what is wrong."""
    try:
        yield
    except TargetRefused as refused:
        raise HTTPException(400, f"url: {refused}") from None
    except service.UnknownWebhook as unknown:
        raise HTTPException(404, f"no webhook or delivery {unknown.args[0]!r}") from None
    except service.WebhookDisabled as disabled:
        raise HTTPException(
            409, f"webhook {disabled.args[0]!r} is disabled: PATCH enabled=true first"
        ) from None


@router.post(
    "",
    response_model=WebhookWithSecret,
    summary="Subscribe a URL to changes (the answer shows its signing secret, once)",
    responses=error_responses(body=True, extra=_REFUSED_URL),
)
async def create_webhook(
    body: WebhookCreate, pool: Pool, allow_private: AllowPrivate, admin: Admin
) -> dict:
    with _answers():
        row, secret = await service.create(pool, body, allow_private, admin.name)
    return {**service.to_webhook(row), "secret": secret}


@router.get("", response_model=WebhookList, summary="List webhooks", responses=error_responses())
async def list_webhooks(pool: Pool) -> dict:
    async with pool.acquire() as conn:
        rows = await service.listing(conn)
    return {"data": [service.to_webhook(row) for row in rows]}


@router.get(
    "/{webhook_id}",
    response_model=Webhook,
    summary="Read a webhook",
    responses=error_responses(extra=_UNKNOWN),
)
async def get_webhook(webhook_id: WebhookId, pool: Pool) -> dict:
    with _answers():
        async with pool.acquire() as conn:
            row = await service.find(conn, webhook_id)
    return service.to_webhook(row)


@router.patch(
    "/{webhook_id}",
    response_model=Webhook,
    summary="Change a webhook's url, event types, filters, description or enabled",
    responses=error_responses(body=True, extra={**_REFUSED_URL, **_UNKNOWN}),
)
async def update_webhook(
    webhook_id: WebhookId,
    body: WebhookUpdate,
    pool: Pool,
    allow_private: AllowPrivate,
    admin: Admin,
) -> dict:
    with _answers():
        row = await service.update(pool, webhook_id, body, allow_private, admin.name)
    return service.to_webhook(row)


@router.delete(
    "/{webhook_id}",
    response_model=Webhook,
    summary="Delete a webhook and its deliveries (returns the deleted webhook)",
    responses=error_responses(extra=_UNKNOWN),
)
async def delete_webhook(webhook_id: WebhookId, pool: Pool, admin: Admin) -> dict:
    with _answers():
        async with pool.acquire() as conn:
            row = await service.delete(conn, webhook_id, admin.name)
    return service.to_webhook(row)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    summary="Issue a new signing secret (shown once); the old one signs too for the overlap",
    responses=error_responses(body=True, extra=_UNKNOWN),
)
async def rotate_secret(
    webhook_id: WebhookId, pool: Pool, admin: Admin, body: SecretRotation | None = None
) -> dict:
    overlap = (body or SecretRotation()).overlap_seconds
    with _answers():
        async with pool.acquire() as conn:
            row, secret = await service.rotate_secret(conn, webhook_id, overlap, admin.name)
    return {**service.to_webhook(row), "secret": secret}


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    summary="List a webhook's deliveries, newest change first",
    responses=error_responses(extra=_UNKNOWN),
)
async def list_deliveries(
    webhook_id: WebhookId,
    pool: Pool,
    status: DeliveryStatus | None = None,
    before: PageCursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    with _answers():
        async with pool.acquire() as conn:
            return await service.delivery_page(conn, webhook_id, before, status, limit)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=Delivery,
    summary="Send a delivery again now (same webhook-id), from the start of the schedule",
    responses=error_responses(extra={**_UNKNOWN, **_DISABLED}),
)
async def redeliver(
    webhook_id: WebhookId, delivery_id: DeliveryId, pool: Pool, admin: Admin
) -> dict:
    with _answers():
        async with pool.acquire() as conn:
            row = await service.redeliver(conn, webhook_id, delivery_id, admin.name)
    return service.to_delivery(row)


@router.post(
    "/{webhook_id}/replay",
    response_model=Replay,
    summary="Send the changes since a time, or after a change, again",
    responses=error_responses(body=True, extra={**_UNKNOWN, **_DISABLED}),
)
async def replay(
    webhook_id: WebhookId,
    body: Annotated[ReplaySince | ReplayAfter, Body()],
    pool: Pool,
    admin: Admin,
) -> Replay:
    with _answers():
        async with pool.acquire() as conn:
            after, through = await service.replay(conn, webhook_id, body, admin.name)
    return Replay(webhook_id=webhook_id, after=after, through=through)
