"""scores out: the rescoring outbox, materialized scores with their features, and the
commit-ordered change feed

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 06:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "score_outbox",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column(
            "marked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("customer_id", "id"),
    )
    op.create_index("score_outbox_id", "score_outbox", ["id"])
    # Batch scores from `scorer rescore` are recomputed by the scoring loop from now on.
    op.execute("DELETE FROM customer_scores")
    op.drop_column("customer_scores", "change_seq")
    op.execute(sa.schema.DropSequence(sa.Sequence("customer_scores_change_seq")))
    op.add_column("customer_scores", sa.Column("features", postgresql.JSONB(), nullable=False))
    op.add_column("customer_scores", sa.Column("reported", postgresql.JSONB(), nullable=False))
    op.create_index("customer_scores_as_of", "customer_scores", ["as_of"])
    op.execute(sa.schema.CreateSequence(sa.Sequence("score_changes_seq")))
    op.create_table(
        "score_changes",
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("before", postgresql.JSONB(), nullable=True),
        sa.Column("after", postgresql.JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("score_changes_customer", "score_changes", ["customer_id", "seq"])
    op.create_index("score_changes_occurred_at", "score_changes", ["occurred_at"])


def downgrade() -> None:
    op.drop_table("score_changes")
    op.execute(sa.schema.DropSequence(sa.Sequence("score_changes_seq")))
    op.drop_index("customer_scores_as_of", table_name="customer_scores")
    op.drop_column("customer_scores", "reported")
    op.drop_column("customer_scores", "features")
    op.execute("DELETE FROM customer_scores")
    op.execute(sa.schema.CreateSequence(sa.Sequence("customer_scores_change_seq")))
    op.add_column(
        "customer_scores", sa.Column("change_seq", sa.BigInteger(), nullable=False, unique=True)
    )
    op.drop_table("score_outbox")
