"""DATEV Beraternummer and Mandantennummer per company (issue 18): the Buchungsstapel header names its ledger

Revision ID: datev_numbers
Revises: bank_journals
Create Date: 2026-12-05 01:50:00

Both empty for existing companies: a DATEV export is refused until an admin sets them.
"""
import sqlalchemy as sa
from alembic import op

revision = 'datev_numbers'
down_revision = 'bank_journals'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tenants') as batch_op:
        batch_op.add_column(sa.Column('datev_consultant_number', sa.String(length=7), nullable=True))
        batch_op.add_column(sa.Column('datev_client_number', sa.String(length=5), nullable=True))


def downgrade():
    with op.batch_alter_table('tenants') as batch_op:
        batch_op.drop_column('datev_client_number')
        batch_op.drop_column('datev_consultant_number')
