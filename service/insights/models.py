"""Insight tables: one snapshot per day and kind (aggregates only, never a customer id),
so trends and the slower views are read, not recomputed, per page view; and the alerts
defined on insight metrics, with the state that makes each crossing fire once."""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from service.db import metadata

insight_snapshots = Table(
    "insight_snapshots",
    metadata,
    Column("day", Date, nullable=False),
    Column("kind", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("kind", "day"),
)

insight_alerts = Table(
    "insight_alerts",
    metadata,
    Column("alert_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("metric", Text, nullable=False),
    # The segment, tier, churn band or feature the metric is about; NULL where it has none.
    Column("subject", Text),
    Column("operator", Text, nullable=False),
    Column("threshold", Double, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Past the threshold at the last evaluation: a crossing fires only from false to true.
    Column("firing", Boolean, nullable=False, server_default=text("false")),
    Column("last_value", Double),
    Column("evaluated_at", DateTime(timezone=True)),
    Column("triggered_at", DateTime(timezone=True)),
    Column("triggered_count", Integer, nullable=False, server_default="0"),
    CheckConstraint("operator IN ('above', 'below')", name="insight_alerts_operator"),
)
