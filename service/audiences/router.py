"""`GET /v1/audiences`: lists of customers by segment, tier and churn band, for CRMs and
email tools that import them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from service.audiences.service import (
    COLUMNS,
    AudienceQuery,
    csv_lines,
    members,
    ndjson_lines,
)
from service.deps import Pool, ScoresReader
from service.identifiers import MAX_ID_LENGTH, state_id_pattern
from service.ops.responses import error_responses
from service.vocabulary import SEGMENTS, ChurnBandName, ValueTierName

router = APIRouter(prefix="/v1", tags=["audiences"])

MAX_PAGE = 50_000
_LINE_SCHEMA = {
    "type": "object",
    "properties": {name: {} for name in COLUMNS},
    "required": list(COLUMNS),
}


@router.get(
    "/audiences",
    response_class=StreamingResponse,
    summary="Customers of a segment, tier or churn band, as CSV or NDJSON",
    responses={
        **error_responses(),
        200: {
            "description": "One line per customer in `customer_id` order (CSV: after a "
            "header line). `X-Next-Cursor` (and a `Link` header) give the next page, "
            "absent on the last one.",
            "content": {
                "application/x-ndjson": {"schema": _LINE_SCHEMA},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
    },
)
async def export_audience(
    request: Request,
    pool: Pool,
    _key: ScoresReader,
    segment: Annotated[Literal[SEGMENTS] | None, Query()] = None,  # type: ignore[valid-type]
    tier: Annotated[ValueTierName | None, Query()] = None,
    churn_band: Annotated[ChurnBandName | None, Query()] = None,
    format: Annotated[Literal["ndjson", "csv"], Query()] = "ndjson",
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_ID_LENGTH,
            json_schema_extra=state_id_pattern,
            description="`X-Next-Cursor` of the previous page (its last customer id).",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 10_000,
) -> StreamingResponse:
    query = AudienceQuery(segment, tier, churn_band, after or "", limit)
    async with pool.acquire() as conn:
        rows, next_cursor = await members(conn, query)
    headers = {}
    if next_cursor is not None:
        headers["X-Next-Cursor"] = next_cursor
        headers["Link"] = f'<{request.url.include_query_params(after=next_cursor)}>; rel="next"'
    if format == "csv":
        return StreamingResponse(csv_lines(rows), media_type="text/csv", headers=headers)
    return StreamingResponse(ndjson_lines(rows), media_type="application/x-ndjson", headers=headers)
