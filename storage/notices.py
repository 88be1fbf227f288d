"""Staff notices to subscribed parents (issue 6): tables and keyword-only functions over a passed-in session.

- `Notice`: what staff wrote (texts per language, "ja" required), to whom (topic + segment: channel, language,
  child's age band), when (`kind`: once at `send_at`, recurring by `cron` in the office time zone, or "age":
  N months + days after the child's birth/due month) and its workflow status:
  draft → awaiting_approval → scheduled → sending → sent, or cancelled. Recurring and age notices stay
  "scheduled" while active.
- `NoticeRun`: one send of a notice (recurring and age notices have many), unique by `key`.
- `NoticeDelivery`: one recipient of a run, with its state (pending/sent/failed/skipped). Planned in one go,
  so a crashed send resumes from here.
- `NoticeBatch`: one API call's worth of deliveries (a LINE multicast of ≤500 ids or a broadcast, or an email
  batch); `retry_key` is the UUID sent as X-Line-Retry-Key on every attempt of that call.
- `AgeReminderSent`: an age-relative notice reaches each child (contact + month) once.

Channel names come from the caller (the channel registry's capabilities, handlers/channels): `channels`,
those that send notices; `broadcast_channel`, the one whose single call reaches every follower (or None).

No commits here: the caller owns the transaction. No message text or personal data is logged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, exists, func, or_
from sqlmodel import Field, Session, SQLModel, col, select

from storage import lifecycle
from storage.lifecycle import NOTICE_TOPICS
from storage.models import Contact, utcnow

DEFAULT_LANG = "ja"
LINE_MULTICAST_MAX = 500  # user ids per multicast call (LINE's limit)


class NoticeKind(StrEnum):
    ONCE = "once"
    RECURRING = "recurring"
    AGE = "age"


class Misfire(StrEnum):
    """What a run missed while the scheduler was down does: send late, or skip that run."""

    SEND_LATE = "send_late"
    SKIP = "skip"


class NoticeStatus(StrEnum):
    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"
    MISSED = "missed"  # a one-off notice whose time passed while the scheduler was down, and its rule said skip


EDITABLE_STATUSES = (NoticeStatus.DRAFT, NoticeStatus.AWAITING_APPROVAL)


class RunStatus(StrEnum):
    PLANNING = "planning"
    SENDING = "sending"
    DONE = "done"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # unsubscribed (or topic turned off) before the send


class BatchStatus(StrEnum):
    PENDING = "pending"  # formed and maybe attempted: a resume repeats it with the same retry key
    SENT = "sent"
    FAILED = "failed"


class NoticeError(ValueError):
    """A notice was invalid, or the requested transition is not allowed in its status."""


# ----- tables


class Notice(SQLModel, table=True):
    """A notice staff wrote: texts, topic, segment, timing and its approval workflow."""

    __table_args__ = (Index("ix_notice_status_kind", "status", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)  # staff-facing only, never sent
    texts: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    topic: str = Field(max_length=32)
    channel: str | None = Field(default=None, max_length=32)  # None: every channel
    lang: str | None = Field(default=None, max_length=16)  # None: every language
    age_min_months: int | None = None
    age_max_months: int | None = None
    kind: str = Field(default=NoticeKind.ONCE, max_length=16)
    send_at: dt.datetime | None = None  # once: UTC
    cron: str | None = Field(default=None, max_length=64)  # recurring: 5-field crontab, office time zone
    age_offset_months: int | None = None  # age: months after the child's birth (or due) month
    age_offset_days: int | None = None  # age: plus days
    misfire: str = Field(default=Misfire.SEND_LATE, max_length=16)
    requires_approval: bool = True
    status: str = Field(default=NoticeStatus.DRAFT, max_length=24)
    created_by: str = Field(max_length=64)
    # everyone else who edited the text or settings since it was written: none of them (nor the author) may
    # approve it, since an approver must be a second pair of eyes on exactly what goes out
    editors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    approved_by: str | None = Field(default=None, max_length=64)
    approved_at: dt.datetime | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)

    def text_for(self, lang: str | None) -> str:
        """The text in `lang`, falling back to Japanese."""
        return self.texts.get(lang or DEFAULT_LANG) or self.texts[DEFAULT_LANG]

    @property
    def age_band(self) -> tuple[int, int] | None:
        if self.age_min_months is None and self.age_max_months is None:
            return None
        return (self.age_min_months or 0, self.age_max_months if self.age_max_months is not None else 1200)


class NoticeRun(SQLModel, table=True):
    """One send of a notice; `key` is "{notice_id}:{planned_for ISO}" so a run is planned once."""

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id", index=True, ondelete="CASCADE")
    key: str = Field(max_length=128, unique=True)
    planned_for: dt.datetime
    status: str = Field(default=RunStatus.PLANNING, max_length=16)
    broadcast: bool = False  # LINE part sent as one broadcast (decided at planning)
    total: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    started_at: dt.datetime = Field(default_factory=utcnow)
    finished_at: dt.datetime | None = None
    # the process sending the run renews this every few seconds; a run not renewed for a while has no live
    # sender any more and the scheduler leader finishes it (scheduler/notices.py)
    heartbeat_at: dt.datetime | None = Field(default_factory=utcnow)


class NoticeBatch(SQLModel, table=True):
    """One API call's worth of deliveries; every attempt of it carries the same `retry_key`."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="noticerun.id", index=True, ondelete="CASCADE")
    channel: str = Field(max_length=32)
    mode: str = Field(default="multicast", max_length=16)  # multicast | broadcast | email
    lang: str = Field(default=DEFAULT_LANG, max_length=16)
    retry_key: str = Field(max_length=64, unique=True)
    status: str = Field(default=BatchStatus.PENDING, max_length=16)
    size: int = 0
    attempts: int = 0
    error: str | None = Field(default=None, max_length=64)  # a status code or class name, never content
    created_at: dt.datetime = Field(default_factory=utcnow)
    sent_at: dt.datetime | None = None


