"""`GET /v1/customers/{id}/scores` and `POST /v1/score`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from service.deps import AsOf, CustomerId, Pool, ScoresReader
from service.ops.jsonbody import StrictJsonRoute
from service.scoring.schemas import ScoreRequest, ScoresResponse
from service.scoring.service import ModelsUnavailable, score_customer

router = APIRouter(prefix="/v1", tags=["scores"], route_class=StrictJsonRoute)


async def _score(request: Request, pool, customer_id, as_of, explain, context) -> dict:
    state = request.app.state
    models = state.models.current

    def score(conn):
        return score_customer(
            conn, models, state.nbo, state.settings, customer_id, as_of, explain, context
        )

    # Safe to repeat: a decision is logged in its own transaction, so a lost connection
    # leaves none behind.
    try:
        return await pool.read(score)
    except ModelsUnavailable as error:
        raise HTTPException(503, str(error)) from None


@router.get(
    "/customers/{customer_id}/scores",
    response_model=ScoresResponse,
    response_model_exclude_none=False,
    responses={503: {"description": "No models loaded"}},
)
async def get_scores(
    request: Request,
    customer_id: CustomerId,
    pool: Pool,
    _key: ScoresReader,
    as_of: AsOf = None,
    explain: Annotated[bool, Query(description="Add top feature contributions.")] = False,
) -> dict:
    return await _score(request, pool, customer_id, as_of, explain, {"source": "get_scores"})


@router.post(
    "/score", response_model=ScoresResponse, responses={503: {"description": "No models loaded"}}
)
async def post_score(request: Request, body: ScoreRequest, pool: Pool, _key: ScoresReader) -> dict:
    return await _score(
        request, pool, body.customer_id, body.as_of, body.explain, body.context_dict()
    )
