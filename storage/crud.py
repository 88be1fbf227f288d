"""Keyword-only data access over a passed-in session. No commits here: the caller owns the transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case as sql_case
from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from storage.models import (
    OPEN_CASE_STATUSES,
    Basis,
    Case,
    CaseStatus,
    ConsentRecord,
    ConsentStatus,
    Contact,
    ConversationState,
    ConversationStateName,
    Message,
    PendingMessage,
    Priority,
    StaffAlert,
    StatEvent,
    utcnow,
)
from storage.retention import pending_expired


# --- contacts and conversation state
def get_or_create_contact(session: Session, *, channel: str, external_id: str) -> Contact:
    contact = session.exec(
        select(Contact).where(Contact.channel == channel, Contact.external_id == external_id)
    ).first()
    if contact is None:
        contact = Contact(channel=channel, external_id=external_id)
        session.add(contact)
        session.flush()
    return contact


def find_contact(session: Session, *, channel: str, external_id: str) -> Contact | None:
    return session.exec(
        select(Contact).where(col(Contact.channel) == channel, col(Contact.external_id) == external_id)
    ).first()


def get_contact(session: Session, *, contact_id: int) -> Contact | None:
    return session.get(Contact, contact_id)


def touch_contact(session: Session, *, contact: Contact, lang: str | None = None) -> None:
    contact.last_seen_at = utcnow()
    if lang:
        contact.lang = lang
    session.add(contact)


def get_state(session: Session, *, contact_id: int) -> ConversationState:
    state = session.get(ConversationState, contact_id)
    if state is None:
        state = ConversationState(contact_id=contact_id)
        session.add(state)
        session.flush()
    return state


def drop_state(session: Session, *, contact_id: int) -> None:
    """Forget where a contact's conversation stood (erasure)."""
    session.execute(delete(ConversationState).where(col(ConversationState.contact_id) == contact_id))


def set_state(
    session: Session,
    *,
    state: ConversationState,
    name: ConversationStateName,
    options: list[str] | None = None,
    case_id: int | None = None,
    expires_at: dt.datetime | None = None,
) -> None:
    state.state = name
    state.options = ",".join(options or [])
    if case_id is not None:
        state.case_id = case_id
    if name == ConversationStateName.FAQ:
        state.case_id = None
    state.expires_at = expires_at
    state.updated_at = utcnow()
    session.add(state)


# --- consent ledger (the rules about it are handlers/consent.py's; these only read and append)
def record_consent(
    session: Session,
    *,
    contact: Contact,
    status: ConsentStatus,
    notice_version: str,
    notice_lang: str | None = None,
    notice_wording: str | None = None,
    notice_sha256: str | None = None,
) -> ConsentRecord:
    """`notice_lang`, `notice_wording`, `notice_sha256`: which text of the version was shown, and its digest."""
    assert contact.id is not None
    row = ConsentRecord(
        contact_id=contact.id,
        channel=contact.channel,
        notice_version=notice_version,
        status=status,
        notice_lang=notice_lang,
        notice_wording=notice_wording,
        notice_sha256=notice_sha256,
    )
    session.add(row)
    session.flush()
    return row


def current_consent(session: Session, *, contact_id: int) -> ConsentRecord | None:
    """The contact's latest ledger row: the one in force."""
    return session.exec(
        select(ConsentRecord)
        .where(ConsentRecord.contact_id == contact_id)
        .order_by(col(ConsentRecord.at).desc(), col(ConsentRecord.id).desc())
    ).first()


def has_consent(session: Session, *, contact_id: int) -> bool:
    """True when the contact's latest ledger row is a grant (of whatever version)."""
    row = current_consent(session, contact_id=contact_id)
    return row is not None and row.status == ConsentStatus.GRANTED


def consent_history(session: Session, *, contact_id: int) -> list[ConsentRecord]:
    return list(
        session.exec(
            select(ConsentRecord).where(ConsentRecord.contact_id == contact_id).order_by(col(ConsentRecord.id))
        )
    )


