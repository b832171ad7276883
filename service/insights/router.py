"""`GET /v1/insights/equity`: what the customers are worth, by tier, segment or churn band."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from service.deps import Pool, ScoresReader
from service.insights.health import model_health
from service.insights.schemas import Equity, EquityGroup, ModelHealth
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


@router.get(
    "/model-health",
    response_model=ModelHealth,
    summary="Active models, calibration on the last complete horizon, drift from training",
    responses=error_responses(),
)
async def get_model_health(request: Request, pool: Pool, _key: ScoresReader) -> ModelHealth:
    threshold = request.app.state.settings.drift_psi_threshold
    return ModelHealth(**await pool.read(lambda conn: model_health(conn, threshold)))
