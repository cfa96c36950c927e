"""messages.raw_purged_at: raw e-mails deleted by the retention period, their files kept (issue 15)

Revision ID: 0b5e7a3c9d12
Revises: sec_input_bank_senders
Create Date: 2026-12-04 19:15:00

"""
import sqlalchemy as sa
from alembic import op

import core.models

# revision identifiers, used by Alembic.
revision = '0b5e7a3c9d12'
down_revision = 'sec_input_bank_senders'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raw_purged_at', core.models.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('raw_purged_at')
