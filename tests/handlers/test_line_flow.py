"""Conversations through the LINE channel, end to end on both databases: a signed webhook in, the real
engine, the queue, and the real SDK talking to the fake LINE API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlmodel import select

from bot.app import create_app
from bot.runtime import Runtime
from bot.settings import LineSettings, Settings
from handlers import staff
from storage import crud
from storage.models import Contact, InboundEvent, Message, OutboundMessage
from tests.fakes.line_api import SECRET, FakeLineAPI, LineHarness, encode, event_id, group_id, user_id, webhook

CONSENT_ITEMS = ["consent:yes", "consent:no"]


@pytest.fixture
async def harness(fake: FakeLineAPI, settings: Settings, runtime: Runtime) -> AsyncIterator[LineHarness]:
    h = LineHarness(fake, settings, runtime)
    yield h
    await h.aclose()


def quick_reply_data(message: dict[str, object]) -> list[str]:
    qr = message.get("quickReply")
    assert isinstance(qr, dict)
    return [item["action"]["data"] for item in qr["items"]]


def outbound(runtime: Runtime) -> list[OutboundMessage]:
    with runtime.sessions() as s:
        return list(s.exec(select(OutboundMessage).order_by(OutboundMessage.id)))  # type: ignore[arg-type]


async def test_follow_gets_the_greeting_by_reply_and_subscribes(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime
) -> None:
    user = user_id()
    await harness.send("follow", user=user)
    await harness.drain()
    sent = fake.received(user)
    assert [s.via for s in sent] == ["reply"]
    assert "友だち追加ありがとうございます" in sent[0].message["text"]
    assert quick_reply_data(sent[0].message) == ["handoff"]
    with runtime.sessions() as s:
        contact = s.exec(select(Contact).where(Contact.external_id == user)).one()
    assert contact.subscribed and contact.channel == "line"


async def test_unfollow_unsubscribes_silently(harness: LineHarness, fake: FakeLineAPI, runtime: Runtime) -> None:
    user = user_id()
    await harness.send("follow", user=user)
    await harness.send("unfollow", user=user)
    await harness.drain()
    assert len(fake.received(user)) == 1
    with runtime.sessions() as s:
        assert not s.exec(select(Contact).where(Contact.external_id == user)).one().subscribed


async def test_faq_question_is_answered_by_reply_token_and_content_is_erased(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime
) -> None:
    user = user_id()
    await harness.send("text", user=user, text="児童手当はいつ振り込まれますか")
    await harness.drain()
    assert fake.pushes == []
    texts = fake.texts(user)
    assert len(fake.replies) == 1 and texts and "偶数月" in texts[0]
    call = next(c for c in fake.calls if c.path == "/v2/bot/message/reply")
    assert call.headers["authorization"] == f"Bearer {fake.token}"
    with runtime.sessions() as s:
        event = s.exec(select(InboundEvent)).one()
    assert (event.status, event.payload) == ("done", "")
    assert [(o.status, o.payload, o.reply_token) for o in outbound(runtime)] == [("done", "", None)]


async def test_handoff_consent_case_and_staff_reply_by_push(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime
) -> None:
    user = user_id()
    await harness.send("text", user=user, text="相談員と話したい")
    await harness.drain()
    consent = fake.received(user)[-1].message
    assert "記録について確認" in consent["text"]
    assert quick_reply_data(consent) == CONSENT_ITEMS

    await harness.send("postback", user=user, data="consent:yes")
    await harness.drain()
    assert "受付番号" in fake.texts(user)[-1]
    with runtime.sessions() as s:
        cases = crud.queue(s)
    assert len(cases) == 1 and cases[0].channel == "line"
    case_id = cases[0].id
    assert case_id is not None

    message_id = staff.reply_to_parent(runtime.sessions, case_id=case_id, text="保育士の佐藤です。", staff="sato")
    await harness.drain()
    push = fake.pushes[-1]
    assert push["to"] == user and push["messages"][0]["text"] == "保育士の佐藤です。"
    assert push["retry_key"] == outbound(runtime)[-1].retry_key
    with runtime.sessions() as s:
        assert s.get(Message, message_id).delivery == "sent"  # type: ignore[union-attr]


async def test_redelivery_is_answered_once(harness: LineHarness, fake: FakeLineAPI, runtime: Runtime) -> None:
    user, eid = user_id(), event_id()
    await harness.send("text", user=user, webhook_event_id=eid)
    await harness.drain()
    await harness.send("redelivery", user=user, webhook_event_id=eid)
    await harness.drain()
    assert len(fake.replies) == 1 and fake.pushes == []
    assert len(fake.texts(user)) == 1
    assert len(outbound(runtime)) == 1


async def test_429_then_200_delivers_exactly_once(harness: LineHarness, fake: FakeLineAPI, runtime: Runtime) -> None:
    user = user_id()
    fake.fail_next(429, path="/v2/bot/message/reply")
    await harness.send("text", user=user)
    await harness.drain()
    assert [c.status for c in fake.calls if c.path.startswith("/v2/bot/message")] == [429, 200]
    assert fake.replies == [] and len(fake.pushes) == 1  # the reply token counts as spent after a 429
    assert len(fake.texts(user)) == 1
    assert [(o.status, o.attempts) for o in outbound(runtime)] == [("done", 2)]


async def test_push_500_is_retried_with_the_same_retry_key(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime
) -> None:
    user = user_id()
    await harness.send("follow", user=user)
    await harness.drain()
    case = _open_case(runtime, user)
    fake.fail_next(500, path="/v2/bot/message/push")
    staff.reply_to_parent(runtime.sessions, case_id=case, text="お返事です。", staff="sato")
    await harness.drain()
    pushes = [c for c in fake.calls if c.path == "/v2/bot/message/push"]
    assert [c.status for c in pushes] == [500, 200]
    assert pushes[0].headers["x-line-retry-key"] == pushes[1].headers["x-line-retry-key"]
    assert fake.texts(user)[-1] == "お返事です。"


async def test_a_push_that_timed_out_but_arrived_is_not_sent_twice(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime
) -> None:
    user = user_id()
    await harness.send("follow", user=user)
    await harness.drain()
    case = _open_case(runtime, user)
    harness.adapter.timeout = 1.0
    fake.stall_next(1.5, path="/v2/bot/message/push")  # LINE accepts it, we give up waiting
    staff.reply_to_parent(runtime.sessions, case_id=case, text="一度だけ届くはず", staff="sato")
    await harness.drain()  # first try times out; the retry may run while the first is still in flight
    for _ in range(50):
        await asyncio.sleep(0.1)
        await harness.drain()
        if all(o.status in ("done", "failed") for o in outbound(runtime)) and len(fake.pushes) == 1:
            break
    assert {o.status for o in outbound(runtime)} == {"done"}
    assert fake.texts(user).count("一度だけ届くはず") == 1
    statuses = sorted(c.status for c in fake.calls if c.path == "/v2/bot/message/push")
    assert statuses in ([200, 409], [200])


async def test_expired_reply_token_falls_back_to_push(harness: LineHarness, fake: FakeLineAPI) -> None:
    user = user_id()
    token = fake.issue_token(user)
    fake.expire_token(token)
    await harness.send("text", user=user, reply_token=token)
    await harness.drain()
    assert [c.status for c in fake.calls if c.path.startswith("/v2/bot/message")] == [400, 200]
    assert fake.replies == [] and len(fake.pushes) == 1 and len(fake.texts(user)) == 1


async def test_a_rejected_payload_is_not_retried(harness: LineHarness, fake: FakeLineAPI, runtime: Runtime) -> None:
    user = user_id()
    await harness.send("follow", user=user)
    await harness.drain()
    fake.fail_next(403, path="/v2/bot/message/push")
    case = _open_case(runtime, user)
    message_id = staff.reply_to_parent(runtime.sessions, case_id=case, text="届かない", staff="sato")
    await harness.drain()
    assert outbound(runtime)[-1].status == "failed"
    assert outbound(runtime)[-1].error == "push 403"
    with runtime.sessions() as s:
        assert s.get(Message, message_id).delivery == "failed"  # type: ignore[union-attr]


@pytest.mark.parametrize("fixture", ["sticker", "image", "file", "location"])
async def test_stickers_and_media_get_a_polite_text_only_reply(
    harness: LineHarness, fake: FakeLineAPI, fixture: str
) -> None:
    user = user_id()
    await harness.send(fixture, user=user)
    await harness.drain()
    assert fake.texts(user) == [
        "申し訳ありません。このチャットでは文字のメッセージだけを読み取れます。ご質問を文字で送ってください。"
    ]


async def test_group_messages_get_the_one_to_one_note_in_the_group(harness: LineHarness, fake: FakeLineAPI) -> None:
    user, group = user_id(), group_id()
    await harness.send("group_message", user=user, group=group)
    await harness.drain()
    assert fake.received(user) == []
    assert fake.texts(group) == ["ご相談は1対1のトークで受け付けています。個別にメッセージを送ってください。"]


async def test_unknown_and_standby_events_are_done_without_a_reply(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime
) -> None:
    user = user_id()
    await harness.send("unknown_type", user=user)
    await harness.post(encode(webhook("standby", user=user)))
    await harness.drain()
    assert fake.received(user) == []
    with runtime.sessions() as s:
        assert [e.status for e in s.exec(select(InboundEvent))] == ["done", "done"]


async def test_the_app_answers_from_its_own_loop(fake: FakeLineAPI, settings: Settings, runtime: Runtime) -> None:
    """create_app with LINE configured: the lifespan mounts the route and its inbox loop delivers."""
    line = LineSettings(channel_secret=SECRET, channel_access_token=fake.token, api_base_url=fake.url)
    app = create_app(settings.model_copy(update={"line": line}), runtime=runtime)
    user = user_id()
    body = encode(webhook("text", user=user, reply_token=fake.issue_token(user)))
    from handlers.channels.line import sign

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.post(
                "/webhooks/line", content=body, headers={"x-line-signature": sign(SECRET, body)}
            )
            assert response.status_code == 200
            await _until(lambda: bool(fake.texts(user)))
    assert "偶数月" in fake.texts(user)[0]


async def _until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _open_case(runtime: Runtime, user: str) -> int:
    """A case for `user` (as after consent), so staff can write to them."""
    with runtime.sessions() as s:
        contact = s.exec(select(Contact).where(Contact.external_id == user)).one()
        case = crud.create_case(s, contact=contact, lang="ja", topic=None)
        s.commit()
        assert case.id is not None
        return case.id
