"""subscriptions.banked_total: all a monthly commitment has banked in its term

SPEC D1/D3: the bank shows on the Available Credits table as a line (banked, used, still banked) and what is
still banked when the term ends lapses there as expired; the running total banked is what that line needs
besides the bank itself.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 05:00:00
"""
from alembic import op
import sqlalchemy as sa
import store.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('banked_total', store.db.ExactDecimal(precision=20, scale=6), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('banked_total')
