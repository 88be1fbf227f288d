"""ids never reused: SQLite AUTOINCREMENT on the tables whose ids staff, parents and the audit log refer to

Without AUTOINCREMENT SQLite gives a new row the largest id + 1, so erasing the newest case hands its number
to the next one, and an audit row (or a parent's 受付番号) would name two cases. PostgreSQL's identity sequences
never go back; nothing changes there.

Revision ID: c0ffee000024
Revises: c0ffee000021
Create Date: 2026-12-01 13:00:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0ffee000024"
down_revision: str | Sequence[str] | None = "c0ffee000021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The case, its records (the audit log names them by id), its transcript lines, and contacts (erasure and
# export requests keep the contact number after the contact is gone).
TABLES = (
    "contact",
    "case",
    "message",
    "internalnote",
    "consultationrecord",
    "supportentry",
    "caseconference",
    "referral",
    "complaintstep",
    "appointmentslot",
)


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    # Rebuilding drops the old table; with foreign keys enforced that would cascade into every child row.
    # env.py turns enforcement off for SQLite migrations; refuse rather than lose data if it is on.
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("SQLite foreign keys must be off while tables are rebuilt")
    for name in TABLES:
        with op.batch_alter_table(
            name, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ) as batch_op:
            pass  # the rebuild itself is the change (the copy sets sqlite_sequence to the largest id)
    problems = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"foreign key check failed after the rebuild: {len(problems)} row(s)")


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
