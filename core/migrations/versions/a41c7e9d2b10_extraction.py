"""extraction: documents.extraction_details (e-invoice VAT breakdown and lines, checked identifiers)

Revision ID: a41c7e9d2b10
Revises: 8ed59764d296
Create Date: 2026-11-24 08:05:00

"""
import sqlalchemy as sa
from alembic import op

import core.models  # noqa: F401  (like the initial revision)

revision = 'a41c7e9d2b10'
down_revision = '8ed59764d296'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extraction_details', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_column('extraction_details')
