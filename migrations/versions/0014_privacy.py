"""privacy: erasure tombstones, the source of every event and fact, erasure changes in the
feed, and the customer of each webhook delivery

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erased_customers",
        sa.Column("id_hash", sa.LargeBinary(), nullable=False),
        sa.Column(
            "erased_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_table(
        "privacy_secrets",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("name"),
    )
    # Rows stored before sources were recorded keep NULL: their source is unknown.
    op.add_column("events", sa.Column("source", sa.Text(), nullable=True))
    op.add_column("customer_facts", sa.Column("source", sa.Text(), nullable=True))
    op.alter_column("score_changes", "customer_id", existing_type=sa.Text(), nullable=True)
    op.add_column("score_changes", sa.Column("erasure_id", sa.Text(), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("customer_id", sa.Text(), nullable=True))
    op.execute(
        "UPDATE webhook_deliveries SET customer_id = payload::jsonb #>> '{data,customer_id}'"
    )
    op.create_index(
        "webhook_deliveries_customer",
        "webhook_deliveries",
        ["customer_id"],
        postgresql_where=sa.text("customer_id IS NOT NULL"),
    )
    op.create_index(
        "dead_letters_customer",
        "dead_letters",
        ["customer_id"],
        postgresql_where=sa.text("customer_id IS NOT NULL"),
    )
    op.create_index("source_orders_customer", "source_orders", ["customer_id"])


def downgrade() -> None:
    op.drop_index("source_orders_customer", table_name="source_orders")
    op.drop_index("dead_letters_customer", table_name="dead_letters")
    op.drop_index("webhook_deliveries_customer", table_name="webhook_deliveries")
    op.drop_column("webhook_deliveries", "customer_id")
    op.drop_column("score_changes", "erasure_id")
    op.execute("DELETE FROM score_changes WHERE customer_id IS NULL")
    op.alter_column("score_changes", "customer_id", existing_type=sa.Text(), nullable=False)
    op.drop_column("customer_facts", "source")
    op.drop_column("events", "source")
    op.drop_table("privacy_secrets")
    op.drop_table("erased_customers")
