"""Tables of the scoring domain: each customer's materialized scores."""

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Double,
    Index,
    Integer,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from service.db import metadata

# The scores as of `as_of` (a day) with the feature row they were computed from, so a
# read of a fresh row needs no feature query. `reported` holds the scores of the last
# `scores.changed` record: small moves add up against it rather than vanishing.
customer_scores = Table(
    "customer_scores",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("churn_probability", Double, nullable=False),
    Column("churn_band", Text, nullable=False),
    Column("pcltv", Double, nullable=False),
    Column("pcltv_tier", Text, nullable=False),
    Column("segment", Text, nullable=False),
    Column("r", Integer, nullable=False),
    Column("f", Integer, nullable=False),
    Column("m", Integer, nullable=False),
    Column("model_versions", JSONB, nullable=False),
    Column("features", JSONB, nullable=False),
    Column("reported", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("customer_scores_as_of", "as_of"),
)
