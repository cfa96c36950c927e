"""reasons as data (issue 16 step 5): reason_code and reason_params on messages and documents

Revision ID: reasons_data
Revises: acc_entries_search
Create Date: 2026-12-04 23:05:00

``reason_code`` is the catalogue template (the msgid) and ``reason_params`` its values (core/reasons.py);
the English ``reason`` stays for the API, logs and older rows, whose code stays NULL (the dashboard
recognises their text as before).
"""
import sqlalchemy as sa
from alembic import op

revision = 'reasons_data'
down_revision = 'acc_entries_search'
branch_labels = None
depends_on = None

TABLES = ('messages', 'documents')


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column('reason_code', sa.Text(), nullable=True))
            batch_op.add_column(sa.Column('reason_params', sa.JSON(), nullable=True))


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column('reason_params')
            batch_op.drop_column('reason_code')
