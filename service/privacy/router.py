"""`DELETE /v1/customers/{id}` (erasure) and `GET /v1/customers/{id}/export` (access and
portability), for keys with the `privacy` scope (or `admin`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse

from service.access.service import ApiKey
from service.audit import service as audit
from service.deps import CustomerId, Pool, ScopedBearer
from service.ops.responses import error_responses
from service.privacy.erasure import erase
from service.privacy.export import open_export
from service.privacy.schemas import CustomerExport, Erasure

router = APIRouter(prefix="/v1/customers", tags=["privacy"])

PrivacyKey = Annotated[ApiKey, Depends(ScopedBearer("privacy"))]


@router.delete(
    "/{customer_id}",
    response_model=Erasure,
    summary="Erase a customer from every table; their events are refused from then on",
    responses=error_responses(),
)
async def erase_customer(
    request: Request, customer_id: CustomerId, pool: Pool, key: PrivacyKey
) -> Erasure:
    deadline = request.app.state.settings.write_deadline_seconds
    async with pool.acquire() as conn:
        outcome = await erase(conn, customer_id, key.name, deadline)
    return Erasure(**vars(outcome))


@router.get(
    "/{customer_id}/export",
    response_model=CustomerExport,
    summary="Everything held about a customer, as one JSON document (streamed)",
    responses=error_responses(extra={404: "Nothing is held about this customer"}),
)
async def export_customer(
    request: Request, customer_id: CustomerId, pool: Pool, key: PrivacyKey
) -> StreamingResponse:
    settings = request.app.state.settings
    document = await open_export(pool.acquire, customer_id, settings.zone, settings.currency)
    if document is None:
        raise HTTPException(404, f"nothing is held about customer {customer_id!r}")
    async with pool.acquire() as conn, conn.transaction():
        await audit.record(conn, key.name, "customer.exported", customer_id)
    return StreamingResponse(document, media_type="application/json")
