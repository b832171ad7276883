"""The change feed's answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from service.changes.service import CHANGE_TYPES

ChangeType = Literal[CHANGE_TYPES]  # type: ignore[valid-type]


class ScoreSnapshot(BaseModel):
    """A customer's scores at one moment, as `GET .../scores` serves them."""

    churn_probability: float
    churn_band: str
    pcltv: float
    pcltv_tier: str
    segment: str
    r: int = Field(ge=1, le=5)
    f: int = Field(ge=1, le=5)
    m: int = Field(ge=1, le=5)


class AlertFired(BaseModel):
    """An insights alert whose metric crossed its threshold, and the value it crossed with."""

    alert_id: str
    name: str
    metric: str
    subject: str | None
    operator: Literal["above", "below"]
    threshold: float
    value: float


class Change(BaseModel):
    id: str = Field(description="`chg_` and the change's position in the feed.")
    type: ChangeType
    customer_id: str | None = Field(
        description="The customer; null for `customer.erased`, which keeps no trace of the "
        "id, and for `alert.triggered`, which is about no one customer."
    )
    erasure_id: str | None = Field(
        default=None,
        description="For `customer.erased`: the `erasure_id` that `DELETE "
        "/v1/customers/{customer_id}` answered; null for other changes.",
    )
    occurred_at: datetime = Field(description="When the change was committed.")
    before: ScoreSnapshot | None = Field(
        description="The scores before (for `scores.changed`: at the customer's previous "
        "`scores.changed`); null for a customer's first scores."
    )
    after: ScoreSnapshot | None
    alert: AlertFired | None = Field(
        default=None,
        description="For `alert.triggered` (whose customer, before and after are null): the "
        "alert and the value that crossed its threshold; null for other changes.",
    )


class ChangePage(BaseModel):
    data: list[Change]
    next_cursor: str = Field(
        description="Pass as `after` for the next page; stable, and valid while the change "
        "it follows is retained."
    )
    has_more: bool = Field(description="More changes exist past `next_cursor` right now.")
