"""The staff side: accounts and roles, console sessions, the append-only audit log, internal notes, the
guideline's case records (相談記録, 支援記録, ケース会議記録, 関係機関へのつなぎ), complaint steps, appointment
slots and the Telegram links. Keyword-only functions over a passed-in session; the caller commits.

Internal notes have no path out: nothing here queues outbound messages. The audit log has no update or
delete function (and a database trigger refuses updates; on PostgreSQL deletes too).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint, case, delete, func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

from storage.models import NEVER_REUSED, OPEN_CASE_STATUSES, Case, CaseStatus, Contact, Message, utcnow

# Message.author holds "staff:<username>" in 16 characters: usernames are short, lower-case ids.
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,9}$")
OFFICE_CHANNEL = "office"  # cases opened by staff (窓口・電話): no chat channel to reply through
COMPLAINT = "complaint"
CONSULTATION = "consultation"


class Role(StrEnum):
    CONCIERGE = "concierge"  # full case work
    ASSISTANT = "assistant"  # reads and replies on the cases assigned to them
    SUPERVISOR = "supervisor"  # all cases, reports, staff, complaints
    AUDITOR = "auditor"  # read-only, and the audit log


class ComplaintStepKind(StrEnum):
    RECEIVED = "received"  # 受付
    HANDLED = "handled"  # 対応
    REPORTED = "reported"  # 結果報告


class SlotStatus(StrEnum):
    OFFERED = "offered"
    BOOKED = "booked"
    WITHDRAWN = "withdrawn"  # another slot of the same offer was chosen
    CANCELLED = "cancelled"


# ----- tables


class StaffAccount(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=32, unique=True)
    display_name: str = Field(default="", max_length=64)
    role: str = Field(max_length=16)
    complaint_intake: bool = False  # 苦情受付担当者: complaint cases are routed to them
    password_hash: str = Field(max_length=255)
    active: bool = True
    failed_logins: int = 0  # login attempts since the last success or lockout, counted before the check
    locked_until: dt.datetime | None = None
    lockouts: int = 0  # consecutive lockouts: each one lasts twice as long as the one before
    telegram_user_id: int | None = Field(default=None, sa_column=Column(BigInteger, unique=True, nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow)
    last_login_at: dt.datetime | None = None


class LoginThrottle(SQLModel, table=True):
    """Failed logins per client address (all usernames together): password spraying across accounts is
    throttled and shown to the supervisor. Rows are removed once quiet for a day."""

    address: str = Field(primary_key=True, max_length=64)
    failures: int = 0  # attempts since the last block (or success from this address), counted before the check
    total: int = 0  # failed attempts since the row was created: what the supervisor sees
    blocks: int = 0  # consecutive blocks: each one lasts twice as long as the one before
    blocked_until: dt.datetime | None = None
    last_failure_at: dt.datetime = Field(default_factory=utcnow)


class StaffSession(SQLModel, table=True):
    """A console login. The cookie holds a random token; only its keyed digest is stored here."""

    id: str = Field(primary_key=True, max_length=64)
    staff_id: int = Field(foreign_key="staffaccount.id", index=True, ondelete="CASCADE")
    csrf_token: str = Field(max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow)
    last_seen_at: dt.datetime = Field(default_factory=utcnow)


class AuditEntry(SQLModel, table=True):
    """Who did what to which record, when. Never content. Append-only."""

    __tablename__ = "auditlog"
    __table_args__ = (Index("ix_auditlog_record", "record_type", "record_id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=32, index=True)
    action: str = Field(max_length=32)
    record_type: str = Field(max_length=32)
    record_id: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None, max_length=255)
    via: str = Field(default="web", max_length=16)


class InternalNote(SQLModel, table=True):
    """Staff-only notes on a case. Never sent: no function queues them."""

    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True, ondelete="CASCADE")
    author: str = Field(max_length=32)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow)


class ConsultationRecord(SQLModel, table=True):
    """相談記録: one per case."""

    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", unique=True, ondelete="CASCADE")
    consulted_on: dt.date
    situation: str = Field(default="", sa_column=Column(Text, nullable=False))  # 家族の状況
    request: str = Field(default="", sa_column=Column(Text, nullable=False))  # 相談内容
    wishes: str = Field(default="", sa_column=Column(Text, nullable=False))  # 家族の希望
    direction: str = Field(default="", sa_column=Column(Text, nullable=False))  # 支援の方向性
    author: str = Field(max_length=32)
    updated_by: str = Field(max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class SupportEntry(SQLModel, table=True):
    """支援記録: the progress of the support, one entry at a time."""

    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True, ondelete="CASCADE")
    entry_on: dt.date
    progress: str = Field(sa_column=Column(Text, nullable=False))  # 経過
    impression: str = Field(default="", sa_column=Column(Text, nullable=False))  # 所感
    author: str = Field(max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow)


class CaseConference(SQLModel, table=True):
    """ケース会議記録."""

    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True, ondelete="CASCADE")
    held_on: dt.date
    participants: str = Field(sa_column=Column(Text, nullable=False))
    family_intent: str = Field(default="", sa_column=Column(Text, nullable=False))  # 家族の意向
    family_state: str = Field(default="", sa_column=Column(Text, nullable=False))  # 状態
    issues: str = Field(default="", sa_column=Column(Text, nullable=False))  # 課題
    goals: str = Field(default="", sa_column=Column(Text, nullable=False))  # 目標
    support: str = Field(default="", sa_column=Column(Text, nullable=False))  # 具体的な支援内容
    author: str = Field(max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow)


class Referral(SQLModel, table=True):
    """関係機関へのつなぎ: which agency, when, what was agreed."""

    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True, ondelete="CASCADE")
    agency: str = Field(max_length=128)
    referred_on: dt.date
    agreed: str = Field(default="", sa_column=Column(Text, nullable=False))
    author: str = Field(max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow)


class ComplaintStep(SQLModel, table=True):
    """要望・苦情の対応経過: 受付, 対応, 結果報告."""

    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True, ondelete="CASCADE")
    step: str = Field(max_length=16)
    step_on: dt.date
    summary: str = Field(sa_column=Column(Text, nullable=False))
    author: str = Field(max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow)


class AppointmentSlot(SQLModel, table=True):
    """A time offered to a parent (原則予約制). Slots offered together share `offer_id`."""

    __table_args__ = (Index("ix_appointmentslot_starts", "starts_at", "status"), NEVER_REUSED)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True, ondelete="CASCADE")
    offer_id: str = Field(max_length=32, index=True)
    starts_at: dt.datetime
    minutes: int = 30
    place: str = Field(default="", max_length=128)
    status: str = Field(default=SlotStatus.OFFERED, max_length=16)
    offered_by: str = Field(max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow)
    booked_at: dt.datetime | None = None


class CaseTopic(SQLModel, table=True):
    """The staff supergroup's forum topic of a case (Telegram bridge)."""

    __table_args__ = (UniqueConstraint("chat_id", "thread_id", name="uq_casetopic_thread"),)

    case_id: int = Field(primary_key=True, foreign_key="case.id", ondelete="CASCADE")
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    thread_id: int
    created_at: dt.datetime = Field(default_factory=utcnow)


