"""Case work in the console on both databases: the queue (order, waiting against the target, JSON for
polling), the case page (transcript with each line's basis), replies through reply_to_parent, internal
notes that never leave, claim/assign/release, status, hand back to the bot, the guideline's records."""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlmodel import select

from bot.console.waiting import office_minutes, sla_state
from bot.settings import Settings
from handlers.hours import OfficeHours
from handlers.types import InboundMessage, replies_from_json
from storage import crud
from storage import staff as staffdb
from storage.db import transaction
from storage.models import Case, ConversationState, Message, OutboundMessage, utcnow
from storage.staff import AuditEntry, InternalNote
from tests.e2e.kit import parent_opens_case, session_for, staffed_console

ROOT = Path(__file__).resolve().parents[2]
JST = dt.timezone(dt.timedelta(hours=9))


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    accounts = (("sato", "concierge"), ("yamada", "assistant"), ("boss", "supervisor"))
    names = {"sato": "佐藤", "yamada": "山田"}
    async with staffed_console(settings, *accounts, names=names, reply_target_minutes=60) as a:
        yield a


def outbound(app: FastAPI) -> list[OutboundMessage]:
    with app.state.runtime.sessions() as s:
        return list(s.exec(select(OutboundMessage).order_by(OutboundMessage.id)))  # type: ignore[arg-type]


def audit(app: FastAPI) -> list[tuple[str, str, str, str | None]]:
    with app.state.runtime.sessions() as s:
        rows = list(s.exec(select(AuditEntry).order_by(AuditEntry.id)))  # type: ignore[arg-type]
    return [(r.actor, r.action, r.record_type, r.record_id) for r in rows]


def test_office_minutes_count_only_open_time() -> None:
    hours = OfficeHours(days=(0, 1, 2, 3, 4), opens=dt.time(10), closes=dt.time(17))
    fri_evening = dt.datetime(2026, 11, 27, 16, 30, tzinfo=JST)  # a Friday
    mon_morning = dt.datetime(2026, 11, 30, 10, 45, tzinfo=JST)
    assert office_minutes(hours, fri_evening, mon_morning) == 30 + 45
    assert office_minutes(hours, mon_morning, fri_evening) == 0
    night = dt.datetime(2026, 11, 26, 20, 0, tzinfo=JST)
    assert office_minutes(hours, night, night + dt.timedelta(hours=10)) == 0
    assert [sla_state(m, 60) for m in (None, 10, 45, 60)] == ["none", "ok", "soon", "over"]


async def test_queue_orders_urgent_first_then_longest_waiting(app: FastAPI) -> None:
    rt = app.state.runtime
    first = parent_opens_case(rt.engine, "p-first")
    second = parent_opens_case(rt.engine, "p-second")
    rt.engine.handle(InboundMessage("console", "p-crisis", text="子どもを叩いてしまいそうで怖い"))
    with transaction(rt.sessions) as s:
        urgent = [c for c in crud.queue(s) if c.priority == "urgent"]
        assert len(urgent) == 1
        urgent_id = urgent[0].id
        old = s.get(Case, second)
        assert old is not None
        old.waiting_since = utcnow() - dt.timedelta(hours=3)
        s.add(old)
    me = await session_for(app, "sato")
    async with me:
        rows = (await me.client.get("/cases/queue.json")).json()["rows"]
        assert [r["id"] for r in rows] == [urgent_id, second, first]
        top = rows[0]
        assert (
            top["urgent"] and top["priority"] == "緊急" and top["channel"] == "コンソール" and top["lang"] == "日本語"
        )
        assert rows[1]["waited"].startswith("3時間") and rows[1]["target"] == "1時間"
        assert rows[1]["assignee_label"] == "未担当" and rows[1]["can_claim"]
        # the parent's latest message, clipped, only under consent (the crisis parent gave none)
        assert rows[1]["preview"] == "夜泣きがひどくて眠れません" and rows[1]["new_message"]
        assert top["preview"] is None and top["preview_hidden"] and "叩いて" not in str(top)
        page = await me.client.get("/cases")
        assert "🚨" in page.text and f"#{urgent_id}" in page.text


async def test_case_page_shows_transcript_with_basis_and_is_audited(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "p-page", "保育園の申し込みについて相談したいです")
    me = await session_for(app, "sato")
    async with me:
        page = await me.client.get(f"/cases/{case_id}")
        assert page.status_code == 200
        assert "保育園の申し込みについて相談したいです" in page.text
        assert "根拠：同意" in page.text and "保護者の同意</dt><dd>同意あり" in page.text
        assert page.headers["cache-control"] == "no-store"
    assert ("sato", "view", "case", str(case_id)) in audit(app)


