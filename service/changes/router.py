"""`GET /v1/changes`: the change feed, for tools that poll for what changed."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AfterValidator

from service.changes import cursor
from service.changes.schemas import Change, ChangePage
from service.changes.service import CHANGE_TYPES, ChangeFilter, read_page
from service.deps import Pool, ScoresReader
from service.identifiers import MAX_ID_LENGTH, normalise_id, state_id_pattern
from service.ops.responses import error_responses
from service.vocabulary import SEGMENTS

router = APIRouter(prefix="/v1", tags=["changes"])


def _position(value: str | None) -> int:
    if value is None:
        return 0
    try:
        return cursor.decode(value)
    except cursor.BadCursor as error:
        raise ValueError(str(error)) from None


def _types(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    wanted = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [kind for kind in wanted if kind not in CHANGE_TYPES]
    if unknown or not wanted:
        raise ValueError(f"unknown change type(s) {unknown}; known: {', '.join(CHANGE_TYPES)}")
    return wanted


def _segment(value: str | None) -> str | None:
    if value is not None and value not in SEGMENTS:
        raise ValueError(f"not a segment; one of: {', '.join(SEGMENTS)}")
    return value


@router.get(
    "/changes",
    response_model=ChangePage,
    summary="Changes of customers' scores since a cursor, oldest first",
    responses=error_responses(),
)
async def list_changes(
    pool: Pool,
    _key: ScoresReader,
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="`next_cursor` of the previous page; absent: from the oldest kept.",
        ),
        AfterValidator(_position),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    types: Annotated[
        str | None,
        Query(
            max_length=200,
            description=f"Comma-separated change types: {', '.join(CHANGE_TYPES)}.",
        ),
        AfterValidator(_types),
    ] = None,
    segment: Annotated[
        str | None,
        Query(description="Only changes into or out of this segment."),
        AfterValidator(_segment),
    ] = None,
    customer_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_ID_LENGTH,
            json_schema_extra=state_id_pattern,
            description="Only this customer's changes.",
        ),
        AfterValidator(lambda value: None if value is None else normalise_id(value)),
    ] = None,
) -> ChangePage:
    position = after or 0
    where = ChangeFilter(types=types or (), segment=segment, customer_id=customer_id)
    async with pool.acquire() as conn:
        page = await read_page(conn, position, limit, where)
    return ChangePage(
        data=[
            Change(
                id=cursor.change_id(row["seq"]),
                type=row["type"],
                customer_id=row["customer_id"],
                occurred_at=row["occurred_at"],
                before=None if row["before"] is None else json.loads(row["before"]),
                after=None if row["after"] is None else json.loads(row["after"]),
            )
            for row in page.rows
        ],
        next_cursor=cursor.encode(page.last_seq),
        has_more=page.has_more,
    )
