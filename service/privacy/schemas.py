"""Wire shapes of erasure and export."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from service.changes.schemas import ScoreSnapshot
from service.customers.schemas import Profile
from service.features.schemas import Features


class Erasure(BaseModel):
    erasure_id: str = Field(
        description="Names this erasure; the `customer.erased` change carries it (and not "
        "the customer id, which is no longer held anywhere)."
    )
    erased_at: datetime
    previously_erased: bool = Field(
        description="The id was already tombstoned by an earlier erasure."
    )
    deleted: dict[str, int] = Field(description="Rows deleted, by table.")


class ConsentChange(BaseModel):
    channel: str
    granted: bool
    occurred_at: datetime
    event_id: str
    source: str | None = Field(
        description="Where it came from: api, import, segment, shopify, stripe or nats; "
        "null for consent stated before sources were recorded."
    )


class StoredScores(BaseModel):
    as_of: date
    churn_probability: float
    churn_band: str
    pcltv: float
    pcltv_tier: str
    segment: str
    r: int
    f: int
    m: int
    model_versions: dict[str, str | None]
    updated_at: datetime


class ExportedChange(BaseModel):
    id: str
    type: str
    occurred_at: datetime
    before: ScoreSnapshot | None
    after: ScoreSnapshot | None


class ExportedDecision(BaseModel):
    decision_id: str
    decided_at: datetime
    offer_id: str | None
    group: str
    reason: str
    propensity: float | None
    expected_value: float | None
    model_version: str | None
    context: dict[str, Any]


class IdentityLink(BaseModel):
    anonymous_id: str
    linked_at: datetime


class HeldDeadLetter(BaseModel):
    source: str
    reason: str
    payload: Any
    first_seen_at: datetime
    last_seen_at: datetime


class CustomerExport(BaseModel):
    """Everything held about one customer. `events` are in `POST /v1/events` shape: sent
    to an empty service they rebuild the same features."""

    customer_id: str
    exported_at: datetime
    profile: Profile
    consent_history: list[ConsentChange]
    features: Features | None = Field(description="As of now; null without events up to now.")
    scores: StoredScores | None = Field(description="The stored scores, if any.")
    score_changes: list[ExportedChange]
    offer_decisions: list[ExportedDecision]
    identity_links: list[IdentityLink]
    dead_letters: list[HeldDeadLetter]
    events: list[dict[str, Any]]
