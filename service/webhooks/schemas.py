"""Wire shapes of `/v1/webhooks` (admin)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from service.changes.service import CHANGE_TYPES
from service.timefmt import Timestamp
from service.vocabulary import SEGMENTS, ChurnBandName, ValueTierName
from service.webhooks.targets import MAX_URL_LENGTH, URL_PATTERN, check_syntax

# The change types of the feed are the webhooks' event types.
EVENT_TYPES: tuple[str, ...] = CHANGE_TYPES
DELIVERY_STATUSES: tuple[str, ...] = ("pending", "delivered", "failed", "cancelled")

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
DeliveryStatus = Literal[DELIVERY_STATUSES]  # type: ignore[valid-type]
Segment = Literal[SEGMENTS]  # type: ignore[valid-type]
ChurnBand = ChurnBandName
ValueTier = ValueTierName

WEBHOOK_ID_PATTERN = r"^wh_[0-9a-f]{16}$"
DELIVERY_ID_PATTERN = r"^msg_[0-9a-f]{24}$"
CHANGE_ID_PATTERN = r"^chg_[0-9]{1,18}$"
MAX_DESCRIPTION_LENGTH = 500
# PostgreSQL text holds no NUL, and a lone surrogate (a JSON \ud800 escape) is not UTF-8.
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The schema's statement of _storable_text (no JSON Schema string can hold a lone surrogate).
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]*$"


def _storable_text(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError("must contain only printable characters")
    return value


def _distinct(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("must not name a type twice")
    return values


def _absent_is_unchanged(schema: dict[str, Any]) -> None:
    """A PATCH field may be left out (unchanged), which no default states."""
    for field in schema["properties"].values():
        field.pop("default", None)


WebhookUrl = Annotated[
    str,
    StringConstraints(max_length=MAX_URL_LENGTH),
    Field(json_schema_extra={"pattern": URL_PATTERN}),
    AfterValidator(check_syntax),
]
EventTypes = Annotated[
    list[EventType],
    Field(min_length=1, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
]
Description = Annotated[
    str,
    StringConstraints(max_length=MAX_DESCRIPTION_LENGTH),
    Field(json_schema_extra={"pattern": PRINTABLE}),
    AfterValidator(_storable_text),
]


class Filters(BaseModel):
    """Which changes are sent, compared between the change's `before` and `after` scores;
    every filter given must hold. `*_entered`: the value is X after and was not before
    (or there was no before). `*_left`: it was X before and is not after."""

    model_config = ConfigDict(extra="forbid")

    churn_band_entered: ChurnBand | None = None
    churn_band_left: ChurnBand | None = None
    segment_entered: Segment | None = None
    segment_left: Segment | None = None
    tier_entered: ValueTier | None = Field(default=None, description="pCLTV tier entered.")
    tier_left: ValueTier | None = Field(default=None, description="pCLTV tier left.")


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl = Field(
        description="http(s) URL receiving the POSTs; its host must resolve only to public "
        "addresses (unless SCORER_WEBHOOK_ALLOW_PRIVATE_TARGETS=true)."
    )
    event_types: EventTypes = Field(
        default_factory=lambda: list(EVENT_TYPES), description="Default: every type."
    )
    filters: Filters = Field(default_factory=Filters)
    description: Description | None = None


class WebhookUpdate(BaseModel):
    """The fields to change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_absent_is_unchanged)

    # Typed without None: a field sent as null is refused, not taken as "unchanged".
    url: WebhookUrl = None  # type: ignore[assignment]
    event_types: EventTypes = None  # type: ignore[assignment]
    filters: Filters = None  # type: ignore[assignment]
    description: Description | None = Field(default=None, description="null: none.")
    enabled: bool = Field(
        default=None,  # type: ignore[arg-type]
        description="false pauses the webhook (nothing is fanned out or sent); true resumes "
        "it where it stopped.",
    )


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: int = Field(
        default=86400,
        ge=0,
        le=7 * 86400,
        description="How long the previous secret keeps signing alongside the new one.",
    )


class Webhook(BaseModel):
    id: str = Field(description="wh_…")
    url: str
    description: str | None
    event_types: list[EventType]
    filters: Filters
    enabled: bool
    disabled_reason: str | None = Field(description="Why it is disabled (a 410 Gone, or the API).")
    secret_fingerprint: str = Field(description="Tells the current secret apart; not the secret.")
    previous_secret_expires_at: datetime | None = Field(
        description="Until then deliveries carry a signature with the previous secret too."
    )
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(Webhook):
    secret: str = Field(
        description="whsec_…: verifies the signatures. Shown only in this answer; store it."
    )


class WebhookList(BaseModel):
    data: list[Webhook]


class Attempt(BaseModel):
    attempt: int = Field(description="1 for the first attempt ever made of this delivery.")
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null: no answer.")
    error: str | None = Field(description="Why it failed (no answer, non-2xx, refused target).")
    duration_ms: float


class Delivery(BaseModel):
    id: str = Field(description="msg_…: the webhook-id header of every attempt.")
    webhook_id: str
    change_id: str = Field(description="chg_…: the change of the feed sent.")
    type: str
    status: DeliveryStatus = Field(
        description="pending (to be attempted), delivered (2xx), failed (every attempt of the "
        "retry schedule failed), cancelled (the receiver answered 410 Gone)."
    )
    attempts: int
    next_attempt_at: datetime | None = Field(description="When pending: the next attempt.")
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[Attempt] = Field(description="The latest attempts, oldest first.")
    payload: dict[str, Any] = Field(description="The body sent (as JSON; the bytes are fixed).")


class DeliveryPage(BaseModel):
    data: list[Delivery] = Field(description="Newest change first.")
    next_cursor: str | None = Field(description="Pass as `before` for the next page.")
    has_more: bool


class ReplaySince(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Timestamp = Field(description="Send again the changes from this time on.")


class ReplayAfter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: Annotated[str, StringConstraints(pattern=CHANGE_ID_PATTERN)] = Field(
        description="Send again the changes after this one (chg_0: from the first)."
    )


class Replay(BaseModel):
    webhook_id: str
    after: str = Field(description="The changes after this one…")
    through: str = Field(
        description="…up to this one are sent again (none when equal); later changes come "
        "as they always do."
    )
