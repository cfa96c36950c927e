"""senders: sender allow-list, quarantine release, Authentication-Results, Message-ID duplicates

Revision ID: c7d2e5a1f803
Revises: 8ed59764d296
Create Date: 2026-11-24 08:20:00

"""
import sqlalchemy as sa
from alembic import op

import core.models

revision = 'c7d2e5a1f803'
down_revision = '8ed59764d296'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sender_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('pattern', sa.String(length=320), nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sender_rules_tenant_id_tenants'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sender_rules')),
    sa.UniqueConstraint('tenant_id', 'pattern', name=op.f('uq_sender_rules_tenant_id_pattern'))
    )
    with op.batch_alter_table('sender_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sender_rules_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auth_results', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('envelope_sender', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('duplicate_of_message_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('released_by', sa.String(length=254), nullable=True))
        batch_op.create_index('ix_messages_tenant_message_id', ['tenant_id', 'message_id_header'], unique=False)


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_tenant_message_id')
        batch_op.drop_column('released_by')
        batch_op.drop_column('duplicate_of_message_id')
        batch_op.drop_column('envelope_sender')
        batch_op.drop_column('auth_results')
    with op.batch_alter_table('sender_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sender_rules_tenant_id'))
    op.drop_table('sender_rules')
