"""Wire shapes of the insights API."""

from __future__ import annotations

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
