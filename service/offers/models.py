"""Tables of the offers domain: the offer catalog and the log of every NBO decision."""

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from service.db import metadata

MONEY = Numeric(18, 4)

offers = Table(
    "offers",
    metadata,
    Column("offer_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("value", MONEY, nullable=False),  # expected margin if accepted
    Column("cost", MONEY, nullable=False),  # cost of making the offer
    Column("starts_at", DateTime(timezone=True)),
    Column("ends_at", DateTime(timezone=True)),
    # Targeting lists: null means any.
    Column("eligible_segments", ARRAY(Text)),
    Column("eligible_value_tiers", ARRAY(Text)),
    Column("eligible_churn_bands", ARRAY(Text)),
    Column("min_days_since_last_offer", Integer, nullable=False, server_default="0"),
    Column("budget", MONEY),  # total cost budget; null means unlimited
    Column("spent", MONEY, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_at", DateTime(timezone=True)),  # soft delete: decisions keep referring
    CheckConstraint("channel IN ('email', 'sms', 'push', 'web')", name="offers_channel_check"),
    CheckConstraint("value >= 0 AND cost >= 0", name="offers_money_check"),
    # No window check: ends_at at or before starts_at is an empty window, never offerable
    # (a rule JSON Schema cannot state, so the API does not refuse it either).
)

# Every decision, offer or not, so acceptance (`offer_accepted.decision_id`, recorded in
# `accepted_at`) can be attributed and treatment compared with the control group.
offer_decisions = Table(
    "offer_decisions",
    metadata,
    Column("customer_id", Text, nullable=False),
    Column("decision_id", Text, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("offer_id", Text),  # null: no offer
    Column("group", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("propensity", Double),
    Column("expected_value", Double),
    # Probability that the policy took this action in this context (off-policy evaluation).
    Column("action_probability", Double, nullable=False),
    Column("explored", Boolean, nullable=False, server_default=text("false")),
    Column("model_version", Text),
    Column("context", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # The `occurred_at` of the earliest `offer_accepted` naming this decision, set when that
    # event is stored: the acceptance outlives the event's retention.
    Column("accepted_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("customer_id", "decision_id"),
    # The frequency cap and cool-down read a customer's recent decisions.
    Index("offer_decisions_customer_time", "customer_id", "decided_at"),
    CheckConstraint(
        "\"group\" IN ('treatment', 'control', 'none')", name="offer_decisions_group_check"
    ),
    CheckConstraint(
        "(offer_id IS NOT NULL) = (\"group\" = 'treatment')", name="offer_decisions_offer_check"
    ),
    CheckConstraint(
        "action_probability > 0 AND action_probability <= 1",
        name="offer_decisions_probability_check",
    ),
)
