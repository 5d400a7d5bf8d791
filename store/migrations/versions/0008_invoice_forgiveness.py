"""invoice forgiveness: the forgiven amount on the invoice and its audit record (SPEC D10)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 04:50:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('forgiven', store.db.ExactDecimal(precision=20, scale=6), nullable=False, server_default='0'))
    op.create_table('invoice_forgiveness',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('amount', store.db.ExactDecimal(precision=20, scale=6), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('forgiven_by', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('at', store.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('invoice_id')
    )
    with op.batch_alter_table('invoice_forgiveness', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_forgiveness_org_id'), ['org_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('invoice_forgiveness', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_forgiveness_org_id'))
    op.drop_table('invoice_forgiveness')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('forgiven')
