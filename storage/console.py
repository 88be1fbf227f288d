"""What the staff console's queue shows at a glance, read in a few set-wise queries per page (never per row):
the parent's latest message, when this staff member last opened each case, consent in force, pending records
requests, booked appointments; and the transcript search. Keyword-only functions over a passed-in session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from storage.lifecycle import RecordRequest, RequestKind, RequestStatus
from storage.models import ConsentRecord, Message, StaffAlert
from storage.staff import AppointmentSlot, AuditEntry, SlotStatus

PREVIEW_CHARS = 40


@dataclass(frozen=True)
class Latest:
    """The parent's latest recorded message on a case: its time and its first characters."""

    at: dt.datetime
    preview: str


def latest_parent_messages(session: Session, *, case_ids: list[int]) -> dict[int, Latest]:
    if not case_ids:
        return {}
    last = (
        sa_select(col(Message.case_id), func.max(col(Message.id)).label("mid"))
        .where(col(Message.case_id).in_(case_ids), col(Message.author) == "parent")
        .group_by(col(Message.case_id))
        .subquery()
    )
    rows = session.execute(
        sa_select(
            col(Message.case_id), col(Message.created_at), func.substr(col(Message.text), 1, PREVIEW_CHARS + 1)
        ).join(last, col(Message.id) == last.c.mid)
    ).all()
    return {r[0]: Latest(at=r[1], preview=_clip(r[2] or "")) for r in rows}


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat[:PREVIEW_CHARS] + ("…" if len(flat) > PREVIEW_CHARS else "")


def last_views(session: Session, *, actor: str, case_ids: list[int]) -> dict[int, dt.datetime]:
    """When `actor` last opened each case page (from the audit log's view entries)."""
    if not case_ids:
        return {}
    rows = session.execute(
        sa_select(col(AuditEntry.record_id), func.max(col(AuditEntry.at)))
        .where(
            col(AuditEntry.actor) == actor,
            col(AuditEntry.action) == "view",
            col(AuditEntry.record_type) == "case",
            col(AuditEntry.record_id).in_([str(i) for i in case_ids]),
        )
        .group_by(col(AuditEntry.record_id))
    ).all()
    return {int(r[0]): r[1] for r in rows if r[0] and r[0].isdigit()}


def consent_statuses(session: Session, *, contact_ids: list[int]) -> dict[int, str]:
    """The consent status in force per contact (the latest record); contacts with none are left out."""
    if not contact_ids:
        return {}
    last = (
        sa_select(col(ConsentRecord.contact_id), func.max(col(ConsentRecord.id)).label("rid"))
        .where(col(ConsentRecord.contact_id).in_(contact_ids))
        .group_by(col(ConsentRecord.contact_id))
        .subquery()
    )
    rows = session.execute(
        sa_select(col(ConsentRecord.contact_id), col(ConsentRecord.status)).join(
            last, col(ConsentRecord.id) == last.c.rid
        )
    ).all()
    return {r[0]: r[1] for r in rows}


def withdrawn_at(session: Session, *, contact_id: int) -> dt.datetime | None:
    """When consent was withdrawn, if the withdrawal is the record in force."""
    row = session.exec(
        select(ConsentRecord).where(ConsentRecord.contact_id == contact_id).order_by(col(ConsentRecord.id).desc())
    ).first()
    return row.at if row is not None and row.status == "withdrawn" else None


def export_requested(session: Session, *, case_ids: list[int]) -> set[int]:
    """Cases carrying a parent's records-export request that staff have not finished."""
    if not case_ids:
        return set()
    rows = session.exec(
        select(RecordRequest.case_ref).where(
            col(RecordRequest.case_ref).in_(case_ids),
            RecordRequest.kind == RequestKind.EXPORT,
            RecordRequest.status == RequestStatus.REQUESTED,
        )
    ).all()
    return {r for r in rows if r is not None}


def booked(session: Session, *, case_ids: list[int], now: dt.datetime) -> set[int]:
    """Cases with a booked appointment still to come."""
    if not case_ids:
        return set()
    rows = session.exec(
        select(AppointmentSlot.case_id).where(
            col(AppointmentSlot.case_id).in_(case_ids),
            AppointmentSlot.status == SlotStatus.BOOKED,
            col(AppointmentSlot.starts_at) >= now,
        )
    ).all()
    return set(rows)


def unrecorded_times(session: Session, *, case_id: int) -> list[dt.datetime]:
    """When the parent wrote on a case without the message being recorded (no consent in force): each
    message raises a `parent_message` alert, and a recorded one has its transcript line from the same turn."""
    alerts = session.exec(
        select(StaffAlert.created_at).where(StaffAlert.case_id == case_id, StaffAlert.kind == "parent_message")
    ).all()
    if not alerts:
        return []
    recorded = session.exec(
        select(Message.created_at).where(Message.case_id == case_id, Message.author == "parent")
    ).all()
    window = dt.timedelta(seconds=2)
    return sorted(a for a in alerts if not any(abs(_aware(a) - _aware(m)) <= window for m in recorded))


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def search_transcripts(session: Session, *, case_ids: list[int], text: str) -> set[int]:
    """Cases among `case_ids` whose recorded transcript contains `text` (case-insensitive)."""
    if not case_ids or not text:
        return set()
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = session.exec(
        select(Message.case_id)
        .where(col(Message.case_id).in_(case_ids), col(Message.text).ilike(pattern, escape="\\"))
        .distinct()
    ).all()
    return set(rows)
