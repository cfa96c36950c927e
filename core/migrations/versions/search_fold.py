"""accent- and case-insensitive search (issue 17): the inbox_fold function; trigram indexes on it (PostgreSQL)

Revision ID: search_fold
Revises: datev_numbers
Create Date: 2026-12-05 01:30:00

The lists searched ``lower(column) LIKE``: case folded, accents not ("ecole" did not find "École"; SQLite's
lower() folds ASCII only, so "é" did not find "É" there). They now search ``inbox_fold(column) LIKE
inbox_fold(pattern)``: lower case, NFD, the combining marks removed, a few letters spelt in ASCII
(core/textsearch.py, whose ``fold`` is the same steps in Python and is registered on each SQLite connection:
SQLite needs nothing here). On PostgreSQL this creates the function (SQL, IMMUTABLE: the planner inlines it
and indexes can use it; it needs the database in UTF8 for ``normalize``) and rebuilds the trigram indexes of
``list_search_trgm`` and ``acc_entries_search`` on it, under the same names. Nothing is stored per row, so
existing rows need no backfill: the index build reads them.
"""
from alembic import op

revision = 'search_fold'
down_revision = 'datev_numbers'
branch_labels = None
depends_on = None

# (index name, table, column): every trigram index of the earlier revisions.
INDEXES = (
    ('ix_invoices_number_trgm', 'invoices', 'number'),
    ('ix_invoices_title_trgm', 'invoices', 'title'),
    ('ix_invoices_issuer_trgm', 'invoices', 'issuer'),
    ('ix_clients_name_trgm', 'clients', 'name'),
    ('ix_documents_number_trgm', 'documents', 'number'),
    ('ix_documents_client_trgm', 'documents', 'client'),
    ('ix_documents_issuer_trgm', 'documents', 'issuer'),
    ('ix_documents_filename_trgm', 'documents', 'filename'),
    ('ix_document_readings_text_trgm', 'document_readings', 'text'),
    ('ix_acc_entries_piece_ref_trgm', 'acc_entries', 'piece_ref'),
    ('ix_acc_entries_label_trgm', 'acc_entries', 'label'),
    ('ix_acc_entry_lines_aux_label_trgm', 'acc_entry_lines', 'aux_label'),
)
# Frozen copies of core/textsearch.py's COMBINING_MARKS and LETTERS (a test compares the two functions).
COMBINING_MARKS = r'\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f'
LETTERS = (('ß', 'ss'), ('æ', 'ae'), ('œ', 'oe'), ('þ', 'th'), ('ø', 'o'), ('ł', 'l'), ('đ', 'd'), ('ð', 'd'),
           ('ı', 'i'), ('ς', 'σ'))


def _fold_body() -> str:
    expr = f"regexp_replace(normalize(lower($1), NFD), '[{COMBINING_MARKS}]', '', 'g')"
    for letter, spelt in LETTERS:
        expr = f"replace({expr}, '{letter}', '{spelt}')"
    # ASCII text (as many bytes as characters) is only lowered: the common case, at lower()'s cost.
    return f'SELECT CASE WHEN octet_length($1) = char_length($1) THEN lower($1) ELSE {expr} END'


def _indexes(expression: str) -> None:
    for name, table, column in INDEXES:
        op.execute(f'DROP INDEX IF EXISTS {name}')
        # fastupdate off, as before: no pending list that every search would read linearly.
        op.execute(f'CREATE INDEX {name} ON {table} USING gin ({expression.format(column)} gin_trgm_ops) '
                   'WITH (fastupdate = off)')


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    op.execute('CREATE OR REPLACE FUNCTION inbox_fold(text) RETURNS text LANGUAGE sql IMMUTABLE STRICT '
               f'PARALLEL SAFE AS $fold$ {_fold_body()} $fold$')
    _indexes('inbox_fold({})')


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    _indexes('lower({})')
    op.execute('DROP FUNCTION IF EXISTS inbox_fold(text)')
