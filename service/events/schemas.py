"""Wire shapes of `POST /v1/events` and the per-event validation rules."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from service.identifiers import Identifier
from service.timefmt import Timestamp
from service.vocabulary import CONSENT_CHANNELS, EVENT_TYPES, ORDER_TYPES

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]

_DECIMAL_STRING = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$")
MAX_AMOUNT = Decimal("1e12")


Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$", strict=True)]


class Event(BaseModel):
    """One customer event; `extra` fields are refused so nothing is silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Identifier
    customer_id: Identifier
    type: EventType
    occurred_at: Timestamp
    properties: dict[str, Any] = Field(default_factory=dict, max_length=100)
    order_id: Identifier | None = None
    amount: Decimal | None = Field(default=None, ge=0, le=MAX_AMOUNT, decimal_places=4)
    currency: Currency | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _amount_is_number_or_numeric_string(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int | float | None):
            raise ValueError("must be a decimal number or a numeric string")
        if isinstance(value, str) and not _DECIMAL_STRING.match(value):
            raise ValueError('must be a plain decimal string such as "12.50"')
        if isinstance(value, float) and value != value:
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _type_rules(self) -> Event:
        if self.type in ORDER_TYPES:
            for field in ("order_id", "amount"):
                if getattr(self, field) is None:
                    raise ValueError(f"{field}: required for {self.type}")
        else:
            for field in ("order_id", "amount", "currency"):
                if getattr(self, field) is not None:
                    raise ValueError(f"{field}: only allowed on order events")
        _PROPERTY_RULES.get(self.type, _no_rule)(self.properties)
        return self


def _no_rule(properties: dict[str, Any]) -> None:
    return None


class _SurveyProperties(BaseModel):
    csat: StrictInt | None = Field(default=None, ge=1, le=5)
    nps: StrictInt | None = Field(default=None, ge=0, le=10)

    @model_validator(mode="after")
    def _one_of(self) -> _SurveyProperties:
        if self.csat is None and self.nps is None:
            raise ValueError("needs csat (1-5) and/or nps (0-10)")
        return self


class _ConsentProperties(BaseModel):
    channel: Literal[CONSENT_CHANNELS]  # type: ignore[valid-type]
    granted: StrictBool


class _IdentifyProperties(BaseModel):
    traits: dict[str, Any]


class _CustomProperties(BaseModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strict=True)]


class _OfferAcceptedProperties(BaseModel):
    decision_id: Identifier


def _checker(model: type[BaseModel]):
    def check(properties: dict[str, Any]) -> None:
        try:
            model.model_validate(properties)
        except ValidationError as error:
            raise ValueError(describe_error(error, prefix="properties")) from None

    return check


def describe_error(error: ValidationError, prefix: str = "") -> str:
    """One readable line per problem, each naming its field."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "")
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location and ": " not in message[:40] else message)
    return "; ".join(parts)


_PROPERTY_RULES = {
    "survey_response": _checker(_SurveyProperties),
    "consent_updated": _checker(_ConsentProperties),
    "identify": _checker(_IdentifyProperties),
    "offer_accepted": _checker(_OfferAcceptedProperties),
    "custom": _checker(_CustomProperties),
}


class Rejection(BaseModel):
    index: int = Field(description="Position of the event in the request's `events` list.")
    event_id: str | None = Field(description="The event's id when it could be read.")
    error: str = Field(description="What is wrong, naming the field.")


class IngestResponse(BaseModel):
    accepted: int = Field(description="Events stored now.")
    duplicates: int = Field(description="Events already stored with identical content.")
    rejected: list[Rejection]


# Any JSON value is taken into the batch: each is then validated as an Event on its own, and
# one that is not an Event is reported in the answer's `rejected`, not refused with the batch.
BatchItem = Annotated[
    Any,
    WithJsonSchema(
        {
            "description": "An Event (components/schemas/Event); one that is not valid is "
            "listed in the answer's `rejected` instead of failing the batch."
        }
    ),
]


class EventBatch(BaseModel):
    """Documents the request body; the route parses it itself so that one bad event
    is rejected alone instead of failing the whole batch."""

    model_config = ConfigDict(extra="forbid")

    events: list[BatchItem] = Field(min_length=1, max_length=1000)

    @classmethod
    def openapi_schema(cls) -> dict:
        schema = cls.model_json_schema(ref_template="#/components/schemas/{model}")
        event = Event.model_json_schema(ref_template="#/components/schemas/{model}")
        schema.setdefault("$defs", {})["Event"] = event
        return schema