# --- pre-consent buffer
def hold_pending(
    session: Session, *, contact_id: int, text: str, ttl: dt.timedelta, now: dt.datetime | None = None
) -> PendingMessage:
    clear_pending(session, contact_id=contact_id)
    now = now or utcnow()
    row = PendingMessage(contact_id=contact_id, text=text, created_at=now, expires_at=now + ttl)
    session.add(row)
    session.flush()
    return row


def take_pending(
    session: Session, *, contact_id: int, max_hold: dt.timedelta, now: dt.datetime | None = None
) -> str | None:
    """The held message unless expired (`retention.pending_expired`: its window, or held `max_hold`); it is
    erased either way."""
    expired = pending_expired(now=now or utcnow(), max_hold=max_hold)
    row = session.execute(
        select(col(PendingMessage.text).label("text"), expired.label("expired")).where(
            col(PendingMessage.contact_id) == contact_id
        )
    ).first()
    clear_pending(session, contact_id=contact_id)
    if row is None or row.expired:
        return None
    return str(row.text)


def clear_pending(session: Session, *, contact_id: int) -> int:
    """Erase a contact's held message; returns how many rows went (0 or 1)."""
    result = session.execute(delete(PendingMessage).where(col(PendingMessage.contact_id) == contact_id))
    return int(getattr(result, "rowcount", 0) or 0)


# --- cases and transcripts
def open_case_for(session: Session, *, contact_id: int) -> Case | None:
    return session.exec(
        select(Case)
        .where(Case.contact_id == contact_id, col(Case.status).in_(OPEN_CASE_STATUSES))
        .order_by(col(Case.id).desc())
    ).first()


def create_case(
    session: Session,
    *,
    contact: Contact,
    lang: str,
    topic: str | None,
    priority: Priority = Priority.NORMAL,
    basis: Basis = Basis.CONSENT,
    basis_reason: str | None = None,
    crisis_category: str | None = None,
    kind: str = "consultation",
) -> Case:
    assert contact.id is not None
    case = Case(
        contact_id=contact.id,
        channel=contact.channel,
        lang=lang,
        topic=topic,
        priority=priority,
        basis=basis,
        basis_reason=basis_reason,
        crisis_category=crisis_category,
        kind=kind,
    )
    session.add(case)
    session.flush()
    return case


def get_case(session: Session, *, case_id: int) -> Case | None:
    return session.get(Case, case_id)


def escalate_case(session: Session, *, case: Case, crisis_category: str, basis: Basis, reason: str) -> None:
    """Urgent from now on; `basis` (decided by handlers/consent.py) is the one the case continues under."""
    case.priority = Priority.URGENT
    case.crisis_category = crisis_category
    if basis == Basis.LIFE_SAFETY:
        case.basis = Basis.LIFE_SAFETY
        case.basis_reason = reason
    if case.waiting_since is None:
        case.waiting_since = utcnow()
    session.add(case)


def set_case_status(session: Session, *, case: Case, status: CaseStatus) -> None:
    case.status = status
    now = utcnow()
    if status in (CaseStatus.RESOLVED, CaseStatus.REFERRED):
        case.resolved_at = now
        case.waiting_since = None
    elif status == CaseStatus.WAITING_PARENT:
        case.waiting_since = None
    session.add(case)


def mark_parent_waiting(session: Session, *, case: Case) -> None:
    """The parent wrote: the case waits for the concierge from now on (unless already waiting)."""
    if case.waiting_since is None:
        case.waiting_since = utcnow()
    if case.status == CaseStatus.WAITING_PARENT:
        case.status = CaseStatus.IN_PROGRESS
    session.add(case)


def add_message(
    session: Session,
    *,
    case: Case,
    direction: str,
    author: str,
    text: str,
    basis: Basis,
    delivery: str | None = None,
) -> Message:
    assert case.id is not None
    row = Message(case_id=case.id, direction=direction, author=author, text=text, basis=basis, delivery=delivery)
    session.add(row)
    session.flush()
    return row


