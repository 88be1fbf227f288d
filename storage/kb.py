"""The live knowledge base: entries and contacts as every worker reads them, and their history.

`kbitem` holds the current state (one row per entry or contact, its data as written in the YAML files); every
change is a `kbrevision` (who, when, why, what kind of change) with one `kbversion` per item it changed
(data before and after), so the state at any revision can be rebuilt and any item or the whole KB rolled back.
`kbpending` holds edits that wait for a second supervisor's approval, and `kbsetting` the console's switch
that requires it. The rest of the KB (topics, synonyms, crisis, phrases, consent texts) stays in the files.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Column as SAColumn
from sqlalchemy import Index, Text, func
from sqlmodel import Field, Session, SQLModel, col, select

from storage.models import NEVER_REUSED, utcnow

ENTRY = "entry"
CONTACT = "contact"
KINDS = (ENTRY, CONTACT)
REQUIRE_APPROVAL = "kb_require_approval"


class Change(StrEnum):
    SEED = "seed"
    EDIT = "edit"
    IMPORT = "import"
    ROLLBACK = "rollback"
    APPROVE = "approve"


class PendingStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class KbItem(SQLModel, table=True):
    """An entry or a contact as the bot answers with it now; a deleted one keeps its row (and history)."""

    __tablename__ = "kbitem"

    kind: str = Field(primary_key=True, max_length=8)
    item_id: str = Field(primary_key=True, max_length=64)
    data: str = Field(sa_column=SAColumn(Text, nullable=False))  # JSON, as the item is written in YAML
    deleted: bool = False
    position: int = 0  # the order of the KB files (the FAQ menu takes each topic's first entry)
    origin: str | None = Field(default=None, max_length=128)  # the seed file it came from, for exports
    revision_id: int = Field(index=True)  # the last revision that changed it


class KbRevision(SQLModel, table=True):
    __tablename__ = "kbrevision"
    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow)
    staff_id: int | None = None
    staff_name: str = Field(max_length=64)
    comment: str = Field(default="", max_length=500)
    change: str = Field(max_length=16)


class KbVersion(SQLModel, table=True):
    """What one revision did to one item: its data before and after (None: absent or deleted)."""

    __tablename__ = "kbversion"
    __table_args__ = (Index("ix_kbversion_item", "kind", "item_id", "revision_id"),)

    id: int | None = Field(default=None, primary_key=True)
    revision_id: int = Field(foreign_key="kbrevision.id", index=True)
    kind: str = Field(max_length=8)
    item_id: str = Field(max_length=64)
    before: str | None = Field(default=None, sa_column=SAColumn(Text, nullable=True))
    after: str | None = Field(default=None, sa_column=SAColumn(Text, nullable=True))


class KbPending(SQLModel, table=True):
    """An edit waiting for approval: the item's data as proposed, on top of the revision it was written on."""

    __tablename__ = "kbpending"
    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    created_at: dt.datetime = Field(default_factory=utcnow)
    staff_id: int | None = None
    staff_name: str = Field(max_length=64)
    comment: str = Field(default="", max_length=500)
    kind: str = Field(max_length=8)
    item_id: str = Field(max_length=64)
    data: str = Field(sa_column=SAColumn(Text, nullable=False))
    base_revision: int
    status: str = Field(default=PendingStatus.PENDING, max_length=16, index=True)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: dt.datetime | None = None
    revision_id: int | None = None  # the revision an approval made


class KbSetting(SQLModel, table=True):
    """A console switch for the KB (approval required), set by a supervisor."""

    __tablename__ = "kbsetting"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=255)
    updated_by: str = Field(max_length=64)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class KbStoreError(Exception):
    pass


@dataclass(frozen=True)
class Item:
    kind: str
    item_id: str
    data: dict[str, Any]
    origin: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """The live entries and contacts at one revision, in the KB's order."""

    revision: int
    entries: list[Item]
    contacts: list[Item]


def dumps(data: dict[str, Any] | None) -> str | None:
    return None if data is None else json.dumps(data, ensure_ascii=False, sort_keys=False)


