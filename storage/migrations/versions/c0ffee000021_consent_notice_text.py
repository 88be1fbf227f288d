"""consent ledger: the wording of the notice shown and the SHA-256 of its exact text

Rows written before this revision get the wording of their channel (a mail showed the mail notice); the
birth-month prompt cannot be told apart in them, and their digest stays empty.

Revision ID: c0ffee000021
Revises: c0ffee000011
Create Date: 2026-12-01 13:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "c0ffee000021"
down_revision: str | Sequence[str] | None = "c0ffee000011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consentrecord", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notice_wording", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("notice_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.execute(
        "UPDATE consentrecord SET notice_wording = CASE WHEN channel = 'email' THEN 'mail' ELSE 'chat' END"
        " WHERE status IN ('granted', 'declined')"
    )


def downgrade() -> None:
    with op.batch_alter_table("consentrecord", schema=None) as batch_op:
        batch_op.drop_column("notice_sha256")
        batch_op.drop_column("notice_wording")
