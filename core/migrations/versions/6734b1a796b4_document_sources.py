"""document sources: a PDF holding several invoices, split into one document per invoice (issue #4)

Revision ID: 6734b1a796b4
Revises: 1f6a39c1b60a
Create Date: 2026-11-24 10:10:00

documents.source_id has no foreign key on purpose: adding one would rebuild the documents table on
SQLite (and with foreign keys on, dropping the old table would null the invoices' document ids).
"""
import sqlalchemy as sa
from alembic import op

import core.models

revision = '6734b1a796b4'
down_revision = '1f6a39c1b60a'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('document_sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('part_index', sa.Integer(), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('page_count', sa.Integer(), nullable=False),
    sa.Column('detection', sa.JSON(), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('regrouped_at', core.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('regrouped_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['file_id'], ['files.id'], name=op.f('fk_document_sources_file_id_files')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_document_sources_message_id_messages'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['regrouped_by_id'], ['users.id'],
                            name=op.f('fk_document_sources_regrouped_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_document_sources_tenant_id_tenants'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_sources')),
    sa.UniqueConstraint('message_id', 'part_index', name=op.f('uq_document_sources_message_id_part_index'))
    )
    with op.batch_alter_table('document_sources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_sources_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('source_pages', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_documents_source_id'), ['source_id'], unique=False)


def downgrade():
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_documents_source_id'))
        batch_op.drop_column('source_pages')
        batch_op.drop_column('source_id')

    with op.batch_alter_table('document_sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_sources_tenant_id'))
    op.drop_table('document_sources')
