"""`GET /v1/audit` (admin): who did what to keys, offers, webhooks, sources, models and
customers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.audit import service
from service.audit.schemas import AuditEntryOut, AuditPage
from service.deps import ADMIN_BEARER, PageCursor, Pool
from service.ops.responses import error_responses
from service.timefmt import Timestamp

router = APIRouter(prefix="/v1", tags=["audit"], dependencies=[Depends(ADMIN_BEARER)])


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="List audit entries, oldest first",
    responses=error_responses(),
)
async def list_audit(
    pool: Pool,
    after: PageCursor = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Only this action, exactly.")
    ] = None,
    actor: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Only this actor, exactly.")
    ] = None,
    since: Annotated[
        Timestamp | None, Query(description="RFC 3339 with offset; entries at or after it.")
    ] = None,
    until: Annotated[
        Timestamp | None, Query(description="RFC 3339 with offset; entries before it.")
    ] = None,
) -> AuditPage:
    position = int(after) if after else 0
    where = service.AuditFilter(action=action, actor=actor, since=since, until=until)
    async with pool.acquire() as conn:
        rows = await service.page(conn, position, limit + 1, where)
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(
        data=[AuditEntryOut(**vars(row)) for row in rows],
        next_cursor=str(rows[-1].id) if rows else after,
        has_more=more,
    )
