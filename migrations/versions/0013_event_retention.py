"""raw-event retention: the purge horizon, events by day, acceptance kept on the decision

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_retention",
        sa.Column("id", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("purged_before", sa.Date(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("id", name="event_retention_one_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("events_day", "events", ["day"])
    op.add_column(
        "offer_decisions", sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True)
    )
    # Acceptances so far, from the events that name their decision (the earliest wins).
    op.execute(
        """
        UPDATE offer_decisions d SET accepted_at = a.accepted_at
        FROM (
          SELECT customer_id, properties->>'decision_id' AS decision_id,
                 min(occurred_at) AS accepted_at
          FROM events WHERE type = 'offer_accepted' GROUP BY 1, 2
        ) a
        WHERE d.customer_id = a.customer_id AND d.decision_id = a.decision_id
        """
    )


def downgrade() -> None:
    op.drop_column("offer_decisions", "accepted_at")
    op.drop_index("events_day", table_name="events")
    op.drop_table("event_retention")
