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
from sqlalchemy import text as text_sql
from sqlmodel import select

from bot.console.waiting import office_minutes, sla_state
from bot.settings import Settings
from handlers import appointments
from handlers.hours import OfficeHours
from handlers.types import InboundKind, InboundMessage, replies_from_json
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
        assert top["urgent"] and top["priority"] == "緊急" and top["lang"] == "日本語"
        assert top["channel"] == "ターミナル（試用チャット）"
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
        assert "返信を送りました" in page.text and "送信待ち" in page.text
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
    assert "staff.py:queue_reply" in senders and note_users


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


# ----- the staff use cases: one transaction, safe defaults


def fail_audit_writes(app: FastAPI) -> None:
    """A real database refusal of every audit insert (a trigger), to see what else commits with it."""
    rt = app.state.runtime
    with rt.sessions() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(
                text_sql(
                    "CREATE OR REPLACE FUNCTION refuse_audit() RETURNS trigger AS $$ "
                    "BEGIN RAISE EXCEPTION 'audit refused'; END; $$ LANGUAGE plpgsql"
                )
            )
            s.execute(text_sql("DROP TRIGGER IF EXISTS refuse_audit ON auditlog"))
            s.execute(text_sql("CREATE TRIGGER refuse_audit BEFORE INSERT ON auditlog EXECUTE FUNCTION refuse_audit()"))
        else:
            s.execute(
                text_sql(
                    "CREATE TRIGGER refuse_audit BEFORE INSERT ON auditlog "
                    "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
                )
            )
        s.commit()


def allow_audit_writes(app: FastAPI) -> None:
    with app.state.runtime.sessions() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text_sql("DROP TRIGGER IF EXISTS refuse_audit ON auditlog"))
        else:
            s.execute(text_sql("DROP TRIGGER IF EXISTS refuse_audit"))
        s.commit()


async def test_a_reply_and_its_audit_row_commit_or_fail_together(app: FastAPI) -> None:
    rt = app.state.runtime
    case_id = parent_opens_case(rt.engine, "p-atomic")
    with rt.sessions() as s:
        lines_before = len(crud.transcript(s, case_id=case_id))
    me = await session_for(app, "sato")
    fail_audit_writes(app)
    try:
        async with me:
            with pytest.raises(Exception, match="audit refused"):
                await me.post(f"/cases/{case_id}/reply", {"text": "記録されない返信"})
            with pytest.raises(Exception, match="audit refused"):
                await me.post(f"/cases/{case_id}/resolve", {"outcome": "resolved"})
    finally:
        allow_audit_writes(app)
    with rt.sessions() as s:
        case = s.get(Case, case_id)
        assert case is not None and case.status == "new" and case.assignee is None
        assert len(crud.transcript(s, case_id=case_id)) == lines_before
    assert all("記録されない返信" not in o.payload for o in outbound(app)) and len(outbound(app)) == 0


async def test_replying_claims_an_unclaimed_case(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "p-reply-claims")
    me = await session_for(app, "sato")
    async with me:
        assert "msg=sent" in (await me.post(f"/cases/{case_id}/reply", {"text": "担当の佐藤です"})).headers["location"]
    boss = await session_for(app, "boss")
    async with boss:
        await boss.post(f"/cases/{case_id}/reply", {"text": "補足です"})  # someone holds it: it stays theirs
    with app.state.runtime.sessions() as s:
        case = s.get(Case, case_id)
        assert case is not None and case.assignee == "sato" and case.status == "in_progress"
    actions = [a[1] for a in audit(app) if a[2] == "case" and a[1] != "view"]
    assert actions == ["claim", "reply", "reply"]


async def test_taking_over_a_colleagues_case_asks_first(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "p-take")
    sato = await session_for(app, "sato")
    async with sato:
        await sato.post(f"/cases/{case_id}/claim")
    boss = await session_for(app, "boss")
    async with boss:
        r = await boss.post(f"/cases/{case_id}/claim", {"next": "/cases"})
        assert r.headers["location"] == f"/cases/{case_id}?confirm=taken#actions"
        page = await boss.client.get(r.headers["location"])
        assert "佐藤 さんが担当しています。引き継ぎますか？" in page.text and "引き継いで担当する" in page.text
        with app.state.runtime.sessions() as s:
            assert s.get(Case, case_id).assignee == "sato"  # type: ignore[union-attr]
        r = await boss.post(f"/cases/{case_id}/claim", {"take_over": "1"})
        assert "msg=claimed" in r.headers["location"]
    with app.state.runtime.sessions() as s:
        assert s.get(Case, case_id).assignee == "boss"  # type: ignore[union-attr]
        row = s.exec(select(AuditEntry).where(AuditEntry.action == "claim", AuditEntry.actor == "boss")).one()
    assert row.detail == "from sato"


