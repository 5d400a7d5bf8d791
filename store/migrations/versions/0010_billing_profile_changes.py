"""billing profile changes: the audit of edits of the billing address and tax ID (SPEC A1-A2)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 04:40:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.db


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('billing_profile_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('changed_by', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('at', store.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changes', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('billing_profile_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_profile_changes_org_id'), ['org_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('billing_profile_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_profile_changes_org_id'))
    op.drop_table('billing_profile_changes')
