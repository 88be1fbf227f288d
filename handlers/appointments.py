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

from handlers import consent
from handlers.engine import Turn
from handlers.hours import format_when
from handlers.staff import CaseNotFoundError
from handlers.texts import t
from handlers.types import QUEUED, Choice, InboundKind, Reply, ReplyKind, recorded, replies_to_json
from storage import crud, queue
from storage import staff as staffdb
from storage.db import SessionFactory, transaction
from storage.models import OPEN_CASE_STATUSES, CaseStatus, utcnow

POSTBACK = "slot"
MAX_SLOTS = 12  # LINE shows at most 13 quick replies: the slots and "none of these"
ALERT_KIND = "appointment"


def _t(lang: str, key: str, channel: str | None = None, **values: object) -> str:
    """Appointment wording, from the text files (handlers/texts: `appointment_*`, mail variants in `email:`)."""
    return t(lang, f"appointment_{key}", channel, **values)


def slot_label(starts_at: dt.datetime, lang: str, tz: str = "Asia/Tokyo") -> str:
    """`11月28日(金) 10:00`: short enough for a LINE quick-reply label (20 characters)."""
    return format_when(starts_at.astimezone(ZoneInfo(tz)), lang)


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
    """Offer slots on an open case: they are stored and queued to the parent as buttons. Returns slot ids."""
    now = now or utcnow()
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
    with transaction(sessions) as s:
        case = crud.get_case(s, case_id=case_id)
        if case is None:
            raise CaseNotFoundError(case_id)
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


class AppointmentExtension:
    """Owns the `slot:<id>` / `slot:none` postbacks."""

    def __init__(self, *, timezone: str = "Asia/Tokyo") -> None:
        self.tz = timezone

    def handle(self, turn: Turn) -> list[Reply] | None:
        msg = turn.message
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
