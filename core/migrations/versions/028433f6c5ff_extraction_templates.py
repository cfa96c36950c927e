"""extraction templates: per-tenant invoice2data templates written in the dashboard (issue #4)

Revision ID: 028433f6c5ff
Revises: 1f6a39c1b60a
Create Date: 2026-11-24 10:05:00

"""
import sqlalchemy as sa
from alembic import op

import core.models

revision = '028433f6c5ff'
down_revision = '1f6a39c1b60a'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('extraction_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('issuer', sa.String(length=300), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_extraction_templates_tenant_id_tenants'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_extraction_templates')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_extraction_templates_tenant_id_name'))
    )
    with op.batch_alter_table('extraction_templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_extraction_templates_tenant_id'), ['tenant_id'], unique=False)


def downgrade():
    with op.batch_alter_table('extraction_templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_extraction_templates_tenant_id'))
    op.drop_table('extraction_templates')
