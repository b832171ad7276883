"""The Segment-compatible API: `POST /v1/batch` and `/v1/{track,identify,page,screen,alias,
group}`, authenticated with the write key (an `events:write` API key) as Basic-auth user
name, as a Bearer token, or as `writeKey` in the body."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPBasic

from service.deps import Pool, authorize
from service.ops.jsonbody import StrictJsonRoute
from service.ops.metrics import SEGMENT_MESSAGES
from service.ops.responses import error_responses
from service.sources.segment import service
from service.sources.segment.mapping import MESSAGE_TYPES
from service.sources.segment.schemas import MESSAGE_DESCRIPTION, SegmentAccepted, SegmentBatch

MAX_BATCH_MESSAGES = 10_000
# Documents the scheme in OpenAPI; the routes read the header themselves, since the key may
# also come in the body.
_BASIC = HTTPBasic(auto_error=False, description="Write key as user name, empty password")

router = APIRouter(
    prefix="/v1", tags=["segment"], route_class=StrictJsonRoute, dependencies=[Depends(_BASIC)]
)


def _presented_key(request: Request, document: dict[str, Any]) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            user = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            raise HTTPException(401, "Authorization: Basic credentials are not base64") from None
        if user:
            return user
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    key = document.get("writeKey")
    if isinstance(key, str) and key:
        return key
    raise HTTPException(
        401,
        "missing write key: send Authorization: Basic base64(<key>:) or writeKey in the body",
        headers={"WWW-Authenticate": "Basic"},
    )


def _envelope(document: Any, route_type: str | None) -> list[Any]:
    """The messages of a valid envelope, else 400 naming the field."""
    if not isinstance(document, dict):
        raise HTTPException(400, "body: must be a JSON object")
    for name in ("writeKey", "sentAt") if route_type is None else ("writeKey",):
        if document.get(name) is not None and not isinstance(document[name], str):
            raise HTTPException(400, f"{name}: must be a string")
    if route_type is not None:
        return [_without_key(document)]
    messages = document.get("batch")
    if not isinstance(messages, list):
        raise HTTPException(400, "batch: required, a list of messages")
    if len(messages) > MAX_BATCH_MESSAGES:
        raise HTTPException(
            400, f"batch: at most {MAX_BATCH_MESSAGES} messages, got {len(messages)}"
        )
    for index, item in enumerate(messages):
        if not isinstance(item, dict):
            raise HTTPException(400, f"batch.{index}: must be a JSON object (a message)")
    return [_without_key(item) for item in messages]


def _without_key(message: dict[str, Any]) -> dict[str, Any]:
    """The message without a `writeKey`: an API key must not be kept with held events or
    dead letters."""
    return {name: value for name, value in message.items() if name != "writeKey"}


async def _ingest(
    request: Request, pool: Pool, document: Any, route_type: str | None
) -> SegmentAccepted:
    messages = _envelope(document, route_type)
    await authorize(request, _presented_key(request, document), "events:write")
    settings = request.app.state.settings
    async with pool.acquire() as conn:
        outcome = await service.ingest(
            conn,
            request.app.state.event_rules,
            messages,
            datetime.now(UTC),
            document.get("sentAt") if route_type is None else None,
            route_type,
            settings.write_deadline_seconds,
        )
    for state, count in (
        ("accepted", outcome.accepted),
        ("duplicate", outcome.duplicates),
        ("held", outcome.held),
        ("dead_lettered", outcome.dead_lettered),
        ("custom", outcome.custom),
    ):
        SEGMENT_MESSAGES.labels(outcome=state).inc(count)
    return SegmentAccepted(success=True)


_RESPONSES = error_responses(body=True, validated=False, extra={400: "The envelope is not a batch"})


@router.post(
    "/batch",
    response_model=SegmentAccepted,
    summary="Segment-compatible batch of calls",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": SegmentBatch.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    )
                }
            },
        },
        "security": [{"HTTPBearer": []}],
    },
    responses=_RESPONSES,
)
async def segment_batch(request: Request, pool: Pool) -> SegmentAccepted:
    return await _ingest(request, pool, await request.json(), None)


_SINGLE_MESSAGE = {"type": "object", "description": MESSAGE_DESCRIPTION}


def _single_route(kind: str):
    async def segment_call(request: Request, pool: Pool) -> SegmentAccepted:
        return await _ingest(request, pool, await request.json(), kind)

    segment_call.__name__ = f"segment_{kind}"
    router.add_api_route(
        f"/{kind}",
        segment_call,
        methods=["POST"],
        response_model=SegmentAccepted,
        summary=f"Segment-compatible {kind} call",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _SINGLE_MESSAGE}},
            },
            "security": [{"HTTPBearer": []}],
        },
        responses=_RESPONSES,
    )


for _kind in MESSAGE_TYPES:
    _single_route(_kind)
