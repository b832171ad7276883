"""Tables of the scoring domain: the latest batch-computed scores per customer."""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Double,
    Integer,
    Sequence,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from service.db import metadata

score_change_seq = Sequence("customer_scores_change_seq", metadata=metadata)

# `change_seq` grows on every change: the cursor for the polling API and outbound webhooks.
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
    Column("change_seq", BigInteger, nullable=False, unique=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
