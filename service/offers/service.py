"""The offer catalog in PostgreSQL: create, list, read, replace, soft-delete.

Deleted offers keep their row (and their id: ids are never reused) so that
logged decisions stay attributable.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.audit import service as audit
from service.offers.models import offers
from service.offers.policy import OfferSpec
from service.offers.schemas import OfferFields


def _stored(data: OfferFields) -> dict[str, Any]:
    rules = data.eligibility
    return {
        "name": data.name,
        "channel": data.channel,
        "value": data.value,
        "cost": data.cost,
        "starts_at": data.starts_at,
        "ends_at": data.ends_at,
        "eligible_segments": rules.segments,
        "eligible_value_tiers": rules.value_tiers,
        "eligible_churn_bands": rules.churn_bands,
        "min_days_since_last_offer": rules.min_days_since_last_offer,
        "budget": data.budget,
    }


def _set(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


def spec_from_row(row: Mapping[str, Any]) -> OfferSpec:
    """A stored offer as the policy sees it."""
    return OfferSpec(
        offer_id=row["offer_id"],
        name=row["name"],
        channel=row["channel"],
        value=Decimal(row["value"]),
        cost=Decimal(row["cost"]),
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        segments=_set(row["eligible_segments"]),
        value_tiers=_set(row["eligible_value_tiers"]),
        churn_bands=_set(row["eligible_churn_bands"]),
        min_days_since_last_offer=row["min_days_since_last_offer"],
        budget=None if row["budget"] is None else Decimal(row["budget"]),
        spent=Decimal(row["spent"]),
    )


def is_active(row: Mapping[str, Any], now: datetime) -> bool:
    """Offerable to someone now: the policy's own window and budget rules."""
    if row["deleted_at"] is not None:
        return False
    spec = spec_from_row(row)
    return spec.is_live(now) and spec.budget_allows()


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def to_response(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    budget, spent = row["budget"], row["spent"]
    return {
        "offer_id": row["offer_id"],
        "name": row["name"],
        "channel": row["channel"],
        "value": float(row["value"]),
        "cost": float(row["cost"]),
        "starts_at": row["starts_at"],
        "ends_at": row["ends_at"],
        "eligibility": {
            "segments": row["eligible_segments"],
            "value_tiers": row["eligible_value_tiers"],
            "churn_bands": row["eligible_churn_bands"],
            "min_days_since_last_offer": row["min_days_since_last_offer"],
        },
        "budget": _money(budget),
        "spent": float(spent),
        "budget_remaining": None if budget is None else float(max(budget - spent, Decimal(0))),
        "active": is_active(row, now),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "deleted_at": row["deleted_at"],
    }


async def create_offer(
    conn: AsyncConnection, offer_id: str, data: OfferFields, actor: str
) -> Mapping[str, Any] | None:
    """The new row, or None when the id is taken (also by a deleted offer). Audited in the
    caller's transaction."""
    written = _stored(data)
    result = await conn.execute(
        insert(offers)
        .values(offer_id=offer_id, **written)
        .on_conflict_do_nothing(index_elements=["offer_id"])
        .returning(*offers.c)
    )
    row = result.mappings().first()
    if row is None:
        return None
    # As stored (money at its scale), not as sent.
    fields = {field: row[field] for field in written}
    await audit.record_sa(conn, actor, "offer.created", offer_id, fields)
    return dict(row)


async def find_offer(
    conn: AsyncConnection, offer_id: str, include_deleted: bool = False, lock: bool = False
) -> Mapping[str, Any] | None:
    query = select(offers).where(offers.c.offer_id == offer_id)
    if not include_deleted:
        query = query.where(offers.c.deleted_at.is_(None))
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def list_offers(conn: AsyncConnection) -> list[Mapping[str, Any]]:
    """Every offer not deleted, by id."""
    query = select(offers).where(offers.c.deleted_at.is_(None)).order_by(offers.c.offer_id)
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def replace_offer(
    conn: AsyncConnection, offer_id: str, data: OfferFields, now: datetime, actor: str
) -> Mapping[str, Any] | None:
    """Replace every editable field (spent and created_at stay); None if unknown or deleted.
    Audited with the fields that changed, in the caller's transaction."""
    # Locked, so that no other replacement lands between the fields read and those written.
    before = await find_offer(conn, offer_id, lock=True)
    if before is None:
        return None
    written = _stored(data)
    result = await conn.execute(
        update(offers)
        .where(offers.c.offer_id == offer_id)
        .values(**written, updated_at=now)
        .returning(*offers.c)
    )
    row = dict(result.mappings().one())
    changed = audit.changed_fields(before, row, written)
    await audit.record_sa(conn, actor, "offer.updated", offer_id, changed)
    return row


async def delete_offer(
    conn: AsyncConnection, offer_id: str, now: datetime, actor: str
) -> Mapping[str, Any] | None:
    """Soft delete; None if unknown or already deleted. Audited in the caller's transaction."""
    result = await conn.execute(
        update(offers)
        .where(offers.c.offer_id == offer_id, offers.c.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now)
        .returning(*offers.c)
    )
    row = result.mappings().first()
    if row is None:
        return None
    await audit.record_sa(conn, actor, "offer.deleted", offer_id, {"name": row["name"]})
    return dict(row)
