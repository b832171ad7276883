"""Wire shapes of the offer catalog, `/v1/offers` (admin)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from service.identifiers import MAX_ID_LENGTH, normalise_id
from service.vocabulary import CHURN_BANDS, OFFER_CHANNELS, SEGMENTS, VALUE_TIERS

Channel = Literal[OFFER_CHANNELS]  # type: ignore[valid-type]
Segment = Literal[SEGMENTS]  # type: ignore[valid-type]
ValueTier = Literal[VALUE_TIERS]  # type: ignore[valid-type]
ChurnBand = Literal[CHURN_BANDS]  # type: ignore[valid-type]

MAX_MONEY = Decimal("1e12")
Money = Annotated[Decimal, Field(ge=0, le=MAX_MONEY, decimal_places=4, allow_inf_nan=False)]
# The shared id rule, narrowed to a plain ASCII charset (NFC leaves it unchanged); the
# pattern sits with the length limits so that the OpenAPI schema shows it.
OfferId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[A-Za-z0-9._:-]+$"),
    AfterValidator(normalise_id),
]
_NON_PRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _unique(values: list[str] | None) -> list[str] | None:
    return None if values is None else list(dict.fromkeys(values))


class Eligibility(BaseModel):
    """Who may get the offer. A null list means any; an empty list is refused (nobody)."""

    model_config = ConfigDict(extra="forbid")

    segments: list[Segment] | None = Field(
        default=None, min_length=1, description="RFM segment names; null: any."
    )
    value_tiers: list[ValueTier] | None = Field(
        default=None, min_length=1, description="pCLTV tiers; null: any."
    )
    churn_bands: list[ChurnBand] | None = Field(
        default=None, min_length=1, description="Churn bands; null: any."
    )
    min_days_since_last_offer: int = Field(
        default=0,
        ge=0,
        le=3650,
        description="Days that must have passed since this customer's last offer (any offer).",
    )

    _dedupe = field_validator("segments", "value_tiers", "churn_bands")(
        lambda values: _unique(values)
    )


class OfferFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel: Channel
    value: Money = Field(description="Expected margin if accepted.")
    cost: Money = Field(description="Cost of making the offer (charged to the budget).")
    starts_at: AwareDatetime | None = Field(default=None, description="Inclusive; null: now.")
    ends_at: AwareDatetime | None = Field(default=None, description="Exclusive; null: open.")
    eligibility: Eligibility = Field(default_factory=Eligibility)
    budget: Money | None = Field(
        default=None, description="Total cost budget; null: unlimited. Exhausted: not offered."
    )

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        if _NON_PRINTABLE.search(value):
            raise ValueError("must contain only printable characters")
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("ends_at")
    @classmethod
    def _ends_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        starts_at = info.data.get("starts_at")
        if value is not None and starts_at is not None and value <= starts_at:
            raise ValueError("must be after starts_at")
        return value


class OfferCreate(OfferFields):
    offer_id: OfferId = Field(description="Your id: letters, digits and . _ : - (1..128).")


class OfferReplace(OfferFields):
    offer_id: OfferId | None = Field(
        default=None, description="Optional; when given it must equal the id in the path."
    )


class Offer(BaseModel):
    offer_id: str
    name: str
    channel: Channel
    value: float
    cost: float
    starts_at: datetime | None
    ends_at: datetime | None
    eligibility: Eligibility
    budget: float | None
    spent: float = Field(description="Cost charged so far by offers made.")
    budget_remaining: float | None
    active: bool = Field(
        description="Offerable now: not deleted, inside its window, budget covers its cost."
    )
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class OfferList(BaseModel):
    offers: list[Offer]