class NoticeDelivery(SQLModel, table=True):
    """One recipient of a run."""

    __table_args__ = (
        UniqueConstraint("run_id", "contact_id", name="uq_noticedelivery_run_contact"),
        Index("ix_noticedelivery_run_status", "run_id", "status", "lang", "id"),  # batches: by language
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="noticerun.id", ondelete="CASCADE")
    contact_id: int = Field(foreign_key="contact.id", index=True, ondelete="CASCADE")
    channel: str = Field(max_length=32)
    lang: str = Field(default=DEFAULT_LANG, max_length=16)
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16)
    reason: str | None = Field(default=None, max_length=64)  # unsubscribed | topic_off | a status code
    # The batch it went out in (noticebatch.id). Neither indexed nor a foreign key: members are found through
    # the run's index, and forming a batch then rewrites no index (migration c0ffee000028).
    batch_id: int | None = None
    updated_at: dt.datetime = Field(default_factory=utcnow)


class AgeReminderSent(SQLModel, table=True):
    """An age-relative notice was planned for this child (contact + birth/due month): never again."""

    notice_id: int = Field(primary_key=True, foreign_key="notice.id", ondelete="CASCADE")
    contact_id: int = Field(primary_key=True, foreign_key="contact.id", ondelete="CASCADE")
    child_month: dt.date = Field(primary_key=True)
    run_id: int | None = Field(default=None, foreign_key="noticerun.id", ondelete="SET NULL")
    at: dt.datetime = Field(default_factory=utcnow)


# ----- notices


_EDITABLE_FIELDS = frozenset(
    {
        "title",
        "texts",
        "topic",
        "channel",
        "lang",
        "age_min_months",
        "age_max_months",
        "kind",
        "send_at",
        "cron",
        "age_offset_months",
        "age_offset_days",
        "misfire",
        "requires_approval",
    }
)


