"""mailboxes: the OAuth2 connection's state (connected at, access token expiry, last refused refresh), issue 17

Revision ID: mailbox_oauth_state
Revises: acc_company_identity
Create Date: 2026-12-04 22:00:00

"""
import sqlalchemy as sa
from alembic import op

import core.models

revision = 'mailbox_oauth_state'
down_revision = 'acc_company_identity'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('mailboxes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('oauth_connected_at', core.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('oauth_token_expires_at', core.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('oauth_refresh_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('oauth_refresh_error_at', core.models.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('mailboxes', schema=None) as batch_op:
        for column in ('oauth_refresh_error_at', 'oauth_refresh_error', 'oauth_token_expires_at', 'oauth_connected_at'):
            batch_op.drop_column(column)
