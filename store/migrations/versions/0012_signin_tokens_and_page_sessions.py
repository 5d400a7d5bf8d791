"""the pages' sign-in: one-time sign-in links and browser sessions, both kept hashed (SPEC G5, I2)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.db


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signin_tokens',
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('org_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('created_at', store.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', store.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', store.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('signin_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signin_tokens_org_id'), ['org_id'], unique=False)

    op.create_table('page_sessions',
    sa.Column('id_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('org_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('created_at', store.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', store.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', store.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id_hash')
    )
    with op.batch_alter_table('page_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_page_sessions_org_id'), ['org_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('page_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_page_sessions_org_id'))
    op.drop_table('page_sessions')
    with op.batch_alter_table('signin_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signin_tokens_org_id'))
    op.drop_table('signin_tokens')
