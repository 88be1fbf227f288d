"""原則予約制: the concierge offers appointment slots on a case, the parent picks one in the chat.

`offer_appointments` queues the slots to the parent as buttons (postback `slot:<id>`, or `slot:none`)
through the outbox, the way `handlers.staff.reply_to_parent` queues a staff reply. `AppointmentExtension`
(an engine Extension) books the chosen slot, confirms it to the parent in the chat and tells the staff
with a StaffAlert of kind "appointment". A button press is not message content; the transcript line about
it is still written only under the case's basis (consent or life-and-safety), like any other line.
"""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

from sqlmodel import Session

from handlers import consent
from handlers import staff as staff_actions
from handlers.engine import Turn
from handlers.hours import format_when
from handlers.staff import CaseNotFoundError
from handlers.texts import t
from handlers.types import QUEUED, Choice, InboundKind, Reply, ReplyKind, recorded, replies_to_json
from storage import crud, queue
from storage import staff as staffdb
from storage.db import SessionFactory, transaction
from storage.models import OPEN_CASE_STATUSES, Basis, Case, CaseStatus, ConversationStateName, utcnow

POSTBACK = "slot"
MAX_SLOTS = 12  # LINE shows at most 13 quick replies: the slots and "none of these"
ALERT_KIND = "appointment"


def _t(lang: str, key: str, channel: str | None = None, **values: object) -> str:
    """Appointment wording, from the text files (handlers/texts: `appointment_*`, mail variants in `email:`)."""
    return t(lang, f"appointment_{key}", channel, **values)


def slot_label(starts_at: dt.datetime, lang: str, tz: str = "Asia/Tokyo") -> str:
    """`11月28日(金) 10:00`: short enough for a LINE quick-reply label (20 characters)."""
    return format_when(starts_at.astimezone(ZoneInfo(tz)), lang)


def validate_offer(starts: list[dt.datetime], minutes: int, now: dt.datetime) -> None:
    """ValueError when the slots cannot be offered (none, too many, naive or past times, odd length)."""
    if not starts:
        raise ValueError("no slots")
    if len(starts) > MAX_SLOTS:
        raise ValueError(f"at most {MAX_SLOTS} slots")
    if any(s.tzinfo is None for s in starts):
        raise ValueError("slot times must be timezone-aware")
    if any(s <= now for s in starts):
        raise ValueError("slots must be in the future")
    if not 5 <= minutes <= 480:
        raise ValueError("minutes out of range")


def queue_offer(
    s: Session,
    *,
    case: Case,
    starts: list[dt.datetime],
    minutes: int,
    place: str,
    staff: str,
    tz: str = "Asia/Tokyo",
    now: dt.datetime | None = None,
) -> list[int]:
    """Offer slots on an open case inside the caller's transaction: stored and queued to the parent as
    buttons. Returns slot ids."""
    validate_offer(starts, minutes, now or utcnow())
    assert case.id is not None
    case_id = case.id
    if case.status not in OPEN_CASE_STATUSES:
        raise ValueError("the case is closed")
    if case.channel == staffdb.OFFICE_CHANNEL:
        raise ValueError("the case has no chat channel")
    contact = crud.get_contact(s, contact_id=case.contact_id)
    assert contact is not None
    slots = staffdb.offer_slots(
        s, case_id=case_id, starts=starts, minutes=minutes, place=place.strip(), offered_by=staff
    )
    lang = case.lang
    lines = [_t(lang, "offer")]
    lines += [f"・{slot_label(x.starts_at, lang, tz)}" for x in slots]
    if place.strip():
        lines.append(_t(lang, "place", place=place.strip()))
    text = "\n".join(lines)
    choices = tuple(Choice(slot_label(x.starts_at, lang, tz), f"{POSTBACK}:{x.id}") for x in slots)
    choices += (Choice(_t(lang, "none"), f"{POSTBACK}:none"),)
    basis = consent.reply_basis(s, case=case)
    message = crud.add_message(
        s, case=case, direction="out", author=f"staff:{staff}", text=text, basis=basis, delivery="pending"
    )
    reply = Reply(
        ReplyKind.INFO,
        text,
        choices=choices,
        lang=lang,
        meta={"case_id": str(case_id), "from": "staff", "offer": slots[0].offer_id},
    )
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
    return [x.id for x in slots if x.id is not None]


def offer_appointments(
    sessions: SessionFactory,
    *,
    case_id: int,
    starts: list[dt.datetime],
    minutes: int,
    place: str,
    staff: str,
    tz: str = "Asia/Tokyo",
    now: dt.datetime | None = None,
) -> list[int]:
    """`queue_offer` in a transaction of its own. Returns slot ids."""
    validate_offer(starts, minutes, now or utcnow())
    with transaction(sessions) as s:
        case = crud.get_case(s, case_id=case_id)
        if case is None:
            raise CaseNotFoundError(case_id)
        return queue_offer(s, case=case, starts=starts, minutes=minutes, place=place, staff=staff, tz=tz, now=now)


# A parent's words about a booking (to change, cancel, or say they are late): after the case was resolved
# these must reach a person, not the FAQ.
BOOKING_WORDS = (
    "予約",
    "面談",
    "キャンセル",
    "日時",
    "日程",
    "変更",
    "行けな",
    "行けません",
    "伺え",
    "遅れ",
    "遅刻",
    "間に合",
    "appointment",
    "booking",
    "cancel",
    "reschedule",
    "late",
)