# ----- access policy (used by the console and the Telegram bridge)


def can_view_case(staff: StaffAccount, case: Case) -> bool:
    if staff.role in (Role.SUPERVISOR, Role.AUDITOR):
        return True
    if case.kind == COMPLAINT and staff.complaint_intake:
        return True
    if staff.role == Role.ASSISTANT:
        return case.assignee == staff.username
    # a complaint may be about the concierge: only intake staff and the supervisor see it
    return staff.role == Role.CONCIERGE and case.kind != COMPLAINT


def can_reply(staff: StaffAccount, case: Case) -> bool:
    """Reply to the parent and write internal notes."""
    return staff.role != Role.AUDITOR and can_view_case(staff, case)


def can_manage_case(staff: StaffAccount, case: Case) -> bool:
    """Status, claim/assign, records, appointments, re-classification."""
    if staff.role == Role.AUDITOR or not can_view_case(staff, case):
        return False
    if case.kind == COMPLAINT and staff.complaint_intake:
        return True
    return staff.role in (Role.CONCIERGE, Role.SUPERVISOR)


def can_open_cases(staff: StaffAccount) -> bool:
    return staff.role in (Role.CONCIERGE, Role.SUPERVISOR) or (staff.complaint_intake and staff.role != Role.AUDITOR)


def sees_complaints(staff: StaffAccount) -> bool:
    return staff.role in (Role.SUPERVISOR, Role.AUDITOR) or staff.complaint_intake


# ----- staff accounts


def valid_username(username: str) -> bool:
    return bool(USERNAME_RE.match(username))


