"""mailboxes (IMAP)

Revision ID: 3c9e2a71f0b4
Revises: 8ed59764d296
Create Date: 2026-11-24 08:05:00

"""
import sqlalchemy as sa
from alembic import op

import core.models

# revision identifiers, used by Alembic.
revision = '3c9e2a71f0b4'
down_revision = '8ed59764d296'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('mailboxes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('security', sa.String(length=16), nullable=False),
    sa.Column('username', sa.String(length=320), nullable=False),
    sa.Column('auth', sa.String(length=16), nullable=False),
    sa.Column('secret_encrypted', sa.Text(), nullable=True),
    sa.Column('oauth_provider', sa.String(length=16), nullable=True),
    sa.Column('oauth_client_id', sa.String(length=255), nullable=True),
    sa.Column('oauth_client_secret_encrypted', sa.Text(), nullable=True),
    sa.Column('oauth_refresh_token_encrypted', sa.Text(), nullable=True),
    sa.Column('folder', sa.String(length=255), nullable=False),
    sa.Column('processed_folder', sa.String(length=255), nullable=True),
    sa.Column('unrouted_folder', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('last_uid', sa.BigInteger(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', core.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', core.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_mailboxes_tenant_id_tenants'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mailboxes'))
    )
    with op.batch_alter_table('mailboxes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mailboxes_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('mailbox_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mailbox_id', sa.Integer(), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('uid', sa.BigInteger(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('message_ids', sa.JSON(), nullable=False),
    sa.Column('message_id_header', sa.String(length=998), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('settled', sa.Boolean(), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mailbox_id'], ['mailboxes.id'], name=op.f('fk_mailbox_imports_mailbox_id_mailboxes'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mailbox_imports')),
    sa.UniqueConstraint('mailbox_id', 'uidvalidity', 'uid',
                        name=op.f('uq_mailbox_imports_mailbox_id_uidvalidity_uid'))
    )
    with op.batch_alter_table('mailbox_imports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mailbox_imports_settled'), ['settled'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_tenant_raw_sha256', ['tenant_id', 'raw_sha256'], unique=False)


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_tenant_raw_sha256')
    with op.batch_alter_table('mailbox_imports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mailbox_imports_settled'))
    op.drop_table('mailbox_imports')
    with op.batch_alter_table('mailboxes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mailboxes_tenant_id'))
    op.drop_table('mailboxes')
