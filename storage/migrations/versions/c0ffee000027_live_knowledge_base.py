"""the live knowledge base: entries and contacts, revisions, versions, pending edits, settings

Revision ID: c0ffee000027
Revises: c0ffee000026
Create Date: 2026-12-01 16:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "c0ffee000027"
down_revision: str | Sequence[str] | None = "c0ffee000026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('kbitem',
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('item_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('revision_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'item_id')
    )
    with op.batch_alter_table('kbitem', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kbitem_revision_id'), ['revision_id'], unique=False)

    op.create_table('kbpending',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('staff_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('comment', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('item_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('base_revision', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('revision_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('kbpending', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kbpending_status'), ['status'], unique=False)

    op.create_table('kbrevision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('staff_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('comment', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('change', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    op.create_table('kbsetting',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('kbversion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('revision_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('item_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('before', sa.Text(), nullable=True),
    sa.Column('after', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['revision_id'], ['kbrevision.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('kbversion', schema=None) as batch_op:
        batch_op.create_index('ix_kbversion_item', ['kind', 'item_id', 'revision_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_kbversion_revision_id'), ['revision_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('kbversion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kbversion_revision_id'))
        batch_op.drop_index('ix_kbversion_item')

    op.drop_table('kbversion')
    op.drop_table('kbsetting')
    op.drop_table('kbrevision')
    with op.batch_alter_table('kbpending', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kbpending_status'))

    op.drop_table('kbpending')
    with op.batch_alter_table('kbitem', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kbitem_revision_id'))

    op.drop_table('kbitem')
