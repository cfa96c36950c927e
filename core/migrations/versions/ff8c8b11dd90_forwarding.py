"""forwarding: confirmation codes sent by Gmail / Microsoft to a tenant's inbound address

Revision ID: ff8c8b11dd90
Revises: 8ed59764d296
Create Date: 2026-11-24 08:10:00

"""
from alembic import op
import sqlalchemy as sa

import core.models


revision = 'ff8c8b11dd90'
down_revision = '8ed59764d296'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('forwarding_confirmations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=True),
    sa.Column('link', sa.String(length=2048), nullable=True),
    sa.Column('requester', sa.String(length=320), nullable=True),
    sa.Column('sender', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=998), nullable=False),
    sa.Column('sent_at', core.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('authenticated', sa.Boolean(), nullable=True),
    sa.Column('auth_results', sa.Text(), nullable=False),
    sa.Column('received_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_forwarding_confirmations_message_id_messages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_forwarding_confirmations_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_forwarding_confirmations')),
    sa.UniqueConstraint('message_id', name=op.f('uq_forwarding_confirmations_message_id'))
    )
    with op.batch_alter_table('forwarding_confirmations', schema=None) as batch_op:
        batch_op.create_index('ix_forwarding_confirmations_tenant_received', ['tenant_id', 'received_at'], unique=False)


def downgrade():
    with op.batch_alter_table('forwarding_confirmations', schema=None) as batch_op:
        batch_op.drop_index('ix_forwarding_confirmations_tenant_received')
    op.drop_table('forwarding_confirmations')
