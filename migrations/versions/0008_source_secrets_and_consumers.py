"""sources: signing secrets of shop platforms, the customer of each platform order, and
the status of NATS consumers

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 20:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_secrets",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("source_secrets_kind_account", "source_secrets", ["kind", "account"])
    op.create_table(
        "source_orders",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "order_id"),
    )
    op.create_table(
        "consumer_status",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("pending", sa.BigInteger(), nullable=False),
        sa.Column("ack_pending", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("consumer_status")
    op.drop_table("source_orders")
    op.drop_index("source_secrets_kind_account", table_name="source_secrets")
    op.drop_table("source_secrets")
