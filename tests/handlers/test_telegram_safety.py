"""The Telegram bridge's safety findings (review telegram-email 2-7, security F9/F16), against the fake Bot API
that refuses as the real one does: no alert is lost on a misconfigured group, nothing reaches a parent by
accident, complaints stay with intake, refused deliveries are told in the topic, updates act once, odd
webhook bodies never give 500, and loudness goes where it matters."""

# ruff: noqa: F811 - the fixtures `fake` and `world` come from test_telegram_bridge and are parameters here

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlmodel import select

from bot.cli import _check_telegram
from bot.runtime import Runtime
from bot.settings import Settings
from handlers import consent
from handlers.telegram import TelegramBridge, check_telegram
from handlers.types import DeliveryError, InboundMessage
from storage import bridge as bridgedb
from storage import crud
from storage import staff as staffdb
from storage.db import transaction
from storage.models import Case, OutboundMessage, StaffAlert, utcnow
from storage.staff import CaseTopic, InternalNote
from tests.e2e.kit import client, make_staff, parent_opens_case, session_for, until
from tests.fakes.telegram_api import CHAT_ID, FakeTelegramAPI
from tests.handlers.test_telegram_bridge import (  # noqa: F401 - fixtures
    SATO_TG,
    WEBHOOK_SECRET,
    YAMADA_TG,
    fake,
    opened,
    parents,
    pending,
    processed,
    running,
    send,
    tg_settings,
    thread_of,
    webhook,
    world,
)

INTAKE_CHAT = -1009990001
BOSS_TG = 7003003
KUJO_TG = 7004004
TANAKA_TG = 7005005


def outbound(rt: Runtime) -> list[OutboundMessage]:
    with rt.sessions() as s:
        return list(s.exec(select(OutboundMessage).order_by(OutboundMessage.id)))  # type: ignore[arg-type]


def alerts(rt: Runtime) -> list[StaffAlert]:
    with rt.sessions() as s:
        return list(s.exec(select(StaffAlert).order_by(StaffAlert.id)))  # type: ignore[arg-type]


@pytest.fixture
async def intake_world(settings: Settings, fake: FakeTelegramAPI) -> AsyncIterator[tuple[FastAPI, TelegramBridge]]:
    """The bridge with a complaint chat of its own (the intake people's group)."""
    fake.add_chat(INTAKE_CHAT, title="苦情受付")
    async with running(settings, fake, complaint_chat_id=INTAKE_CHAT) as w:
        yield w


# ----- 1. no alert is ever lost (finding 2)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"remove": True}, "chat not found"),
        ({"is_forum": False}, "topics are off"),
        ({"bot_status": "member", "can_manage_topics": False}, "not an administrator"),
        ({"can_manage_topics": False}, "'Manage topics'"),
        ({"bot_status": "restricted", "can_send_messages": False}, "may not send messages"),
        ({"bot_status": "kicked"}, "kicked"),
    ],
)
async def test_setup_check_says_exactly_what_is_wrong(
    settings: Settings, fake: FakeTelegramAPI, runtime: Runtime, change: dict[str, Any], expected: str
) -> None:
    s = tg_settings(settings, fake)
    make_staff(runtime.sessions, "boss", "supervisor", telegram=BOSS_TG)
    assert await check_telegram(s, runtime.sessions) == []
    change = dict(change)  # (the parameter is shared by both databases' runs)
    if change.pop("remove", False):
        fake.remove_chat()
    else:
        fake.configure_chat(**change)
    problems = await check_telegram(s, runtime.sessions)
    assert any(expected.lower() in p.lower() for p in problems) and all(str(CHAT_ID) in p for p in problems)


