"""receivables summaries: per-client balances and amounts by date, maintained with the invoices

Revision ID: befb96be59c9
Revises: 1f6a39c1b60a
Create Date: 2026-11-24 10:20:00

Creates ``client_summaries`` and ``receivable_days`` and fills them from the existing invoices and cash
movements (the same computation as ``inbox summaries rebuild``).
"""
import sqlalchemy as sa
from alembic import op

import core.models

revision = 'befb96be59c9'
down_revision = '1f6a39c1b60a'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('client_summaries',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('invoice_count', sa.BigInteger(), nullable=False),
    sa.Column('due_cents', sa.BigInteger(), nullable=False),
    sa.Column('open_count', sa.BigInteger(), nullable=False),
    sa.Column('undated_cents', sa.BigInteger(), nullable=False),
    sa.Column('credit_cents', sa.BigInteger(), nullable=False),
    sa.Column('paid_count', sa.BigInteger(), nullable=False),
    sa.Column('delay_days', sa.BigInteger(), nullable=False),
    sa.Column('expected_cents', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_client_summaries_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'client_id', 'currency', name=op.f('pk_client_summaries'))
    )
    op.create_table('receivable_days',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('cents', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_receivable_days_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'client_id', 'currency', 'kind', 'day', name=op.f('pk_receivable_days'))
    )
    with op.batch_alter_table('receivable_days', schema=None) as batch_op:
        batch_op.create_index('ix_receivable_days_range', ['tenant_id', 'currency', 'kind', 'day'], unique=False)

    # Backfill from the existing rows, in this migration's transaction.
    from core.receivables.summaries import rebuild

    rebuild(op.get_bind())


def downgrade():
    with op.batch_alter_table('receivable_days', schema=None) as batch_op:
        batch_op.drop_index('ix_receivable_days_range')
    op.drop_table('receivable_days')
    op.drop_table('client_summaries')
