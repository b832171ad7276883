"""`GET /v1/insights/equity`: what the customers are worth, by tier, segment or churn band."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from service.deps import Pool, ScoresReader
from service.insights.schemas import Equity, EquityGroup
from service.insights.service import equity
from service.ops.responses import error_responses

router = APIRouter(prefix="/v1/insights", tags=["insights"])


@router.get(
    "/equity",
    response_model=Equity,
    summary="Customer equity (predicted and historic value), by group",
    responses=error_responses(),
)
async def get_equity(
    pool: Pool,
    _key: ScoresReader,
    by: Annotated[Literal["tier", "segment", "churn_band"], Query()] = "tier",
) -> Equity:
    # ROLLUP's grand-total row comes first, and exists even when no customer is scored.
    total, *groups = await pool.read(lambda conn: equity(conn, by))
    return Equity(
        by=by,
        total=EquityGroup(**{**vars(total), "name": "total"}),
        groups=[EquityGroup(**vars(row)) for row in groups],
    )
