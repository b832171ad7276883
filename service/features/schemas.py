"""Response shapes of the features domain (DESIGN §6)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Consent(BaseModel):
    """Latest stated consent per channel; null means never stated."""

    email: bool | None
    sms: bool | None
    push: bool | None
    web: bool | None
    profiling: bool | None


class Features(BaseModel):
    customer_id: str
    as_of: datetime
    first_seen_at: datetime
    first_order_at: datetime | None
    last_order_at: datetime | None
    recency_days: int | None = Field(description="day(as_of) - day(last_order_at)")
    tenure_days: int = Field(description="day(as_of) - day(first_seen_at)")
    orders_total: int
    revenue_total: float = Field(description="Net of refunds, rounded to cents.")
    orders_7d: int
    orders_30d: int
    orders_90d: int
    orders_365d: int
    revenue_7d: float
    revenue_30d: float
    revenue_90d: float
    revenue_365d: float
    aov: float | None
    avg_days_between_orders: float | None
    sessions_30d: int
    product_views_30d: int
    cart_adds_30d: int
    checkouts_30d: int
    email_opens_30d: int
    email_clicks_30d: int
    support_tickets_90d: int
    last_csat: int | None
    consent: Consent