def upcoming_bookings(s: Session, *, case_id: int, now: dt.datetime | None = None) -> list[staffdb.AppointmentSlot]:
    """Booked slots of the case that have not ended yet."""
    now = now or utcnow()
    return [
        x
        for x in staffdb.slots_for_case(s, case_id=case_id)
        if x.status == staffdb.SlotStatus.BOOKED and x.starts_at + dt.timedelta(minutes=x.minutes) > now
    ]


def about_booking(text: str) -> bool:
    lowered = text.lower()
    return any(w in lowered for w in BOOKING_WORDS)


class AppointmentExtension:
    """Owns the `slot:<id>` / `slot:none` postbacks."""

    def __init__(self, *, timezone: str = "Asia/Tokyo") -> None:
        self.tz = timezone

    def handle(self, turn: Turn) -> list[Reply] | None:
        msg = turn.message
        if msg is not None and msg.kind == InboundKind.TEXT:
            return self._booking_message(turn)
        if msg is None or msg.kind != InboundKind.POSTBACK or not msg.postback:
            return None
        kind, _, arg = msg.postback.partition(":")
        if kind != POSTBACK:
            return None
        if arg == "none":
            return self._none(turn)
        if not arg.isdigit():
            return [Reply(ReplyKind.INFO, _t(turn.lang, "gone"), lang=turn.lang)]
        return self._pick(turn, int(arg))

    def _booking_message(self, turn: Turn) -> list[Reply] | None:
        """After the case was resolved, a parent writing about a booking still to come reaches a person: the
        case is open again, waiting, staff are alerted, and the parent is told so."""
        if turn.state.state not in (ConversationStateName.FAQ, ConversationStateName.CLARIFY):
            return None
        if not about_booking(turn.text):
            return None
        s, cid = turn.session, turn.contact.id
        assert cid is not None
        if crud.open_case_for(s, contact_id=cid) is not None:
            return None
        closed = staffdb.closed_cases_with_bookings(s, contact_id=cid, now=turn.now)
        if not closed:
            return None
        case = closed[0]
        basis = consent.basis_for(s, case=case)
        staff_actions.reopen_case(s, case=case)
        text = turn.text[:2000] if basis is not None else _t(turn.lang, "not_kept")
        crud.add_message(s, case=case, direction="in", author="parent", text=text, basis=basis or Basis(case.basis))
        crud.mark_parent_waiting(s, case=case)
        crud.add_alert(s, case=case, kind="parent_message")
        staffdb.audit(s, actor="bot", action="reopen", record_type="case", record_id=case.id, detail="booking message")
        return [Reply(ReplyKind.INFO, _t(turn.lang, "to_staff"), lang=turn.lang, meta={"case_id": str(case.id)})]

    def _pick(self, turn: Turn, slot_id: int) -> list[Reply]:
        s, lang = turn.session, turn.lang
        slot = staffdb.get_slot(s, slot_id=slot_id, for_update=True)
        case = crud.get_case(s, case_id=slot.case_id) if slot is not None else None
        if slot is None or case is None or case.contact_id != turn.contact.id:
            return [Reply(ReplyKind.INFO, _t(lang, "gone"), lang=lang)]
        when = slot_label(slot.starts_at, lang, self.tz)
        if slot.status == staffdb.SlotStatus.BOOKED:
            return [Reply(ReplyKind.INFO, _t(lang, "already", when=when), lang=lang)]
        if slot.status != staffdb.SlotStatus.OFFERED or slot.starts_at <= turn.now:
            return [Reply(ReplyKind.INFO, _t(lang, "gone"), lang=lang)]
        staffdb.book_slot(s, slot=slot, now=turn.now)
        crud.add_alert(s, case=case, kind=ALERT_KIND)
        place = _t(lang, "place", place=slot.place) + "\n" if slot.place else ""
        minutes = _t(lang, "minutes", minutes=slot.minutes)
        text = _t(lang, "booked", turn.channel, when=when, minutes=minutes, place=place)
        basis = consent.basis_for(s, case=case)
        line = None
        if basis is not None:
            picked = _t(lang, "picked", when=when)
            crud.add_message(s, case=case, direction="in", author="parent", text=picked, basis=basis)
            line = crud.add_message(
                s, case=case, direction="out", author="bot", text=text, basis=basis, delivery=QUEUED
            )
        reply = Reply(ReplyKind.INFO, text, lang=lang, meta={"case_id": str(case.id), "slot": str(slot.id)})
        return [recorded(reply, line.id if line else None)]

    def _none(self, turn: Turn) -> list[Reply]:
        s, lang = turn.session, turn.lang
        assert turn.contact.id is not None
        case = crud.open_case_for(s, contact_id=turn.contact.id)
        if case is None:
            return [Reply(ReplyKind.INFO, _t(lang, "gone"), lang=lang)]
        assert case.id is not None
        for slot in staffdb.slots_for_case(s, case_id=case.id):
            if slot.status == staffdb.SlotStatus.OFFERED:
                slot.status = staffdb.SlotStatus.WITHDRAWN
                s.add(slot)
        crud.add_alert(s, case=case, kind=ALERT_KIND)
        crud.mark_parent_waiting(s, case=case)
        text = _t(lang, "none_ack", turn.channel)
        basis = consent.basis_for(s, case=case)
        line = None
        if basis is not None:
            crud.add_message(s, case=case, direction="in", author="parent", text=_t(lang, "picked_none"), basis=basis)
            line = crud.add_message(
                s, case=case, direction="out", author="bot", text=text, basis=basis, delivery=QUEUED
            )
        return [recorded(Reply(ReplyKind.INFO, text, lang=lang), line.id if line else None)]
