"""sender authentication: SPF/DKIM/DMARC verdicts and HELO on messages, the tenant's DMARC action

Revision ID: e339b8d66320
Revises: 1f6a39c1b60a
Create Date: 2026-11-24 10:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'e339b8d66320'
down_revision = '1f6a39c1b60a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('helo', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('sender_auth', sa.JSON(), nullable=True))
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dmarc_action', sa.String(length=16), server_default='accept', nullable=False))


def downgrade():
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('dmarc_action')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('sender_auth')
        batch_op.drop_column('helo')
