"""The one definition of every feature.

Online reads, `scorer features recompute` and (later) offline training sets are
all generated from these tables, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

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

CONSENT_CHANNELS: tuple[str, ...] = ("email", "sms", "push", "web", "profiling")


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


def order_counted_sql(amount: str, refunded: str) -> str:
    """Does an order count? Completed (amount known) and not fully refunded."""
    return f"(({amount}) IS NOT NULL AND NOT (({refunded}) > 0 AND ({refunded}) >= ({amount})))"


def order_net_sql(amount: str, refunded: str) -> str:
    """An order's net revenue: refunds never take it below zero; unknown orders are 0."""
    return f"(CASE WHEN ({amount}) IS NULL THEN 0 ELSE GREATEST(({amount}) - ({refunded}), 0) END)"
