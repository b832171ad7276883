"""segment: identity links and the held events of not-yet-known visitors

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 19:50:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_links",
        sa.Column("anonymous_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column(
            "linked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("anonymous_id"),
    )
    op.create_index("identity_links_customer_id", "identity_links", ["customer_id"])
    op.create_table(
        "anonymous_events",
        sa.Column("anonymous_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("message", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("anonymous_id", "event_id"),
    )
    op.create_index(
        "anonymous_events_event_id_key", "anonymous_events", ["event_id"], unique=True
    )


def downgrade() -> None:
    op.drop_table("anonymous_events")
    op.drop_index("identity_links_customer_id", table_name="identity_links")
    op.drop_table("identity_links")
