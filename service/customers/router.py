"""`GET /v1/customers/{customer_id}`: the profile."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from service.customers.schemas import Profile
from service.customers.service import read_profile
from service.deps import CustomerId, Pool, ScoresReader
from service.ops.responses import error_responses

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get(
    "/{customer_id}",
    response_model=Profile,
    responses=error_responses(extra={404: "Unknown customer"}),
)
async def get_profile(
    customer_id: CustomerId,
    pool: Pool,
    _key: ScoresReader,
) -> dict:
    profile = await pool.read(lambda conn: read_profile(conn, customer_id))
    if profile is None:
        raise HTTPException(404, f"customer {customer_id!r} is unknown")
    return profile
