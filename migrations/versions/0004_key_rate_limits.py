"""per-key rate limits

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 08:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('api_keys', sa.Column('rate_limit_per_second', sa.Double(), nullable=True))


def downgrade() -> None:
    op.drop_column('api_keys', 'rate_limit_per_second')
