"""The whole app (create_app, lifespan running) with LINE pointed at the fake LINE API, and a full parent
dialog through it: webhook → answer → handoff → consent → message → staff reply by push."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from bot.app import create_app
from bot.runtime import Runtime
from bot.settings import LineSettings, Settings
from handlers import staff
from handlers.channels.line import WEBHOOK_PATH, sign
from storage import crud
from tests.e2e.kit import settle, staff_settings, until
from tests.fakes.line_api import SECRET, FakeLineAPI, encode, event_id, user_id, webhook

PARENT_TEXT = "息子の太郎（3歳）が夜泣きします。連絡先は090-1234-5678です"
STAFF_TEXT = "保育士の佐藤です。明日お電話しますね。"


def line_settings(settings: Settings, fake: FakeLineAPI, **updates: Any) -> Settings:
    line = LineSettings(channel_secret=SECRET, channel_access_token=fake.token, api_base_url=fake.url)
    return staff_settings(settings).model_copy(update={"line": line, **updates})


@asynccontextmanager
async def line_app(
    settings: Settings, runtime: Runtime, **client: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings, runtime=runtime)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, **client)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield app, http
    finally:
        settle()


@dataclass
class Sent:
    """Everything the dialog sent that must never show up in a log."""

    user: str
    secrets: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    case_id: int | None = None


async def post_event(http: httpx.AsyncClient, fake: FakeLineAPI, sent: Sent, fixture: str, **values: Any) -> None:
    token = fake.issue_token(sent.user)
    eid = event_id()
    body = encode(webhook(fixture, user=sent.user, reply_token=token, webhook_event_id=eid, **values))
    response = await http.post(
        WEBHOOK_PATH, content=body, headers={"content-type": "application/json", "x-line-signature": sign(SECRET, body)}
    )
    assert response.status_code == 200, response.text
    sent.secrets += [token, eid]
    sent.request_ids.append(response.headers["x-request-id"])


async def full_dialog(http: httpx.AsyncClient, fake: FakeLineAPI, runtime: Runtime) -> Sent:
    sent = Sent(user=user_id())
    sent.secrets += [sent.user, PARENT_TEXT, STAFF_TEXT, "太郎", "090-1234-5678"]
    await post_event(http, fake, sent, "text", text="児童手当はいつ振り込まれますか")
    await until(lambda: len(fake.received(sent.user)) >= 1, timeout=20)
    await post_event(http, fake, sent, "text", text="相談員と話したい")
    await until(lambda: any("記録について確認" in t for t in fake.texts(sent.user)), timeout=20)
    await post_event(http, fake, sent, "postback", data="consent:yes")
    await until(lambda: any("受付番号" in t for t in fake.texts(sent.user)), timeout=20)
    await post_event(http, fake, sent, "text", text=PARENT_TEXT)

    def case_with_message() -> bool:
        with runtime.sessions() as s:
            contact = crud.get_or_create_contact(s, channel="line", external_id=sent.user)
            case = crud.open_case_for(s, contact_id=contact.id or 0)
            if case is None or case.id is None:
                return False
            sent.case_id = case.id
            return any(m.text == PARENT_TEXT for m in crud.transcript(s, case_id=case.id))

    await until(case_with_message, timeout=20)
    assert sent.case_id is not None
    staff.reply_to_parent(runtime.sessions, case_id=sent.case_id, text=STAFF_TEXT, staff="sato")
    await until(lambda: any(p["messages"][0].get("text") == STAFF_TEXT for p in fake.pushes), timeout=20)
    return sent
