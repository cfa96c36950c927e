"""security: the tenant's declared bank senders, and transactions from unverified mailed statements

Revision ID: sec_input_bank_senders
Revises: c4d7e2a9b105
Create Date: 2026-12-04 18:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'sec_input_bank_senders'
down_revision = 'c4d7e2a9b105'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bank_senders', sa.Text(), nullable=True))
    with op.batch_alter_table('bank_transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unverified', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('bank_transactions', schema=None) as batch_op:
        batch_op.drop_column('unverified')
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('bank_senders')