def create_staff(
    session: Session,
    *,
    username: str,
    role: Role,
    password_hash: str,
    display_name: str = "",
    complaint_intake: bool = False,
) -> StaffAccount:
    if not valid_username(username):
        raise ValueError("username: 1-10 characters a-z 0-9 . _ -, starting with a letter or digit")
    if role == Role.AUDITOR and complaint_intake:
        raise ValueError("an auditor is read-only and cannot take complaints")
    row = StaffAccount(
        username=username,
        role=role,
        password_hash=password_hash,
        display_name=display_name,
        complaint_intake=complaint_intake,
    )
    session.add(row)
    session.flush()
    return row


def get_staff(session: Session, *, staff_id: int) -> StaffAccount | None:
    return session.get(StaffAccount, staff_id)


def get_staff_by_username(session: Session, *, username: str) -> StaffAccount | None:
    return session.exec(select(StaffAccount).where(StaffAccount.username == username)).first()


def get_staff_by_telegram(session: Session, *, telegram_user_id: int) -> StaffAccount | None:
    return session.exec(
        select(StaffAccount).where(StaffAccount.telegram_user_id == telegram_user_id, col(StaffAccount.active))
    ).first()


def list_staff(session: Session) -> list[StaffAccount]:
    return list(session.exec(select(StaffAccount).order_by(col(StaffAccount.username))))


def update_staff(
    session: Session,
    *,
    staff: StaffAccount,
    role: Role | None = None,
    complaint_intake: bool | None = None,
    display_name: str | None = None,
    active: bool | None = None,
) -> None:
    if role is not None:
        staff.role = role
    if complaint_intake is not None:
        staff.complaint_intake = complaint_intake
    if staff.role == Role.AUDITOR:
        staff.complaint_intake = False
    if display_name is not None:
        staff.display_name = display_name
    if active is not None:
        staff.active = active
        if not active:
            end_sessions(session, staff_id=staff.id or 0)
    session.add(staff)


def set_password(session: Session, *, staff: StaffAccount, password_hash: str) -> None:
    staff.password_hash = password_hash
    staff.failed_logins = 0
    staff.locked_until = None
    session.add(staff)
    end_sessions(session, staff_id=staff.id or 0)


def link_telegram(session: Session, *, staff: StaffAccount, telegram_user_id: int | None) -> None:
    """Link (or with None, unlink) a Telegram user id; one staff account per Telegram user."""
    if telegram_user_id is not None and telegram_user_id <= 0:
        # Telegram gives groups and channels negative ids: such an id is a chat, never a person
        raise ValueError("a Telegram user id is a positive number; negative ids are group or channel chats")
    if telegram_user_id is not None:
        other = session.exec(
            select(StaffAccount).where(
                StaffAccount.telegram_user_id == telegram_user_id, col(StaffAccount.id) != staff.id
            )
        ).first()
        if other is not None:
            raise ValueError("this Telegram user is linked to another staff account")
    staff.telegram_user_id = telegram_user_id
    session.add(staff)


def is_locked(staff: StaffAccount, *, now: dt.datetime) -> bool:
    return staff.locked_until is not None and staff.locked_until > now


# Login attempts are counted *before* the password is checked, by one UPDATE ... RETURNING each (an atomic
# increment guarded by the threshold), in a transaction of their own: however many guesses arrive at once, at
# most `threshold` of them per lockout get a password check. Counting after the check lost updates when guesses
# ran in parallel (read 3, write 4 twice). The caller commits each step before checking the password.
_NO_SYNC = {"synchronize_session": False}


@dataclass(frozen=True)
class Backoff:
    """`threshold` failures lock (an account) or block (an address); the `times`-th lockout in a row lasts
    base, 2 base, 4 base, ... at most `cap`."""

    threshold: int
    base: dt.timedelta
    cap: dt.timedelta

    def length(self, times: int) -> dt.timedelta:
        length: dt.timedelta = self.base * (2 ** min(max(times, 1) - 1, 20))
        return min(self.cap, length)


def reserve_login_attempt(session: Session, *, staff_id: int, threshold: int, now: dt.datetime) -> int | None:
    """Count one login attempt on the account; its number (1..threshold), or None when the account is locked
    (or every attempt before the lockout is already taken by guesses in flight)."""
    not_locked = or_(col(StaffAccount.locked_until).is_(None), col(StaffAccount.locked_until) <= now)
    result = session.execute(
        update(StaffAccount)
        .where(col(StaffAccount.id) == staff_id, not_locked, col(StaffAccount.failed_logins) < threshold)
        .values(failed_logins=col(StaffAccount.failed_logins) + 1)
        .returning(col(StaffAccount.failed_logins)),
        execution_options=_NO_SYNC,
    )
    row = result.first()
    return None if row is None else int(row[0])


