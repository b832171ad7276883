"""`GET /v1/dead-letters` (admin): what the sources sent that could not be stored."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from service.deps import PageCursor, Pool, ScopedBearer
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
    after: PageCursor = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    source: SourceName | None = None,
) -> DeadLetterPage:
    position = int(after) if after else 0
    async with pool.acquire() as conn:
        rows = await dead_letters.page(conn, position, limit + 1, source)
    more = len(rows) > limit
    rows = rows[:limit]
    return DeadLetterPage(
        data=[DeadLetterOut(**vars(row)) for row in rows],
        next_cursor=str(rows[-1].id) if rows else after,
        has_more=more,
    )