async def test_the_case_page_preselects_nobody_and_claim_is_the_primary_action(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "p-defaults")
    me = await session_for(app, "sato")
    async with me:
        page = (await me.client.get(f"/cases/{case_id}")).text
    select_html = page[page.index('name="assignee"') : page.index("</select>", page.index('name="assignee"'))]
    assert '<option value="" selected disabled>担当者を選ぶ</option>' in select_html
    assert select_html.count("selected") == 1
    assert '<button type="submit" class="primary">担当する</button>' in page
    assert '<button type="submit">解決してBotに戻す</button>' in page


def book_a_slot(app: FastAPI, case_id: int, parent: str) -> None:
    rt = app.state.runtime
    starts = [utcnow() + dt.timedelta(days=3)]
    ids = appointments.offer_appointments(
        rt.sessions, case_id=case_id, starts=starts, minutes=30, place="", staff="sato"
    )
    rt.engine.handle(InboundMessage("console", parent, kind=InboundKind.POSTBACK, postback=f"slot:{ids[0]}"))


async def test_resolving_with_a_booking_warns_and_a_later_booking_message_reaches_staff(app: FastAPI) -> None:
    rt = app.state.runtime
    case_id = parent_opens_case(rt.engine, "p-booked")
    book_a_slot(app, case_id, "p-booked")
    me = await session_for(app, "sato")
    async with me:
        r = await me.post(f"/cases/{case_id}/resolve", {"outcome": "resolved"})
        assert r.headers["location"] == f"/cases/{case_id}?confirm=booked&outcome=resolved#actions"
        page = (await me.client.get(r.headers["location"])).text
        assert "確定した予約があります" in page and "予約を残して終了する" in page
        with rt.sessions() as s:
            assert s.get(Case, case_id).status == "in_progress"  # type: ignore[union-attr]
        r = await me.post(f"/cases/{case_id}/resolve", {"outcome": "resolved", "confirm_booked": "1"})
        assert "msg=resolved" in r.headers["location"]
    with transaction(rt.sessions) as s:
        assert s.get(Case, case_id).status == "resolved"  # type: ignore[union-attr]
        for alert in crud.pending_alerts(s):
            alert.delivered_at = utcnow()
            s.add(alert)
    replies = rt.engine.handle(InboundMessage("console", "p-booked", text="予約の日を変更したいです"))
    assert [r.text for r in replies] == ["ご予約についてのメッセージを相談員に伝えました。相談員からご連絡します。"]
    with rt.sessions() as s:
        case = s.get(Case, case_id)
        assert case is not None and case.status == "in_progress" and case.waiting_since is not None
        assert crud.transcript(s, case_id=case_id)[-1].text == "予約の日を変更したいです"
        assert [a.kind for a in crud.pending_alerts(s)] == ["parent_message"]
        contact = crud.get_or_create_contact(s, channel="console", external_id="p-booked")
        assert crud.get_state(s, contact_id=contact.id or 0).state == "handoff"
    assert any(row["id"] == case_id for row in await queue_of(app, "sato"))
    # the next message goes to the person too (the case holds the conversation again)
    assert rt.engine.handle(InboundMessage("console", "p-booked", text="午後なら大丈夫です")) == []


async def queue_of(app: FastAPI, who: str) -> list[dict[str, object]]:
    login = await session_for(app, who)
    async with login:
        rows: list[dict[str, object]] = (await login.client.get("/cases/queue.json")).json()["rows"]
        return rows


async def test_a_resolved_case_can_be_reopened(app: FastAPI) -> None:
    rt = app.state.runtime
    case_id = parent_opens_case(rt.engine, "p-reopen")
    me = await session_for(app, "sato")
    async with me:
        await me.post(f"/cases/{case_id}/resolve", {"outcome": "resolved"})
        page = (await me.client.get(f"/cases/{case_id}")).text
        assert f'action="/cases/{case_id}/reopen"' in page
        assert "msg=reopened" in (await me.post(f"/cases/{case_id}/reopen")).headers["location"]
        assert "error=open" in (await me.post(f"/cases/{case_id}/reopen")).headers["location"]
    with rt.sessions() as s:
        case = s.get(Case, case_id)
        assert case is not None and case.status == "in_progress" and case.resolved_at is None
    assert rt.engine.handle(InboundMessage("console", "p-reopen", text="もう一つ相談があります")) == []
    with rt.sessions() as s:
        assert crud.transcript(s, case_id=case_id)[-1].text == "もう一つ相談があります"
    assert ("sato", "reopen", "case", str(case_id)) in audit(app)