def validate(notice: Notice, *, channels: Collection[str]) -> None:
    """Raise NoticeError when the notice cannot be sent as written (`channels`: those that send notices)."""
    if not notice.title.strip():
        raise NoticeError("title is required")
    if not (notice.texts.get(DEFAULT_LANG) or "").strip():
        raise NoticeError("a Japanese text (texts['ja']) is required")
    if any(len(t) > 5000 for t in notice.texts.values()):
        raise NoticeError("a text is longer than 5000 characters")
    if notice.topic not in NOTICE_TOPICS:
        raise NoticeError(f"unknown topic {notice.topic!r}")
    if notice.channel is not None and notice.channel not in channels:
        raise NoticeError(f"unknown channel {notice.channel!r}")
    if notice.misfire not in tuple(Misfire):
        raise NoticeError(f"unknown misfire policy {notice.misfire!r}")
    lo, hi = notice.age_min_months, notice.age_max_months
    if lo is not None and hi is not None and lo > hi:
        raise NoticeError("age_min_months is above age_max_months")
    if notice.kind == NoticeKind.ONCE:
        if notice.send_at is None:
            raise NoticeError("a one-off notice needs send_at")
        if notice.send_at.tzinfo is None:
            raise NoticeError("send_at must be timezone-aware")
    elif notice.kind == NoticeKind.RECURRING:
        if not notice.cron or len(notice.cron.split()) != 5:
            raise NoticeError("a recurring notice needs a 5-field crontab")
    elif notice.kind == NoticeKind.AGE:
        if notice.age_offset_months is None and notice.age_offset_days is None:
            raise NoticeError("an age notice needs age_offset_months and/or age_offset_days")
    else:
        raise NoticeError(f"unknown kind {notice.kind!r}")


def create_notice(
    session: Session,
    *,
    title: str,
    texts: dict[str, str],
    topic: str,
    created_by: str,
    channels: Collection[str],
    kind: str = NoticeKind.ONCE,
    send_at: dt.datetime | None = None,
    cron: str | None = None,
    age_offset_months: int | None = None,
    age_offset_days: int | None = None,
    channel: str | None = None,
    lang: str | None = None,
    age_min_months: int | None = None,
    age_max_months: int | None = None,
    misfire: str = Misfire.SEND_LATE,
    requires_approval: bool = True,
) -> Notice:
    """A new draft (validated; raises NoticeError). Flushed, so it has an id."""
    notice = Notice(
        title=title,
        texts=dict(texts),
        topic=topic,
        created_by=created_by[:64],
        kind=kind,
        send_at=send_at.astimezone(dt.UTC) if send_at is not None and send_at.tzinfo else send_at,
        cron=cron,
        age_offset_months=age_offset_months,
        age_offset_days=age_offset_days,
        channel=channel,
        lang=lang,
        age_min_months=age_min_months,
        age_max_months=age_max_months,
        misfire=misfire,
        requires_approval=requires_approval,
    )
    validate(notice, channels=channels)
    session.add(notice)
    session.flush()
    return notice


def get_notice(session: Session, *, notice_id: int) -> Notice | None:
    return session.get(Notice, notice_id)


def list_notices(
    session: Session, *, status: str | None = None, kind: str | None = None, limit: int = 100, offset: int = 0
) -> list[Notice]:
    """Newest first."""
    query = select(Notice)
    if status is not None:
        query = query.where(col(Notice.status) == status)
    if kind is not None:
        query = query.where(col(Notice.kind) == kind)
    return list(session.exec(query.order_by(col(Notice.id).desc()).limit(limit).offset(offset)))


def notice_ids(session: Session, *, kind: str, status: str) -> list[int]:
    """Ids of every notice of `kind` in `status`, oldest first."""
    query = select(Notice.id).where(col(Notice.kind) == kind, col(Notice.status) == status).order_by(col(Notice.id))
    return [i for i in session.exec(query) if i is not None]


def wrote(notice: Notice, name: str) -> bool:
    """`name` wrote or edited the notice as it stands: they may not approve it."""
    return name == notice.created_by or name in (notice.editors or [])


