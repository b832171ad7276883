"""The feature row is generated from the definitions: the API schema, the row the feature
statement builds, the models' columns and the cold-start row all agree."""

from __future__ import annotations

from datetime import UTC, date, datetime

from service.features.definitions import FEATURE_FIELDS
from service.features.schemas import Features
from service.features.service import derive_features
from service.features.vector import MODEL_FEATURES, cold_start_features, feature_matrix
from service.vocabulary import CONSENT_CHANNELS

FIELDS = ["customer_id", "as_of", *(feature.name for feature in FEATURE_FIELDS)]


def statement_row() -> dict:
    """One row as FEATURES_SQL returns it, for a customer with two orders."""
    row = {feature.name: None for feature in FEATURE_FIELDS}
    row.update(
        customer_id="c1",
        first_seen_at=datetime(2026, 1, 1, tzinfo=UTC),
        first_seen_day=date(2026, 1, 1),
        first_order_at=datetime(2026, 1, 2, tzinfo=UTC),
        last_order_at=datetime(2026, 1, 12, tzinfo=UTC),
        first_order_day=date(2026, 1, 2),
        last_order_day=date(2026, 1, 12),
        orders_total=2,
        revenue_total=30.0,
        aov=15.0,
        last_csat=4,
        **{f"consent_{channel}": True for channel in CONSENT_CHANNELS},
    )
    return row


def test_schema_fields_are_the_definitions_in_order():
    assert list(Features.model_fields) == FIELDS


def test_the_statement_row_and_the_cold_start_row_have_exactly_the_schema_fields():
    as_of = datetime(2026, 1, 20, tzinfo=UTC)
    derived = derive_features(statement_row(), as_of, as_of.date())
    assert sorted(derived) == sorted(FIELDS)
    Features.model_validate(derived)
    assert sorted(cold_start_features("new", as_of)) == sorted(FIELDS)


def test_model_columns_follow_the_definitions_and_read_the_right_values():
    as_of = datetime(2026, 1, 20, tzinfo=UTC)
    derived = derive_features(statement_row(), as_of, as_of.date())
    (vector,) = feature_matrix([derived])
    by_name = dict(zip(MODEL_FEATURES, vector.tolist(), strict=True))
    assert MODEL_FEATURES[-1] == "consent_email"
    assert by_name["recency_days"] == 8 and by_name["avg_days_between_orders"] == 10
    assert by_name["orders_total"] == 2 and by_name["consent_email"] == 1
    assert "orders_7d" not in by_name and "first_seen_at" not in by_name


def test_cold_start_row_has_no_history():
    row = cold_start_features(None, datetime(2026, 1, 20, tzinfo=UTC))
    (vector,) = feature_matrix([row])
    by_name = dict(zip(MODEL_FEATURES, vector.tolist(), strict=True))
    assert by_name["orders_total"] == 0 and by_name["tenure_days"] == 0
    assert by_name["recency_days"] != by_name["recency_days"]  # NaN: unknown
    assert row["consent"] == dict.fromkeys(CONSENT_CHANNELS)