async def test_reply_goes_through_the_outbox_and_is_audited(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "p-reply")
    me = await session_for(app, "sato")
    async with me:
        r = await me.post(f"/cases/{case_id}/reply", {"text": "保育士の佐藤です。お話を聞かせてください。"})
        assert r.status_code == 303 and "msg=sent" in r.headers["location"]
        page = await me.client.get(r.headers["location"])
        assert "返信を送信キューに入れました" in page.text and "送信待ち" in page.text
        deliveries = (await me.client.get(f"/cases/{case_id}/deliveries.json")).json()["messages"]
        assert deliveries[-1]["delivery"] == "pending" and "text" not in deliveries[-1]
        assert (
            (await me.post(f"/cases/{case_id}/reply", {"text": "   "}))
            .headers["location"]
            .endswith("error=empty#reply")
        )
    rows = outbound(app)
    reply = replies_from_json(rows[-1].payload)[0]
    assert rows[-1].channel == "console" and rows[-1].recipient == "p-reply" and rows[-1].case_id == case_id
    assert reply.text == "保育士の佐藤です。お話を聞かせてください。" and reply.meta["from"] == "staff"
    with app.state.runtime.sessions() as s:
        message = s.get(Message, rows[-1].message_id)
        case = s.get(Case, case_id)
    assert message is not None and message.author == "staff:sato" and message.delivery == "pending"
    assert case is not None and case.status == "in_progress" and case.waiting_since is None
    entry = [a for a in audit(app) if a[1] == "reply"]
    assert entry == [("sato", "reply", "case", str(case_id))]


async def test_internal_notes_never_reach_the_outbox(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "p-note")
    before = len(outbound(app))
    me = await session_for(app, "sato")
    async with me:
        r = await me.post(f"/cases/{case_id}/notes", {"text": "母親は疲れている様子。次回は保健師と同席を検討。"})
        assert r.status_code == 303
        page = await me.client.get(f"/cases/{case_id}")
        assert "母親は疲れている様子" in page.text and "保護者には送信されません" in page.text
    assert len(outbound(app)) == before
    with app.state.runtime.sessions() as s:
        assert [n.text for n in s.exec(select(InternalNote))] == ["母親は疲れている様子。次回は保健師と同席を検討。"]
        assert all("母親は疲れている" not in m.text for m in crud.transcript(s, case_id=case_id))
    assert all("母親は疲れている" not in o.payload for o in outbound(app))


