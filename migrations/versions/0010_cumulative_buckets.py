"""running totals in the daily buckets, and orders by day: feature reads that cost the same
whatever the length of a customer's history

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The bucket columns as of this revision (a migration must not follow later definitions).
INTEGER_BUCKETS = (
    "orders",
    "sessions",
    "product_views",
    "cart_adds",
    "checkouts",
    "email_opens",
    "email_clicks",
    "support_tickets",
)
MONEY_BUCKETS = ("revenue",)
BUCKETS = (*INTEGER_BUCKETS, *MONEY_BUCKETS)


def upgrade() -> None:
    for name in INTEGER_BUCKETS:
        op.add_column(
            "customer_daily",
            sa.Column(f"cum_{name}", sa.BigInteger(), server_default="0", nullable=False),
        )
    for name in MONEY_BUCKETS:
        op.add_column(
            "customer_daily",
            sa.Column(
                f"cum_{name}",
                sa.Numeric(precision=38, scale=4),
                server_default="0",
                nullable=False,
            ),
        )
    op.execute(
        f"""
        UPDATE customer_daily AS b
        SET {", ".join(f"cum_{c} = r.cum_{c}" for c in BUCKETS)}
        FROM (
          SELECT customer_id, day,
            {", ".join(f"sum({c}) OVER running AS cum_{c}" for c in BUCKETS)}
          FROM customer_daily
          WINDOW running AS (PARTITION BY customer_id ORDER BY day)
        ) r
        WHERE b.customer_id = r.customer_id AND b.day = r.day
        """
    )
    op.create_index("orders_customer_day", "orders", ["customer_id", "day", "occurred_at"])
    # Every row was rewritten: without fresh statistics the planner misjudges the reads.
    op.execute("ANALYZE customer_daily, orders")


def downgrade() -> None:
    op.drop_index("orders_customer_day", table_name="orders")
    for name in reversed(BUCKETS):
        op.drop_column("customer_daily", f"cum_{name}")
