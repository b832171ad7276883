"""`POST /v1/events`: batches of customer events, validated one by one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from service.deps import Pool, ScopedBearer
from service.events.schemas import EventBatch, IngestResponse
from service.events.service import store_events
from service.ops.metrics import EVENTS_DUPLICATE, EVENTS_INGESTED, EVENTS_REJECTED
from service.ops.responses import error_responses

router = APIRouter(prefix="/v1", tags=["events"])


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def parse_batch(body: bytes, max_events: int) -> list:
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise HTTPException(400, f"body is not valid JSON: {error}") from None
    if not isinstance(document, dict) or "events" not in document:
        raise HTTPException(422, 'body must be an object with an "events" list')
    extra = sorted(set(document) - {"events"})
    if extra:
        raise HTTPException(422, f"unknown top-level field(s): {', '.join(extra)}")
    events = document["events"]
    if not isinstance(events, list):
        raise HTTPException(422, "events: must be a list")
    if not 1 <= len(events) <= max_events:
        raise HTTPException(422, f"events: must hold 1 to {max_events} events, got {len(events)}")
    return events


@router.post(
    "/events",
    response_model=IngestResponse,
    summary="Ingest a batch of customer events",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EventBatch.openapi_schema()}},
        }
    },
    responses=error_responses(body=True),
)
async def ingest_events(
    request: Request,
    pool: Pool,
    _key: Annotated[object, Depends(ScopedBearer("events:write"))],
) -> IngestResponse:
    settings = request.app.state.settings
    body = await read_limited_body(request, settings.max_body_bytes)
    raws = parse_batch(body, settings.max_batch_events)
    staged, rejected = request.app.state.event_rules.stage_all(raws, datetime.now(UTC))
    outcome = None
    if staged:
        async with pool.acquire() as conn:
            outcome = await store_events(conn, staged, settings.write_deadline_seconds)
    rejected.extend(outcome.rejected if outcome else [])
    rejected.sort(key=lambda r: r.index)
    accepted = outcome.accepted if outcome else 0
    duplicates = outcome.duplicates if outcome else 0
    EVENTS_INGESTED.inc(accepted)
    EVENTS_DUPLICATE.inc(duplicates)
    EVENTS_REJECTED.inc(len(rejected))
    return IngestResponse(accepted=accepted, duplicates=duplicates, rejected=rejected)
