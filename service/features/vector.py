"""The numeric model input built from a feature dict: one function for training and serving."""

from __future__ import annotations

import operator
from collections.abc import Iterable

import numpy as np

from service.features.definitions import CONSENT_CHANNELS, WINDOW_FEATURES

MODEL_FEATURES: tuple[str, ...] = (
    "recency_days",
    "tenure_days",
    "orders_total",
    "revenue_total",
    "orders_30d",
    "orders_90d",
    "orders_365d",
    "revenue_30d",
    "revenue_90d",
    "revenue_365d",
    "aov",
    "avg_days_between_orders",
    "sessions_30d",
    "product_views_30d",
    "cart_adds_30d",
    "checkouts_30d",
    "email_opens_30d",
    "email_clicks_30d",
    "support_tickets_90d",
    "last_csat",
    "consent_email",  # last: the one feature nested in the dict (see feature_matrix)
)


# Every model feature but the last is a top-level field of the feature dict.
_TOP_LEVEL = operator.itemgetter(*MODEL_FEATURES[:-1])


def feature_matrix(rows: Iterable[dict]) -> np.ndarray:
    """float32 rows in MODEL_FEATURES order; unknowns (no orders, never stated: None) become
    NaN, which the tree models route as missing."""
    return np.array(
        [[*_TOP_LEVEL(row), row["consent"]["email"]] for row in rows], dtype=np.float32
    ).reshape(-1, len(MODEL_FEATURES))


def cold_start_features(customer_id: str, as_of) -> dict:
    """What a customer we have never seen looks like to the models: no history at all."""
    features: dict = {f.name: 0 for f in WINDOW_FEATURES}
    features.update(
        customer_id=customer_id,
        as_of=as_of,
        first_seen_at=None,
        first_order_at=None,
        last_order_at=None,
        recency_days=None,
        tenure_days=0,
        aov=None,
        avg_days_between_orders=None,
        last_csat=None,
        consent=dict.fromkeys(CONSENT_CHANNELS),
    )
    return features
