"""Wire shapes of the offer catalog, `/v1/offers` (admin)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from service.identifiers import MAX_ID_LENGTH, normalise_id
from service.timefmt import Timestamp
from service.vocabulary import OFFER_CHANNELS, SEGMENTS, ChurnBandName, ValueTierName

Channel = Literal[OFFER_CHANNELS]  # type: ignore[valid-type]
Segment = Literal[SEGMENTS]  # type: ignore[valid-type]
ValueTier = ValueTierName
ChurnBand = ChurnBandName

MAX_MONEY = Decimal("1e12")
# A money string is a plain decimal of at most 4 places from 0 to 10^12 (no exponent, sign,
# underscore or blank), so that the schema's pattern and the validation agree.
MONEY_PATTERN = r"^(\d{1,12}(\.\d{1,4})?|1000000000000(\.0{1,4})?)$"
_MONEY_STRING = re.compile(MONEY_PATTERN)


def _money_input(value: Any) -> Any:
    if isinstance(value, str) and not _MONEY_STRING.match(value):
        raise ValueError('must be a number or a plain decimal string such as "12.50"')
    return value


def _json_number(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON integer")
    return value


# JSON Schema's integer: 3 and 3.0, not "3" nor true (which lax int would take).
JsonInteger = Annotated[int, BeforeValidator(_json_number)]

Money = Annotated[
    Decimal,
    BeforeValidator(_money_input),
    Field(ge=0, le=MAX_MONEY, decimal_places=4, allow_inf_nan=False),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1e12, "multipleOf": 0.0001},
                {"type": "string", "pattern": MONEY_PATTERN},
            ]
        }
    ),
]
# The shared id rule, narrowed to a plain ASCII charset (NFC leaves it unchanged); the
# pattern sits with the length limits so that the OpenAPI schema shows it.
OfferId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[A-Za-z0-9._:-]+$"),
    AfterValidator(normalise_id),
]
_NON_PRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The schema's statement of _printable_name (lone surrogates cannot be sent as UTF-8 JSON).
PRINTABLE_NOT_BLANK = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"


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
    min_days_since_last_offer: JsonInteger = Field(
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

    name: str = Field(
        min_length=1, max_length=200, json_schema_extra={"pattern": PRINTABLE_NOT_BLANK}
    )
    channel: Channel
    value: Money = Field(description="Expected margin if accepted.")
    cost: Money = Field(description="Cost of making the offer (charged to the budget).")
    starts_at: Timestamp | None = Field(default=None, description="Inclusive; null: now.")
    ends_at: Timestamp | None = Field(
        default=None,
        description="Exclusive; null: open. At or before starts_at: an empty window, so the "
        "offer is never offered.",
    )
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


class OfferCreate(OfferFields):
    offer_id: OfferId = Field(description="Your id: letters, digits and . _ : - (1..128).")


class OfferReplace(OfferFields):
    """The id is the path's: a body `offer_id` is refused like any unknown field (a rule
    "must equal the path" could not be stated in the schema)."""


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
