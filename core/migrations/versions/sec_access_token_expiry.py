"""api_tokens: an optional expiry and a label, so that tokens can be listed, told apart and expire (issue 14)

Revision ID: 5ec0acce5514
Revises: 7b3e9c1d2f40
Create Date: 2026-12-04 18:40:00

"""
import sqlalchemy as sa
from alembic import op

import core.models

# revision identifiers, used by Alembic.
revision = '5ec0acce5514'
down_revision = '7b3e9c1d2f40'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('label', sa.String(length=100), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('expires_at', core.models.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.drop_column('label')