def record_login_failure(
    session: Session, *, staff_id: int, attempt: int, policy: Backoff, now: dt.datetime
) -> dt.timedelta | None:
    """After a wrong password on attempt number `attempt`: the last attempt allowed locks the account (each
    consecutive lockout twice as long). Returns the lockout's length when this failure locked it."""
    if attempt < policy.threshold:
        return None
    result = session.execute(
        update(StaffAccount)
        .where(col(StaffAccount.id) == staff_id)
        .values(lockouts=col(StaffAccount.lockouts) + 1, failed_logins=0)
        .returning(col(StaffAccount.lockouts)),
        execution_options=_NO_SYNC,
    )
    row = result.first()
    if row is None:
        return None
    length = policy.length(int(row[0]))
    session.execute(
        update(StaffAccount).where(col(StaffAccount.id) == staff_id).values(locked_until=now + length),
        execution_options=_NO_SYNC,
    )
    return length


def record_login_success(session: Session, *, staff: StaffAccount, now: dt.datetime) -> None:
    staff.failed_logins = 0
    staff.locked_until = None
    staff.lockouts = 0
    staff.last_login_at = now
    session.add(staff)


def unlock_staff(session: Session, *, staff: StaffAccount) -> None:
    staff.failed_logins = 0
    staff.locked_until = None
    staff.lockouts = 0
    session.add(staff)


def _upsert(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(LoginThrottle)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(LoginThrottle)


def reserve_address_attempt(
    session: Session, *, address: str, threshold: int, window: dt.timedelta, now: dt.datetime
) -> int | None:
    """Count one login attempt from a client address (every username together); its number, or None while
    the address is blocked. Failures older than `window` are forgotten. One atomic INSERT ... ON CONFLICT DO
    UPDATE ... RETURNING, like the account's counter."""
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    c = table.c
    stmt = _upsert(session).values(
        address=address[:64], failures=1, total=0, blocks=0, blocked_until=None, last_failure_at=now
    )
    stale = c.last_failure_at < now - window
    block_over = c.blocked_until.is_(None) | (c.blocked_until <= now - window)  # and quiet since: start afresh
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.address],
        set_={
            "failures": case((stale, 1), else_=c.failures + 1),
            "blocks": case((stale & block_over, 0), else_=c.blocks),
        },
        where=(c.blocked_until.is_(None) | (c.blocked_until <= now)) & (stale | (c.failures < threshold)),
    ).returning(c.failures)
    row = session.execute(stmt).first()
    return None if row is None else int(row[0])


def record_address_failure(
    session: Session, *, address: str, attempt: int, policy: Backoff, now: dt.datetime
) -> dt.timedelta | None:
    """After a failed login from `address` (attempt number `attempt`): the last attempt allowed blocks the
    address, with the same doubling backoff as accounts. Returns the block's length when this one blocked it."""
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    c = table.c
    values: dict[str, Any] = {"total": c.total + 1, "last_failure_at": now}
    if attempt >= policy.threshold:
        values.update(blocks=c.blocks + 1, failures=0)
    row = session.execute(update(table).where(c.address == address[:64]).values(**values).returning(c.blocks)).first()
    if row is None or attempt < policy.threshold:
        return None
    length = policy.length(int(row[0]))
    session.execute(update(table).where(c.address == address[:64]).values(blocked_until=now + length))
    return length


def release_address_attempt(session: Session, *, address: str) -> None:
    """A successful login gives its counted attempt back: an office behind one address is not blocked by its
    own staff logging in, only by failures."""
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    c = table.c
    session.execute(update(table).where(c.address == address[:64], c.failures > 0).values(failures=c.failures - 1))


def unblock_address(session: Session, *, address: str) -> bool:
    """The supervisor lifts a client address's block (and forgets its failures); False when unknown."""
    row = session.get(LoginThrottle, address[:64])
    if row is None:
        return False
    row.failures = 0
    row.blocks = 0
    row.blocked_until = None
    session.add(row)
    return True


@dataclass
class LoginWatch:
    """What the supervisor sees: locked accounts, accounts with recent failures, and client addresses with
    repeated failures or blocked."""

    locked: list[StaffAccount]
    failing: list[StaffAccount]
    addresses: list[LoginThrottle]


