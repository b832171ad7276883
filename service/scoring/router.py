"""`GET /v1/customers/{id}/scores` and `POST /v1/score`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from service.deps import AsOf, CustomerId, Pool, QueryBool, ScoresReader
from service.ops.errors import RETRY_AFTER
from service.ops.jsonbody import StrictJsonRoute
from service.ops.responses import error_responses
from service.scoring.schemas import ScoreRequest, ScoresResponse
from service.scoring.service import ModelsUnavailable, score_customer

router = APIRouter(prefix="/v1", tags=["scores"], route_class=StrictJsonRoute)
_NO_MODELS = {503: "No models are loaded"}


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
        raise HTTPException(503, str(error), headers=RETRY_AFTER) from None


@router.get(
    "/customers/{customer_id}/scores",
    response_model=ScoresResponse,
    response_model_exclude_none=False,
    responses=error_responses(extra=_NO_MODELS),
)
async def get_scores(
    request: Request,
    customer_id: CustomerId,
    pool: Pool,
    _key: ScoresReader,
    as_of: AsOf = None,
    explain: Annotated[QueryBool, Query(description="Add top feature contributions.")] = False,
) -> dict:
    return await _score(request, pool, customer_id, as_of, explain, {"source": "get_scores"})


@router.post(
    "/score", response_model=ScoresResponse, responses=error_responses(body=True, extra=_NO_MODELS)
)
async def post_score(request: Request, body: ScoreRequest, pool: Pool, _key: ScoresReader) -> dict:
    return await _score(
        request, pool, body.customer_id, body.as_of, body.explain, body.context_dict()
    )
