"""定型文 (canned replies): short texts a supervisor keeps for the concierges to insert in a reply. Keyword-only
functions over a passed-in session; a removed text is kept inactive (the audit log names it by number)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Text
from sqlmodel import Field, Session, SQLModel, col, select

from storage.models import utcnow

MAX_TITLE = 64
MAX_BODY = 2000


class CannedReply(SQLModel, table=True):
    __tablename__ = "cannedreply"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=MAX_TITLE)
    body: str = Field(sa_column=Column(Text, nullable=False))
    active: bool = True
    updated_by: str = Field(max_length=32)
    updated_at: dt.datetime = Field(default_factory=utcnow)


def list_canned(session: Session, *, include_inactive: bool = False) -> list[CannedReply]:
    query = select(CannedReply)
    if not include_inactive:
        query = query.where(col(CannedReply.active).is_(True))
    return list(session.exec(query.order_by(col(CannedReply.title), col(CannedReply.id))))


def get_canned(session: Session, *, canned_id: int) -> CannedReply | None:
    return session.get(CannedReply, canned_id)


def save_canned(
    session: Session, *, title: str, body: str, by: str, canned_id: int | None = None, active: bool = True
) -> CannedReply:
    """Create a text, or change one (`canned_id`)."""
    row = session.get(CannedReply, canned_id) if canned_id is not None else None
    if row is None:
        row = CannedReply(title=title, body=body, updated_by=by, active=active)
    else:
        row.title, row.body, row.active, row.updated_by, row.updated_at = title, body, active, by, utcnow()
    session.add(row)
    session.flush()
    return row
