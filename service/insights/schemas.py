"""Wire shapes of the insights API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class EquityGroup(BaseModel):
    name: str
    customers: int
    pcltv: float = Field(description="Sum of predicted value over the pCLTV horizon.")
    historic: float = Field(description="Sum of net revenue to date.")


class Equity(BaseModel):
    by: str
    total: EquityGroup
    groups: list[EquityGroup]


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
