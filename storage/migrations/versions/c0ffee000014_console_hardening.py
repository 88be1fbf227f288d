"""console hardening: login attempts counted per account and per client address with backoff, who edited a
notice, a heartbeat on notice runs

Revision ID: c0ffee000014
Revises: c0ffee000004
Create Date: 2026-12-01 09:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "c0ffee000014"
down_revision: str | Sequence[str] | None = "c0ffee000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # storage/staff.py
    with op.batch_alter_table("staffaccount", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lockouts", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "loginthrottle",
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("blocks", sa.Integer(), nullable=False),
        sa.Column("blocked_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_failure_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )
    # storage/notices.py
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("editors", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("noticerun", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("noticerun", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_column("editors")
    op.drop_table("loginthrottle")
    with op.batch_alter_table("staffaccount", schema=None) as batch_op:
        batch_op.drop_column("lockouts")