def login_watch(session: Session, *, now: dt.datetime, min_failures: int = 3) -> LoginWatch:
    accounts = list_staff(session)
    purge_login_throttle(session, before=now - dt.timedelta(days=1))
    addresses = session.exec(
        select(LoginThrottle)
        .where(or_(col(LoginThrottle.total) >= min_failures, col(LoginThrottle.blocked_until) > now))
        .order_by(col(LoginThrottle.last_failure_at).desc())
        .limit(50)
    )
    return LoginWatch(
        locked=[a for a in accounts if is_locked(a, now=now)],
        failing=[a for a in accounts if a.failed_logins > 0 and not is_locked(a, now=now)],
        addresses=list(addresses),
    )


def purge_login_throttle(session: Session, *, before: dt.datetime) -> None:
    """Forget addresses quiet since `before` and not blocked any more."""
    session.execute(
        delete(LoginThrottle).where(
            col(LoginThrottle.last_failure_at) < before,
            or_(col(LoginThrottle.blocked_until).is_(None), col(LoginThrottle.blocked_until) < before),
        )
    )


# ----- console sessions


def create_session(session: Session, *, staff: StaffAccount, digest: str, csrf_token: str) -> StaffSession:
    assert staff.id is not None
    now = utcnow()
    row = StaffSession(id=digest, staff_id=staff.id, csrf_token=csrf_token, created_at=now, last_seen_at=now)
    session.add(row)
    session.flush()
    return row


def get_session(session: Session, *, digest: str) -> StaffSession | None:
    return session.get(StaffSession, digest)


def touch_session(session: Session, *, row: StaffSession, now: dt.datetime) -> None:
    """Note activity; a plain UPDATE, so that a session ended meanwhile by another request is no error."""
    session.execute(update(StaffSession).where(col(StaffSession.id) == row.id).values(last_seen_at=now))


# Sessions are removed by plain DELETE statements: two requests of the same browser (a page and its poll) may
# end the same session at once, and an ORM delete of a row that is already gone would complain.
def end_session(session: Session, *, digest: str) -> None:
    session.execute(delete(StaffSession).where(col(StaffSession.id) == digest))


def end_sessions(session: Session, *, staff_id: int) -> None:
    session.execute(delete(StaffSession).where(col(StaffSession.staff_id) == staff_id))


def purge_idle_sessions(session: Session, *, idle_before: dt.datetime) -> int:
    result = session.execute(delete(StaffSession).where(col(StaffSession.last_seen_at) < idle_before))
    return max(0, getattr(result, "rowcount", 0) or 0)


# ----- audit log (append-only: there is deliberately no update or delete here)


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    record_type: str,
    record_id: int | str | None = None,
    detail: str | None = None,
    via: str = "web",
) -> AuditEntry:
    row = AuditEntry(
        actor=actor[:32],
        action=action[:32],
        record_type=record_type[:32],
        record_id=None if record_id is None else str(record_id)[:64],
        detail=None if detail is None else detail[:255],
        via=via[:16],
    )
    session.add(row)
    session.flush()
    return row


def audit_entries(
    session: Session,
    *,
    actor: str | None = None,
    record_type: str | None = None,
    record_id: str | None = None,
    limit: int = 200,
    before_id: int | None = None,
) -> list[AuditEntry]:
    query = select(AuditEntry)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if record_type:
        query = query.where(AuditEntry.record_type == record_type)
    if record_id:
        query = query.where(AuditEntry.record_id == record_id)
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    return list(session.exec(query.order_by(col(AuditEntry.id).desc()).limit(limit)))


# ----- cases (the staff side of the Case row)


def set_assignee(session: Session, *, case: Case, assignee: str | None) -> None:
    case.assignee = assignee
    session.add(case)


def set_case_kind(session: Session, *, case: Case, kind: str) -> None:
    if kind not in (CONSULTATION, COMPLAINT):
        raise ValueError(f"unknown case kind: {kind}")
    case.kind = kind
    session.add(case)


def open_office_case(session: Session, *, kind: str, lang: str = "ja", topic: str | None = None) -> Case:
    """A case staff open themselves (a complaint by phone or at the desk): its contact has no channel id."""
    contact = Contact(channel=OFFICE_CHANNEL, external_id=f"office-{uuid.uuid4().hex}", lang=lang)
    session.add(contact)
    session.flush()
    assert contact.id is not None
    case = Case(contact_id=contact.id, channel=OFFICE_CHANNEL, kind=kind, lang=lang, topic=topic)
    session.add(case)
    session.flush()
    # Nobody waits in a chat for an answer: no reply clock runs (after the insert: the column default fills a None)
    case.waiting_since = None
    session.add(case)
    session.flush()
    return case


