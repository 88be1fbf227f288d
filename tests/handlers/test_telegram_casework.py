"""Case work from the Telegram staff chat goes through the same use cases as the console, against the fake
Bot API server on both databases: a reply claims an unclaimed case, taking over a colleague's case and
resolving with a booked appointment ask first, a resolved case reopens, and the webhook only stores."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI
from sqlmodel import select

from bot.settings import Settings
from handlers import appointments
from handlers.telegram import TelegramBridge
from handlers.types import InboundKind, InboundMessage
from storage.models import Case, utcnow
from storage.staff import AuditEntry, InternalNote
from tests.e2e.kit import make_staff, parent_opens_case
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.handlers.test_telegram_bridge import SATO_TG, processed, running, send, thread_of, webhook

BOSS_TG = 7003003


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as f:
        yield f


@pytest.fixture
async def world(settings: Settings, fake: FakeTelegramAPI) -> AsyncIterator[tuple[FastAPI, TelegramBridge]]:
    async with running(settings, fake) as w:
        make_staff(w[0].state.runtime.sessions, "boss", "supervisor", name="上田", telegram=BOSS_TG)
        yield w


async def opened(world: tuple[FastAPI, TelegramBridge], parent: str) -> tuple[int, int]:
    app, bridge = world
    rt = app.state.runtime
    case_id = parent_opens_case(rt.engine, parent)
    await bridge.deliver_alerts()
    return case_id, thread_of(rt, case_id)


def case_of(app: FastAPI, case_id: int) -> Case:
    with app.state.runtime.sessions() as s:
        case = s.get(Case, case_id)
        assert case is not None
        return case


def actions(app: FastAPI, case_id: int) -> list[tuple[str, str, str | None]]:
    with app.state.runtime.sessions() as s:
        rows = s.exec(select(AuditEntry).where(AuditEntry.record_id == str(case_id)).order_by(AuditEntry.id))  # type: ignore[arg-type]
        return [(r.actor, r.action, r.detail) for r in rows if r.action != "view"]


async def test_a_reply_from_telegram_claims_an_unclaimed_case(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    case_id, thread = await opened(world, "tg-reply-claims")
    await send(app, bridge, fake.staff_update(SATO_TG, "/reply 佐藤が担当します", thread_id=thread))
    case = case_of(app, case_id)
    assert case.assignee == "sato" and case.status == "in_progress"
    assert [(a, act) for a, act, _ in actions(app, case_id)] == [("sato", "claim"), ("sato", "reply")]


async def test_taking_over_from_telegram_asks_first(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    case_id, thread = await opened(world, "tg-take")
    await send(app, bridge, fake.staff_update(SATO_TG, "/claim", thread_id=thread))
    await send(app, bridge, fake.staff_update(BOSS_TG, "/claim", thread_id=thread))
    answer = fake.in_topic(thread)[-1].text
    assert "佐藤 さんが担当しています" in answer and "「/claim 引き継ぐ」" in answer
    assert case_of(app, case_id).assignee == "sato"
    await send(app, bridge, fake.staff_update(BOSS_TG, "/claim 引き継ぐ", thread_id=thread))
    assert "上田 さんが 佐藤 さんから引き継ぎました" in fake.in_topic(thread)[-1].text
    assert case_of(app, case_id).assignee == "boss"
    assert actions(app, case_id)[-1] == ("boss", "claim", "from sato")


async def test_resolving_with_a_booking_asks_first_and_the_parents_booking_message_reaches_the_topic(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    rt = app.state.runtime
    case_id, thread = await opened(world, "tg-booked")
    starts = [utcnow() + dt.timedelta(days=2)]
    ids = appointments.offer_appointments(
        rt.sessions, case_id=case_id, starts=starts, minutes=30, place="", staff="sato"
    )
    rt.engine.handle(InboundMessage("console", "tg-booked", kind=InboundKind.POSTBACK, postback=f"slot:{ids[0]}"))
    await send(app, bridge, fake.staff_update(SATO_TG, "/resolve", thread_id=thread))
    answer = fake.in_topic(thread)[-1].text
    assert "確定した予約がまだ残っています" in answer and "「/resolve 予約あり」" in answer
    assert case_of(app, case_id).status == "in_progress"
    await send(app, bridge, fake.staff_update(SATO_TG, "/resolve 予約あり", thread_id=thread))
    assert "解決にしました" in fake.in_topic(thread)[-1].text and case_of(app, case_id).status == "resolved"
    await bridge.deliver_alerts()
    rt.engine.handle(InboundMessage("console", "tg-booked", text="予約に少し遅れます"))
    await bridge.deliver_alerts()
    assert "保護者から新しいメッセージ" in fake.in_topic(thread)[-1].text
    assert case_of(app, case_id).status == "in_progress"


async def test_a_resolved_case_reopens_from_telegram(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    case_id, thread = await opened(world, "tg-reopen")
    await send(app, bridge, fake.staff_update(SATO_TG, "/resolve", thread_id=thread))
    await send(app, bridge, fake.staff_update(SATO_TG, "/reopen", thread_id=thread))
    assert "再開しました" in fake.in_topic(thread)[-1].text
    assert case_of(app, case_id).status == "in_progress"
    await send(app, bridge, fake.staff_update(SATO_TG, "/reopen", thread_id=thread))
    assert "終了していません" in fake.in_topic(thread)[-1].text


async def test_the_webhook_stores_and_acknowledges_without_processing(
    world: tuple[FastAPI, TelegramBridge], fake: FakeTelegramAPI
) -> None:
    app, bridge = world
    _, thread = await opened(world, "tg-queued")
    async with bridge._updates_lock:  # nothing processes updates meanwhile: the request must not need it
        r = await asyncio.wait_for(webhook(app, fake.staff_update(SATO_TG, "/note あとで処理", thread_id=thread)), 10)
        assert r.status_code == 200
        assert bridge.updates_waiting() == 1
        with app.state.runtime.sessions() as s:
            assert list(s.exec(select(InternalNote))) == []
    await processed(bridge)
    with app.state.runtime.sessions() as s:
        assert [n.text for n in s.exec(select(InternalNote))] == ["あとで処理"]
