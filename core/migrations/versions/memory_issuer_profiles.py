"""issuer profiles: what each validation taught about an issuer's layout, and the text documents were read from
(issue #13 item 8)

Revision ID: c4d7e2a9b105
Revises: 5ec0acce5514
Create Date: 2026-12-04 19:00:00

"""
import sqlalchemy as sa
from alembic import op

import core.models

revision = 'c4d7e2a9b105'
down_revision = '5ec0acce5514'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('issuer_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('documents', sa.Integer(), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_issuer_profiles_tenant_id_tenants'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_issuer_profiles'))
    )
    with op.batch_alter_table('issuer_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_issuer_profiles_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('issuer_profile_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('profile_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('value', sa.String(length=320), nullable=False),
    sa.ForeignKeyConstraint(['profile_id'], ['issuer_profiles.id'],
                            name=op.f('fk_issuer_profile_keys_profile_id_issuer_profiles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_issuer_profile_keys_tenant_id_tenants'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_issuer_profile_keys')),
    sa.UniqueConstraint('profile_id', 'kind', 'value', name=op.f('uq_issuer_profile_keys_profile_id_kind_value'))
    )
    with op.batch_alter_table('issuer_profile_keys', schema=None) as batch_op:
        batch_op.create_index('ix_issuer_profile_keys_lookup', ['tenant_id', 'kind', 'value'], unique=False)

    op.create_table('document_readings',
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('extracted', sa.JSON(), nullable=False),
    sa.Column('profile_id', sa.Integer(), nullable=True),
    sa.Column('created_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'],
                            name=op.f('fk_document_readings_document_id_documents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_document_readings_tenant_id_tenants'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('document_id', name=op.f('pk_document_readings'))
    )
    with op.batch_alter_table('document_readings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_readings_tenant_id'), ['tenant_id'], unique=False)


def downgrade():
    with op.batch_alter_table('document_readings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_readings_tenant_id'))
    op.drop_table('document_readings')
    with op.batch_alter_table('issuer_profile_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_issuer_profile_keys_lookup')
    op.drop_table('issuer_profile_keys')
    with op.batch_alter_table('issuer_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_issuer_profiles_tenant_id'))
    op.drop_table('issuer_profiles')
