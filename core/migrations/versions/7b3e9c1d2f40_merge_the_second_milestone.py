"""merge the areas of the second milestone: templates, split PDFs, addresses, locale, summaries, sender auth

Revision ID: 7b3e9c1d2f40
Revises: 028433f6c5ff, 6734b1a796b4, 99a49ea2ed80, a0f1f50a5cdb, befb96be59c9, e339b8d66320
Create Date: 2026-11-24 11:10:00

"""

# revision identifiers, used by Alembic.
revision = '7b3e9c1d2f40'
down_revision = ('028433f6c5ff', '6734b1a796b4', '99a49ea2ed80', 'a0f1f50a5cdb', 'befb96be59c9', 'e339b8d66320')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
