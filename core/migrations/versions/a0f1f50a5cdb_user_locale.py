"""users.locale: the dashboard language a person chose

Revision ID: a0f1f50a5cdb
Revises: 1f6a39c1b60a
Create Date: 2026-11-24 10:05:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a0f1f50a5cdb'
down_revision = '1f6a39c1b60a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locale')