def test_no_code_path_from_notes_to_the_outbox() -> None:
    """Modules that queue outbound messages never touch notes, and the notes module never queues."""
    senders, note_users = set(), set()
    for path in [*ROOT.glob("handlers/*.py"), *ROOT.glob("storage/*.py"), *ROOT.glob("bot/**/*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        functions = {
            f.name: {x.attr for x in ast.walk(f) if isinstance(x, ast.Attribute)}
            | {x.id for x in ast.walk(f) if isinstance(x, ast.Name)}
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        for name, used in functions.items():
            if "enqueue_outbound" in used or "OutboundMessage" in used:
                senders.add(f"{path.name}:{name}")
                assert not used & {"InternalNote", "add_note", "notes_for"}, f"{path}:{name} mixes notes and the outbox"
            if used & {"InternalNote", "add_note", "notes_for"}:
                note_users.add(f"{path.name}:{name}")
        if path.name == "staff.py" and path.parent.name == "storage":
            assert "enqueue_outbound" not in names and "OutboundMessage" not in names
    assert "staff.py:reply_to_parent" in senders and note_users


async def test_claim_assign_release_and_status(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "p-claim")
    me = await session_for(app, "sato")
    async with me:
        r = await me.post(f"/cases/{case_id}/claim", {"next": "/cases"})
        assert r.headers["location"] == "/cases?msg=claimed"
        rows = (await me.client.get("/cases/queue.json?view=mine")).json()["rows"]
        assert [(x["id"], x["assignee"], x["status"]) for x in rows] == [(case_id, "sato", "in_progress")]
        await me.post(f"/cases/{case_id}/assign", {"assignee": "yamada"})
        rows = (await me.client.get("/cases/queue.json")).json()["rows"]
        assert rows[0]["assignee_label"] == "山田"
        assert (
            "error=bad_value" in (await me.post(f"/cases/{case_id}/assign", {"assignee": "ghost"})).headers["location"]
        )
        await me.post(f"/cases/{case_id}/status", {"status": "waiting_parent"})
        await me.post(f"/cases/{case_id}/release")
        rows = (await me.client.get("/cases/queue.json?view=unassigned")).json()["rows"]
        assert [(x["id"], x["status"], x["sla"]) for x in rows] == [(case_id, "waiting_parent", "none")]
        assert (
            "error=bad_value" in (await me.post(f"/cases/{case_id}/status", {"status": "resolved"})).headers["location"]
        )
    actions = [a[1] for a in audit(app) if a[2] == "case" and a[1] != "view"]
    assert actions == ["claim", "assign", "status", "release"]


async def test_resolve_hands_back_to_the_bot_and_tells_the_parent(app: FastAPI) -> None:
    rt = app.state.runtime
    case_id = parent_opens_case(rt.engine, "p-resolve")
    me = await session_for(app, "sato")
    async with me:
        r = await me.post(f"/cases/{case_id}/resolve", {"outcome": "referred"})
        assert "msg=resolved" in r.headers["location"]
        page = await me.client.get(f"/cases/{case_id}")
        assert "関係機関へつなぎ済み" in page.text and f'action="/cases/{case_id}/reply"' not in page.text
        assert "error=closed" in (await me.post(f"/cases/{case_id}/reply", {"text": "まだ？"})).headers["location"]
    with rt.sessions() as s:
        case = s.get(Case, case_id)
        assert case is not None and case.status == "referred" and case.resolved_at is not None
        contact = crud.get_or_create_contact(s, channel="console", external_id="p-resolve")
        state = s.get(ConversationState, contact.id)
        assert state is not None and state.state == "faq"
    assert "相談員とのやりとりが終了しました" in replies_from_json(outbound(app)[-1].payload)[0].text
    replies = rt.engine.handle(InboundMessage("console", "p-resolve", text="一時預かりの料金は？"))
    assert replies and replies[0].kind.value in ("answer", "clarify")  # the bot answers again


async def test_records_forms_store_and_show_and_are_audited(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "p-records")
    me = await session_for(app, "sato")
    async with me:
        consultation = {
            "consulted_on": "2026-11-26",
            "situation": "第1子（8か月）、父は単身赴任",
            "request": "夜泣きと一時預かり",
            "wishes": "週1回預けたい",
            "direction": "一時預かり事業の案内、保健師につなぐ",
        }
        assert (
            "msg=saved" in (await me.post(f"/cases/{case_id}/records/consultation", consultation)).headers["location"]
        )
        consultation["wishes"] = "週2回預けたい"
        await me.post(f"/cases/{case_id}/records/consultation", consultation)
        await me.post(
            f"/cases/{case_id}/records/support",
            {"entry_on": "2026-11-27", "progress": "施設見学に同行", "impression": "表情が明るい"},
        )
        await me.post(f"/cases/{case_id}/records/support", {"entry_on": "2026-12-03", "progress": "利用開始を確認"})
        await me.post(
            f"/cases/{case_id}/records/conference",
            {
                "held_on": "2026-12-01",
                "participants": "コンシェルジュ、保健師",
                "family_intent": "就労したい",
                "goals": "保育所入所",
            },
        )
        await me.post(
            f"/cases/{case_id}/referrals",
            {"agency": "子ども家庭支援センター", "referred_on": "2026-12-02", "agreed": "家庭訪問を調整"},
        )
        assert (
            "error=bad_date"
            in (await me.post(f"/cases/{case_id}/records/support", {"entry_on": "昨日", "progress": "x"})).headers[
                "location"
            ]
        )
        page = (await me.client.get(f"/cases/{case_id}")).text
        for text in (
            "週2回預けたい",
            "施設見学に同行",
            "表情が明るい",
            "利用開始を確認",
            "コンシェルジュ、保健師",
            "子ども家庭支援センター",
            "家庭訪問を調整",
        ):
            assert text in page
        export = await me.client.get(f"/cases/{case_id}/export")
        assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
        assert (
            "相談記録票" in export.text
            and "週2回預けたい" in export.text
            and "夜泣きがひどくて眠れません" in export.text
        )
    with app.state.runtime.sessions() as s:
        assert len(staffdb.support_entries(s, case_id=case_id)) == 2
        record = staffdb.consultation_record(s, case_id=case_id)
        assert record is not None and record.wishes == "週2回預けたい"
    kinds = [(a[1], a[2]) for a in audit(app) if a[1] in ("create", "edit", "export")]
    assert kinds == [
        ("create", "consultation_record"),
        ("edit", "consultation_record"),
        ("create", "support_entry"),
        ("create", "support_entry"),
        ("create", "conference"),
        ("create", "referral"),
        ("export", "case"),
    ]
    assert all("週2回" not in str(a) and "家庭訪問" not in str(a) for a in audit(app))


async def test_reclassify_as_complaint_routes_it_away(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "p-complaint", "窓口の対応がひどかった")
    me = await session_for(app, "sato")
    async with me:
        await me.post(f"/cases/{case_id}/claim")
        r = await me.post(f"/cases/{case_id}/kind", {"kind": "complaint"})
        assert r.headers["location"] == "/cases?msg=reclassified"
        assert (await me.client.get(f"/cases/{case_id}")).status_code == 403
    with app.state.runtime.sessions() as s:
        case = s.get(Case, case_id)
        assert case is not None and case.kind == "complaint" and case.assignee is None
    boss = await session_for(app, "boss")
    async with boss:
        listing = await boss.client.get("/complaints")
        assert f"#{case_id}" in listing.text
