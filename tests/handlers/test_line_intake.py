"""Hostile but correctly signed webhooks on both databases (review F4, F9, F10): text the database cannot
store, wrong shapes anywhere, values out of range. Each gets 400 or 200-and-ignored (or is cleaned and
answered), never a 500, and never fails its neighbours; what fails in processing is counted for staff."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import select

from bot.runtime import Runtime
from bot.settings import Settings
from storage import queue
from storage.models import EventStatus, InboundEvent
from tests.e2e.kit import session_for, staffed_console
from tests.fakes.line_api import FakeLineAPI, LineHarness, encode, user_id, webhook


@pytest.fixture
async def harness(fake: FakeLineAPI, settings: Settings, runtime: Runtime) -> AsyncIterator[LineHarness]:
    h = LineHarness(fake, settings, runtime)
    yield h
    await h.aclose()


def stored(runtime: Runtime) -> list[InboundEvent]:
    with runtime.sessions() as s:
        return list(s.exec(select(InboundEvent).order_by(InboundEvent.id)))  # type: ignore[arg-type]


def failed_events(runtime: Runtime) -> int:
    with runtime.sessions() as s:
        return queue.failed_event_count(s)


def raw_text_body(user: str, token: str, text_json: str) -> bytes:
    """A text-message webhook whose text is given as raw JSON (so escapes such as \\ud800 survive)."""
    body = webhook("text", user=user, reply_token=token, text="PLACEHOLDER")
    return encode(body).replace(b'"PLACEHOLDER"', text_json.encode())


# ----- F4: text the database cannot store


@pytest.mark.parametrize(
    "text_json",
    [
        r'"\ud800"',  # a lone high surrogate
        r'"児童手当\udfff"',  # a lone low surrogate after real text
        r'"\u0000児童手当"',  # NUL: PostgreSQL text cannot hold it
        r'"\ud83d\ude00 \ud83d"',  # a valid pair (kept) and a broken one
    ],
)
async def test_unencodable_text_is_cleaned_at_intake_and_answered(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime, text_json: str
) -> None:
    user = user_id()
    response = await harness.post(raw_text_body(user, fake.issue_token(user), text_json))
    assert response.status_code == 200
    (row,) = stored(runtime)
    row.payload.encode("utf-8")  # storable as it is
    assert "\x00" not in json.loads(row.payload)["message"]["text"]
    await harness.drain()
    assert len(fake.received(user)) >= 1
    assert failed_events(runtime) == 0


@pytest.fixture
def poison_key(db: Engine) -> Iterator[str]:
    """The database itself refuses one event key (a real constraint, as a full disk or a bad row would)."""
    key = "POISON0000000000000000000A"
    with db.begin() as conn:
        if db.dialect.name == "postgresql":
            conn.execute(text(f"ALTER TABLE inboundevent ADD CONSTRAINT test_poison CHECK (event_key <> '{key}')"))
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER test_poison BEFORE INSERT ON inboundevent "
                    f"WHEN NEW.event_key = '{key}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
    try:
        yield key
    finally:
        with db.begin() as conn:
            if db.dialect.name == "postgresql":
                conn.execute(text("ALTER TABLE inboundevent DROP CONSTRAINT test_poison"))
            else:
                conn.execute(text("DROP TRIGGER test_poison"))


async def test_one_webhook_the_database_refuses_does_not_fail_its_neighbours(
    harness: LineHarness, runtime: Runtime, poison_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    users = [user_id() for _ in range(40)]
    bodies = [encode(webhook("text", user=u)) for u in users]
    bodies.insert(20, encode(webhook("text", user=user_id(), webhook_event_id=poison_key)))
    with caplog.at_level(logging.INFO):
        responses = await asyncio.gather(*(harness.post(b) for b in bodies))
    codes = [r.status_code for r in responses]
    assert codes[20] == 503
    assert codes[:20] + codes[21:] == [200] * 40
    assert {r.sender_key for r in stored(runtime)} == {f"line:{u}" for u in users}
    assert "storing each alone" in caplog.text  # they were written together, then one by one


# ----- F9: wrong shapes anywhere


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": [value]}
    return value


SHAPES: dict[str, Any] = {
    "source is a string": {"source": "U" + "0" * 32},
    "source is a list": {"source": ["user"]},
    "source is a number": {"source": 7},
    "userId is a number": {"source": {"type": "user", "userId": 12345}},
    "userId is an object": {"source": {"type": "user", "userId": {"id": "U1"}}},
    "deliveryContext is a string": {"deliveryContext": "redelivery"},
    "deliveryContext is a list": {"deliveryContext": [True]},
    "message is a string": {"message": "児童手当"},
    "message is a list": {"message": [{"type": "text", "text": "児童手当"}]},
    "message text is an object": {"message": {"type": "text", "id": "1", "text": {"t": "児童手当"}}},
    "message type is a number": {"message": {"type": 3, "id": "1"}},
    "mode is a list": {"mode": ["active"]},
    "replyToken is a number": {"replyToken": 42},
    "postback in a message event": {"postback": "data"},
    "timestamp is a string": {"timestamp": "yesterday"},
    "timestamp is a float": {"timestamp": 1.5e12},
    "timestamp is true": {"timestamp": True},
    "deep nesting in the message": {"message": {"type": "text", "id": "1", "text": "a", "x": _nested(200)}},
}


@pytest.mark.parametrize("change", list(SHAPES), ids=list(SHAPES))
async def test_wrong_shapes_are_acknowledged_and_never_fail(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime, change: str
) -> None:
    user = user_id()
    body = webhook("text", user=user, reply_token=fake.issue_token(user))
    body["events"][0].update(SHAPES[change])
    neighbour = user_id()
    body["events"] += webhook("text", user=neighbour, reply_token=fake.issue_token(neighbour))["events"]
    response = await harness.post(encode(body))
    assert response.status_code in (200, 400)
    await harness.drain()
    assert failed_events(runtime) == 0
    assert all(r.status == EventStatus.DONE for r in stored(runtime))
    if response.status_code == 200:
        assert len(fake.received(neighbour)) >= 1  # the well-formed neighbour is answered


@pytest.mark.parametrize("depth", [5_000, 100_000])
async def test_very_deep_nesting_is_400(harness: LineHarness, runtime: Runtime, depth: int) -> None:
    body = b'{"events":[{"type":"message","x":' + b"[" * depth + b"]" * depth + b"}]}"
    response = await harness.post(body)
    assert response.status_code == 400
    assert stored(runtime) == []


# ----- F10: values out of range


@pytest.mark.parametrize("timestamp", [10**20, -1, 0, 2**63, 253_402_300_800_000])
async def test_out_of_range_timestamps_are_dropped_and_the_message_answered(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime, timestamp: int
) -> None:
    user = user_id()
    body = webhook("text", user=user, reply_token=fake.issue_token(user), text="児童手当はいつ振り込まれますか")
    body["events"][0]["timestamp"] = timestamp
    assert (await harness.post(encode(body))).status_code == 200
    await harness.drain()
    assert "偶数月" in fake.texts(user)[0]
    assert failed_events(runtime) == 0


@pytest.mark.parametrize(
    "source",
    [
        {"type": "user", "userId": "U" + "a" * 4999},
        {"type": "group", "groupId": "C" + "b" * 4999, "userId": "U" + "0" * 32},
        {"type": "room", "roomId": "R" + "c" * 300},
    ],
    ids=["userId", "groupId", "roomId"],
)
async def test_over_long_ids_are_refused_at_intake(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime, source: dict[str, str]
) -> None:
    body = webhook("text", user=user_id())
    body["events"][0]["source"] = source
    neighbour = user_id()
    body["events"] += webhook("text", user=neighbour, reply_token=fake.issue_token(neighbour))["events"]
    assert (await harness.post(encode(body))).status_code == 200
    await harness.drain()
    assert [r.sender_key for r in stored(runtime)] == [f"line:{neighbour}"]
    assert failed_events(runtime) == 0 and fake.received(neighbour) != []


async def test_over_long_tokens_event_ids_and_texts_are_clamped(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime
) -> None:
    user = user_id()
    body = webhook("text", user=user, text="児童手当" + "あ" * 50_000)
    body["events"][0]["replyToken"] = "t" * 5000
    body["events"][0]["webhookEventId"] = "E" * 5000
    assert (await harness.post(encode(body))).status_code == 200
    await harness.drain()
    (row,) = stored(runtime)
    assert row.status == EventStatus.DONE and len(row.event_key) <= 255
    assert len(fake.received(user)) >= 1  # by push: the over-long token was dropped
    assert failed_events(runtime) == 0


# ----- failed events are shown to staff


async def test_events_given_up_are_counted_in_the_console_header(settings: Settings) -> None:
    async with staffed_console(settings, ("sato", "concierge")) as app:
        rt = app.state.runtime
        from handlers.inbox import Inbox, IncomingEvent

        inbox = Inbox(rt.sessions, rt.engine, {"line": harness_adapter()}, max_attempts=1)
        inbox.accept("line", [IncomingEvent("bad-1", "line:U1", "{not json"), IncomingEvent("bad-2", "line:U2", "[")])
        await inbox.drain()
        with rt.sessions() as s:
            assert queue.failed_event_count(s) == 2
        async with await session_for(app, "sato") as me:
            page = await me.client.get("/cases")
        assert page.status_code == 200
        assert "処理できなかった受信 2件" in page.text


def harness_adapter() -> Any:
    from handlers.channels.line import LineAdapter

    return LineAdapter("unused-token", api_base_url="http://127.0.0.1:9")


# ----- F15: crisis words are looked at on intake


async def test_a_line_message_with_crisis_words_goes_to_the_crisis_lane(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime
) -> None:
    calm, worried = user_id(), user_id()
    body = webhook("text", user=calm, text="キッズプラザの料金は？")
    body["events"] += webhook("text", user=worried, text="もう死にたい")["events"]
    assert (await harness.post(encode(body))).status_code == 200
    assert {r.sender_key: r.lane for r in stored(runtime)} == {
        f"line:{calm}": queue.NORMAL_LANE,
        f"line:{worried}": queue.CRISIS_LANE,
    }
