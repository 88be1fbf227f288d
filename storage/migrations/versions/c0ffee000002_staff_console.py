"""staff console, audit log, case records, appointments, telegram links

Revision ID: c0ffee000002
Revises: 8c1c7028736b
Create Date: 2026-11-26 23:50:00

"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "c0ffee000002"
down_revision: str | Sequence[str] | None = "8c1c7028736b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
