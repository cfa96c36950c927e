"""the company's fiscal year end (issue 18): tenants.fiscal_year_end "MM-DD", 31 December by default

Revision ID: acc_fiscal_year_end
Revises: reasons_data
Create Date: 2026-12-05 01:30:00

Existing companies keep calendar fiscal years (the server default fills their rows).
"""
import sqlalchemy as sa
from alembic import op

revision = 'acc_fiscal_year_end'
down_revision = 'reasons_data'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tenants') as batch_op:
        batch_op.add_column(sa.Column('fiscal_year_end', sa.String(length=5), nullable=False,
                                      server_default='12-31'))


def downgrade():
    with op.batch_alter_table('tenants') as batch_op:
        batch_op.drop_column('fiscal_year_end')
