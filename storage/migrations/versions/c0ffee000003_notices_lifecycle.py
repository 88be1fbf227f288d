"""subscriptions, notices, deliveries, disposal log

Revision ID: c0ffee000003
Revises: c0ffee000002
Create Date: 2026-11-26 23:50:00

"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "c0ffee000003"
down_revision: str | Sequence[str] | None = "c0ffee000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # --- notice preferences (storage/lifecycle.py)
    op.create_table(
        "noticetopic",
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("contact_id", "topic"),
    )
    with op.batch_alter_table("noticetopic", schema=None) as batch_op:
        batch_op.create_index("ix_noticetopic_topic", ["topic", "enabled"], unique=False)

    op.create_table(
        "noticeprofile",
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("lang", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("child_month", sa.Date(), nullable=True),
        sa.Column("child_month_kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("child_month_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("awaiting", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("awaiting_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("contact_id"),
    )
    with op.batch_alter_table("noticeprofile", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_noticeprofile_child_month"), ["child_month"], unique=False)

    # --- records lifecycle logs (no content)
    op.create_table(
        "disposallog",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("disposallog", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disposallog_at"), ["at"], unique=False)

    op.create_table(
        "recordrequest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("contact_ref", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("case_ref", sa.Integer(), nullable=True),
        sa.Column("requested_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("done_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("exceptions", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("recordrequest", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recordrequest_contact_ref"), ["contact_ref"], unique=False)

    # --- APScheduler's SQLAlchemyJobStore table (scheduler/), created here so that several web workers never
    # race to create it at start-up; the layout is APScheduler 3.x's own.
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_apscheduler_jobs_next_run_time", ["next_run_time"], unique=False)

    # --- the delay of an anonymous "first_reply" counter (handlers/reports.py); StatEvent.seconds in the model
    with op.batch_alter_table("statevent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("statevent", schema=None) as batch_op:
        batch_op.drop_column("seconds")

    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_apscheduler_jobs_next_run_time")
    op.drop_table("apscheduler_jobs")

    with op.batch_alter_table("recordrequest", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recordrequest_contact_ref"))
    op.drop_table("recordrequest")

    with op.batch_alter_table("disposallog", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disposallog_at"))
    op.drop_table("disposallog")

    with op.batch_alter_table("noticeprofile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_noticeprofile_child_month"))
    op.drop_table("noticeprofile")

    with op.batch_alter_table("noticetopic", schema=None) as batch_op:
        batch_op.drop_index("ix_noticetopic_topic")
    op.drop_table("noticetopic")
