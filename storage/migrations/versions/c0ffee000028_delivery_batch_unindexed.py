"""notice deliveries: batch_id without index or foreign key, so that forming a batch rewrites no index

A notice run writes each delivery twice: once to put it in a batch (batch_id), once for the call's result
(status). With batch_id indexed and a foreign key, the first write also added an entry to every index of the
table, and PostgreSQL had to keep a new row version apart from the old one; most of a run's database time was
spent there. Now the batch's members are found through the run's own index (run, status, language, id range,
then batch_id), a delivery and its batch both belong to the run and go with it (no foreign key needed), and
on PostgreSQL the table keeps a fifth of each page free so that the batch write stays on its page without
touching any index (a HOT update).

Revision ID: c0ffee000028
Revises: c0ffee000027
Create Date: 2026-12-01 19:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0ffee000028"
down_revision: str | Sequence[str] | None = "c0ffee000027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = "fk_noticedelivery_batch_id_noticebatch"
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
            raise RuntimeError("SQLite foreign keys must be off while tables are rebuilt")
        with op.batch_alter_table("noticedelivery", naming_convention=NAMING, recreate="always") as batch_op:
            batch_op.drop_index("ix_noticedelivery_batch_id")
            batch_op.drop_constraint(FK, type_="foreignkey")
        return
    names = [
        fk["name"]
        for fk in sa.inspect(bind).get_foreign_keys("noticedelivery")
        if fk["constrained_columns"] == ["batch_id"] and fk["name"]
    ]
    for name in names:
        op.drop_constraint(name, "noticedelivery", type_="foreignkey")
    op.drop_index("ix_noticedelivery_batch_id", table_name="noticedelivery")
    op.execute("ALTER TABLE noticedelivery SET (fillfactor = 80)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.execute("ALTER TABLE noticedelivery RESET (fillfactor)")
    with op.batch_alter_table("noticedelivery", naming_convention=NAMING) as batch_op:
        batch_op.create_foreign_key(FK, "noticebatch", ["batch_id"], ["id"], ondelete="SET NULL")
        batch_op.create_index("ix_noticedelivery_batch_id", ["batch_id"], unique=False)