def loads(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


# ----- reading


def latest_revision(session: Session) -> int:
    """The newest revision's id (0 before the seed): the one cheap query every worker polls."""
    value = session.exec(select(func.max(KbRevision.id))).one()
    return int(value or 0)


def has_items(session: Session) -> bool:
    return session.exec(select(KbItem.item_id).limit(1)).first() is not None


def snapshot(session: Session) -> Snapshot:
    revision = latest_revision(session)
    rows = session.exec(
        select(KbItem).where(col(KbItem.deleted).is_(False)).order_by(col(KbItem.position), col(KbItem.item_id))
    ).all()
    items = [Item(r.kind, r.item_id, loads(r.data) or {}, r.origin) for r in rows]
    return Snapshot(revision, [i for i in items if i.kind == ENTRY], [i for i in items if i.kind == CONTACT])


def get_item(session: Session, *, kind: str, item_id: str) -> dict[str, Any] | None:
    row = session.get(KbItem, (kind, item_id))
    return None if row is None or row.deleted else loads(row.data)


def revisions(session: Session, *, limit: int = 100, before_id: int | None = None) -> list[KbRevision]:
    query = select(KbRevision)
    if before_id is not None:
        query = query.where(col(KbRevision.id) < before_id)
    return list(session.exec(query.order_by(col(KbRevision.id).desc()).limit(limit)))


def get_revision(session: Session, *, revision_id: int) -> KbRevision | None:
    return session.get(KbRevision, revision_id)


def versions(session: Session, *, revision_id: int) -> list[KbVersion]:
    return list(
        session.exec(
            select(KbVersion)
            .where(KbVersion.revision_id == revision_id)
            .order_by(col(KbVersion.kind), col(KbVersion.item_id))
        )
    )


def item_history(session: Session, *, kind: str, item_id: str) -> list[tuple[KbRevision, KbVersion]]:
    rows = session.exec(
        select(KbRevision, KbVersion)
        .where(KbVersion.revision_id == KbRevision.id, KbVersion.kind == kind, KbVersion.item_id == item_id)
        .order_by(col(KbRevision.id).desc())
    ).all()
    return [(r, v) for r, v in rows]


def state_at(
    session: Session, *, revision_id: int, kind: str | None = None, item_id: str | None = None
) -> dict[tuple[str, str], dict[str, Any] | None]:
    """Every item's data as of `revision_id` (None: absent or deleted then), rebuilt from the versions."""
    query = select(KbVersion).where(col(KbVersion.revision_id) <= revision_id)
    if kind is not None:
        query = query.where(KbVersion.kind == kind)
    if item_id is not None:
        query = query.where(KbVersion.item_id == item_id)
    state: dict[tuple[str, str], dict[str, Any] | None] = {}
    for v in session.exec(query.order_by(col(KbVersion.revision_id), col(KbVersion.id))):
        state[(v.kind, v.item_id)] = loads(v.after)
    return state


# ----- writing


def _record(
    session: Session,
    *,
    change: Change,
    staff_name: str,
    staff_id: int | None,
    comment: str,
    items: Sequence[tuple[str, str, dict[str, Any] | None, str | None]],
) -> KbRevision | None:
    """One revision with one version per item whose data differs; None when nothing would change. An item
    is (kind, id, data or None to delete, origin file or None)."""
    changed: list[tuple[str, str, dict[str, Any] | None, str | None, KbItem | None]] = []
    rows = _rows(session, [(kind, item_id) for kind, item_id, _data, _origin in items])
    for kind, item_id, data, origin in items:
        if kind not in KINDS:
            raise KbStoreError(f"unknown item kind {kind!r}")
        row = rows.get((kind, item_id))
        before = None if row is None or row.deleted else loads(row.data)
        if before == data:
            continue
        changed.append((kind, item_id, data, origin, row))
    if not changed:
        return None
    revision = KbRevision(staff_id=staff_id, staff_name=staff_name[:64], comment=comment[:500], change=change)
    session.add(revision)
    session.flush()
    assert revision.id is not None
    position = session.exec(select(func.max(KbItem.position))).one() or 0
    with session.no_autoflush:
        for kind, item_id, data, origin, row in changed:
            before_text = None if row is None or row.deleted else row.data
            after_text = dumps(data)
            session.add(
                KbVersion(revision_id=revision.id, kind=kind, item_id=item_id, before=before_text, after=after_text)
            )
            if row is None:
                if data is None:
                    continue
                position += 1
                row = KbItem(
                    kind=kind,
                    item_id=item_id,
                    data=after_text or "{}",
                    position=position,
                    origin=origin,
                    revision_id=revision.id,
                )
            else:
                if data is not None:
                    row.data = after_text or "{}"
                row.deleted = data is None
                row.revision_id = revision.id
            session.add(row)
    session.flush()
    return revision


def _rows(session: Session, keys: list[tuple[str, str]]) -> dict[tuple[str, str], KbItem]:
    """The current rows of these items, in one query per kind."""
    found: dict[tuple[str, str], KbItem] = {}
    for kind in KINDS:
        ids = sorted({item_id for k, item_id in keys if k == kind})
        for start in range(0, len(ids), 500):
            query = select(KbItem).where(KbItem.kind == kind, col(KbItem.item_id).in_(ids[start : start + 500]))
            found.update({(r.kind, r.item_id): r for r in session.exec(query)})
    return found


def seed(
    session: Session, *, entries: list[Item], contacts: list[Item], staff_name: str = "system"
) -> KbRevision | None:
    """Revision 1 from the seed files, when the database holds no KB yet; None when it already does."""
    if has_items(session):
        return None
    items = [(i.kind, i.item_id, i.data, i.origin) for i in [*contacts, *entries]]
    return _record(session, change=Change.SEED, staff_name=staff_name, staff_id=None, comment="seed files", items=items)


def save(
    session: Session,
    *,
    items: list[Item],
    staff_name: str,
    staff_id: int | None = None,
    comment: str = "",
    change: Change = Change.EDIT,
    deleted: list[tuple[str, str]] | None = None,
) -> KbRevision | None:
    """Write changed items (and delete those in `deleted`) as one revision; None when nothing changed."""
    rows: list[tuple[str, str, dict[str, Any] | None, str | None]] = [
        (i.kind, i.item_id, i.data, i.origin) for i in items
    ]
    rows += [(kind, item_id, None, None) for kind, item_id in deleted or []]
    return _record(session, change=change, staff_name=staff_name, staff_id=staff_id, comment=comment, items=rows)


def rollback(
    session: Session,
    *,
    to_revision: int,
    staff_name: str,
    staff_id: int | None = None,
    comment: str = "",
    kind: str | None = None,
    item_id: str | None = None,
) -> KbRevision | None:
    """Bring one item (kind and item_id) or the whole KB back to its state at `to_revision`, as a new
    revision; None when it already is in that state."""
    if get_revision(session, revision_id=to_revision) is None:
        raise KbStoreError(f"no revision {to_revision}")
    if (kind is None) != (item_id is None):
        raise KbStoreError("give both the kind and the id of the item, or neither")
    target = state_at(session, revision_id=to_revision, kind=kind, item_id=item_id)
    query = select(KbItem)
    if kind is not None:
        query = query.where(KbItem.kind == kind, KbItem.item_id == item_id)
    keys = set(target) | {(r.kind, r.item_id) for r in session.exec(query)}
    items = [(k, i, target.get((k, i)), None) for k, i in sorted(keys)]
    what = f"{kind} {item_id}" if kind else "the whole KB"
    note = comment or f"{what} back to revision {to_revision}"
    return _record(session, change=Change.ROLLBACK, staff_name=staff_name, staff_id=staff_id, comment=note, items=items)


# ----- approval


def approval_required(session: Session) -> bool:
    row = session.get(KbSetting, REQUIRE_APPROVAL)
    return row is not None and row.value == "1"


def set_approval_required(session: Session, *, required: bool, staff_name: str) -> None:
    row = session.get(KbSetting, REQUIRE_APPROVAL) or KbSetting(key=REQUIRE_APPROVAL, value="0", updated_by="")
    row.value = "1" if required else "0"
    row.updated_by = staff_name[:64]
    row.updated_at = utcnow()
    session.add(row)
    session.flush()


def propose(
    session: Session, *, item: Item, staff_name: str, staff_id: int | None = None, comment: str = ""
) -> KbPending:
    row = KbPending(
        staff_id=staff_id,
        staff_name=staff_name[:64],
        comment=comment[:500],
        kind=item.kind,
        item_id=item.item_id,
        data=dumps(item.data) or "{}",
        base_revision=latest_revision(session),
    )
    session.add(row)
    session.flush()
    return row


def pending(session: Session) -> list[KbPending]:
    return list(
        session.exec(select(KbPending).where(KbPending.status == PendingStatus.PENDING).order_by(col(KbPending.id)))
    )


def get_pending(session: Session, *, pending_id: int) -> KbPending | None:
    return session.get(KbPending, pending_id)


def decide(
    session: Session, *, proposal: KbPending, approve: bool, staff_name: str, staff_id: int | None = None
) -> KbRevision | None:
    """Approve (the edit goes live as a revision) or reject a pending edit. Nobody decides on their own."""
    if proposal.status != PendingStatus.PENDING:
        raise KbStoreError("this edit was already decided")
    if proposal.staff_name == staff_name:
        raise KbStoreError("an edit needs the approval of someone who did not write it")
    revision = None
    if approve:
        revision = _record(
            session,
            change=Change.APPROVE,
            staff_name=staff_name,
            staff_id=staff_id,
            comment=f"{proposal.comment}（{proposal.staff_name} の編集を承認）"[:500],
            items=[(proposal.kind, proposal.item_id, loads(proposal.data), None)],
        )
        proposal.revision_id = revision.id if revision else None
    proposal.status = PendingStatus.APPROVED if approve else PendingStatus.REJECTED
    proposal.decided_by = staff_name[:64]
    proposal.decided_at = utcnow()
    session.add(proposal)
    session.flush()
    return revision
