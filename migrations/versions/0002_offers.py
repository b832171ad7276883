"""offers: the offer catalog and the NBO decision log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('offers',
    sa.Column('offer_id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('channel', sa.Text(), nullable=False),
    sa.Column('value', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('cost', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('eligible_segments', sa.ARRAY(sa.Text()), nullable=True),
    sa.Column('eligible_value_tiers', sa.ARRAY(sa.Text()), nullable=True),
    sa.Column('eligible_churn_bands', sa.ARRAY(sa.Text()), nullable=True),
    sa.Column('min_days_since_last_offer', sa.Integer(), server_default='0', nullable=False),
    sa.Column('budget', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('spent', sa.Numeric(precision=18, scale=4), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("channel IN ('email', 'sms', 'push', 'web')", name='offers_channel_check'),
    sa.CheckConstraint('value >= 0 AND cost >= 0', name='offers_money_check'),
    sa.CheckConstraint('ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at', name='offers_window_check'),
    sa.PrimaryKeyConstraint('offer_id')
    )
    op.create_table('offer_decisions',
    sa.Column('customer_id', sa.Text(), nullable=False),
    sa.Column('decision_id', sa.Text(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('offer_id', sa.Text(), nullable=True),
    sa.Column('group', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('propensity', sa.Double(), nullable=True),
    sa.Column('expected_value', sa.Double(), nullable=True),
    sa.Column('action_probability', sa.Double(), nullable=False),
    sa.Column('explored', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('model_version', sa.Text(), nullable=True),
    sa.Column('context', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.CheckConstraint('"group" IN (\'treatment\', \'control\', \'none\')', name='offer_decisions_group_check'),
    sa.CheckConstraint('(offer_id IS NOT NULL) = ("group" = \'treatment\')', name='offer_decisions_offer_check'),
    sa.CheckConstraint('action_probability > 0 AND action_probability <= 1', name='offer_decisions_probability_check'),
    sa.PrimaryKeyConstraint('customer_id', 'decision_id')
    )
    op.create_index('offer_decisions_customer_time', 'offer_decisions', ['customer_id', 'decided_at'], unique=False)


def downgrade() -> None:
    op.drop_index('offer_decisions_customer_time', table_name='offer_decisions')
    op.drop_table('offer_decisions')
    op.drop_table('offers')
