"""one bank journal per bank account (issue 18 items 2 and 4): acc_journals names its bank account and
general-ledger account; matching rules name an account and a VAT rate

Revision ID: bank_journals
Revises: acc_fiscal_year_end
Create Date: 2026-12-05 01:15:00

Nothing to move: the journals of existing bank accounts are given on first use (BQ1 / 512001, ...), and
the entries already in the seeded BQ journal on 512000 stay valid there.
"""
import sqlalchemy as sa
from alembic import op

import core.models

revision = 'bank_journals'
down_revision = 'acc_fiscal_year_end'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('acc_journals') as batch_op:
        batch_op.add_column(sa.Column('bank_account_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('account', sa.String(length=20), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_acc_journals_bank_account_id_bank_accounts'), 'bank_accounts',
                                    ['bank_account_id'], ['id'], ondelete='SET NULL')
        batch_op.create_unique_constraint(batch_op.f('uq_acc_journals_tenant_id_bank_account_id'),
                                          ['tenant_id', 'bank_account_id'])
    with op.batch_alter_table('matching_rules') as batch_op:
        batch_op.add_column(sa.Column('account', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('vat_rate', core.models.Money(precision=18, scale=2), nullable=True))


def downgrade():
    with op.batch_alter_table('matching_rules') as batch_op:
        batch_op.drop_column('vat_rate')
        batch_op.drop_column('account')
    with op.batch_alter_table('acc_journals') as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_acc_journals_tenant_id_bank_account_id'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_acc_journals_bank_account_id_bank_accounts'), type_='foreignkey')
        batch_op.drop_column('account')
        batch_op.drop_column('bank_account_id')
