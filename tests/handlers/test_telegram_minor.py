"""The review's minor Telegram findings (telegram-email finding 10): header lines, names instead of usernames,
/claim on a colleague's case, `staff link` with a chat id, photos and stickers, /note over the limit."""

# ruff: noqa: F811 - the fixtures `fake` and `world` come from test_telegram_bridge and are parameters here

from __future__ import annotations

import io

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import select

from bot.cli import main
from bot.runtime import Runtime
from handlers.lifecycle import request_export
from handlers.telegram import MAX_NOTE, TelegramBridge
from storage import crud
from storage.db import session_factory, transaction
from storage.models import Case, Contact
from storage.staff import AuditEntry, InternalNote, StaffAccount
from tests.e2e.kit import assign, make_staff, parent_opens_case
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.handlers.test_telegram_bridge import (  # noqa: F401 - fixtures
    SATO_TG,
    fake,
    opened,
    send,
    thread_of,
    world,
)

TANAKA_TG = 7005005


async def test_records_request_alert_has_a_header_and_names_not_usernames(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    rt: Runtime = app.state.runtime
    case_id = parent_opens_case(rt.engine, "tg-records")
    assign(rt.sessions, case_id, "sato")
    await bridge.deliver_alerts()
    with transaction(rt.sessions) as s:
        contact = s.exec(select(Contact).where(Contact.external_id == "tg-records")).one()
        request_export(s, contact=contact)
    assert await bridge.deliver_alerts() == 1
    text = fake.in_topic(thread_of(rt, case_id))[-1].text
    assert text.startswith(f"📂 記録の開示請求がありました　受付番号 {case_id}")
    assert "担当：佐藤" in text and "担当：sato" not in text


async def test_claim_on_a_colleagues_case_asks_first(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    rt: Runtime = app.state.runtime
    make_staff(rt.sessions, "tanaka", "concierge", name="田中", telegram=TANAKA_TG)
    case_id = parent_opens_case(rt.engine, "tg-colleague")
    assign(rt.sessions, case_id, "tanaka")
    await bridge.deliver_alerts()
    thread = thread_of(rt, case_id)
    await send(app, bridge, fake.staff_update(SATO_TG, "/claim", thread_id=thread))
    asked = fake.in_topic(thread)[-1].text
    assert "田中 さんが担当しています" in asked and "/claim 引き継ぐ" in asked
    with rt.sessions() as s:
        assert (s.get(Case, case_id) or Case()).assignee == "tanaka"
    await send(app, bridge, fake.staff_update(SATO_TG, "/claim 引き継ぐ", thread_id=thread))
    assert "佐藤 さんが 田中 さんから引き継ぎました" in fake.in_topic(thread)[-1].text
    with rt.sessions() as s:
        assert (s.get(Case, case_id) or Case()).assignee == "sato"
        audit = s.exec(select(AuditEntry).where(AuditEntry.action == "claim")).one()
    assert audit.detail == "from tanaka" and audit.via == "telegram"
    await send(app, bridge, fake.staff_update(SATO_TG, "/claim", thread_id=thread))
    assert "既に 佐藤 さんの担当です" in fake.in_topic(thread)[-1].text


@pytest.mark.parametrize(
    "extra",
    [
        {"photo": [{"file_id": "p1", "file_unique_id": "u1", "width": 90, "height": 90}]},
        {
            "sticker": {
                "file_id": "s1",
                "file_unique_id": "u2",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        },
    ],
)
async def test_photos_and_stickers_from_staff_get_a_text_only_answer(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI, extra: dict[str, object]
) -> None:
    app, bridge, rt, case_id, thread = await opened(world, "tg-photo")
    await send(app, bridge, fake.staff_update(SATO_TG, None, thread_id=thread, **extra))
    answer = fake.in_topic(thread)[-1]
    assert "テキストだけ" in answer.text and answer.disable_notification is True and answer.reply_to is not None
    with rt.sessions() as s:
        assert all(not m.author.startswith("staff") for m in crud.transcript(s, case_id=case_id))


async def test_a_note_over_the_limit_is_refused_not_cut(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge, rt, case_id, thread = await opened(world, "tg-long")
    await send(app, bridge, fake.staff_update(SATO_TG, "/note " + "あ" * (MAX_NOTE + 1), thread_id=thread))
    assert "メモが長すぎます（10,001文字、上限10,000文字）" in fake.in_topic(thread)[-1].text
    await send(app, bridge, fake.staff_update(SATO_TG, "/reply " + "い" * 5001, thread_id=thread))
    assert "返信が長すぎます" in fake.in_topic(thread)[-1].text
    with rt.sessions() as s:
        assert list(s.exec(select(InternalNote))) == []
        assert all(not m.author.startswith("staff") for m in crud.transcript(s, case_id=case_id))
    await send(app, bridge, fake.staff_update(SATO_TG, "/note " + "う" * MAX_NOTE, thread_id=thread))
    with rt.sessions() as s:
        assert [len(n.text) for n in s.exec(select(InternalNote))] == [MAX_NOTE]


def test_staff_link_refuses_a_chat_id(
    db: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db.url.render_as_string(hide_password=False))
    monkeypatch.setattr("sys.stdin", io.StringIO("correct-horse-42\ncorrect-horse-42\n"))
    assert main(["staff", "add", "sato", "--role", "concierge"]) == 0
    capsys.readouterr()
    for chat in ("-1001234567890", "-42", "0"):
        assert main(["staff", "link", "sato", chat]) == 1
        assert "negative ids are group or channel chats" in capsys.readouterr().err
    assert main(["staff", "link", "sato", "8123456789"]) == 0
    with session_factory(db)() as s:
        row = s.exec(select(StaffAccount).where(StaffAccount.username == "sato")).one()
        assert row.telegram_user_id == 8123456789


async def test_service_messages_get_no_answer(world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI) -> None:
    app, bridge, _, _, thread = await opened(world, "tg-service")
    before = len(fake.sent)
    joined = {"new_chat_members": [{"id": 7009009, "is_bot": False, "first_name": "新人"}]}
    await send(app, bridge, fake.staff_update(SATO_TG, None, thread_id=thread, **joined))
    await send(app, bridge, fake.staff_update(SATO_TG, None, **joined))
    assert len(fake.sent) == before
