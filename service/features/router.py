"""`GET /v1/customers/{customer_id}/features` (DESIGN §6)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request

from service.deps import Pool, ScoresReader
from service.features.schemas import Features
from service.features.service import read_features, resolve_as_of
from service.timefmt import Timestamp

router = APIRouter(prefix="/v1/customers", tags=["features"])

CustomerId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
AsOf = Annotated[
    Timestamp | None,
    Query(description="RFC 3339 with offset; default now. Resolved to its day (DESIGN §4)."),
]


@router.get(
    "/{customer_id}/features",
    response_model=Features,
    responses={404: {"description": "Customer unknown as of that day"}},
)
async def get_features(
    request: Request,
    customer_id: CustomerId,
    pool: Pool,
    _key: ScoresReader,
    as_of: AsOf = None,
) -> dict:
    moment, day = resolve_as_of(as_of, request.app.state.settings.zone)
    async with pool.acquire() as conn:
        found = await read_features(conn, [customer_id], moment, day)
    if customer_id not in found:
        raise HTTPException(404, f"customer {customer_id!r} has no events up to {day}")
    return found[customer_id]
