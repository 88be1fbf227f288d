"""ops: an index for the metrics read at scrape time (events processed in the last minutes)

Revision ID: c0ffee000016
Revises: c0ffee000012
Create Date: 2026-12-01 09:30:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0ffee000016"
down_revision: str | Sequence[str] | None = "c0ffee000012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inboundevent", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_processed", ["processed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inboundevent", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_processed")
