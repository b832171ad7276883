"""Response and request shapes of the scoring API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictStr

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


class ScoreContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    cart_value: StrictFloat | None = Field(default=None, ge=0)
    channel: StrictStr | None = Field(default=None, max_length=32)
    device: StrictStr | None = Field(default=None, max_length=32)


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: StrictStr | None = Field(default=None, min_length=1, max_length=128)
    context: ScoreContext = Field(default_factory=ScoreContext)
    as_of: Timestamp | None = None
    explain: StrictBool = False

    def context_dict(self) -> dict[str, Any]:
        return self.context.model_dump(exclude_none=True)
