"""Staff use cases on a case: claim, assign, release, note, reply, resend, set status, resolve, reopen,
offer and cancel appointment slots.

Each function checks the permission (the policy in `storage.staff`), changes the case and writes the audit
row inside the caller's one transaction, so the change and its audit row commit or fail together. The
console routes and the Telegram bridge call these and only translate a `Refused` code into their own
words; no rule about staff actions lives anywhere else.

Safe defaults live here too: replying to an unclaimed case claims it; taking a colleague's case, and
resolving a case with a booked appointment still to come, are refused with a code that asks for a
confirmation (`take_over=True`, `confirm_booked=True`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from handlers import appointments, staff
from handlers.hours import OfficeHours
from storage import crud
from storage import staff as staffdb
from storage.models import OPEN_CASE_STATUSES, Case, CaseStatus, utcnow
from storage.staff import Role, StaffAccount

MAX_REPLY = 5000  # LINE's limit for one text
MAX_NOTE = 10000
SETTABLE = (CaseStatus.IN_PROGRESS, CaseStatus.WAITING_PARENT)
OUTCOMES = (CaseStatus.RESOLVED, CaseStatus.REFERRED)
Check = Callable[[StaffAccount, Case], bool]


class Refused(Exception):
    """A staff action that was not done; `code` names why (the caller words it), `detail` adds a value
    (the colleague holding the case, the clashing booking's time)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Claimed:
    before: str | None  # the colleague the case was taken from
    already: bool = False  # the actor held it already (nothing changed, nothing audited)


def load(s: Session, *, actor: StaffAccount, case_id: int, allowed: Check = staffdb.can_view_case) -> Case:
    """The case, when it exists and the actor may do this to it (checked before any input is looked at)."""
    case = crud.get_case(s, case_id=case_id)
    if case is None:
        raise Refused("not_found")
    if not allowed(actor, case):
        raise Refused("forbidden")
    return case


def _open(case: Case) -> None:
    if case.status not in OPEN_CASE_STATUSES:
        raise Refused("closed")


def _chat(case: Case) -> None:
    if case.channel == staffdb.OFFICE_CHANNEL:
        raise Refused("no_channel")


def _text(text: str, limit: int) -> str:
    text = text.strip()
    if not text:
        raise Refused("empty")
    if len(text) > limit:
        raise Refused("too_long", str(len(text)))
    return text


def _take(s: Session, case: Case, actor: StaffAccount, *, via: str, detail: str | None) -> None:
    staffdb.set_assignee(s, case=case, assignee=actor.username)
    if case.status == CaseStatus.NEW:
        crud.set_case_status(s, case=case, status=CaseStatus.IN_PROGRESS)
    staffdb.audit(
        s, actor=actor.username, action="claim", record_type="case", record_id=case.id, detail=detail, via=via
    )


def claim(s: Session, *, actor: StaffAccount, case_id: int, take_over: bool = False, via: str = "web") -> Claimed:
    """Make the actor the assignee; a case a colleague holds is taken only with `take_over` ("taken")."""
    case = load(s, actor=actor, case_id=case_id, allowed=staffdb.can_manage_case)
    _open(case)
    if case.assignee == actor.username:
        return Claimed(before=None, already=True)
    before = case.assignee
    if before is not None and not take_over:
        raise Refused("taken", before)
    _take(s, case, actor, via=via, detail=f"from {before}" if before else None)
    return Claimed(before=before)


def assign(s: Session, *, actor: StaffAccount, case_id: int, assignee: str, via: str = "web") -> str:
    """Give the case to an active colleague who can work cases; returns their username."""
    case = load(s, actor=actor, case_id=case_id, allowed=staffdb.can_manage_case)
    target = staffdb.get_staff_by_username(s, username=assignee) if assignee else None
    if target is None or not target.active or target.role == Role.AUDITOR:
        raise Refused("bad_value")
    staffdb.set_assignee(s, case=case, assignee=target.username)
    staffdb.audit(
        s,
        actor=actor.username,
        action="assign",
        record_type="case",
        record_id=case_id,
        detail=f"to {target.username}",
        via=via,
    )
    return target.username


def release(s: Session, *, actor: StaffAccount, case_id: int, via: str = "web") -> None:
    case = load(s, actor=actor, case_id=case_id, allowed=staffdb.can_manage_case)
    staffdb.set_assignee(s, case=case, assignee=None)
    staffdb.audit(s, actor=actor.username, action="release", record_type="case", record_id=case_id, via=via)


def note(s: Session, *, actor: StaffAccount, case_id: int, text: str, via: str = "web") -> int:
    """An internal note (never leaves: another table, no path to the outbox). Returns its id."""
    load(s, actor=actor, case_id=case_id, allowed=staffdb.can_reply)
    row = staffdb.add_note(s, case_id=case_id, author=actor.username, text=_text(text, MAX_NOTE))
    staffdb.audit(
        s,
        actor=actor.username,
        action="create",
        record_type="note",
        record_id=row.id,
        detail=f"case {case_id}",
        via=via,
    )
    assert row.id is not None
    return row.id


def reply(
    s: Session,
    *,
    actor: StaffAccount,
    case_id: int,
    text: str,
    office_hours: OfficeHours | None = None,
    via: str = "web",
) -> int:
    """Queue a reply to the parent; an unclaimed case becomes the actor's (a case someone holds keeps its
    assignee). Returns the transcript line's id."""
    case = load(s, actor=actor, case_id=case_id, allowed=staffdb.can_reply)
    _open(case)
    _chat(case)
    body = _text(text, MAX_REPLY)
    if case.assignee is None and staffdb.can_manage_case(actor, case):
        _take(s, case, actor, via=via, detail="by reply")
    message_id = staff.queue_reply(s, case=case, text=body, staff=actor.username, office_hours=office_hours)
    staffdb.audit(
        s,
        actor=actor.username,
        action="reply",
        record_type="case",
        record_id=case_id,
        detail=f"message {message_id}",
        via=via,
    )
    return message_id


def resend(s: Session, *, actor: StaffAccount, case_id: int, message_id: int, via: str = "web") -> None:
    """Queue a failed staff reply again ("not_failed" when the line is not one)."""
    case = load(s, actor=actor, case_id=case_id, allowed=staffdb.can_reply)
    _open(case)
    if not staff.queue_resend(s, case=case, message_id=message_id):
        raise Refused("not_failed")
    staffdb.audit(
        s,
        actor=actor.username,
        action="resend",
        record_type="case",
        record_id=case_id,
        detail=f"message {message_id}",
        via=via,
    )


def set_status(s: Session, *, actor: StaffAccount, case_id: int, status: str, via: str = "web") -> None:
    case = load(s, actor=actor, case_id=case_id, allowed=staffdb.can_manage_case)
    if status not in SETTABLE:
        raise Refused("bad_value")
    _open(case)
    crud.set_case_status(s, case=case, status=CaseStatus(status))
    staffdb.audit(
        s, actor=actor.username, action="status", record_type="case", record_id=case_id, detail=status, via=via
    )


def resolve(
    s: Session,
    *,
    actor: StaffAccount,
    case_id: int,
    outcome: str = CaseStatus.RESOLVED,
    confirm_booked: bool = False,
    via: str = "web",
) -> None:
    """End the case and hand the conversation back to the bot (the parent is told). A booked appointment
    still to come needs `confirm_booked` ("booked"); the parent's later message about it reaches staff
    (`handlers.appointments` reopens the case)."""
    case = load(s, actor=actor, case_id=case_id, allowed=staffdb.can_manage_case)
    if outcome not in OUTCOMES:
        raise Refused("bad_value")
    _open(case)
    booked = appointments.upcoming_bookings(s, case_id=case_id)
    if booked and not confirm_booked:
        raise Refused("booked", str(len(booked)))
    if case.channel == staffdb.OFFICE_CHANNEL:  # nobody to hand back to in a chat
        crud.set_case_status(s, case=case, status=CaseStatus(outcome))
    else:
        staff.hand_back(s, case=case, status=CaseStatus(outcome))
    detail = outcome if not booked else f"{outcome}, {len(booked)} booking(s) kept"
    staffdb.audit(
        s, actor=actor.username, action="resolve", record_type="case", record_id=case_id, detail=detail, via=via
    )


def reopen(s: Session, *, actor: StaffAccount, case_id: int, via: str = "web") -> None:
    """A resolved or referred case comes back to the queue ("open" when it is open; "busy" when the parent
    has another open case)."""
    case = load(s, actor=actor, case_id=case_id, allowed=staffdb.can_manage_case)
    if case.status in OPEN_CASE_STATUSES:
        raise Refused("open")
    other = crud.open_case_for(s, contact_id=case.contact_id)
    if other is not None and case.channel != staffdb.OFFICE_CHANNEL:
        raise Refused("busy", str(other.id))
    staff.reopen_case(s, case=case)
    staffdb.audit(s, actor=actor.username, action="reopen", record_type="case", record_id=case_id, via=via)


def offer(
    s: Session,
    *,
    actor: StaffAccount,
    case_id: int,
    starts: list[dt.datetime],
    minutes: int,
    place: str,
    tz: str,
    via: str = "web",
) -> list[int]:
    """Offer appointment slots to the parent ("overlap" with the first clashing booking's start, ISO)."""
    case = load(s, actor=actor, case_id=case_id, allowed=staffdb.can_manage_case)
    if not starts:
        raise Refused("no_slots")
    if any(x <= utcnow() for x in starts):
        raise Refused("past")
    _open(case)
    _chat(case)
    clashes = [c for x in starts for c in staffdb.booked_overlapping(s, start=x, minutes=minutes)]
    if clashes:
        raise Refused("overlap", clashes[0].starts_at.isoformat())
    try:
        ids = appointments.queue_offer(
            s, case=case, starts=starts, minutes=minutes, place=place, staff=actor.username, tz=tz
        )
    except ValueError:
        raise Refused("bad_value") from None
    staffdb.audit(
        s,
        actor=actor.username,
        action="offer",
        record_type="appointment",
        record_id=ids[0] if ids else None,
        detail=f"case {case_id}, {len(ids)} slot(s)",
        via=via,
    )
    return ids


def cancel_slot(s: Session, *, actor: StaffAccount, case_id: int, slot_id: int, via: str = "web") -> None:
    load(s, actor=actor, case_id=case_id, allowed=staffdb.can_manage_case)
    slot = staffdb.get_slot(s, slot_id=slot_id)
    if slot is None or slot.case_id != case_id:
        raise Refused("bad_value")
    staffdb.cancel_slot(s, slot=slot)
    staffdb.audit(s, actor=actor.username, action="cancel", record_type="appointment", record_id=slot_id, via=via)
