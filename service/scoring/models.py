"""Tables of the scoring domain: the rescoring outbox and each customer's materialized
scores."""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Double,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from service.db import metadata

# One row per accepted write of a customer, inserted in the write's transaction and
# deleted by the scoring loop in the transaction that stores the new scores: a customer
# with a row here has scores that may be stale. Append-only, so writers never wait.
score_outbox = Table(
    "score_outbox",
    metadata,
    Column("customer_id", Text, nullable=False),
    Column("id", BigInteger, Identity(), nullable=False),
    Column("marked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("customer_id", "id"),
    Index("score_outbox_id", "id"),
)

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