def cases(session: Session, *, open_only: bool = False, kind: str | None = None, limit: int = 500) -> list[Case]:
    query = select(Case)
    if open_only:
        query = query.where(col(Case.status).in_(OPEN_CASE_STATUSES))
    if kind is not None:
        query = query.where(Case.kind == kind)
    return list(session.exec(query.order_by(col(Case.id).desc()).limit(limit)))


@dataclass(frozen=True)
class ReplyState:
    """Where a case's staff replies stand: a reply that failed, and since when the parent has really waited
    when the case's own clock was stopped by a reply that has not (yet) reached them."""

    failed: bool
    waiting_from: dt.datetime | None


def cases_created_between(
    session: Session, *, start: dt.datetime, end: dt.datetime, newest_first: bool = False
) -> list[Case]:
    """Cases opened in [start, end), by number."""
    order = col(Case.id).desc() if newest_first else col(Case.id)
    return list(
        session.exec(select(Case).where(col(Case.created_at) >= start, col(Case.created_at) < end).order_by(order))
    )


@dataclass(frozen=True)
class CaseWithRecord:
    case: Case
    record: ConsultationRecord | None  # 相談記録, when written


def consultation_records_between(session: Session, *, start: dt.datetime, end: dt.datetime) -> list[CaseWithRecord]:
    """Cases opened in [start, end) with their 相談記録 (the monthly export), by number."""
    rows = session.exec(
        select(Case, ConsultationRecord)
        .join(ConsultationRecord, col(ConsultationRecord.case_id) == col(Case.id), isouter=True)
        .where(col(Case.created_at) >= start, col(Case.created_at) < end)
        .order_by(col(Case.id))
    )
    return [CaseWithRecord(case=case, record=record) for case, record in rows]


def reply_states(session: Session, *, case_ids: list[int]) -> dict[int, ReplyState]:
    """Per case, from the transcript's metadata (no text is read): a staff reply counts only once delivered."""
    if not case_ids:
        return {}
    columns = (Message.case_id, Message.direction, Message.author, Message.delivery, Message.created_at)
    rows = session.execute(
        sa_select(*[col(c) for c in columns])
        .where(col(Message.case_id).in_(case_ids))
        .where(or_(col(Message.author).startswith("staff:"), col(Message.direction) == "in"))
        .order_by(col(Message.case_id), col(Message.id))
    ).all()
    by_case: dict[int, list[Any]] = {}
    for row in rows:
        by_case.setdefault(row[0], []).append(row)
    states: dict[int, ReplyState] = {}
    for case_id, lines in by_case.items():
        sent = max((i for i, r in enumerate(lines) if r[2].startswith("staff:") and r[3] == "sent"), default=-1)
        after = lines[sent + 1 :]
        undelivered = [r for r in after if r[2].startswith("staff:") and r[3] in ("pending", "failed")]
        asked = [r for r in after if r[1] == "in"]
        start = (asked or undelivered)[0][4] if undelivered else None
        states[case_id] = ReplyState(failed=any(r[3] == "failed" for r in undelivered), waiting_from=start)
    return states


# ----- internal notes


def add_note(session: Session, *, case_id: int, author: str, text: str) -> InternalNote:
    row = InternalNote(case_id=case_id, author=author, text=text)
    session.add(row)
    session.flush()
    return row


def notes_for(session: Session, *, case_id: int) -> list[InternalNote]:
    return list(
        session.exec(select(InternalNote).where(InternalNote.case_id == case_id).order_by(col(InternalNote.id)))
    )


# ----- case records


def consultation_record(session: Session, *, case_id: int) -> ConsultationRecord | None:
    return session.exec(select(ConsultationRecord).where(ConsultationRecord.case_id == case_id)).first()


def save_consultation_record(
    session: Session,
    *,
    case_id: int,
    author: str,
    consulted_on: dt.date,
    situation: str,
    request: str,
    wishes: str,
    direction: str,
) -> ConsultationRecord:
    row = consultation_record(session, case_id=case_id)
    if row is None:
        row = ConsultationRecord(case_id=case_id, consulted_on=consulted_on, author=author, updated_by=author)
    row.consulted_on = consulted_on
    row.situation, row.request, row.wishes, row.direction = situation, request, wishes, direction
    row.updated_by = author
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def add_support_entry(
    session: Session, *, case_id: int, author: str, entry_on: dt.date, progress: str, impression: str
) -> SupportEntry:
    row = SupportEntry(case_id=case_id, author=author, entry_on=entry_on, progress=progress, impression=impression)
    session.add(row)
    session.flush()
    return row


