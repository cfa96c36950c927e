"""payables (issue 18 items 1 and 6): supplier role and address on clients, approval policy on tenants,
approvals, supplier IBAN changes, payment runs and manual payments

Revision ID: acc_payables
Revises: acc_core
Create Date: 2026-12-04 22:30:00

"""
import sqlalchemy as sa
from alembic import op

import core.models

revision = 'acc_payables'
down_revision = 'acc_core'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approval_mode', sa.String(length=16), server_default='none', nullable=False))
        batch_op.add_column(sa.Column('approval_threshold', core.models.Money(), nullable=True))
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=16), server_default='client', nullable=False))
        batch_op.add_column(sa.Column('street', sa.String(length=140), nullable=True))
        batch_op.add_column(sa.Column('postcode', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('town', sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=True))
        batch_op.drop_constraint('uq_clients_tenant_id_normalized_name', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_clients_tenant_id_role_normalized_name'),
                                          ['tenant_id', 'role', 'normalized_name'])

    op.create_table('payable_approvals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('user_email', sa.String(length=254), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_payable_approvals_invoice_id_invoices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payable_approvals_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_payable_approvals_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payable_approvals')),
    sa.UniqueConstraint('invoice_id', 'step', name=op.f('uq_payable_approvals_invoice_id_step')),
    sa.UniqueConstraint('invoice_id', 'user_id', name=op.f('uq_payable_approvals_invoice_id_user_id'))
    )
    with op.batch_alter_table('payable_approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payable_approvals_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('supplier_iban_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('supplier_id', sa.Integer(), nullable=False),
    sa.Column('old_iban', sa.String(length=34), nullable=True),
    sa.Column('new_iban', sa.String(length=34), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=254), nullable=False),
    sa.Column('requested_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=254), nullable=True),
    sa.Column('decided_at', core.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['supplier_id'], ['clients.id'], name=op.f('fk_supplier_iban_changes_supplier_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_supplier_iban_changes_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supplier_iban_changes'))
    )
    with op.batch_alter_table('supplier_iban_changes', schema=None) as batch_op:
        batch_op.create_index('ix_supplier_iban_changes_supplier', ['tenant_id', 'supplier_id', 'state'], unique=False)

    op.create_table('payment_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('due_by', sa.Date(), nullable=False),
    sa.Column('execution_date', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('debtor_iban', sa.String(length=34), nullable=False),
    sa.Column('total_cents', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('xml', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payment_runs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_runs'))
    )
    with op.batch_alter_table('payment_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_runs_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('payment_run_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('supplier_name', sa.String(length=300), nullable=False),
    sa.Column('iban', sa.String(length=34), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('end_to_end_id', sa.String(length=35), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_payment_run_items_invoice_id_invoices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['payment_runs.id'], name=op.f('fk_payment_run_items_run_id_payment_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payment_run_items_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_run_items')),
    sa.UniqueConstraint('run_id', 'invoice_id', name=op.f('uq_payment_run_items_run_id_invoice_id'))
    )
    with op.batch_alter_table('payment_run_items', schema=None) as batch_op:
        batch_op.create_index('ix_payment_run_items_invoice', ['invoice_id'], unique=False)

    op.create_table('manual_payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('amount', core.models.Money(), nullable=False),
    sa.Column('user_email', sa.String(length=254), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_manual_payments_invoice_id_invoices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_manual_payments_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_manual_payments'))
    )
    with op.batch_alter_table('manual_payments', schema=None) as batch_op:
        batch_op.create_index('ix_manual_payments_invoice', ['tenant_id', 'invoice_id'], unique=False)


def downgrade():
    for table in ('manual_payments', 'payment_run_items', 'payment_runs', 'supplier_iban_changes',
                  'payable_approvals'):
        op.drop_table(table)
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_constraint('uq_clients_tenant_id_role_normalized_name', type_='unique')
        batch_op.create_unique_constraint('uq_clients_tenant_id_normalized_name', ['tenant_id', 'normalized_name'])
        for column in ('country', 'town', 'postcode', 'street', 'role'):
            batch_op.drop_column(column)
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('approval_threshold')
        batch_op.drop_column('approval_mode')
