"""`GET /v1/customers/{customer_id}/features`: exact point-in-time features."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from service.deps import AsOf, CustomerId, Pool, ScoresReader
from service.features.schemas import Features
from service.features.service import read_features, resolve_as_of
from service.ops.responses import error_responses

router = APIRouter(prefix="/v1/customers", tags=["features"])


@router.get(
    "/{customer_id}/features",
    response_model=Features,
    responses=error_responses(extra={404: "Customer unknown as of that day"}),
)
async def get_features(
    request: Request,
    customer_id: CustomerId,
    pool: Pool,
    _key: ScoresReader,
    as_of: AsOf = None,
) -> dict:
    moment, day = resolve_as_of(as_of, request.app.state.settings.zone)
    found = await pool.read(lambda conn: read_features(conn, [customer_id], moment, day))
    if customer_id not in found:
        raise HTTPException(404, f"customer {customer_id!r} has no events up to {day}")
    return found[customer_id]
