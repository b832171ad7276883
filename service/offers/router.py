"""`/v1/offers`: the offer catalog (admin scope)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import AfterValidator

from service.deps import ADMIN_BEARER, Admin, Connection, QueryBool
from service.identifiers import MAX_ID_LENGTH, normalise_id, state_id_pattern
from service.offers import service
from service.offers.schemas import Offer, OfferCreate, OfferList, OfferReplace
from service.ops.jsonbody import StrictJsonRoute
from service.ops.responses import error_responses

router = APIRouter(
    prefix="/v1/offers",
    route_class=StrictJsonRoute,
    tags=["offers"],
    dependencies=[Depends(ADMIN_BEARER)],
)

OfferIdPath = Annotated[
    str,
    Path(min_length=1, max_length=MAX_ID_LENGTH, json_schema_extra=state_id_pattern),
    AfterValidator(normalise_id),
]
_NOT_FOUND = {404: "Unknown or deleted offer"}


def _missing(offer_id: str) -> HTTPException:
    return HTTPException(404, f"offer {offer_id!r} does not exist (or was deleted)")


@router.post(
    "",
    response_model=Offer,
    summary="Create an offer",
    responses=error_responses(
        body=True, extra={409: "The offer id is taken (ids of deleted offers too)"}
    ),
)
async def create_offer(body: OfferCreate, conn: Connection, admin: Admin) -> dict:
    async with conn.begin():
        row = await service.create_offer(conn, body.offer_id, body, admin.name)
        if row is None:
            existing = await service.find_offer(conn, body.offer_id, include_deleted=True)
    if row is None:
        deleted = existing is not None and existing["deleted_at"] is not None
        detail = f"offer {body.offer_id!r} already exists"
        if deleted:
            detail += " (deleted; ids are not reused so past decisions stay attributable)"
        raise HTTPException(409, detail)
    return service.to_response(row, datetime.now(UTC))


@router.get(
    "",
    response_model=OfferList,
    summary="List offers (deleted ones are hidden)",
    responses=error_responses(),
)
async def list_offers(
    conn: Connection,
    active: Annotated[
        QueryBool | None,
        Query(description="true: only offers offerable now; false: only those that are not."),
    ] = None,
) -> dict:
    now = datetime.now(UTC)
    rows = await service.list_offers(conn)
    shown = [service.to_response(row, now) for row in rows]
    if active is not None:
        shown = [offer for offer in shown if offer["active"] is active]
    return {"offers": shown}


@router.get(
    "/{offer_id}",
    response_model=Offer,
    summary="Read an offer",
    responses=error_responses(extra=_NOT_FOUND),
)
async def get_offer(offer_id: OfferIdPath, conn: Connection) -> dict:
    row = await service.find_offer(conn, offer_id)
    if row is None:
        raise _missing(offer_id)
    return service.to_response(row, datetime.now(UTC))


@router.put(
    "/{offer_id}",
    response_model=Offer,
    summary="Replace an offer (its spent budget and creation time are kept)",
    responses=error_responses(body=True, extra=_NOT_FOUND),
)
async def replace_offer(
    offer_id: OfferIdPath, body: OfferReplace, conn: Connection, admin: Admin
) -> dict:
    now = datetime.now(UTC)
    async with conn.begin():
        row = await service.replace_offer(conn, offer_id, body, now, admin.name)
    if row is None:
        raise _missing(offer_id)
    return service.to_response(row, now)


@router.delete(
    "/{offer_id}",
    response_model=Offer,
    summary="Delete an offer (soft: hidden and never offered; returns the deleted offer)",
    responses=error_responses(extra=_NOT_FOUND),
)
async def delete_offer(offer_id: OfferIdPath, conn: Connection, admin: Admin) -> dict:
    now = datetime.now(UTC)
    async with conn.begin():
        row = await service.delete_offer(conn, offer_id, now, admin.name)
    if row is None:
        raise _missing(offer_id)
    return service.to_response(row, now)
