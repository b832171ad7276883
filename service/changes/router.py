"""`GET /v1/changes`: the change feed, for tools that poll for what changed."""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AfterValidator

from service.changes import cursor
from service.changes.schemas import Change, ChangePage
from service.changes.service import CHANGE_TYPES, ChangeFilter, read_page, wire_fields
from service.deps import Pool, ScoresReader
from service.identifiers import MAX_ID_LENGTH, normalise_id, state_id_pattern
from service.ops.responses import error_responses
from service.vocabulary import SEGMENTS

router = APIRouter(prefix="/v1", tags=["changes"])


# Every comma-separated list of known types, and nothing else.
_ONE_TYPE = "(" + "|".join(re.escape(kind) for kind in CHANGE_TYPES) + ")"
TYPES_PATTERN = f"^{_ONE_TYPE}(,{_ONE_TYPE})*$"


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
            pattern=cursor.PATTERN,
            description="`next_cursor` of the previous page; absent: from the oldest kept.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    types: Annotated[
        str | None,
        Query(
            pattern=TYPES_PATTERN,
            description=f"Comma-separated change types: {', '.join(CHANGE_TYPES)}.",
        ),
    ] = None,
    segment: Annotated[
        Literal[SEGMENTS] | None,  # type: ignore[valid-type]
        Query(description="Only changes into or out of this segment."),
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
    position = cursor.decode(after) if after else 0
    where = ChangeFilter(
        types=tuple(types.split(",")) if types else (), segment=segment, customer_id=customer_id
    )
    async with pool.acquire() as conn:
        page = await read_page(conn, position, limit, where)
    return ChangePage(
        data=[
            Change(
                id=cursor.change_id(row["seq"]),
                type=row["type"],
                customer_id=row["customer_id"],
                erasure_id=row["erasure_id"],
                occurred_at=row["occurred_at"],
                **wire_fields(row["type"], _document(row["before"]), _document(row["after"])),
            )
            for row in page.rows
        ],
        next_cursor=cursor.encode(page.last_seq),
        has_more=page.has_more,
    )


def _document(text: str | None) -> dict | None:
    return None if text is None else json.loads(text)
