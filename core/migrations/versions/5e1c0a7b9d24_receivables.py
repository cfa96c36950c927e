"""receivables: cash movements for the treasury forecast, client assignments for restricted access

Revision ID: 5e1c0a7b9d24
Revises: 8ed59764d296
Create Date: 2026-11-24 08:05:00

"""
from alembic import op
import sqlalchemy as sa

import core.models


revision = '5e1c0a7b9d24'
down_revision = '8ed59764d296'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('cash_movements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('expected_date', sa.Date(), nullable=False),
    sa.Column('amount', core.models.Money(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_cash_movements_invoice_id_invoices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_cash_movements_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cash_movements'))
    )
    with op.batch_alter_table('cash_movements', schema=None) as batch_op:
        batch_op.create_index('ix_cash_movements_tenant_date', ['tenant_id', 'kind', 'expected_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_cash_movements_invoice_id'), ['invoice_id'], unique=False)

    op.create_table('client_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_client_assignments_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_client_assignments_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_client_assignments_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_client_assignments')),
    sa.UniqueConstraint('tenant_id', 'client_id', 'user_id', name=op.f('uq_client_assignments_tenant_id_client_id_user_id'))
    )
    with op.batch_alter_table('client_assignments', schema=None) as batch_op:
        batch_op.create_index('ix_client_assignments_user', ['tenant_id', 'user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_client_assignments_client_id'), ['client_id'], unique=False)


def downgrade():
    with op.batch_alter_table('client_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_client_assignments_client_id'))
        batch_op.drop_index('ix_client_assignments_user')
    op.drop_table('client_assignments')
    with op.batch_alter_table('cash_movements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cash_movements_invoice_id'))
        batch_op.drop_index('ix_cash_movements_tenant_date')
    op.drop_table('cash_movements')
