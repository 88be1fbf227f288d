"""line hardening: fair claiming (crisis lane, round-robin by sender), reply-token state and worker heartbeats

Revision ID: c0ffee000011
Revises: c0ffee000013
Create Date: 2026-12-01 09:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "c0ffee000011"
down_revision: str | Sequence[str] | None = "c0ffee000013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inboundevent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lane", sa.Integer(), nullable=False, server_default="1"))
        batch_op.drop_index("ix_inbound_claim")
        batch_op.create_index("ix_inbound_fair", ["status", "sender_key", "id"], unique=False)
        batch_op.create_index(
            "ix_inbound_crisis",
            ["status", "id"],
            unique=False,
            sqlite_where=sa.text("lane = 0"),
            postgresql_where=sa.text("lane = 0"),
        )
    with op.batch_alter_table("outboundmessage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("reply_state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    op.create_table(
        "workerheartbeat",
        sa.Column("worker_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id"),
    )
    with op.batch_alter_table("workerheartbeat", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workerheartbeat_seen_at"), ["seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("workerheartbeat", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workerheartbeat_seen_at"))
    op.drop_table("workerheartbeat")
    with op.batch_alter_table("outboundmessage", schema=None) as batch_op:
        batch_op.drop_column("reply_state")
        batch_op.drop_column("claimed_by")
    with op.batch_alter_table("inboundevent", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_crisis")
        batch_op.drop_index("ix_inbound_fair")
        batch_op.create_index("ix_inbound_claim", ["status", "id"], unique=False)
        batch_op.drop_column("lane")
