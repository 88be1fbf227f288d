"""consent ledger: the language the notice was shown in; consent question and conversation bookkeeping

Revision ID: c0ffee000012
Revises: c0ffee000014
Create Date: 2026-12-01 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "c0ffee000012"
down_revision: str | Sequence[str] | None = "c0ffee000014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consentrecord", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notice_lang", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    with op.batch_alter_table("conversationstate", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_unclear", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("notice_lang", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("last_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversationstate", schema=None) as batch_op:
        batch_op.drop_column("last_at")
        batch_op.drop_column("notice_lang")
        batch_op.drop_column("consent_unclear")
    with op.batch_alter_table("consentrecord", schema=None) as batch_op:
        batch_op.drop_column("notice_lang")