def update_notice(
    session: Session, *, notice: Notice, channels: Collection[str], editor: str | None = None, **changes: Any
) -> Notice:
    """Change fields of a draft or a notice awaiting approval (an edit withdraws a pending approval: the
    notice goes back to draft); `editor` is recorded among those who may no longer approve it. Raises
    NoticeError otherwise or when the result is invalid."""
    if notice.status not in EDITABLE_STATUSES:
        raise NoticeError(f"a {notice.status} notice cannot be edited")
    unknown = set(changes) - _EDITABLE_FIELDS
    if unknown:
        raise NoticeError(f"not editable: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        if name == "texts":
            value = dict(value)
        if name == "send_at" and value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        setattr(notice, name, value)
    validate(notice, channels=channels)
    if editor is not None and not wrote(notice, editor[:64]):
        notice.editors = [*(notice.editors or []), editor[:64]]  # a new list: JSON columns track assignment
    notice.status = NoticeStatus.DRAFT
    notice.approved_by = None
    notice.approved_at = None
    notice.updated_at = utcnow()
    session.add(notice)
    return notice


def submit_notice(session: Session, *, notice: Notice, channels: Collection[str]) -> Notice:
    """Draft → awaiting_approval when approval is required, else → scheduled (the caller then schedules it)."""
    if notice.status != NoticeStatus.DRAFT:
        raise NoticeError(f"only a draft can be submitted (this one is {notice.status})")
    validate(notice, channels=channels)
    notice.status = NoticeStatus.AWAITING_APPROVAL if notice.requires_approval else NoticeStatus.SCHEDULED
    notice.updated_at = utcnow()
    session.add(notice)
    return notice


def approve_notice(session: Session, *, notice: Notice, approver: str) -> Notice:
    """Awaiting_approval → scheduled. Nobody who wrote or edited the notice can approve it."""
    if notice.status != NoticeStatus.AWAITING_APPROVAL:
        raise NoticeError(f"only a notice awaiting approval can be approved (this one is {notice.status})")
    if wrote(notice, approver[:64]):
        raise NoticeError("a notice needs the approval of someone who did not write or edit it")
    notice.status = NoticeStatus.SCHEDULED
    notice.approved_by = approver[:64]
    notice.approved_at = utcnow()
    notice.updated_at = utcnow()
    session.add(notice)
    return notice


def cancel_notice(session: Session, *, notice: Notice) -> Notice:
    """Stop a notice (the caller unschedules it). A run already sending finishes its current batch and stops."""
    if notice.status in (NoticeStatus.SENT, NoticeStatus.CANCELLED):
        raise NoticeError(f"a {notice.status} notice cannot be cancelled")
    notice.status = NoticeStatus.CANCELLED
    notice.updated_at = utcnow()
    session.add(notice)
    return notice


def mark_missed(session: Session, *, notice_id: int) -> bool:
    """A one-off notice's run was skipped by its misfire rule: it will not go out; True when marked."""
    notice = session.get(Notice, notice_id)
    if notice is None or notice.kind != NoticeKind.ONCE or notice.status != NoticeStatus.SCHEDULED:
        return False
    notice.status = NoticeStatus.MISSED
    notice.updated_at = utcnow()
    session.add(notice)
    return True


def may_send(notice: Notice) -> bool:
    """Approved (or approval not required) and not cancelled or finished."""
    return notice.status in (NoticeStatus.SCHEDULED, NoticeStatus.SENDING)


# ----- audience


def recipients(session: Session, *, notice: Notice, on: dt.date | None = None) -> list[int]:
    """Contact ids the notice reaches now (subscribed, topic on, segment), through `lifecycle.audience`."""
    return lifecycle.audience(
        session,
        topic=notice.topic,
        channel=notice.channel,
        lang=notice.lang,
        default_lang=DEFAULT_LANG,
        age_months=notice.age_band,
        on=on,
    )


def contact_langs(session: Session, *, contact_ids: list[int]) -> dict[int, tuple[str, str]]:
    """contact id -> (channel, notice language) for the given ids (language: profile, contact, then ja)."""
    out: dict[int, tuple[str, str]] = {}
    for start in range(0, len(contact_ids), 1000):
        chunk = contact_ids[start : start + 1000]
        rows = session.exec(
            select(Contact.id, Contact.channel, lifecycle.NoticeProfile.lang, Contact.lang)
            .outerjoin(lifecycle.NoticeProfile, col(lifecycle.NoticeProfile.contact_id) == col(Contact.id))
            .where(col(Contact.id).in_(chunk))
        )
        for cid, channel, plang, clang in rows:
            if cid is not None:
                out[cid] = (channel, plang or clang or DEFAULT_LANG)
    return out


def broadcast_eligible(session: Session, *, notice: Notice, broadcast_channel: str | None) -> bool:
    """Whether the part on `broadcast_channel` (LINE) may go out as one broadcast (to every follower).

    Only when the segment is "everyone on that channel" (topic general, no language or age filter, channel
    none or that one) and no contact of it we know has stopped notices or turned general notices off: a
    broadcast cannot leave anyone out, so any opt-out forces multicast. (We cannot tell a follower who stopped
    notices from one who unfollowed: both count as opted out, which errs on the side of multicast.)"""
    if broadcast_channel is None:
        return False
    if notice.topic != "general" or notice.lang is not None or notice.age_band is not None:
        return False
    if notice.channel not in (None, broadcast_channel) or len(set(notice.texts.values())) != 1:
        return False  # one broadcast carries one text: only when there are no translations
    general_off = exists().where(
        col(lifecycle.NoticeTopic.contact_id) == col(Contact.id),
        col(lifecycle.NoticeTopic.topic) == "general",
        col(lifecycle.NoticeTopic.enabled).is_(False),
    )
    opted_out = session.exec(
        select(func.count())
        .select_from(Contact)
        .where(col(Contact.channel) == broadcast_channel, or_(col(Contact.subscribed).is_(False), general_off))
    ).one()
    return int(opted_out) == 0


@dataclass(frozen=True)
class Estimate:
    """Who a send reaches and what it costs on the broadcast channel (LINE, whose messages count against a
    monthly quota).

    line_messages: messages counted against that quota: per recipient per message bubble (multicast), or per
    follower (broadcast; followers estimated from our subscribed contacts on that channel)."""

    total: int
    by_channel: dict[str, int] = field(default_factory=dict)
    by_lang: dict[str, int] = field(default_factory=dict)
    line_messages: int = 0
    broadcast: bool = False


def estimate(
    session: Session,
    *,
    notice: Notice,
    broadcast_channel: str | None,
    on: dt.date | None = None,
    allow_broadcast: bool = True,
) -> Estimate:
    """Recipient counts by channel and language, and the messages this send consumes on `broadcast_channel`
    (one bubble)."""
    ids = recipients(session, notice=notice, on=on)
    info = contact_langs(session, contact_ids=ids)
    by_channel: dict[str, int] = {}
    by_lang: dict[str, int] = {}
    for channel, lang in info.values():
        by_channel[channel] = by_channel.get(channel, 0) + 1
        by_lang[lang] = by_lang.get(lang, 0) + 1
    broadcast = (
        allow_broadcast
        and notice.kind != NoticeKind.AGE
        and broadcast_eligible(session, notice=notice, broadcast_channel=broadcast_channel)
    )
    line = by_channel.get(broadcast_channel, 0) if broadcast_channel is not None else 0
    if broadcast:
        line = int(
            session.exec(
                select(func.count())
                .select_from(Contact)
                .where(col(Contact.channel) == broadcast_channel, col(Contact.subscribed).is_(True))
            ).one()
        )
    return Estimate(total=len(ids), by_channel=by_channel, by_lang=by_lang, line_messages=line, broadcast=broadcast)


# ----- runs and deliveries (for the notice page)


def run_key(*, notice_id: int, planned_for: dt.datetime) -> str:
    return f"{notice_id}:{planned_for.astimezone(dt.UTC).isoformat()}"


def runs(session: Session, *, notice_id: int) -> list[NoticeRun]:
    """Newest first."""
    return list(
        session.exec(select(NoticeRun).where(col(NoticeRun.notice_id) == notice_id).order_by(col(NoticeRun.id).desc()))
    )


def get_run(session: Session, *, run_id: int) -> NoticeRun | None:
    return session.get(NoticeRun, run_id)


def delivery_counts(session: Session, *, run_id: int) -> dict[str, int]:
    """status -> count, every status present (zeros included)."""
    counts = {s.value: 0 for s in DeliveryStatus}
    rows = session.exec(
        select(NoticeDelivery.status, func.count())
        .where(col(NoticeDelivery.run_id) == run_id)
        .group_by(col(NoticeDelivery.status))
    )
    for status, n in rows:
        counts[status] = int(n)
    return counts


def deliveries(
    session: Session, *, run_id: int, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[NoticeDelivery]:
    query = select(NoticeDelivery).where(col(NoticeDelivery.run_id) == run_id)
    if status is not None:
        query = query.where(col(NoticeDelivery.status) == status)
    return list(session.exec(query.order_by(col(NoticeDelivery.id)).limit(limit).offset(offset)))


def batches(session: Session, *, run_id: int) -> list[NoticeBatch]:
    return list(
        session.exec(select(NoticeBatch).where(col(NoticeBatch.run_id) == run_id).order_by(col(NoticeBatch.id)))
    )