def support_entries(session: Session, *, case_id: int) -> list[SupportEntry]:
    return list(
        session.exec(
            select(SupportEntry)
            .where(SupportEntry.case_id == case_id)
            .order_by(col(SupportEntry.entry_on), col(SupportEntry.id))
        )
    )


def add_conference(
    session: Session,
    *,
    case_id: int,
    author: str,
    held_on: dt.date,
    participants: str,
    family_intent: str,
    family_state: str,
    issues: str,
    goals: str,
    support: str,
) -> CaseConference:
    row = CaseConference(
        case_id=case_id,
        author=author,
        held_on=held_on,
        participants=participants,
        family_intent=family_intent,
        family_state=family_state,
        issues=issues,
        goals=goals,
        support=support,
    )
    session.add(row)
    session.flush()
    return row


def conferences(session: Session, *, case_id: int) -> list[CaseConference]:
    return list(
        session.exec(
            select(CaseConference)
            .where(CaseConference.case_id == case_id)
            .order_by(col(CaseConference.held_on), col(CaseConference.id))
        )
    )


def add_referral(
    session: Session, *, case_id: int, author: str, agency: str, referred_on: dt.date, agreed: str
) -> Referral:
    row = Referral(case_id=case_id, author=author, agency=agency, referred_on=referred_on, agreed=agreed)
    session.add(row)
    session.flush()
    return row


def referrals(session: Session, *, case_id: int | None = None) -> list[Referral]:
    query = select(Referral)
    if case_id is not None:
        query = query.where(Referral.case_id == case_id)
    return list(session.exec(query.order_by(col(Referral.referred_on), col(Referral.id))))


def add_complaint_step(
    session: Session, *, case_id: int, author: str, step: ComplaintStepKind, step_on: dt.date, summary: str
) -> ComplaintStep:
    """A step of the complaint procedure (受付・対応・結果報告); once it is handled (対応), the case is in progress."""
    row = ComplaintStep(case_id=case_id, author=author, step=step, step_on=step_on, summary=summary)
    session.add(row)
    case = session.get(Case, case_id)
    if step != ComplaintStepKind.RECEIVED and case is not None and case.status == CaseStatus.NEW:
        case.status = CaseStatus.IN_PROGRESS
        session.add(case)
    session.flush()
    return row


def complaint_steps(session: Session, *, case_id: int) -> list[ComplaintStep]:
    return list(
        session.exec(
            select(ComplaintStep)
            .where(ComplaintStep.case_id == case_id)
            .order_by(col(ComplaintStep.step_on), col(ComplaintStep.id))
        )
    )


def record_counts(session: Session, *, case_ids: list[int]) -> dict[int, dict[str, int]]:
    """How many records of each kind each case has (for lists; no content)."""
    out: dict[int, dict[str, int]] = {cid: {} for cid in case_ids}
    if not case_ids:
        return out
    tables: list[tuple[str, type[SQLModel]]] = [
        ("consultation", ConsultationRecord),
        ("support", SupportEntry),
        ("conference", CaseConference),
        ("referral", Referral),
        ("complaint", ComplaintStep),
    ]
    for name, table in tables:
        case_col = table.case_id  # type: ignore[attr-defined]
        rows = session.execute(
            select(case_col, func.count()).where(col(case_col).in_(case_ids)).group_by(case_col)
        ).all()
        for cid, n in rows:
            out[int(cid)][name] = int(n)
    return out


# ----- appointment slots


def offer_slots(
    session: Session,
    *,
    case_id: int,
    starts: list[dt.datetime],
    minutes: int,
    place: str,
    offered_by: str,
) -> list[AppointmentSlot]:
    """New slots offered together; slots of an earlier open offer on the case are withdrawn."""
    for old in session.exec(
        select(AppointmentSlot).where(AppointmentSlot.case_id == case_id, AppointmentSlot.status == SlotStatus.OFFERED)
    ):
        old.status = SlotStatus.WITHDRAWN
        session.add(old)
    offer = uuid.uuid4().hex
    rows = [
        AppointmentSlot(
            case_id=case_id, offer_id=offer, starts_at=s, minutes=minutes, place=place, offered_by=offered_by
        )
        for s in sorted(starts)
    ]
    session.add_all(rows)
    session.flush()
    return rows


def get_slot(session: Session, *, slot_id: int, for_update: bool = False) -> AppointmentSlot | None:
    query = select(AppointmentSlot).where(AppointmentSlot.id == slot_id)
    if for_update and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.exec(query).first()


