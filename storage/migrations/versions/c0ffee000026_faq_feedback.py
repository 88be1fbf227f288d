"""FAQ feedback: questions the bot could not answer (redacted, no contact) and 👍/👎 votes per entry

Revision ID: c0ffee000026
Revises: c0ffee000025
Create Date: 2026-12-01 16:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "c0ffee000026"
down_revision: str | Sequence[str] | None = "c0ffee000025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "faqfeedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("lang", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("entry_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("candidates", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("used_entry", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("handled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_faqfeedback_at", "faqfeedback", ["at"], unique=False)
    op.create_index("ix_faqfeedback_status_at", "faqfeedback", ["status", "at"], unique=False)
    op.create_table(
        "faqvote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("entry_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("lang", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_faqvote_at", "faqvote", ["at"], unique=False)
    op.create_index("ix_faqvote_entry_id", "faqvote", ["entry_id"], unique=False)
    with op.batch_alter_table("conversationstate") as batch:
        batch.add_column(sa.Column("feedback_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversationstate") as batch:
        batch.drop_column("feedback_id")
    op.drop_index("ix_faqvote_entry_id", table_name="faqvote")
    op.drop_index("ix_faqvote_at", table_name="faqvote")
    op.drop_table("faqvote")
    op.drop_index("ix_faqfeedback_status_at", table_name="faqfeedback")
    op.drop_index("ix_faqfeedback_at", table_name="faqfeedback")
    op.drop_table("faqfeedback")
