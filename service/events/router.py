"""`POST /v1/events`: batches of customer events, validated one by one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from service.deps import Pool, ScopedBearer
from service.events.schemas import EventBatch, IngestResponse
from service.events.service import store_events
from service.ops.jsonbody import StrictJsonRoute
from service.ops.metrics import EVENTS_DUPLICATE, EVENTS_INGESTED, EVENTS_REJECTED
from service.ops.responses import error_responses

router = APIRouter(prefix="/v1", tags=["events"], route_class=StrictJsonRoute)


def parse_batch(document: object, max_events: int) -> list:
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
    # Size, encoding and type were checked by service.ops.limits; the strict parser
    # refuses duplicate keys and non-finite numbers.
    raws = parse_batch(await request.json(), settings.max_batch_events)
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
