"""telegram bridge: alert delivery attempts and route, one action per staff Telegram message

Revision ID: c0ffee000013
Revises: c0ffee000016
Create Date: 2026-12-01 09:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "c0ffee000013"
down_revision: str | Sequence[str] | None = "c0ffee000016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staffalert", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivered_via", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("attempted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch_op.add_column(sa.Column("crisis_category", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.create_index("ix_staffalert_pending", ["delivered_at", "id"], unique=False)
    op.create_table(
        "telegramaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("tg_message_id", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("staff", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reply_message_id", sa.Integer(), nullable=True),
        sa.Column("reported", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("reported_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reply_message_id"], ["message.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chat_id", "tg_message_id", name="uq_telegramaction_message"),
    )
    with op.batch_alter_table("telegramaction", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_telegramaction_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("telegramaction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telegramaction_case_id"))
    op.drop_table("telegramaction")
    with op.batch_alter_table("staffalert", schema=None) as batch_op:
        batch_op.drop_index("ix_staffalert_pending")
        batch_op.drop_column("crisis_category")
        batch_op.drop_column("last_error")
        batch_op.drop_column("attempted_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("delivered_via")
