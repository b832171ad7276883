"""Response and request shapes of the scoring API."""

from __future__ import annotations

import json
import math
import unicodedata
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.identifiers import Identifier
from service.timefmt import Timestamp


class Churn(BaseModel):
    probability: float
    band: Literal["low", "medium", "high"]
    horizon_days: int


class Pcltv(BaseModel):
    value: float
    horizon_days: int
    currency: str
    tier: Literal["high", "medium", "low"]
    historic_clv: float = Field(description="Net revenue to date.")


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


# The context is stored with every offer decision (jsonb): flat and small, by rule.
MAX_CONTEXT_KEYS = 32
MAX_CONTEXT_KEY_LENGTH = 64
MAX_CONTEXT_STRING_LENGTH = 256
MAX_CONTEXT_BYTES = 4096
# What jsonb cannot hold (NUL) or UTF-8 cannot encode (surrogates), plus other controls.
_UNSTORABLE_CATEGORIES = frozenset({"Cc", "Cs"})


def _context_problem(key: str, value: Any) -> str | None:
    if not 1 <= len(key) <= MAX_CONTEXT_KEY_LENGTH:
        shown = key[:MAX_CONTEXT_KEY_LENGTH]
        return f"key {shown!r}…: keys are 1 to {MAX_CONTEXT_KEY_LENGTH} characters"
    for text, what in ((key, "key"), (value if isinstance(value, str) else "", "value")):
        if any(unicodedata.category(char) in _UNSTORABLE_CATEGORIES for char in text):
            return f"{key!r}: {what} must not contain control characters or surrogates"
    if isinstance(value, str) and len(value) > MAX_CONTEXT_STRING_LENGTH:
        return f"{key!r}: strings are at most {MAX_CONTEXT_STRING_LENGTH} characters"
    if value is not None and not isinstance(value, str | bool | int | float):
        return f"{key!r}: values must be strings, numbers, booleans or null"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{key!r}: must be a finite number"
    return None


class ScoreContext(BaseModel):
    # Free-form, but flat and small: it is stored with every decision.

    model_config = ConfigDict(extra="allow")

    cart_value: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    channel: str | None = Field(default=None, max_length=32)
    device: str | None = Field(default=None, max_length=32)

    @model_validator(mode="before")
    @classmethod
    def _flat_and_small(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if len(data) > MAX_CONTEXT_KEYS:
            raise ValueError(f"at most {MAX_CONTEXT_KEYS} keys, got {len(data)}")
        for key, value in data.items():
            problem = _context_problem(key, value)
            if problem:
                raise ValueError(problem)
        size = len(json.dumps(data, ensure_ascii=False).encode())
        if size > MAX_CONTEXT_BYTES:
            raise ValueError(f"at most {MAX_CONTEXT_BYTES} bytes as JSON, got {size}")
        return data


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Identifier | None = None
    context: ScoreContext = Field(default_factory=ScoreContext)
    as_of: Timestamp | None = None
    explain: bool = False

    def context_dict(self) -> dict[str, Any]:
        return self.context.model_dump(exclude_none=True)
