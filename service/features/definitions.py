"""The one definition of every feature.

The feature statement of online reads and training sets, the online upkeep and
`scorer features recompute`, the API's `Features` schema, the models' input columns and
the cold-start row are all generated from these tables, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Event type -> the daily bucket counter it increments.
ENGAGEMENT_COUNTERS: dict[str, str] = {
    "session_started": "sessions",
    "product_viewed": "product_views",
    "cart_updated": "cart_adds",
    "checkout_started": "checkouts",
    "email_opened": "email_opens",
    "email_clicked": "email_clicks",
    "support_ticket": "support_tickets",
}

INTEGER_BUCKET_COLUMNS: tuple[str, ...] = ("orders", *ENGAGEMENT_COUNTERS.values())
MONEY_BUCKET_COLUMNS: tuple[str, ...] = ("revenue",)
BUCKET_COLUMNS: tuple[str, ...] = (*INTEGER_BUCKET_COLUMNS, *MONEY_BUCKET_COLUMNS)


def cumulative(column: str) -> str:
    """The column of a daily row holding the running total of bucket `column`: its sum over
    the customer's rows up to and including that row's day."""
    return f"cum_{column}"


@dataclass(frozen=True)
class WindowFeature:
    """A sum of one bucket column over the last `days` days (None: all days so far)."""

    name: str
    column: str
    days: int | None

    @property
    def is_money(self) -> bool:
        return self.column in MONEY_BUCKET_COLUMNS


WINDOW_FEATURES: tuple[WindowFeature, ...] = (
    WindowFeature("orders_total", "orders", None),
    WindowFeature("revenue_total", "revenue", None),
    *(WindowFeature(f"orders_{n}d", "orders", n) for n in (7, 30, 90, 365)),
    *(WindowFeature(f"revenue_{n}d", "revenue", n) for n in (7, 30, 90, 365)),
    WindowFeature("sessions_30d", "sessions", 30),
    WindowFeature("product_views_30d", "product_views", 30),
    WindowFeature("cart_adds_30d", "cart_adds", 30),
    WindowFeature("checkouts_30d", "checkouts", 30),
    WindowFeature("email_opens_30d", "email_opens", 30),
    WindowFeature("email_clicks_30d", "email_clicks", 30),
    WindowFeature("support_tickets_90d", "support_tickets", 90),
)


Kind = Literal["timestamp", "days", "count", "money", "ratio", "rating", "consent"]


@dataclass(frozen=True)
class FeatureField:
    """One field of a customer's feature row, in response order.

    `in_model`: a column of the models' input, in this order. Consent is an object
    (one flag per channel); the models see its `MODEL_CONSENT_CHANNEL`, last.
    `cold_start`: the value for a customer we have never seen."""

    name: str
    kind: Kind
    nullable: bool
    description: str | None = None
    in_model: bool = True
    cold_start: int | None = None


def _window_field(window: WindowFeature, description: str | None = None) -> FeatureField:
    return FeatureField(
        window.name,
        "money" if window.is_money else "count",
        nullable=False,
        description=description,
        # The models look back 30 days or more; the 7-day windows are for callers.
        in_model=window.days != 7,
        cold_start=0,
    )


_WINDOWS = {window.name: window for window in WINDOW_FEATURES}
_ENGAGEMENT_WINDOWS = [w for w in WINDOW_FEATURES if w.column in ENGAGEMENT_COUNTERS.values()]

FEATURE_FIELDS: tuple[FeatureField, ...] = (
    FeatureField("first_seen_at", "timestamp", nullable=False, in_model=False),
    FeatureField("first_order_at", "timestamp", nullable=True, in_model=False),
    FeatureField("last_order_at", "timestamp", nullable=True, in_model=False),
    FeatureField(
        "recency_days", "days", nullable=True, description="day(as_of) - day(last_order_at)"
    ),
    FeatureField(
        "tenure_days",
        "days",
        nullable=False,
        description="day(as_of) - day(first_seen_at)",
        cold_start=0,
    ),
    _window_field(_WINDOWS["orders_total"]),
    _window_field(_WINDOWS["revenue_total"], "Net of refunds, rounded to cents."),
    *(_window_field(_WINDOWS[f"orders_{n}d"]) for n in (7, 30, 90, 365)),
    *(_window_field(_WINDOWS[f"revenue_{n}d"]) for n in (7, 30, 90, 365)),
    FeatureField("aov", "ratio", nullable=True),
    FeatureField("avg_days_between_orders", "ratio", nullable=True),
    *(_window_field(window) for window in _ENGAGEMENT_WINDOWS),
    FeatureField("last_csat", "rating", nullable=True),
    FeatureField("consent", "consent", nullable=False, in_model=False),
)
MODEL_CONSENT_CHANNEL = "email"


def order_counted_sql(amount: str, refunded: str) -> str:
    """Does an order count? Completed (amount known) and not fully refunded."""
    return f"(({amount}) IS NOT NULL AND NOT (({refunded}) > 0 AND ({refunded}) >= ({amount})))"


def order_net_sql(amount: str, refunded: str) -> str:
    """An order's net revenue: refunds never take it below zero; unknown orders are 0."""
    return f"(CASE WHEN ({amount}) IS NULL THEN 0 ELSE GREATEST(({amount}) - ({refunded}), 0) END)"
