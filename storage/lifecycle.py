"""Notice preferences and the records lifecycle, as tables and keyword-only functions over a passed-in session.

- `NoticeTopic`: one row per contact and topic the parent has set; a topic without a row has its default
  (general notices on, the rest off). Whether a contact receives anything at all is `Contact.subscribed`
  (LINE: on when the parent follows; email: off until the parent opts in).
- `NoticeProfile`: the notice language and the child's birth or due month. The month is stored only while
  the parent's consent is in force (`set_child_month` refuses otherwise; the sweep drops it after a withdrawal).
- `DisposalLog` and `RecordRequest`: what was disposed of, erased or exported: kinds, counts and times, never
  content.

No commits here: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, Text, delete, exists, func
from sqlmodel import Field, Session, SQLModel, col, select

from storage import crud
from storage.models import (
    OPEN_CASE_STATUSES,
    Case,
    Contact,
    EventStatus,
    InboundEvent,
    Message,
    OutboundMessage,
    StaffAlert,
    utcnow,
)
from storage.retention import FINISHED

NOTICE_TOPICS: tuple[str, ...] = ("events", "health", "nursery", "general")
DEFAULT_ON: frozenset[str] = frozenset({"general"})  # followers get general notices until they turn them off


class MonthKind(StrEnum):
    BIRTH = "birth"
    DUE = "due"


class RequestKind(StrEnum):
    ERASE = "erase"
    EXPORT = "export"


class RequestStatus(StrEnum):
    REQUESTED = "requested"  # waiting for staff (exports asked for in the chat)
    PARTIAL = "partial"  # erased except what an open crisis case still needs; completed by the daily purge
    DONE = "done"


class ConsentRequiredError(PermissionError):
    """The child's month may only be stored while the parent's consent is in force."""


class NoticeTopic(SQLModel, table=True):
    """A parent's choice for one notice topic (absent: the topic's default)."""

    __table_args__ = (Index("ix_noticetopic_topic", "topic", "enabled"),)

    contact_id: int = Field(primary_key=True, foreign_key="contact.id", ondelete="CASCADE")
    topic: str = Field(primary_key=True, max_length=32)
    enabled: bool
    updated_at: dt.datetime = Field(default_factory=utcnow)


class NoticeProfile(SQLModel, table=True):
    """Notice settings beyond topics. `awaiting` is the chat step expecting a typed month (birth/due)."""

    contact_id: int = Field(primary_key=True, foreign_key="contact.id", ondelete="CASCADE")
    lang: str | None = Field(default=None, max_length=16)
    child_month: dt.date | None = Field(default=None, index=True)  # the first day of the month
    child_month_kind: str | None = Field(default=None, max_length=8)
    child_month_at: dt.datetime | None = None
    awaiting: str | None = Field(default=None, max_length=16)
    awaiting_until: dt.datetime | None = None
    updated_at: dt.datetime = Field(default_factory=utcnow)


class DisposalLog(SQLModel, table=True):
    """One disposal: what kind of record, how many, when, and what ran it. No ids, no content."""

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    kind: str = Field(max_length=32)
    count: int
    source: str = Field(max_length=16)  # scheduler | cli


class RecordRequest(SQLModel, table=True):
    """The erasure/export log: a parent's or staff request about one contact, its counts and legal exceptions.

    `contact_ref` is the internal contact number (no foreign key: the log outlives what it erased)."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    status: str = Field(max_length=16)
    contact_ref: int = Field(index=True)
    channel: str = Field(max_length=32)
    requested_by: str = Field(max_length=64)  # parent | staff:<name> | cli
    case_ref: int | None = None  # the queue case that carries a parent's export request
    requested_at: dt.datetime = Field(default_factory=utcnow)
    done_at: dt.datetime | None = None
    counts: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON {kind: n}
    exceptions: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON [{record, count, reason}]

    def counts_dict(self) -> dict[str, int]:
        data: dict[str, int] = json.loads(self.counts or "{}")
        return data

    def exceptions_list(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(self.exceptions or "[]")
        return data


# --- topics and subscription
def topic_settings(session: Session, *, contact_id: int) -> dict[str, bool]:
    """Every notice topic with its effective setting (defaults filled in)."""
    chosen = {
        row.topic: row.enabled for row in session.exec(select(NoticeTopic).where(NoticeTopic.contact_id == contact_id))
    }
    return {topic: chosen.get(topic, topic in DEFAULT_ON) for topic in NOTICE_TOPICS}


def set_topic(session: Session, *, contact_id: int, topic: str, enabled: bool) -> None:
    if topic not in NOTICE_TOPICS:
        raise ValueError(f"unknown notice topic {topic!r}")
    row = session.get(NoticeTopic, (contact_id, topic))
    if row is None:
        row = NoticeTopic(contact_id=contact_id, topic=topic, enabled=enabled)
    row.enabled = enabled
    row.updated_at = utcnow()
    session.add(row)


def set_subscribed(session: Session, *, contact: Contact, subscribed: bool) -> None:
    contact.subscribed = subscribed
    session.add(contact)


# --- profile: language, child's month, chat step
def get_profile(session: Session, *, contact_id: int) -> NoticeProfile | None:
    return session.get(NoticeProfile, contact_id)


def profile_for(session: Session, *, contact_id: int) -> NoticeProfile:
    profile = session.get(NoticeProfile, contact_id)
    if profile is None:
        profile = NoticeProfile(contact_id=contact_id)
        session.add(profile)
        session.flush()
    return profile


def set_notice_lang(session: Session, *, contact_id: int, lang: str) -> None:
    profile = profile_for(session, contact_id=contact_id)
    profile.lang = lang
    profile.updated_at = utcnow()
    session.add(profile)


def set_child_month(session: Session, *, contact_id: int, month: dt.date, kind: MonthKind) -> NoticeProfile:
    """Store the month (normalised to its first day); raises ConsentRequiredError without consent in force
    (the caller asks handlers/consent.py first; this guards the invariant)."""
    if not crud.has_consent(session, contact_id=contact_id):
        raise ConsentRequiredError(contact_id)
    profile = profile_for(session, contact_id=contact_id)
    profile.child_month = month.replace(day=1)
    profile.child_month_kind = kind
    profile.child_month_at = utcnow()
    profile.updated_at = utcnow()
    session.add(profile)
    return profile


def child_months(session: Session) -> list[tuple[int, dt.date]]:
    """(contact id, child month) of every profile with a month stored."""
    rows = session.exec(
        select(col(NoticeProfile.contact_id), col(NoticeProfile.child_month)).where(
            col(NoticeProfile.child_month).is_not(None)
        )
    )
    return [(c, m) for c, m in rows if m is not None]


def clear_child_month(session: Session, *, contact_id: int) -> bool:
    """Remove the month; True when there was one."""
    profile = session.get(NoticeProfile, contact_id)
    if profile is None or profile.child_month is None:
        return False
    profile.child_month = None
    profile.child_month_kind = None
    profile.child_month_at = None
    profile.updated_at = utcnow()
    session.add(profile)
    return True


def drop_months_without_consent(session: Session, *, dry_run: bool = False) -> int:
    """Months whose contact's consent is no longer in force (withdrawn or declined) are removed."""
    profiles = session.exec(select(NoticeProfile).where(col(NoticeProfile.child_month).is_not(None))).all()
    dropped = 0
    for profile in profiles:
        if not crud.has_consent(session, contact_id=profile.contact_id):
            dropped += 1
            if not dry_run:
                clear_child_month(session, contact_id=profile.contact_id)
    return dropped


def set_awaiting(session: Session, *, contact_id: int, step: str | None, until: dt.datetime | None = None) -> None:
    profile = profile_for(session, contact_id=contact_id)
    profile.awaiting = step
    profile.awaiting_until = until if step else None
    session.add(profile)


def delete_notice_settings(session: Session, *, contact_id: int) -> int:
    """Topics and profile of a contact (erasure); returns the number of rows removed."""
    a = session.execute(delete(NoticeTopic).where(col(NoticeTopic.contact_id) == contact_id))
    profile = session.get(NoticeProfile, contact_id)
    if profile is not None:
        session.delete(profile)
    return _rowcount(a) + (1 if profile is not None else 0)


# --- segments
def months_between(earlier: dt.date, later: dt.date) -> int:
    """Whole calendar months from `earlier`'s month to `later`'s month (negative before a due month)."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def audience(
    session: Session,
    *,
    topic: str,
    channel: str | None = None,
    lang: str | None = None,
    default_lang: str = "ja",
    age_months: tuple[int, int] | None = None,
    on: dt.date | None = None,
) -> list[int]:
    """Contact ids in a segment: subscribed, wanting `topic`, optionally by channel, notice language and the
    child's age in months on `on` (inclusive band; only children whose month is stored under consent)."""
    if topic not in NOTICE_TOPICS:
        raise ValueError(f"unknown notice topic {topic!r}")
    chosen = select(NoticeTopic.contact_id).where(
        col(NoticeTopic.contact_id) == col(Contact.id), col(NoticeTopic.topic) == topic
    )
    query = (
        select(Contact.id)
        .outerjoin(NoticeProfile, col(NoticeProfile.contact_id) == col(Contact.id))
        .where(col(Contact.subscribed).is_(True))
    )
    if topic in DEFAULT_ON:
        query = query.where(~exists(chosen.where(col(NoticeTopic.enabled).is_(False))))
    else:
        query = query.where(exists(chosen.where(col(NoticeTopic.enabled).is_(True))))
    if channel is not None:
        query = query.where(col(Contact.channel) == channel)
    if lang is not None:
        query = query.where(func.coalesce(col(NoticeProfile.lang), col(Contact.lang), default_lang) == lang)
    if age_months is not None:
        lo, hi = age_months
        this_month = (on or dt.date.today()).replace(day=1)
        query = query.where(
            col(NoticeProfile.child_month) >= add_months(this_month, -hi),
            col(NoticeProfile.child_month) <= add_months(this_month, -lo),
        )
    ids = [i for i in session.exec(query.order_by(col(Contact.id))) if i is not None]
    if age_months is not None:
        ids = [i for i in ids if crud.has_consent(session, contact_id=i)]
    return ids


# --- a contact's cases and channel traffic (erasure and export)
def cases_of(session: Session, *, contact_id: int) -> list[Case]:
    return list(session.exec(select(Case).where(col(Case.contact_id) == contact_id).order_by(col(Case.id))))


def crisis_cases(session: Session, *, contact_id: int, open_only: bool = False) -> list[Case]:
    """The contact's cases opened or raised by crisis detection (kept through an erasure)."""
    query = select(Case).where(col(Case.contact_id) == contact_id, col(Case.crisis_category).is_not(None))
    if open_only:
        query = query.where(col(Case.status).in_(OPEN_CASE_STATUSES))
    return list(session.exec(query.order_by(col(Case.id))))


def delete_cases(session: Session, *, contact_id: int, keep_crisis: bool) -> dict[str, int]:
    """Delete the contact's cases (all but crisis cases with `keep_crisis`) with their transcripts, alerts and
    records; returns {"case": n, "case_message": m}."""
    query = select(Case.id).where(col(Case.contact_id) == contact_id)
    if keep_crisis:
        query = query.where(col(Case.crisis_category).is_(None))
    ids = [i for i in session.exec(query) if i is not None]
    if not ids:
        return {"case": 0, "case_message": 0}
    lines = _rowcount(session.execute(delete(Message).where(col(Message.case_id).in_(ids))))
    session.execute(delete(StaffAlert).where(col(StaffAlert.case_id).in_(ids)))
    session.execute(delete(Case).where(col(Case.id).in_(ids)))  # the rest cascades
    return {"case": len(ids), "case_message": lines}


def delete_channel_traffic(session: Session, *, channel: str, sender_key: str | None, recipient: str) -> dict[str, int]:
    """Processed inbound events from `sender_key` (None: the channel keeps no events of its own) and
    deliveries to `recipient` on `channel`; a delivery being sent right now finishes first. Returns
    {"inbound_event": n, "outbound_message": m}."""
    inbound = 0
    if sender_key is not None:
        inbound = _rowcount(
            session.execute(
                delete(InboundEvent).where(
                    col(InboundEvent.channel) == channel,
                    col(InboundEvent.sender_key) == sender_key,
                    col(InboundEvent.status).in_(FINISHED),
                )
            )
        )
    outbound = session.execute(
        delete(OutboundMessage).where(
            col(OutboundMessage.channel) == channel,
            col(OutboundMessage.recipient) == recipient,
            col(OutboundMessage.status) != EventStatus.PROCESSING,
        )
    )
    return {"inbound_event": inbound, "outbound_message": _rowcount(outbound)}


# --- logs
def log_disposal(session: Session, *, kind: str, count: int, source: str, at: dt.datetime | None = None) -> None:
    session.add(DisposalLog(kind=kind, count=count, source=source, at=at or utcnow()))


def add_request(
    session: Session,
    *,
    kind: RequestKind,
    status: RequestStatus,
    contact: Contact,
    requested_by: str,
    at: dt.datetime | None = None,
) -> RecordRequest:
    assert contact.id is not None
    row = RecordRequest(
        kind=kind,
        status=status,
        contact_ref=contact.id,
        channel=contact.channel,
        requested_by=requested_by[:64],
        requested_at=at or utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def finish_request(
    session: Session,
    *,
    request: RecordRequest,
    status: RequestStatus,
    counts: dict[str, int] | None = None,
    exceptions: list[dict[str, Any]] | None = None,
    at: dt.datetime | None = None,
) -> None:
    request.status = status
    if counts is not None:
        request.counts = json.dumps(counts, sort_keys=True)
    if exceptions is not None:
        request.exceptions = json.dumps(exceptions, ensure_ascii=False, sort_keys=True)
    request.done_at = (at or utcnow()) if status != RequestStatus.REQUESTED else None
    session.add(request)


def requests(
    session: Session, *, contact_ref: int | None = None, kind: RequestKind | None = None, status: str | None = None
) -> list[RecordRequest]:
    query = select(RecordRequest)
    if contact_ref is not None:
        query = query.where(col(RecordRequest.contact_ref) == contact_ref)
    if kind is not None:
        query = query.where(col(RecordRequest.kind) == kind)
    if status is not None:
        query = query.where(col(RecordRequest.status) == status)
    return list(session.exec(query.order_by(col(RecordRequest.id))))


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
