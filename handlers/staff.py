"""What the concierge does to a case that reaches the parent: replies through the parent's own channel,
and ending the human-held conversation. The one outbound path for staff words (internal notes have no
path out: they are another table and never queued).

The `queue_*`/`hand_back` functions work inside a caller's transaction (the staff use cases in
`handlers.casework` add the permission check and the audit row to that same transaction); the functions
taking a session factory are the same mechanics in a transaction of their own."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from handlers import consent
from handlers.hours import OfficeHours
from handlers.reports import count_first_reply
from handlers.texts import t
from handlers.types import Reply, ReplyKind, replies_to_json
from storage import crud, queue
from storage.db import SessionFactory, transaction
from storage.models import Case, CaseStatus, ConversationStateName, Message


class CaseNotFoundError(LookupError):
    pass


def _case(s: Session, case_id: int) -> Case:
    case = crud.get_case(s, case_id=case_id)
    if case is None:
        raise CaseNotFoundError(case_id)
    return case


def queue_reply(s: Session, *, case: Case, text: str, staff: str, office_hours: OfficeHours | None = None) -> int:
    """Queue a staff reply to the case's parent; it is pushed (no reply token). Returns the message id."""
    text = text.strip()
    if not text:
        raise ValueError("empty reply")
    assert case.id is not None
    contact = crud.get_contact(s, contact_id=case.contact_id)
    assert contact is not None
    basis = consent.reply_basis(s, case=case)
    count_first_reply(s, case=case, office_hours=office_hours)
    message = crud.add_message(
        s, case=case, direction="out", author=f"staff:{staff}", text=text, basis=basis, delivery="pending"
    )
    reply = Reply(ReplyKind.INFO, text, lang=case.lang, meta={"case_id": str(case.id), "from": "staff"})
    queue.enqueue_outbound(
        s,
        channel=case.channel,
        recipient=contact.external_id,
        payload=replies_to_json([reply]),
        retry_key=str(uuid.uuid4()),
        case_id=case.id,
        message_id=message.id,
    )
    if case.status == CaseStatus.NEW:
        case.status = CaseStatus.IN_PROGRESS
    case.waiting_since = None
    s.add(case)
    assert message.id is not None
    return message.id


def reply_to_parent(
    sessions: SessionFactory, *, case_id: int, text: str, staff: str, office_hours: OfficeHours | None = None
) -> int:
    """`queue_reply` in a transaction of its own. Returns the message id."""
    with transaction(sessions) as s:
        return queue_reply(s, case=_case(s, case_id), text=text, staff=staff, office_hours=office_hours)


def queue_resend(s: Session, *, case: Case, message_id: int) -> bool:
    """Queue a failed staff reply again, from its transcript line, through the same outbox; False when the line
    is not a failed staff reply of this case. The parent's wait clock is left alone: it stops only when a
    reply is delivered (the console reads the delivery states)."""
    message = s.get(Message, message_id)
    if (
        message is None
        or message.case_id != case.id
        or message.delivery != "failed"
        or not message.author.startswith("staff:")
    ):
        return False
    reply = Reply(ReplyKind.INFO, message.text, lang=case.lang, meta={"case_id": str(case.id), "from": "staff"})
    if queue.reopen_failed_outbound(s, message_id=message_id, payload=replies_to_json([reply])) is None:
        return False
    message.delivery = "pending"
    s.add(message)
    return True


def resend_reply(sessions: SessionFactory, *, case_id: int, message_id: int) -> bool:
    """`queue_resend` in a transaction of its own."""
    with transaction(sessions) as s:
        case = crud.get_case(s, case_id=case_id)
        return case is not None and queue_resend(s, case=case, message_id=message_id)


def hand_back(s: Session, *, case: Case, status: CaseStatus = CaseStatus.RESOLVED) -> None:
    """Close the case, hand the conversation back to the bot and tell the parent."""
    assert case.id is not None
    crud.set_case_status(s, case=case, status=status)
    contact = crud.get_contact(s, contact_id=case.contact_id)
    assert contact is not None and contact.id is not None
    state = crud.get_state(s, contact_id=contact.id)
    if state.case_id == case.id:
        crud.set_state(s, state=state, name=ConversationStateName.FAQ)
    reply = Reply(ReplyKind.INFO, t(case.lang, "resolved"), lang=case.lang)
    queue.enqueue_outbound(
        s,
        channel=case.channel,
        recipient=contact.external_id,
        payload=replies_to_json([reply]),
        retry_key=str(uuid.uuid4()),
        case_id=case.id,
    )


def resolve_case(sessions: SessionFactory, *, case_id: int, status: CaseStatus = CaseStatus.RESOLVED) -> None:
    """`hand_back` in a transaction of its own."""
    with transaction(sessions) as s:
        hand_back(s, case=_case(s, case_id), status=status)


def reopen_case(s: Session, *, case: Case) -> None:
    """A closed case is open again; the parent's chat goes to the people holding it (unless the
    conversation is in another step: consent, or another case)."""
    case.status = CaseStatus.IN_PROGRESS
    case.resolved_at = None
    s.add(case)
    if case.channel == "office":  # no chat to route (cases opened at the desk or by phone)
        return
    state = crud.get_state(s, contact_id=case.contact_id)
    if state.state in (ConversationStateName.FAQ, ConversationStateName.CLARIFY):
        crud.set_state(s, state=state, name=ConversationStateName.HANDOFF, case_id=case.id)
