"""要望・苦情 in the console: opened by staff, routed to complaint intake, the steps 受付 → 対応 → 結果報告,
and the supervisor's view of them; plus the appointment calendar and staff administration."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from sqlmodel import select

from bot.settings import Settings
from handlers.appointments import offer_appointments
from handlers.types import InboundKind, InboundMessage
from storage import crud
from storage import staff as staffdb
from storage.models import Case, StaffAlert
from tests.e2e.kit import (
    CSRF_RE,
    PASSWORD,
    client,
    parent_opens_case,
    session_for,
    staffed_console,
)

TZ = ZoneInfo("Asia/Tokyo")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    accounts = (("sato", "concierge"), ("kujo", "concierge"), ("boss", "supervisor"), ("yamada", "assistant"))
    async with staffed_console(settings, *accounts, names={"kujo": "苦情受付"}, intake=frozenset({"kujo"})) as a:
        yield a


async def test_staff_open_a_complaint_and_intake_records_its_steps(app: FastAPI) -> None:
    sato = await session_for(app, "sato")
    async with sato:
        r = await sato.post(
            "/complaints", {"received_on": "2026-11-26", "method": "電話", "summary": "予約の電話がつながらない"}
        )
        assert r.headers["location"] == "/cases?msg=complaint_opened"  # routed away from a concierge without intake
        assert (await sato.client.get("/complaints")).status_code == 403
    with app.state.runtime.sessions() as s:
        case = s.exec(select(Case).where(Case.kind == "complaint")).one()
        assert case.channel == "office" and case.status == "new"
        assert case.waiting_since is None  # nobody waits in a chat: no reply clock runs
        assert [a.kind for a in s.exec(select(StaffAlert).where(StaffAlert.case_id == case.id))] == ["new_case"]
    kujo = await session_for(app, "kujo")
    async with kujo:
        rows = (await kujo.client.get("/cases/queue.json")).json()["rows"]
        assert [(x["id"], x["kind_label"], x["channel"]) for x in rows] == [(case.id, "要望・苦情", "窓口・電話")]
        page = await kujo.client.get(f"/cases/{case.id}")
        assert "（電話）予約の電話がつながらない" in page.text and "チャットでの返信はできません" in page.text
        assert "対応を終了する" in page.text and "解決してBotに戻す" not in page.text  # there is no bot to return to
        await kujo.post(
            f"/cases/{case.id}/complaint-steps",
            {"step": "handled", "step_on": "2026-11-27", "summary": "電話回線を増設"},
        )
        with app.state.runtime.sessions() as s:
            assert s.get(Case, case.id).status == "in_progress"  # type: ignore[union-attr]
        await kujo.post(
            f"/cases/{case.id}/complaint-steps",
            {"step": "reported", "step_on": "2026-11-28", "summary": "申出人に電話で報告"},
        )
        r = await kujo.post(f"/cases/{case.id}/resolve", {"outcome": "resolved"})
        assert "msg=resolved" in r.headers["location"]
    with app.state.runtime.sessions() as s:
        steps = staffdb.complaint_steps(s, case_id=case.id or 0)
        assert [x.step for x in steps] == ["received", "handled", "reported"]
        assert s.get(Case, case.id).status == "resolved"  # type: ignore[union-attr]
    boss = await session_for(app, "boss")
    async with boss:
        listing = await boss.client.get("/complaints")
        assert listing.text.count("✓") >= 3 and "結果報告 2026-11-28" in listing.text


async def test_calendar_shows_booked_slots_and_hides_others_details(app: FastAPI) -> None:
    rt = app.state.runtime
    case_id = parent_opens_case(rt.engine, "p-cal")
    monday = dt.date.today() + dt.timedelta(days=7 - dt.date.today().weekday())
    start = dt.datetime.combine(monday + dt.timedelta(days=2), dt.time(10, 30), tzinfo=TZ)
    ids = offer_appointments(
        rt.sessions,
        case_id=case_id,
        starts=[start, start + dt.timedelta(hours=2)],
        minutes=45,
        place="相談室A",
        staff="sato",
    )
    rt.engine.handle(InboundMessage("console", "p-cal", postback=f"slot:{ids[0]}", kind=InboundKind.POSTBACK))
    sato = await session_for(app, "sato")
    async with sato:
        page = await sato.client.get("/appointments", params={"week": monday.isoformat()})
        assert page.status_code == 200
        assert "10:30–11:15" in page.text and f'href="/cases/{case_id}"' in page.text and "相談室A" in page.text
        assert "予約確定" in page.text and "12:30" not in page.text  # the other slot was withdrawn
        prev = await sato.client.get("/appointments", params={"week": (monday - dt.timedelta(days=7)).isoformat()})
        assert "10:30–11:15" not in prev.text
    yamada = await session_for(app, "yamada")
    async with yamada:
        page = await yamada.client.get("/appointments", params={"week": monday.isoformat()})
        assert "予約あり" in page.text and f'href="/cases/{case_id}"' not in page.text and "相談室A" not in page.text


async def test_supervisor_manages_staff(app: FastAPI) -> None:
    boss = await session_for(app, "boss")
    async with boss:
        r = await boss.post(
            "/staff",
            {
                "username": "suzuki",
                "display_name": "鈴木",
                "role": "assistant",
                "password": "long-enough-pw",
                "password2": "long-enough-pw",
            },
        )
        assert r.headers["location"] == "/staff?msg=staff_created"
        assert (
            "bad_username"
            in (
                await boss.post(
                    "/staff",
                    {"username": "Too_Long_Name", "role": "assistant", "password": "x" * 12, "password2": "x" * 12},
                )
            ).headers["location"]
        )
        assert (
            "weak_password"
            in (
                await boss.post(
                    "/staff", {"username": "abc", "role": "assistant", "password": "short", "password2": "short"}
                )
            ).headers["location"]
        )
        with app.state.runtime.sessions() as s:
            suzuki = staffdb.get_staff_by_username(s, username="suzuki")
            assert suzuki is not None and suzuki.role == "assistant"
        await boss.post(
            f"/staff/{suzuki.id}", {"role": "concierge", "display_name": "鈴木", "complaint_intake": "1", "active": "1"}
        )
        await boss.post(f"/staff/{suzuki.id}/telegram", {"telegram_user_id": "555000111"})
        assert (
            "telegram_taken"
            in (await boss.post(f"/staff/{suzuki.id - 1}/telegram", {"telegram_user_id": "555000111"})).headers[
                "location"
            ]
        )
        page = await boss.client.get("/staff")
        assert "鈴木" in page.text and "555000111" in page.text
    with app.state.runtime.sessions() as s:
        suzuki = staffdb.get_staff_by_username(s, username="suzuki")
        assert (
            suzuki is not None
            and suzuki.role == "concierge"
            and suzuki.complaint_intake
            and suzuki.telegram_user_id == 555000111
        )
    async with client(app) as c:  # the new account logs in with the password the supervisor set
        token = CSRF_RE.search((await c.get("/login")).text)
        assert token is not None
        r = await c.post(
            "/login", data={"username": "suzuki", "password": "long-enough-pw", "csrf_token": token.group(1)}
        )
        assert r.status_code == 303
    assert PASSWORD  # the fixture accounts keep theirs


async def test_parent_complaint_arrives_as_a_handoff_and_staff_reclassify(app: FastAPI) -> None:
    rt = app.state.runtime
    case_id = parent_opens_case(rt.engine, "p-angry", "先日の窓口の対応に納得できません")
    with rt.sessions() as s:
        case = crud.get_case(s, case_id=case_id)
        assert case is not None and case.kind == "consultation"
    sato = await session_for(app, "sato")
    async with sato:
        await sato.post(f"/cases/{case_id}/kind", {"kind": "complaint"})
    kujo = await session_for(app, "kujo")
    async with kujo:
        page = await kujo.client.get(f"/cases/{case_id}")
        assert "要望・苦情の対応経過" in page.text and f'action="/cases/{case_id}/reply"' in page.text
