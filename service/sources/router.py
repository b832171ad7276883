"""`GET /v1/dead-letters` (admin): what the sources sent that could not be stored."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from service.deps import Pool, ScopedBearer
from service.ops.responses import error_responses
from service.sources import dead_letters
from service.sources.schemas import DeadLetterOut, DeadLetterPage

router = APIRouter(prefix="/v1", tags=["sources"], dependencies=[Depends(ScopedBearer("admin"))])

SourceName = Literal["segment", "shopify", "stripe", "nats"]


@router.get(
    "/dead-letters",
    response_model=DeadLetterPage,
    summary="List dead letters, oldest first",
    responses=error_responses(),
)
async def list_dead_letters(
    pool: Pool,
    after: Annotated[
        str | None, Query(max_length=20, description="`next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    source: SourceName | None = None,
) -> DeadLetterPage:
    position = _cursor(after)
    async with pool.acquire() as conn:
        rows = await dead_letters.page(conn, position, limit + 1, source)
    more = len(rows) > limit
    rows = rows[:limit]
    return DeadLetterPage(
        data=[DeadLetterOut(**vars(row)) for row in rows],
        next_cursor=str(rows[-1].id) if rows else after,
        has_more=more,
    )


def _cursor(after: str | None) -> int:
    if after is None:
        return 0
    if not after.isascii() or not after.isdigit():
        raise HTTPException(422, "after: not a cursor this API gave (use next_cursor)")
    return int(after)
