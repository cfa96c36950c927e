"""tenants: the company's identity (legal name, country, SIREN, VAT number, IBAN, chart of accounts), issue 18

Revision ID: acc_company_identity
Revises: 0b5e7a3c9d12
Create Date: 2026-12-04 22:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'acc_company_identity'
down_revision = '0b5e7a3c9d12'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legal_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('siren', sa.String(length=14), nullable=True))
        batch_op.add_column(sa.Column('vat_number', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('iban', sa.String(length=34), nullable=True))
        batch_op.add_column(sa.Column('chart', sa.String(length=8), server_default='pcg', nullable=False))


def downgrade():
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        for column in ('chart', 'iban', 'vat_number', 'siren', 'country', 'legal_name'):
            batch_op.drop_column(column)
