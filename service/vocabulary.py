"""The words the service speaks, in one place: event types, channels, segments, bands, tiers.

Schemas, validation, the offer policy, the models and the simulator all take their value
sets from here, so a name can only be spelled once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EVENT_TYPES: tuple[str, ...] = (
    "order_completed",
    "order_refunded",
    "session_started",
    "product_viewed",
    "cart_updated",
    "checkout_started",
    "email_opened",
    "email_clicked",
    "support_ticket",
    "survey_response",
    "consent_updated",
    "offer_shown",
    "offer_accepted",
    "identify",
    # Anything else a source sends (an unknown Segment event name, say): stored and counted,
    # with its name in properties.name, but no feature reads it.
    "custom",
)
ORDER_TYPES = frozenset({"order_completed", "order_refunded"})

# Channels an offer can be made on; consent is stated for each and for profiling.
OFFER_CHANNELS: tuple[str, ...] = ("email", "sms", "push", "web")
CONSENT_CHANNELS: tuple[str, ...] = (*OFFER_CHANNELS, "profiling")

SEGMENTS: tuple[str, ...] = (
    "Champions",
    "Loyal Customers",
    "Potential Loyalists",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
)

# The RFM grid: segment by recency score (rows, 5 = most recent) and frequency score
# (columns 1..5). Customers without a counted order are named by tenure instead.
_SEGMENT_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: ("New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"),
    4: (
        "Promising",
        "Potential Loyalists",
        "Potential Loyalists",
        "Loyal Customers",
        "Loyal Customers",
    ),
    3: ("About To Sleep", "About To Sleep", "Need Attention", "Loyal Customers", "Loyal Customers"),
    2: ("Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"),
    1: ("Lost", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"),
}


def segment_name(r: int, f: int) -> str:
    return _SEGMENT_GRID[r][f - 1]


def segment_without_orders(tenure_days: int, new_customer_days: int) -> str:
    return "New Customers" if tenure_days <= new_customer_days else "Lost"


CHURN_BANDS: tuple[str, ...] = ("low", "medium", "high")
CHURN_BAND_LOW_BELOW, CHURN_BAND_HIGH_ABOVE = 0.33, 0.66


def churn_band(probability: float) -> str:
    if probability < CHURN_BAND_LOW_BELOW:
        return "low"
    return "medium" if probability <= CHURN_BAND_HIGH_ABOVE else "high"


VALUE_TIERS: tuple[str, ...] = ("high", "medium", "low")

# Bands and tiers are the same three words, and Literals of equal value sets are equal:
# schema caches keyed by type would give one the other's order, so the OpenAPI
# document's enum order would depend on which was seen first. Both list them low first.
ChurnBandName = Literal[CHURN_BANDS]  # type: ignore[valid-type]
ValueTierName = Literal[tuple(reversed(VALUE_TIERS))]  # type: ignore[valid-type]


@dataclass(frozen=True)
class ValueTiers:
    """pCLTV tiers: above `high` is high, from `medium` up to `high` medium, else low."""

    high: float
    medium: float

    def of(self, value: float) -> str:
        if value > self.high:
            return "high"
        return "medium" if value >= self.medium else "low"