def book_slot(session: Session, *, slot: AppointmentSlot, now: dt.datetime) -> None:
    """The parent chose `slot`: it is booked and the other slots of the same offer are withdrawn."""
    slot.status = SlotStatus.BOOKED
    slot.booked_at = now
    session.add(slot)
    for other in session.exec(
        select(AppointmentSlot).where(
            AppointmentSlot.offer_id == slot.offer_id,
            AppointmentSlot.status == SlotStatus.OFFERED,
            col(AppointmentSlot.id) != slot.id,
        )
    ):
        other.status = SlotStatus.WITHDRAWN
        session.add(other)


def cancel_slot(session: Session, *, slot: AppointmentSlot) -> None:
    slot.status = SlotStatus.CANCELLED
    session.add(slot)


def slots_for_case(session: Session, *, case_id: int) -> list[AppointmentSlot]:
    return list(
        session.exec(
            select(AppointmentSlot)
            .where(AppointmentSlot.case_id == case_id)
            .order_by(col(AppointmentSlot.starts_at), col(AppointmentSlot.id))
        )
    )


def slots_between(
    session: Session, *, start: dt.datetime, end: dt.datetime, statuses: tuple[str, ...] = (SlotStatus.BOOKED,)
) -> list[AppointmentSlot]:
    return list(
        session.exec(
            select(AppointmentSlot)
            .where(
                col(AppointmentSlot.starts_at) >= start,
                col(AppointmentSlot.starts_at) < end,
                col(AppointmentSlot.status).in_(statuses),
            )
            .order_by(col(AppointmentSlot.starts_at), col(AppointmentSlot.id))
        )
    )


def booked_overlapping(
    session: Session, *, start: dt.datetime, minutes: int, exclude_case: int | None = None
) -> list[AppointmentSlot]:
    """Booked slots that overlap [start, start + minutes)."""
    end = start + dt.timedelta(minutes=minutes)
    nearby = slots_between(session, start=start - dt.timedelta(hours=12), end=end)
    return [s for s in nearby if s.starts_at + dt.timedelta(minutes=s.minutes) > start and s.case_id != exclude_case]


def closed_cases_with_bookings(session: Session, *, contact_id: int, now: dt.datetime) -> list[Case]:
    """The contact's closed cases that keep a booked slot not yet over (newest case first)."""
    rows = session.exec(
        select(Case, AppointmentSlot)
        .join(AppointmentSlot, col(AppointmentSlot.case_id) == col(Case.id))
        .where(
            Case.contact_id == contact_id,
            col(Case.status).not_in(OPEN_CASE_STATUSES),
            AppointmentSlot.status == SlotStatus.BOOKED,
            col(AppointmentSlot.starts_at) > now - dt.timedelta(hours=8),  # longest slot: 480 minutes
        )
        .order_by(col(Case.id).desc())
    )
    found: dict[int, Case] = {}
    for row, slot in rows:
        if row.id is not None and slot.starts_at + dt.timedelta(minutes=slot.minutes) > now:
            found.setdefault(row.id, row)
    return list(found.values())


# ----- Telegram links


def case_topic(session: Session, *, case_id: int) -> CaseTopic | None:
    return session.get(CaseTopic, case_id)


def set_case_topic(session: Session, *, case_id: int, chat_id: int, thread_id: int) -> CaseTopic:
    row = session.get(CaseTopic, case_id)
    if row is None:
        row = CaseTopic(case_id=case_id, chat_id=chat_id, thread_id=thread_id)
    else:
        row.chat_id, row.thread_id = chat_id, thread_id
    session.add(row)
    session.flush()
    return row


def drop_case_topic(session: Session, *, case_id: int) -> None:
    row = session.get(CaseTopic, case_id)
    if row is not None:
        session.delete(row)


def cases_with_topic(session: Session, *, kind: str) -> list[Case]:
    """Cases of `kind` that hold a topic in the staff group."""
    return list(
        session.exec(
            select(Case).join(CaseTopic, col(CaseTopic.case_id) == col(Case.id)).where(col(Case.kind) == kind)
        ).all()
    )


def telegram_staff(session: Session) -> list[StaffAccount]:
    """Active staff accounts with a linked Telegram user."""
    return list(
        session.exec(
            select(StaffAccount).where(col(StaffAccount.active), col(StaffAccount.telegram_user_id).is_not(None))
        )
    )


def case_for_topic(session: Session, *, chat_id: int, thread_id: int) -> int | None:
    row = session.exec(select(CaseTopic).where(CaseTopic.chat_id == chat_id, CaseTopic.thread_id == thread_id)).first()
    return row.case_id if row is not None else None
