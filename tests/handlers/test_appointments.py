"""原則予約制: slots offered on a case reach the parent as buttons through the outbox; the parent's pick
(postback slot:<id>) is booked by the AppointmentExtension and confirmed to both sides."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from bot.runtime import Runtime
from handlers.appointments import AppointmentExtension, offer_appointments, slot_label
from handlers.staff import CaseNotFoundError
from handlers.types import InboundKind, InboundMessage, Reply, replies_from_json
from storage import crud
from storage import staff as staffdb
from storage.db import transaction
from storage.models import Case, ConsentStatus, OutboundMessage, StaffAlert, utcnow
from tests.e2e.kit import parent_opens_case

JST = dt.timezone(dt.timedelta(hours=9))


def soon(days: int, hour: int) -> dt.datetime:
    base = (utcnow() + dt.timedelta(days=days)).astimezone(JST)
    return base.replace(hour=hour, minute=0, second=0, microsecond=0)


def press(runtime: Runtime, sender: str, data: str) -> list[Reply]:
    return runtime.engine.handle(InboundMessage("console", sender, postback=data, kind=InboundKind.POSTBACK))


def test_extension_is_registered_by_bootstrap(runtime: Runtime) -> None:
    assert any(isinstance(e, AppointmentExtension) for e in runtime.engine.extensions)


def test_offer_queues_buttons_and_a_transcript_line(runtime: Runtime) -> None:
    case_id = parent_opens_case(runtime.engine, "p-offer")
    starts = [soon(3, 10), soon(4, 14)]
    ids = offer_appointments(runtime.sessions, case_id=case_id, starts=starts, minutes=30, place="相談室", staff="sato")
    assert len(ids) == 2
    with runtime.sessions() as s:
        row = s.exec(select(OutboundMessage).where(OutboundMessage.case_id == case_id)).all()[-1]
        transcript = crud.transcript(s, case_id=case_id)
        case = s.get(Case, case_id)
    reply = replies_from_json(row.payload)[0]
    assert row.channel == "console" and row.recipient == "p-offer" and row.message_id == transcript[-1].id
    assert [c.data for c in reply.choices] == [f"slot:{ids[0]}", f"slot:{ids[1]}", "slot:none"]
    assert reply.choices[0].label == slot_label(starts[0], "ja") and len(reply.choices[0].label) <= 20
    assert "相談室" in reply.text and transcript[-1].author == "staff:sato" and transcript[-1].delivery == "pending"
    assert case is not None and case.waiting_since is None


def test_parent_picks_a_slot_and_both_are_told(runtime: Runtime) -> None:
    case_id = parent_opens_case(runtime.engine, "p-pick")
    ids = offer_appointments(
        runtime.sessions,
        case_id=case_id,
        starts=[soon(3, 10), soon(3, 13)],
        minutes=45,
        place="キッズプラザ",
        staff="sato",
    )
    replies = press(runtime, "p-pick", f"slot:{ids[1]}")
    assert len(replies) == 1 and "ご予約を承りました" in replies[0].text and "キッズプラザ" in replies[0].text
    assert slot_label(soon(3, 13), "ja") in replies[0].text and "45分" in replies[0].text
    with runtime.sessions() as s:
        slots = staffdb.slots_for_case(s, case_id=case_id)
        alerts = [a.kind for a in s.exec(select(StaffAlert).where(StaffAlert.case_id == case_id))]
        lines = [m.text for m in crud.transcript(s, case_id=case_id)]
    assert [x.status for x in slots] == ["withdrawn", "booked"]
    assert alerts[-1] == "appointment"
    assert any("を選択" in line for line in lines) and any("ご予約を承りました" in line for line in lines)
    again = press(runtime, "p-pick", f"slot:{ids[1]}")  # a double tap
    assert "承り済み" in again[0].text
    gone = press(runtime, "p-pick", f"slot:{ids[0]}")
    assert "選べなくなりました" in gone[0].text


def test_someone_elses_or_past_or_cancelled_slot_is_refused(runtime: Runtime) -> None:
    mine = parent_opens_case(runtime.engine, "p-a")
    parent_opens_case(runtime.engine, "p-b")
    ids = offer_appointments(
        runtime.sessions, case_id=mine, starts=[soon(2, 10), soon(2, 11)], minutes=30, place="", staff="sato"
    )
    assert "選べなくなりました" in press(runtime, "p-b", f"slot:{ids[0]}")[0].text
    with transaction(runtime.sessions) as s:
        slot = staffdb.get_slot(s, slot_id=ids[0])
        assert slot is not None
        slot.starts_at = utcnow() - dt.timedelta(hours=1)
        s.add(slot)
        other = staffdb.get_slot(s, slot_id=ids[1])
        assert other is not None
        staffdb.cancel_slot(s, slot=other)
    assert "選べなくなりました" in press(runtime, "p-a", f"slot:{ids[0]}")[0].text
    assert "選べなくなりました" in press(runtime, "p-a", f"slot:{ids[1]}")[0].text
    assert "選べなくなりました" in press(runtime, "p-a", "slot:abc")[0].text
    with runtime.sessions() as s:
        assert all(x.status != "booked" for x in staffdb.slots_for_case(s, case_id=mine))


def test_none_of_these_withdraws_the_offer_and_alerts_staff(runtime: Runtime) -> None:
    case_id = parent_opens_case(runtime.engine, "p-none")
    offer_appointments(runtime.sessions, case_id=case_id, starts=[soon(5, 10)], minutes=30, place="", staff="sato")
    replies = press(runtime, "p-none", "slot:none")
    assert "別の日時をご案内します" in replies[0].text
    with runtime.sessions() as s:
        assert [x.status for x in staffdb.slots_for_case(s, case_id=case_id)] == ["withdrawn"]
        case = s.get(Case, case_id)
        assert case is not None and case.waiting_since is not None  # the parent waits for us again
        assert crud.pending_alerts(s)[-1].kind == "appointment"


def test_a_new_offer_replaces_the_open_one(runtime: Runtime) -> None:
    case_id = parent_opens_case(runtime.engine, "p-again")
    first = offer_appointments(
        runtime.sessions, case_id=case_id, starts=[soon(2, 10)], minutes=30, place="", staff="sato"
    )
    offer_appointments(runtime.sessions, case_id=case_id, starts=[soon(6, 10)], minutes=30, place="", staff="sato")
    assert "選べなくなりました" in press(runtime, "p-again", f"slot:{first[0]}")[0].text


def test_without_a_basis_no_transcript_line_is_written(runtime: Runtime) -> None:
    case_id = parent_opens_case(runtime.engine, "p-withdrawn")
    ids = offer_appointments(
        runtime.sessions, case_id=case_id, starts=[soon(3, 10)], minutes=30, place="", staff="sato"
    )
    with transaction(runtime.sessions) as s:
        contact = crud.get_or_create_contact(s, channel="console", external_id="p-withdrawn")
        crud.record_consent(s, contact=contact, status=ConsentStatus.WITHDRAWN, notice_version="2026-11")
        before = len(crud.transcript(s, case_id=case_id))
    replies = press(runtime, "p-withdrawn", f"slot:{ids[0]}")
    assert "ご予約を承りました" in replies[0].text
    with runtime.sessions() as s:
        assert len(crud.transcript(s, case_id=case_id)) == before
        assert staffdb.slots_for_case(s, case_id=case_id)[0].status == "booked"


def test_offer_checks(runtime: Runtime) -> None:
    case_id = parent_opens_case(runtime.engine, "p-checks")
    with pytest.raises(ValueError, match="future"):
        offer_appointments(
            runtime.sessions,
            case_id=case_id,
            starts=[utcnow() - dt.timedelta(hours=1)],
            minutes=30,
            place="",
            staff="s",
        )
    with pytest.raises(ValueError, match="at most"):
        offer_appointments(
            runtime.sessions, case_id=case_id, starts=[soon(2, 10)] * 13, minutes=30, place="", staff="s"
        )
    with pytest.raises(CaseNotFoundError):
        offer_appointments(runtime.sessions, case_id=99999, starts=[soon(2, 10)], minutes=30, place="", staff="s")


def test_other_postbacks_and_text_are_not_the_extensions(runtime: Runtime) -> None:
    replies = runtime.engine.handle(InboundMessage("console", "p-text", text="slot:1"))
    assert replies and "予約" not in replies[0].text
