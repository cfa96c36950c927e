"""entries list search (issue 17 item 6): a stored total per entry, indexed; pg_trgm GIN on PostgreSQL

Revision ID: acc_entries_search
Revises: list_search_trgm
Create Date: 2026-12-04 23:20:00

The entries list sorts and filters by an entry's amount (the sum of its debits) and finds an entry by it:
computed per row, that read every line of the book (0.4 s at 100,000 entries); stored when the lines are
written (``core.accounting.rows.write_row``) and indexed, it is read like any column. The searched text
(``lower(column) LIKE``) gets trigram indexes on PostgreSQL, as in ``list_search_trgm``.
"""
import sqlalchemy as sa
from alembic import op

revision = 'acc_entries_search'
down_revision = 'list_search_trgm'
branch_labels = None
depends_on = None

# (index name, table, column)
INDEXES = (
    ('ix_acc_entries_piece_ref_trgm', 'acc_entries', 'piece_ref'),
    ('ix_acc_entries_label_trgm', 'acc_entries', 'label'),
    ('ix_acc_entry_lines_aux_label_trgm', 'acc_entry_lines', 'aux_label'),
)


def upgrade():
    is_pg = op.get_bind().dialect.name == 'postgresql'
    with op.batch_alter_table('acc_entries') as batch:
        batch.add_column(sa.Column('total', sa.Numeric(18, 2) if is_pg else sa.String(32), nullable=True))
    # Existing entries: the sum of their debits (text on SQLite, summed as numbers there, as Money reads it).
    debit = 'acc_entry_lines.debit' if is_pg else 'CAST(acc_entry_lines.debit AS REAL)'
    total = f'(SELECT coalesce(sum({debit}), 0) FROM acc_entry_lines WHERE acc_entry_lines.entry_id = acc_entries.id)'
    op.execute(f'UPDATE acc_entries SET total = {total}' if is_pg
               else f"UPDATE acc_entries SET total = printf('%.2f', {total})")
    op.create_index('ix_acc_entries_tenant_total', 'acc_entries', ['tenant_id', 'total'])
    if not is_pg:
        return
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    for name, table, column in INDEXES:
        op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (lower({column}) gin_trgm_ops) '
                   'WITH (fastupdate = off)')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for name, _table, _column in INDEXES:
            op.execute(f'DROP INDEX IF EXISTS {name}')
    op.drop_index('ix_acc_entries_tenant_total', table_name='acc_entries')
    with op.batch_alter_table('acc_entries') as batch:
        batch.drop_column('total')
