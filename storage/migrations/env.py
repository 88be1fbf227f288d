"""Alembic environment: the URL comes from the caller (`concierge db upgrade`) or DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

# Importing the model modules registers their tables on SQLModel.metadata.
import storage.canned
import storage.kb
import storage.lifecycle
import storage.models
import storage.notices
import storage.staff  # noqa: F401
from storage.db import make_engine

config = context.config
target_metadata = SQLModel.metadata
# Tables that exist in the database but are owned by a library, not by our models.
FOREIGN_TABLES = {"apscheduler_jobs"}


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL", "sqlite:///./var/concierge.db")


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(conn: Connection) -> None:
    """SQLite migrates without foreign-key enforcement, so that rebuilding a table (batch mode drops the old
    one) does not cascade into its children; the pragma only takes effect outside a transaction, so it is set
    before the migrations begin theirs and restored after it ended. A rebuild checks the keys itself."""
    context.configure(
        connection=conn, target_metadata=target_metadata, render_as_batch=True, include_object=include_object
    )
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.commit()
    try:
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if sqlite:
            conn.rollback()  # nothing to undo after a commit; ends a failed transaction
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
