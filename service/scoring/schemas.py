"""Response and request shapes of the scoring API."""

from __future__ import annotations

import math
import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from service.identifiers import Identifier
from service.timefmt import Timestamp


class Churn(BaseModel):
    probability: float
    band: Literal["low", "medium", "high"]
    horizon_days: int


class ValueInterval(BaseModel):
    low: float
    high: float
    coverage: float = Field(description="The share of customers meant to fall inside: 0.8.")


class Pcltv(BaseModel):
    value: float
    interval: ValueInterval = Field(
        description="80% prediction interval of the revenue over the horizon: P10 to P90 "
        "of what similar customers went on to spend, or 0 to P80 where more than 1 in 10 "
        "of them spent nothing."
    )
    horizon_days: int
    currency: str
    tier: Literal["high", "medium", "low"]
    historic_clv: float = Field(description="Net revenue to date.")
    expected_orders: float | None = Field(
        description="Repeat orders expected over the horizon (BG/NBD); null without orders."
    )
    p_alive: float | None = Field(
        description="Probability that the customer still buys at all (BG/NBD); null without orders."
    )
    expected_next_order_at: datetime | None = Field(
        description="If still active, the median time of the next order (BG/NBD); null "
        "without orders, or when that time would be past the year 9999."
    )


class Segment(BaseModel):
    name: str
    r: int = Field(ge=1, le=5)
    f: int = Field(ge=1, le=5)
    m: int = Field(ge=1, le=5)


class NextBestOffer(BaseModel):
    offer_id: str
    name: str
    channel: str
    propensity: float
    expected_value: float
    decision_id: str


class Reason(BaseModel):
    feature: str
    value: float | None
    contribution: float = Field(description="Contribution to the model's raw score (TreeSHAP).")


class Reasons(BaseModel):
    churn: list[Reason]
    pcltv: list[Reason]


class ModelVersions(BaseModel):
    churn: str | None
    pcltv: str | None
    segment: str | None
    nbo: str | None


class ScoresResponse(BaseModel):
    customer_id: str | None
    as_of: datetime
    known: bool
    suppressed: bool = Field(
        default=False, description="True when the customer withdrew profiling consent."
    )
    churn: Churn | None = None
    pcltv: Pcltv | None = None
    segment: Segment | None = None
    next_best_offer: NextBestOffer | None = None
    nbo_reason: str | None = None
    model_versions: ModelVersions
    reasons: Reasons | None = None


# The context is stored with every offer decision (jsonb): flat and small, by rule (which
# bounds a stored context to about 40 KiB), and in the schema as in the validation.
MAX_CONTEXT_KEYS = 32
MAX_CONTEXT_KEY_LENGTH = 64
MAX_CONTEXT_STRING_LENGTH = 256
# What jsonb cannot hold (NUL) or UTF-8 cannot encode (surrogates), plus other controls.
_UNSTORABLE_CATEGORIES = frozenset({"Cc", "Cs"})
# The schema states the controls (no schema string can hold a lone surrogate).
STORABLE_TEXT_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*$"


def _storable(text: str) -> bool:
    return not any(unicodedata.category(char) in _UNSTORABLE_CATEGORIES for char in text)


def _context_problem(key: str, value: Any) -> str | None:
    if not 1 <= len(key) <= MAX_CONTEXT_KEY_LENGTH:
        shown = key[:MAX_CONTEXT_KEY_LENGTH]
        return f"key {shown!r}: keys are 1 to {MAX_CONTEXT_KEY_LENGTH} characters"
    if not _storable(key):
        return f"{key!r}: keys must not contain control characters or surrogates"
    if isinstance(value, str):
        if not _storable(value):
            return f"{key!r}: strings must not contain control characters or surrogates"
        if len(value) > MAX_CONTEXT_STRING_LENGTH:
            return f"{key!r}: strings are at most {MAX_CONTEXT_STRING_LENGTH} characters"
    elif value is not None and not isinstance(value, bool | int | float):
        return f"{key!r}: values must be strings, numbers, booleans or null"
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{key!r}: must be a finite number"
    return None


def _context_text(max_length: int):
    # The pattern is stated for the schema; _flat_and_small applies it with a clearer message.
    return Annotated[
        StrictStr,
        Field(max_length=max_length, json_schema_extra={"pattern": STORABLE_TEXT_PATTERN}),
    ]


ContextValue = (
    _context_text(MAX_CONTEXT_STRING_LENGTH)
    | StrictInt
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
    | StrictBool
    | None
)


STORED_CONTEXT_FIELDS = frozenset({"cart_value", "channel", "device"})


class ScoreContext(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "maxProperties": MAX_CONTEXT_KEYS,
            "propertyNames": {
                "minLength": 1,
                "maxLength": MAX_CONTEXT_KEY_LENGTH,
                "pattern": STORABLE_TEXT_PATTERN,
            },
        },
    )
    __pydantic_extra__: dict[str, ContextValue]

    cart_value: StrictFloat | None = Field(default=None, ge=0, allow_inf_nan=False)
    channel: _context_text(32) | None = None
    device: _context_text(32) | None = None

    @model_validator(mode="before")
    @classmethod
    def _flat_and_small(cls, data: Any) -> Any:
        # The same rules as the annotations, checked first for one message naming the key.
        if not isinstance(data, dict):
            return data
        if len(data) > MAX_CONTEXT_KEYS:
            raise ValueError(f"at most {MAX_CONTEXT_KEYS} keys, got {len(data)}")
        for key, value in data.items():
            problem = _context_problem(key, value)
            if problem:
                raise ValueError(problem)
        return data


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Identifier | None = None
    context: ScoreContext = Field(default_factory=ScoreContext)
    as_of: Timestamp | None = None
    explain: StrictBool = False

    def context_dict(self) -> dict[str, Any]:
        """What is kept of the context with the offer decision: the named fields only.
        Other keys are checked (so a client learns of a mistake) but not stored: nothing
        reads them, and a free-form context is where personal data would pile up."""
        return self.context.model_dump(exclude_none=True, include=STORED_CONTEXT_FIELDS)
