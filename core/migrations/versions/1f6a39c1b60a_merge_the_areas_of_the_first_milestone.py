"""merge the areas of the first milestone

Revision ID: 1f6a39c1b60a
Revises: 3c9e2a71f0b4, 5e1c0a7b9d24, a41c7e9d2b10, b4c6e1f2a9d3, c7d2e5a1f803, ff8c8b11dd90
Create Date: 2026-11-24 08:45:12.932912

"""
from alembic import op
import sqlalchemy as sa

import core.models


# revision identifiers, used by Alembic.
revision = '1f6a39c1b60a'
down_revision = ('3c9e2a71f0b4', '5e1c0a7b9d24', 'a41c7e9d2b10', 'b4c6e1f2a9d3', 'c7d2e5a1f803', 'ff8c8b11dd90')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
