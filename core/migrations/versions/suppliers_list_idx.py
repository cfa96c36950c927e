"""suppliers list at volume (issue 17 item 6): the payables' currencies, and an index of the unpaid payables

Revision ID: suppliers_list_idx
Revises: search_fold
Create Date: 2026-12-05 01:40:00

The suppliers list read every payable twice per page: a DISTINCT for its currencies, and the balances'
aggregate over all of a currency's payables. Its currencies are now read as successive minimums on
``(tenant_id, direction, currency)``; what is due is aggregated over the unpaid payables only, which the
partial index holds (a book of years of paid supplier invoices has few open ones).
"""
import sqlalchemy as sa
from alembic import op

revision = 'suppliers_list_idx'
down_revision = 'search_fold'
branch_labels = None
depends_on = None

UNPAID_PAYABLES = sa.text("direction = 'payable' AND status <> 'paid'")


def upgrade():
    op.create_index('ix_invoices_tenant_direction_currency', 'invoices', ['tenant_id', 'direction', 'currency'])
    op.create_index('ix_invoices_unpaid_payables', 'invoices', ['tenant_id', 'currency', 'client_id'],
                    postgresql_where=UNPAID_PAYABLES, sqlite_where=UNPAID_PAYABLES)


def downgrade():
    op.drop_index('ix_invoices_unpaid_payables', table_name='invoices')
    op.drop_index('ix_invoices_tenant_direction_currency', table_name='invoices')