async def test_serve_prints_the_check_and_refuses_settings_that_cannot_work(
    settings: Settings, fake: FakeTelegramAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    s = tg_settings(settings, fake)
    fake.configure_chat(is_forum=False)
    assert await asyncio.to_thread(_check_telegram, s) is True  # it serves, and says what is wrong
    err = capsys.readouterr().err
    assert "telegram: PROBLEM:" in err and "topics are off" in err and "complaints have nowhere to go" in err
    for bad, words in [
        ({"public_url": "http://concierge.example.jp"}, "PUBLIC_URL must be an https:// URL"),
        ({"secret": "not allowed!"}, "A-Z a-z 0-9 _ -"),
        ({"secret": "x" * 257}, "A-Z a-z 0-9 _ -"),
    ]:
        wrong = tg_settings(settings, fake, webhook_secret=SecretStr(bad.get("secret", WEBHOOK_SECRET)))
        if "public_url" in bad:
            wrong = wrong.model_copy(update={"public_url": bad["public_url"]})
        assert await asyncio.to_thread(_check_telegram, wrong) is False
        assert words in capsys.readouterr().err
        with pytest.raises(ValueError, match=words.split()[0]):
            TelegramBridge(wrong, lambda: None)  # type: ignore[arg-type,return-value]


async def test_a_refused_alert_is_not_delivered_and_shows_in_the_console(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    rt: Runtime = app.state.runtime
    make_staff(rt.sessions, "boss", "supervisor")
    fake.remove_chat()  # a wrong TELEGRAM_STAFF_CHAT_ID, or the group was deleted
    case_id = parent_opens_case(rt.engine, "tg-lost")
    assert await bridge.deliver_alerts() == 0
    rows = pending(rt)
    assert rows and all(r.delivered_at is None and r.attempts == 1 for r in rows)
    assert all("chat not found" in (r.last_error or "").lower() for r in rows)
    with rt.sessions() as s:
        assert bridgedb.undelivered_alerts(s) == bridgedb.AlertBacklog(0, 0)  # not yet: a healthy bridge needs seconds
        backlog = bridgedb.undelivered_alerts(s, older_than=dt.timedelta(0))
    assert backlog.total == len(rows) and backlog.urgent == 0
    with transaction(rt.sessions) as s:  # two minutes later
        for r in s.exec(select(StaffAlert)):
            r.created_at = utcnow() - dt.timedelta(minutes=3)
            s.add(r)
    async with await session_for(app, "boss") as boss:
        page = await boss.client.get("/cases")
    assert f"Telegramに届いていない職員通知が{len(rows)}件あります" in page.text
    fake.add_chat(CHAT_ID, title="staff", is_forum=True, bot_status="administrator", can_manage_topics=True)
    assert await bridge.deliver_alerts() == 1 and pending(rt) == []
    assert f"受付番号 {case_id}" in fake.in_topic(thread_of(rt, case_id))[0].text


@pytest.mark.parametrize("change", [{"is_forum": False}, {"can_manage_topics": False}])
async def test_alerts_go_to_general_when_no_topic_can_be_made(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI, change: dict[str, Any]
) -> None:
    app, bridge = world
    rt: Runtime = app.state.runtime
    channel = parents(app)
    fake.configure_chat(**change)
    case_id = parent_opens_case(rt.engine, "tg-general")
    assert await bridge.deliver_alerts() == 1
    post = fake.sent[-1]
    assert post.thread_id is None and f"受付番号 {case_id}" in post.text and f"/reply {case_id} 本文" in post.text
    assert pending(rt) == [] and {a.delivered_via for a in alerts(rt)} == {"general"}
    # in General, commands carry the case number
    await send(app, bridge, fake.staff_update(SATO_TG, f"/reply {case_id} 全体から返信します"))
    # (the app's inbox loop delivers: a second caller could claim the same row on SQLite, which has no row locks)
    await until(lambda: [d.replies[0].text for d in channel.delivered] == ["全体から返信します"])
    await send(app, bridge, fake.staff_update(SATO_TG, "/claim"))
    assert "受付番号を付けてください" in fake.sent[-1].text


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_urgent_alerts_are_retried_until_posted(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    rt: Runtime = app.state.runtime
    bridge.retry_base = 3600  # normal alerts wait after a refusal; urgent ones never do
    fake.fail_next("sendMessage", 400, "Bad Request: not enough rights to send text messages to the chat", count=3)
    rt.engine.handle(InboundMessage("console", "tg-urgent", text="子どもを叩いてしまいそうで怖い"))
    for _ in range(3):
        assert await bridge.deliver_alerts() == 0
    assert [a.attempts for a in pending(rt)] == [3]
    assert await bridge.deliver_alerts() == 1 and pending(rt) == []
    assert fake.sent[-1].text.startswith("🚨") and fake.sent[-1].disable_notification is False


# ----- 2. nothing reaches a parent by accident (finding 3)


async def test_plain_text_in_a_topic_stays_among_staff(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge, rt, case_id, thread = await opened(world, "tg-plain")
    alert = fake.in_topic(thread)[-1]
    before = len(outbound(rt))
    await send(app, bridge, fake.staff_update(SATO_TG, "佐藤さん、明日電話フォローお願いします", thread_id=thread))
    hint = fake.in_topic(thread)[-1]
    assert "保護者には送信されていません" in hint.text and "/reply" in hint.text and hint.disable_notification
    sent = len(fake.sent)
    await send(app, bridge, fake.staff_update(SATO_TG, "了解です、私がかけます", thread_id=thread))
    assert len(fake.sent) == sent  # told once; colleagues can talk in peace
    await send(app, bridge, fake.staff_update(YAMADA_TG, "見ておきます", thread_id=thread))
    assert "⛔" not in fake.in_topic(thread)[-1].text  # talk is not an action: no refusal for it either
    await send(app, bridge, fake.staff_update(SATO_TG, "この方には私から連絡します", thread_id=thread, reply_to=alert))
    assert "保護者には送信されていません" in fake.in_topic(thread)[-1].text  # a reply to the bot's post: told again
    assert len(outbound(rt)) == before
    with rt.sessions() as s:
        assert all(not m.author.startswith("staff") for m in crud.transcript(s, case_id=case_id))
    await send(app, bridge, fake.staff_update(SATO_TG, "/reply お電話しますね", thread_id=thread))
    assert len(outbound(rt)) == before + 1


# ----- 3. complaints stay with intake (finding 4, F16)


def open_complaint(rt: Runtime) -> int:
    """As the console's 「苦情を受け付ける」 does."""
    with transaction(rt.sessions) as s:
        case = staffdb.open_office_case(s, kind=staffdb.COMPLAINT)
        crud.add_alert(s, case=case, kind="new_case")
        assert case.id is not None
        return case.id


async def test_complaints_go_to_the_intake_chat_only(
    intake_world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = intake_world
    rt: Runtime = app.state.runtime
    case_id = open_complaint(rt)
    assert await bridge.deliver_alerts() == 1
    assert fake.to_chat(CHAT_ID) == [] and fake.topics == {}
    posted = fake.to_chat(INTAKE_CHAT)[-1]
    assert f"📮 新しい要望・苦情　受付番号 {case_id}" in posted.text and "/reply" not in posted.text
    # a consultation re-classified as a complaint leaves the shared group
    other = parent_opens_case(rt.engine, "tg-complaint", "担当の職員の対応がひどかった")
    await bridge.deliver_alerts()
    thread = thread_of(rt, other)
    shared_before = len(fake.to_chat(CHAT_ID))
    with transaction(rt.sessions) as s:
        case = s.get(Case, other)
        assert case is not None
        staffdb.set_case_kind(s, case=case, kind=staffdb.COMPLAINT)
    rt.engine.handle(InboundMessage("console", "tg-complaint", text="まだ返事がありません"))
    assert await bridge.deliver_alerts() == 1
    assert len(fake.to_chat(CHAT_ID)) == shared_before  # not a word in the shared group
    told = fake.to_chat(INTAKE_CHAT)[-1].text
    assert f"📮 相談が要望・苦情に分類されました　受付番号 {other}" in told and "💬" in told
    with rt.sessions() as s:
        assert s.get(CaseTopic, other) is None
    await send(app, bridge, fake.staff_update(SATO_TG, "/reply 何かありましたか", thread_id=thread))
    assert all(o.case_id != other or o.message_id is None for o in outbound(rt))  # the topic cannot reply now


async def test_without_an_intake_chat_complaints_go_to_intake_people_directly(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    rt: Runtime = app.state.runtime
    make_staff(rt.sessions, "boss", "supervisor", telegram=BOSS_TG)
    make_staff(rt.sessions, "kujo", "concierge", intake=True, telegram=KUJO_TG)
    case_id = open_complaint(rt)
    assert await bridge.deliver_alerts() == 0  # nobody has started a chat with the bot: Telegram refuses (403)
    assert "initiate conversation" in (pending(rt)[0].last_error or "")
    fake.start_private(KUJO_TG)
    assert await bridge.deliver_alerts() == 1
    assert fake.to_chat(CHAT_ID) == [] and f"受付番号 {case_id}" in fake.to_chat(KUJO_TG)[-1].text
    assert fake.to_chat(SATO_TG) == [] and {a.delivered_via for a in alerts(rt)} == {"dm"}


# ----- 4. a refused delivery is told in the topic (finding 5)


async def test_a_refused_reply_is_reported_in_the_topic(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    rt: Runtime = app.state.runtime
    channel = parents(app)
    channel.failures.append(DeliveryError("push 403", retry=False))
    case_id = parent_opens_case(rt.engine, "tg-refused")
    await bridge.deliver_alerts()
    thread = thread_of(rt, case_id)
    await send(app, bridge, fake.staff_update(SATO_TG, "/reply 明日お電話します", thread_id=thread))
    await bridge.settle_replies()
    await until(lambda: "保護者に届きませんでした" in fake.in_topic(thread)[-1].text)
    told = fake.in_topic(thread)[-1]
    assert "保護者に届きませんでした：LINEが受け付けませんでした" in told.text and "電話など別の方法" in told.text
    assert told.disable_notification is False and told.reply_to is not None
    assert not any("📨" in m.text for m in fake.in_topic(thread))
    await bridge.settle_replies()
    assert sum("届きませんでした" in m.text for m in fake.in_topic(thread)) == 1  # told once


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_lost_confirmation_is_posted_again_and_the_message_never_acts_twice(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    rt: Runtime = app.state.runtime
    parents(app)
    case_id = parent_opens_case(rt.engine, "tg-once")
    await bridge.deliver_alerts()
    thread = thread_of(rt, case_id)
    fake.fail_next("sendMessage", 502, "Bad Gateway", count=2)
    update = fake.staff_update(SATO_TG, "/reply 一度だけ届きます", thread_id=thread)
    await send(app, bridge, update)
    await bridge.settle_replies()
    await bridge.settle_replies()
    await until(lambda: any("📨" in m.text for m in fake.in_topic(thread)))
    again = dict(update, update_id=update["update_id"] + 1000)  # the same Telegram message in another update
    for body in (update, update, again):
        await send(app, bridge, body)
    replies = [o for o in outbound(rt) if o.message_id is not None]
    assert len(replies) == 1


# ----- 5. webhook updates act once; odd bodies never give 500 (finding 6, F9)


async def test_a_redelivered_update_is_relayed_once(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    rt: Runtime = app.state.runtime
    case_id = parent_opens_case(rt.engine, "tg-twice")
    await bridge.deliver_alerts()
    update = fake.staff_update(SATO_TG, "/note 一度だけ", thread_id=thread_of(rt, case_id))
    for _ in range(3):  # Telegram retries when the answer was slow or lost
        assert (await webhook(app, update)).status_code == 200
    await processed(bridge)
    with rt.sessions() as s:
        assert [n.text for n in s.exec(select(InternalNote))] == ["一度だけ"]


def deep(n: int) -> str:
    return '{"update_id": 5, "message": ' + "[" * n + "]" * n + "}"


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'"just a string"',
        b'{"update_id": "7"}',
        b'{"update_id": 1e400}',
        deep(5000).encode(),
        deep(100).encode(),
        b'{"update_id": 8, "message": "hello"}',
        b'{"update_id": 9, "message": {"message_id": 1, "date": 1, "chat": [], "text": "x"}}',
        b'{"update_id": 10, "message": {"message_id": 1, "date": 1, "chat": {"id": "-100"}, "text": "x"}}',
        b'{"update_id": 11, "message": {"message_id": 1, "date": 1, "chat": {"id": -1, "type": "supergroup"},'
        b' "from": {"id": 1, "is_bot": "no"}, "text": "x"}}',
        b'{"update_id": 12, "message": {"message_id": 1, "date": 1, "chat": {"id": -1, "type": "supergroup"},'
        b' "text": {"nested": true}}}',
        b'{"update_id": 13, "message": {"message_id": 99999999999999999999999, "date": 1,'
        b' "chat": {"id": -1, "type": "supergroup"}}}',
        b'{"update_id": 14, "edited_message": {"message_id": 1}}',
        b'{"update_id": 15, "message": {"message_id": 1, "date": 1, "chat": {"id": -1, "type": "supergroup"},'
        b' "entities": "none", "reply_to_message": {"chat": 5}, "text": "x"}}',
    ],
)
async def test_odd_webhook_bodies_get_400_or_200_never_500(world: tuple[FastAPI, TelegramBridge], body: bytes) -> None:
    app, bridge = world
    async with client(app) as c:
        r = await c.post(
            "/webhooks/telegram", content=body, headers={"x-telegram-bot-api-secret-token": WEBHOOK_SECRET}
        )
    assert r.status_code in (200, 400), r.text
    await processed(bridge)  # whatever was stored is processed without harm


async def test_unencodable_text_is_cleaned_at_intake(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    rt: Runtime = app.state.runtime
    case_id = parent_opens_case(rt.engine, "tg-surrogate")
    await bridge.deliver_alerts()
    update = fake.staff_update(SATO_TG, "/note x", thread_id=thread_of(rt, case_id))
    body = json.dumps(update).replace('"/note x"', '"/note \\ud800 lone"').encode()
    async with client(app) as c:
        r = await c.post(
            "/webhooks/telegram", content=body, headers={"x-telegram-bot-api-secret-token": WEBHOOK_SECRET}
        )
    assert r.status_code == 200
    await processed(bridge)
    with rt.sessions() as s:
        assert [n.text for n in s.exec(select(InternalNote))] == ["\ufffd lone"]


# ----- 6. loud where it matters (finding 7)


async def test_loud_for_urgent_messages_and_overdue_cases_silent_for_confirmations(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    rt: Runtime = app.state.runtime
    rt.engine.handle(InboundMessage("console", "tg-loud", text="子どもを叩いてしまいそうで怖い"))
    await bridge.deliver_alerts()
    with rt.sessions() as s:
        case = s.exec(select(Case).where(Case.priority == "urgent")).one()
    assert case.id is not None
    thread = thread_of(rt, case.id)
    rt.engine.handle(InboundMessage("console", "tg-loud", text="まだ不安です"))
    await bridge.deliver_alerts()
    latest = fake.in_topic(thread)[-1]
    assert "緊急のケースで保護者から新しいメッセージ" in latest.text and latest.disable_notification is False
    for command in ("/claim", "/note 電話済み", "/help", "/unknown"):
        await send(app, bridge, fake.staff_update(SATO_TG, command, thread_id=thread))
        assert fake.in_topic(thread)[-1].disable_notification is True, command
    # a normal case waiting past its target: loud, once per wait
    normal = parent_opens_case(rt.engine, "tg-overdue")
    await bridge.deliver_alerts()
    with transaction(rt.sessions) as s:
        row = s.get(Case, normal)
        assert row is not None
        row.waiting_since = utcnow() - dt.timedelta(days=3)  # past the target in office hours, whatever the time
        s.add(row)
    bridge._overdue_checked = 0
    await bridge.deliver_alerts()
    overdue = fake.in_topic(thread_of(rt, normal))[-1]
    assert "⏰ 返信の目標時間（60分）を過ぎています" in overdue.text and overdue.disable_notification is False
    bridge._overdue_checked = 0
    assert await bridge.deliver_alerts() == 0  # not again while the same wait goes on


async def test_a_new_crisis_in_an_existing_case_alerts_again_with_its_category(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    _, bridge, rt, case_id, thread = await opened(world, "tg-crisis2")
    assert not fake.topics[thread].startswith("🚨")
    category = rt.kb.crisis.categories[0]
    with transaction(rt.sessions) as s:  # what the engine does for a crisis in a held case
        case = s.get(Case, case_id)
        assert case is not None
        consent.escalate(s, case=case, crisis_category=category.id, reason=f"life_safety:{category.id}")
        crud.add_alert(s, case=case, kind="urgent")
    assert await bridge.deliver_alerts() == 1
    post = fake.in_topic(thread)[-1]
    assert post.text.startswith("🚨 緊急の相談です") and f"危機の種類：{category.label['ja']}" in post.text
    assert post.disable_notification is False and fake.topics[thread].startswith("🚨 ")
    second = rt.kb.crisis.categories[-1]
    with transaction(rt.sessions) as s:
        case = s.get(Case, case_id)
        assert case is not None
        consent.escalate(s, case=case, crisis_category=second.id, reason=f"life_safety:{second.id}")
        crud.add_alert(s, case=case, kind="urgent")
    assert await bridge.deliver_alerts() == 1
    assert f"危機の種類：{second.label['ja']}" in fake.in_topic(thread)[-1].text


async def test_a_crisis_category_changed_in_the_database_alone_alerts_again(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    rt: Runtime = app.state.runtime
    first, second = rt.kb.crisis.categories[0], rt.kb.crisis.categories[-1]
    case_id = parent_opens_case(rt.engine, "tg-crisis3")
    with transaction(rt.sessions) as s:  # escalated as the engine does it, alert included
        case = s.get(Case, case_id)
        assert case is not None
        consent.escalate(s, case=case, crisis_category=first.id, reason="life_safety")
        crud.add_alert(s, case=case, kind="urgent")
    await bridge.deliver_alerts()
    assert await bridge.deliver_alerts() == 0  # announced: nothing more
    with transaction(rt.sessions) as s:  # only the category changes (no alert row written)
        case = s.get(Case, case_id)
        assert case is not None
        case.crisis_category = second.id
        s.add(case)
    assert await bridge.deliver_alerts() == 1
    post = fake.in_topic(thread_of(rt, case_id))[-1]
    assert f"危機の種類：{second.label['ja']}" in post.text and post.disable_notification is False
    assert await bridge.deliver_alerts() == 0
