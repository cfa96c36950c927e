"""address rotation: the address each message was sent to, and whether it was retiring then

Revision ID: 99a49ea2ed80
Revises: 1f6a39c1b60a
Create Date: 2026-11-24 10:10:00

The inbound addresses themselves already have ``created_at`` and ``retires_at`` (initial schema).
"""
import sqlalchemy as sa
from alembic import op

revision = '99a49ea2ed80'
down_revision = '1f6a39c1b60a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inbound_address_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('to_retiring_address', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.create_foreign_key(batch_op.f('fk_messages_inbound_address_id_inbound_addresses'),
                                    'inbound_addresses', ['inbound_address_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index(batch_op.f('ix_messages_inbound_address_id'), ['inbound_address_id'], unique=False)


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_inbound_address_id'))
        batch_op.drop_constraint(batch_op.f('fk_messages_inbound_address_id_inbound_addresses'), type_='foreignkey')
        batch_op.drop_column('to_retiring_address')
        batch_op.drop_column('inbound_address_id')