def has_staff_message(session: Session, *, case_id: int) -> bool:
    """Whether staff have written on the case (its transcript has a line by staff:<name>)."""
    found = session.exec(
        select(Message.id).where(col(Message.case_id) == case_id, col(Message.author).startswith("staff"))
    ).first()
    return found is not None


def has_message_containing(session: Session, *, case_id: int, fragment: str) -> bool:
    """Whether a transcript line of the case contains `fragment` (a tag written into it)."""
    found = session.exec(
        select(Message.id).where(col(Message.case_id) == case_id, col(Message.text).contains(fragment))
    ).first()
    return found is not None


def has_message_since(session: Session, *, case_id: int, delivery: str, since: dt.datetime) -> bool:
    """Whether the case has a transcript line in delivery state `delivery` written at `since` or later."""
    found = session.exec(
        select(Message.id).where(
            col(Message.case_id) == case_id, col(Message.delivery) == delivery, col(Message.created_at) >= since
        )
    ).first()
    return found is not None


def set_delivery(session: Session, *, message_ids: list[int], delivery: str) -> None:
    """The delivery state of transcript lines (送信待ち, 送信済み, 送信失敗…)."""
    if message_ids:
        session.execute(update(Message).where(col(Message.id).in_(message_ids)).values(delivery=delivery))


def state_of(session: Session, *, channel: str, external_id: str) -> str | None:
    """The conversation state of the contact (`channel`, `external_id`); None when it has none."""
    return session.exec(
        select(ConversationState.state)
        .join(Contact, col(Contact.id) == col(ConversationState.contact_id))
        .where(col(Contact.channel) == channel, col(Contact.external_id) == external_id)
    ).first()


def transcript(session: Session, *, case_id: int) -> list[Message]:
    return list(session.exec(select(Message).where(Message.case_id == case_id).order_by(col(Message.id))))


def queue(session: Session) -> list[Case]:
    """Open cases: urgent first, then the longest-waiting."""
    urgent_first = sql_case((col(Case.priority) == Priority.URGENT, 0), else_=1)
    return list(
        session.exec(
            select(Case)
            .where(col(Case.status).in_(OPEN_CASE_STATUSES))
            .order_by(urgent_first, col(Case.waiting_since).asc().nulls_last(), col(Case.id))
        )
    )


def add_alert(session: Session, *, case: Case, kind: str) -> StaffAlert:
    assert case.id is not None
    row = StaffAlert(case_id=case.id, kind=kind)
    session.add(row)
    session.flush()
    return row


def pending_alerts(session: Session) -> list[StaffAlert]:
    return list(
        session.exec(select(StaffAlert).where(col(StaffAlert.delivered_at).is_(None)).order_by(col(StaffAlert.id)))
    )


# --- anonymous statistics
def count_event(
    session: Session,
    *,
    channel: str,
    outcome: str,
    lang: str,
    topic: str | None,
    after_hours: bool,
    at: dt.datetime | None = None,
    seconds: int | None = None,
) -> None:
    """`seconds`: for a first_reply counter, the delay until staff first answered."""
    session.add(
        StatEvent(
            channel=channel,
            outcome=outcome,
            lang=lang,
            topic=topic,
            after_hours=after_hours,
            at=at or utcnow(),
            seconds=seconds,
        )
    )


def stat_times(
    session: Session, *, since: dt.datetime, until: dt.datetime, outcomes: tuple[str, ...]
) -> list[dt.datetime]:
    """When each counter with one of `outcomes` was counted, in [since, until)."""
    return list(
        session.exec(
            select(StatEvent.at).where(
                col(StatEvent.at) >= since, col(StatEvent.at) < until, col(StatEvent.outcome).in_(outcomes)
            )
        )
    )


def stat_events(session: Session, *, since: dt.datetime, until: dt.datetime) -> list[StatEvent]:
    return list(
        session.exec(
            select(StatEvent).where(col(StatEvent.at) >= since, col(StatEvent.at) < until).order_by(col(StatEvent.at))
        )
    )
