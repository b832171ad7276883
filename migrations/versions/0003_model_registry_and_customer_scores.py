"""model registry and customer scores

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 00:18:26.101124
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("customer_scores_change_seq")))
    op.create_table('customer_scores',
    sa.Column('customer_id', sa.Text(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('churn_probability', sa.Double(), nullable=False),
    sa.Column('churn_band', sa.Text(), nullable=False),
    sa.Column('pcltv', sa.Double(), nullable=False),
    sa.Column('pcltv_tier', sa.Text(), nullable=False),
    sa.Column('segment', sa.Text(), nullable=False),
    sa.Column('r', sa.Integer(), nullable=False),
    sa.Column('f', sa.Integer(), nullable=False),
    sa.Column('m', sa.Integer(), nullable=False),
    sa.Column('model_versions', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('change_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('customer_id'),
    sa.UniqueConstraint('change_seq')
    )
    op.create_table('model_registry',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('version', sa.Text(), nullable=False),
    sa.Column('manifest', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('model', sa.LargeBinary(), nullable=False),
    sa.Column('explainer', sa.Text(), nullable=True),
    sa.Column('active', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', 'version')
    )


def downgrade() -> None:
    op.drop_table('model_registry')
    op.drop_table('customer_scores')
    op.execute(sa.schema.DropSequence(sa.Sequence("customer_scores_change_seq")))
