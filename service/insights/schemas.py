"""Wire shapes of the insights API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from service.insights.metrics import METRICS

AlertMetric = Literal[tuple(METRICS)]  # type: ignore[valid-type]
_METRICS_DOC = "; ".join(f"`{name}`: {m.description}" for name, m in METRICS.items())


class EquityGroup(BaseModel):
    name: str
    customers: int
    pcltv: float = Field(description="Sum of predicted value over the pCLTV horizon.")
    historic: float = Field(description="Sum of net revenue to date.")


class Equity(BaseModel):
    by: str
    total: EquityGroup
    groups: list[EquityGroup]


class GroupCount(BaseModel):
    name: str
    customers: int
    share: float = Field(description="Of all scored customers, 0–1.")


class Distribution(BaseModel):
    customers: int = Field(description="Scored customers.")
    segments: list[GroupCount]
    tiers: list[GroupCount] = Field(description="pCLTV value tiers.")
    churn_bands: list[GroupCount]


class TrendDay(Distribution):
    day: date
    computed_at: datetime = Field(description="When the day's snapshot was last refreshed.")
    pcltv: float = Field(description="Sum of pCLTV that day.")
    historic: float = Field(description="Sum of net revenue to date that day.")


class Trends(BaseModel):
    days: list[TrendDay] = Field(description="One per day with a snapshot, oldest first.")


class MovementCell(BaseModel):
    from_: str | None = Field(
        alias="from", description="Label when the period began; null: first scored within it."
    )
    to: str
    customers: int

    model_config = {"populate_by_name": True}


class Movements(BaseModel):
    by: str
    from_: datetime = Field(alias="from")
    to: datetime
    shortened: bool = Field(
        description="The days asked for reach past the change feed's retention: the period "
        "starts at its oldest kept day instead."
    )
    moved: int = Field(description="Customers whose label differs between from and to.")
    cells: list[MovementCell]

    model_config = {"populate_by_name": True}


class CohortMonth(BaseModel):
    months_since: int = Field(description="0: the month of acquisition.")
    active: int = Field(description="Customers of the cohort who ordered that month.")
    share: float = Field(description="active / the cohort's customers.")
    revenue: float = Field(description="Net revenue of the cohort that month.")


class Cohort(BaseModel):
    month: str = Field(description="Acquisition month (of the first counted order), YYYY-MM.")
    customers: int
    revenue: float = Field(description="Net revenue of the cohort since acquisition.")
    months: list[CohortMonth]


class Cohorts(BaseModel):
    computed_at: datetime | None = Field(description="Snapshot time; null: none taken yet.")
    cohorts: list[Cohort] = Field(description="Oldest acquisition month first.")


class Interval(BaseModel):
    low: float
    high: float


class OfferAcceptance(BaseModel):
    offer_id: str
    shown: int
    accepted: int
    acceptance_rate: float
    acceptance_ci95: Interval = Field(description="95% Wilson interval of the rate.")


class GroupDecisions(BaseModel):
    decisions: int
    accepted: int


class Uplift(BaseModel):
    treatment_mean: float
    control_mean: float
    uplift: float = Field(description="treatment_mean − control_mean.")
    ci95: Interval = Field(description="Normal-approximation 95% interval of the uplift.")


class OfferUplift(BaseModel):
    orders_per_decision: Uplift
    revenue_per_decision: Uplift


class Offers(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    outcome_days: int
    treatment: GroupDecisions
    control: GroupDecisions
    offers: list[OfferAcceptance]
    uplift: OfferUplift | None = Field(description="Null until each group has 2 decisions.")

    model_config = {"populate_by_name": True}


class SnapshotsTaken(BaseModel):
    day: date
    kinds: list[str] = Field(description="The snapshot kinds refreshed.")


class AlertCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    metric: AlertMetric = Field(description=_METRICS_DOC)
    subject: str | None = Field(
        default=None,
        max_length=200,
        description="The churn band, segment, tier, equity (`pcltv` or `historic`) or feature "
        "the metric is about; omitted: the metric's default (see metric).",
    )
    operator: Literal["above", "below"]
    threshold: float = Field(allow_inf_nan=False)

    model_config = {"extra": "forbid"}

    @model_validator(mode="after")
    def _known_subject(self) -> AlertCreate:
        metric = METRICS[self.metric]
        if metric.subjects is None:
            if self.subject is not None:
                raise ValueError(f"subject: {self.metric} takes no subject")
            return self
        self.subject = self.subject or metric.default_subject
        choices = ", ".join(metric.subjects)
        if metric.subjects and self.subject not in metric.subjects:
            raise ValueError(f"subject: {self.metric} takes one of {choices}")
        return self


class Alert(BaseModel):
    alert_id: str
    name: str
    metric: AlertMetric
    subject: str | None
    operator: Literal["above", "below"]
    threshold: float
    created_at: datetime
    firing: bool = Field(description="Past the threshold at the last evaluation.")
    last_value: float | None = Field(description="The metric at the last evaluation.")
    evaluated_at: datetime | None
    triggered_at: datetime | None = Field(description="When it last fired.")
    triggered_count: int = Field(description="Times it has fired.")


class AlertList(BaseModel):
    data: list[Alert]


class ActiveModel(BaseModel):
    name: str
    version: str
    kind: str | None = Field(description="What is served, e.g. lightgbm or bgnbd.")
    activated_at: datetime | None
    trained_at: datetime
    validated_on: date | None = Field(description="The cutoff the metrics were measured on.")
    reference_cutoff: date | None = Field(
        description="The day of the distributions drift is measured against; null: the "
        "manifest records none (trained before references existed)."
    )
    metrics: dict[str, float | None] = Field(
        description="Training's validation metrics (churn: brier, ece, roc_auc, ...; pCLTV: "
        "rmse, mae, ...); null where undefined."
    )


class ReliabilityBin(BaseModel):
    predicted: float = Field(description="Mean predicted churn probability in the bin.")
    observed: float = Field(description="Share of the bin's customers who churned.")
    customers: int


class Calibration(BaseModel):
    model: str
    version: str
    horizon_days: int
    cutoff: date = Field(description="Features and predictions as of this day.")
    end: date = Field(description="Outcomes over (cutoff, end]; end is the snapshot's eve.")
    customers: int
    predicted_rate: float
    observed_rate: float
    brier: float
    ece: float = Field(description="Expected calibration error over 10 equal-width bins.")
    bins: list[ReliabilityBin] = Field(description="Non-empty tenths of [0, 1], lowest first.")


class DriftEntry(BaseModel):
    model: str = Field(description="The model whose reference this is compared with.")
    name: str
    psi: float
    drifted: bool = Field(description="psi above the threshold.")


class Drift(BaseModel):
    threshold: float = Field(description="SCORER_DRIFT_PSI_THRESHOLD.")
    customers: int = Field(description="Scored customers compared.")
    features: list[DriftEntry]
    predictions: list[DriftEntry]
    drifted: list[str] = Field(description="Names of the features and predictions past it.")


class ModelHealth(BaseModel):
    computed_at: datetime | None = Field(
        description="When calibration and drift were computed; null: no snapshot yet "
        "(POST /v1/insights/snapshots takes one)."
    )
    day: date | None = Field(description="The snapshot's day.")
    models: list[ActiveModel] = Field(description="The active versions, read now.")
    calibration: Calibration | None
    drift: Drift | None
