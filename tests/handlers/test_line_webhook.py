"""The LINE webhook route on both databases: verify the raw body, store the events, acknowledge."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from bot.runtime import Runtime
from bot.settings import Settings
from handlers.channels.line import LOADING_DELAY, MAX_LOADING_PER_SECOND
from storage.db import make_engine, session_factory
from storage.models import InboundEvent
from tests.fakes.line_api import FakeLineAPI, LineHarness, encode, event_id, group_id, user_id, webhook


@pytest.fixture
async def harness(fake: FakeLineAPI, settings: Settings, runtime: Runtime) -> AsyncIterator[LineHarness]:
    h = LineHarness(fake, settings.model_copy(update={"max_body_bytes": 64_000}), runtime)
    yield h
    await h.aclose()


def stored(runtime: Runtime) -> list[InboundEvent]:
    with runtime.sessions() as s:
        return list(s.exec(select(InboundEvent).order_by(InboundEvent.id)))  # type: ignore[arg-type]


async def test_signed_events_are_stored_and_acknowledged(harness: LineHarness, runtime: Runtime) -> None:
    user = user_id()
    body = webhook("text", user=user)
    body["events"] += webhook("sticker", user=user)["events"]
    response = await harness.post(encode(body))
    assert response.status_code == 200
    rows = stored(runtime)
    assert [(r.channel, r.sender_key, r.status) for r in rows] == [("line", f"line:{user}", "pending")] * 2
    assert [r.event_key for r in rows] == [e["webhookEventId"] for e in body["events"]]


@pytest.mark.parametrize("signature", [None, "", "AAAA", "wrong-secret"])
async def test_bad_or_missing_signature_is_400_and_nothing_is_stored(
    harness: LineHarness, runtime: Runtime, signature: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    user = user_id()
    body = encode(webhook("text", user=user))
    if signature == "wrong-secret":
        from handlers.channels.line import sign

        signature = sign("wrong-secret", body)
    with caplog.at_level(logging.INFO):
        response = await harness.post(body, signature=signature)
    assert response.status_code == 400
    assert stored(runtime) == []
    logged = caplog.text
    assert "signature" in logged
    assert user not in logged and "児童手当" not in logged


async def test_malformed_json_with_a_valid_signature_is_400_with_a_clear_error(
    harness: LineHarness, runtime: Runtime
) -> None:
    for body in (b'{"events": [', b'{"destination": "U1"}', b'{"events": [{"type": 1}]}'):
        response = await harness.post(body)
        assert response.status_code == 400
        assert response.json()["error"].startswith("malformed webhook body")
    assert stored(runtime) == []


async def test_oversize_bodies_are_413_before_being_read_whole(harness: LineHarness, runtime: Runtime) -> None:
    big = encode(webhook("text", text="あ" * 30_000))  # ~90 KB of UTF-8 over the 64 KB limit
    response = await harness.post(big)
    assert response.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused while streaming
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    from handlers.channels.line import WEBHOOK_PATH, sign

    headers = {"x-line-signature": sign("test-channel-secret", big), "content-type": "application/json"}
    response = await harness.client.post(WEBHOOK_PATH, content=chunks(), headers=headers)
    assert response.status_code == 413
    assert stored(runtime) == []


async def test_the_console_verify_request_is_acknowledged(harness: LineHarness, runtime: Runtime) -> None:
    response = await harness.post(b'{"destination":"Uf0e1d2c3b4a5968778695a4b3c2d1e0f","events":[]}')
    assert response.status_code == 200
    assert stored(runtime) == []


async def test_a_redelivered_event_is_stored_once(harness: LineHarness, runtime: Runtime) -> None:
    user, eid = user_id(), event_id()
    await harness.post(encode(webhook("text", user=user, webhook_event_id=eid)))
    again = await harness.post(encode(webhook("redelivery", user=user, webhook_event_id=eid)))
    assert again.status_code == 200
    assert len(stored(runtime)) == 1


async def test_loading_animation_is_requested_for_one_to_one_messages_only(
    harness: LineHarness, fake: FakeLineAPI
) -> None:
    user, other = user_id(), user_id()
    await harness.send("text", user=user)
    await harness.send("group_message", user=other, group=group_id())
    await harness.send("follow", user=other)
    await harness.send("redelivery", user=other)
    assert fake.loading == []  # not at once: a quick answer needs no animation
    for _ in range(150):
        if fake.loading:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert fake.loading == [{"chatId": user, "loadingSeconds": 10}]


async def test_a_message_answered_within_the_delay_gets_no_loading_animation(
    harness: LineHarness, fake: FakeLineAPI
) -> None:
    answered, waiting = user_id(), user_id()
    await harness.send("text", user=answered, text="キッズプラザの料金")
    await harness.inbox.drain()  # answered at once
    await harness.send("text", user=waiting, text="キッズプラザの料金")  # still in the queue after the delay
    for _ in range(int((LOADING_DELAY + 10) / 0.02)):  # polled: the delay passes, then the animation is asked for
        if fake.loading:
            break
        await asyncio.sleep(0.02)
    assert [call["chatId"] for call in fake.loading] == [waiting]
    assert fake.received(answered)  # the answer went out without an animation before it


async def test_the_ack_does_not_wait_for_a_slow_loading_animation(harness: LineHarness, fake: FakeLineAPI) -> None:
    fake.stall_next(1.5, path="/v2/bot/chat/loading")
    started = asyncio.get_running_loop().time()
    await harness.send("text", user=user_id())
    assert asyncio.get_running_loop().time() - started < 1.0


async def test_storage_failure_is_503_without_content_in_the_log(
    harness: LineHarness, caplog: pytest.LogCaptureFixture
) -> None:
    user = user_id()
    body = webhook("text", user=user, text="秘密の相談内容")
    dead = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/unreachable")  # a database that is down
    harness.inbox.sessions = session_factory(dead)
    with caplog.at_level(logging.INFO):
        response = await harness.post(encode(body))
    dead.dispose()
    assert response.status_code == 503
    assert "秘密" not in caplog.text and user not in caplog.text


async def test_concurrent_webhooks_are_all_stored_and_a_duplicate_among_them_once(
    harness: LineHarness, runtime: Runtime
) -> None:
    users = [user_id() for _ in range(5)]
    bodies = [encode(webhook("text", user=u, webhook_event_id=f"EV{i:024d}")) for i, u in enumerate(users * 4)]
    bodies.append(bodies[3])  # LINE redelivering while the original is still being stored
    responses = await asyncio.gather(*(harness.post(b) for b in bodies))
    assert {r.status_code for r in responses} == {200}
    rows = stored(runtime)
    assert len(rows) == 20 and len({r.event_key for r in rows}) == 20


async def test_a_burst_asks_for_the_loading_animation_at_a_bounded_rate(
    harness: LineHarness, fake: FakeLineAPI
) -> None:
    harness.adapter.show_loading([user_id() for _ in range(100)])
    for _ in range(100):
        if len(fake.loading) >= MAX_LOADING_PER_SECOND:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    assert len(fake.loading) == MAX_LOADING_PER_SECOND  # the rest of the burst goes without an animation
