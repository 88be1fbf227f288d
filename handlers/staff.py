"""What the concierge does to a case that reaches the parent: replies through the parent's own channel,
and ending the human-held conversation. The one outbound path for staff words (internal notes have no
path out: they are another table and never queued)."""

from __future__ import annotations

import uuid

from handlers import consent
from handlers.hours import OfficeHours
from handlers.reports import count_first_reply
from handlers.texts import t
from handlers.types import Reply, ReplyKind, replies_to_json
from storage import crud, queue
from storage.db import SessionFactory, transaction
from storage.models import CaseStatus, ConversationStateName, Message


class CaseNotFoundError(LookupError):
    pass


def reply_to_parent(
    sessions: SessionFactory, *, case_id: int, text: str, staff: str, office_hours: OfficeHours | None = None
) -> int:
    """Queue a staff reply to the case's parent; it is pushed (no reply token). Returns the message id."""
    text = text.strip()
    if not text:
        raise ValueError("empty reply")
    with transaction(sessions) as s:
        case = crud.get_case(s, case_id=case_id)
        if case is None:
            raise CaseNotFoundError(case_id)
        contact = crud.get_contact(s, contact_id=case.contact_id)
        assert contact is not None
        basis = consent.reply_basis(s, case=case)
        count_first_reply(s, case=case, office_hours=office_hours)
        message = crud.add_message(
            s, case=case, direction="out", author=f"staff:{staff}", text=text, basis=basis, delivery="pending"
        )
        reply = Reply(ReplyKind.INFO, text, lang=case.lang, meta={"case_id": str(case_id), "from": "staff"})
        queue.enqueue_outbound(
            s,
            channel=case.channel,
            recipient=contact.external_id,
            payload=replies_to_json([reply]),
            retry_key=str(uuid.uuid4()),
            case_id=case_id,
            message_id=message.id,
        )
        if case.status == CaseStatus.NEW:
            case.status = CaseStatus.IN_PROGRESS
        case.waiting_since = None
        s.add(case)
        assert message.id is not None
        return message.id


def resend_reply(sessions: SessionFactory, *, case_id: int, message_id: int) -> bool:
    """Queue a failed staff reply again, from its transcript line, through the same outbox; False when the line
    is not a failed staff reply of this case. The parent's wait clock is left alone: it stops only when a
    reply is delivered (the console reads the delivery states)."""
    with transaction(sessions) as s:
        case = crud.get_case(s, case_id=case_id)
        message = s.get(Message, message_id)
        if (
            case is None
            or message is None
            or message.case_id != case_id
            or message.delivery != "failed"
            or not message.author.startswith("staff:")
        ):
            return False
        reply = Reply(ReplyKind.INFO, message.text, lang=case.lang, meta={"case_id": str(case_id), "from": "staff"})
        if queue.reopen_failed_outbound(s, message_id=message_id, payload=replies_to_json([reply])) is None:
            return False
        message.delivery = "pending"
        s.add(message)
        return True


def resolve_case(sessions: SessionFactory, *, case_id: int, status: CaseStatus = CaseStatus.RESOLVED) -> None:
    """Close the case, hand the conversation back to the bot and tell the parent."""
    with transaction(sessions) as s:
        case = crud.get_case(s, case_id=case_id)
        if case is None:
            raise CaseNotFoundError(case_id)
        crud.set_case_status(s, case=case, status=status)
        contact = crud.get_contact(s, contact_id=case.contact_id)
        assert contact is not None and contact.id is not None
        state = crud.get_state(s, contact_id=contact.id)
        if state.case_id == case_id:
            crud.set_state(s, state=state, name=ConversationStateName.FAQ)
        reply = Reply(ReplyKind.INFO, t(case.lang, "resolved"), lang=case.lang)
        queue.enqueue_outbound(
            s,
            channel=case.channel,
            recipient=contact.external_id,
            payload=replies_to_json([reply]),
            retry_key=str(uuid.uuid4()),
            case_id=case_id,
        )
