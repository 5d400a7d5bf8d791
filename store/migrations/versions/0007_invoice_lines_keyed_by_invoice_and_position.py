"""invoice lines keyed by (invoice, position), without a per-row foreign-key check

A month-end writes every usage line of every organization into invoice_lines (a million rows and more). On
PostgreSQL the foreign-key trigger on invoice_id costs about 4 ms per 1,000 lines, and the surrogate id a
sequence call and a second index per row. Lines are written only by the statement that creates their invoice, in
the same transaction, and invoices are never deleted; the key (invoice_id, position) identifies a line.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 08:10:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

COLUMNS = ("invoice_id, position, project, deployment, service, sku, start_date, end_date, quantity, unit, "
           "unit_price, amount")


def _columns() -> list[sa.Column]:
    return [
        sa.Column('invoice_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('project', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('deployment', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column('service', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('sku', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('start_date', sa.Date(), nullable=False),
        sa.Column('end_date', sa.Date(), nullable=False),
        sa.Column('quantity', store.db.ExactDecimal(precision=20, scale=6), nullable=False),
        sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('unit_price', store.db.ExactDecimal(precision=20, scale=6), nullable=False),
        sa.Column('amount', store.db.ExactDecimal(precision=20, scale=6), nullable=False),
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint('invoice_lines_invoice_id_fkey', 'invoice_lines', type_='foreignkey')
        op.drop_constraint('invoice_lines_pkey', 'invoice_lines', type_='primary')
        op.drop_index('ix_invoice_lines_invoice_id', table_name='invoice_lines')
        op.drop_column('invoice_lines', 'id')
        op.create_primary_key('invoice_lines_pkey', 'invoice_lines', ['invoice_id', 'position'])
        return
    # SQLite cannot alter a primary key: rebuild the table.
    op.create_table('invoice_lines_new', *_columns(), sa.PrimaryKeyConstraint('invoice_id', 'position'))
    op.execute(f"INSERT INTO invoice_lines_new ({COLUMNS}) SELECT {COLUMNS} FROM invoice_lines")
    op.drop_index('ix_invoice_lines_invoice_id', table_name='invoice_lines')
    op.drop_table('invoice_lines')
    op.rename_table('invoice_lines_new', 'invoice_lines')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint('invoice_lines_pkey', 'invoice_lines', type_='primary')
        op.execute("ALTER TABLE invoice_lines ADD COLUMN id SERIAL")
        op.create_primary_key('invoice_lines_pkey', 'invoice_lines', ['id'])
        op.create_foreign_key('invoice_lines_invoice_id_fkey', 'invoice_lines', 'invoices', ['invoice_id'], ['id'])
        op.create_index('ix_invoice_lines_invoice_id', 'invoice_lines', ['invoice_id'], unique=False)
        return
    op.create_table('invoice_lines_old', sa.Column('id', sa.Integer(), nullable=False), *_columns(),
                    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id']), sa.PrimaryKeyConstraint('id'))
    op.execute(f"INSERT INTO invoice_lines_old ({COLUMNS}) SELECT {COLUMNS} FROM invoice_lines "
               "ORDER BY invoice_id, position")
    op.drop_table('invoice_lines')
    op.rename_table('invoice_lines_old', 'invoice_lines')
    op.create_index('ix_invoice_lines_invoice_id', 'invoice_lines', ['invoice_id'], unique=False)
