"""offers: an empty window (ends_at at or before starts_at) is allowed and never offerable

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 13:00:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("offers_window_check", "offers", type_="check")


def downgrade() -> None:
    op.create_check_constraint(
        "offers_window_check",
        "offers",
        "ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at",
    )
