"""One contract, every adapter: LINE against the fake LINE API, email against a real local SMTP server,
the console, and the collecting fake. Each parses a stored event into a message, delivers a reply to the
parent it came from, declares its capabilities and names the key erasure finds the parent's events by.
Then the transcript's delivery states (queued until the channel accepted a reply) and a staff reply from the
console's web route reaching a console parent's terminal."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from sqlmodel import select

from bot.runtime import Runtime
from bot.settings import EmailSettings, Settings
from handlers import channels
from handlers.channels import console, line
from handlers.channels.email import EmailAdapter
from handlers.inbox import Inbox, IncomingEvent
from handlers.types import ChannelAdapter, Delivery, DeliveryError, Reply, ReplyKind
from storage import queue
from storage.db import transaction
from storage.models import Message, OutboundMessage
from tests.e2e.kit import parent_opens_case, session_for, staffed_console
from tests.fakes.channel import CollectingChannel
from tests.fakes.line_api import TOKEN, FakeLineAPI
from tests.fakes.mailservers import CONCIERGE, SMTPSink, new_mail

REPLY = Reply(ReplyKind.ANSWER, "開館時間は9時から18時です。")


@dataclass
class Rig:
    adapter: ChannelAdapter
    stored: IncomingEvent  # an event as the channel's intake stores it
    sender: str  # who the event is from
    text: str  # what they wrote
    received: Callable[[], Awaitable[list[str]]]  # texts that reached the parent's side so far


async def line_rig(runtime: Runtime) -> AsyncIterator[Rig]:
    with FakeLineAPI() as api:
        adapter = line.LineAdapter(TOKEN, api_base_url=api.url)
        user = "U" + "a" * 32
        body = {
            "events": [
                {
                    "type": "message",
                    "mode": "active",
                    "webhookEventId": "01HEVENT",
                    "timestamp": 1_764_000_000_000,
                    "source": {"type": "user", "userId": user},
                    "message": {"type": "text", "id": "1", "text": "開館時間は？"},
                }
            ]
        }
        (stored,) = line.split_events(json.dumps(body).encode())

        async def received() -> list[str]:
            return [m["text"] for p in api.pushes for m in p["messages"]]

        yield Rig(adapter, stored, user, "開館時間は？", received)
        await adapter.aclose()


async def email_rig(runtime: Runtime) -> AsyncIterator[Rig]:
    sink = SMTPSink().start()
    try:
        settings = EmailSettings(
            _env_file=None,  # type: ignore[call-arg]
            email_address=CONCIERGE,
            imap_host="127.0.0.1",
            smtp_host="127.0.0.1",
            smtp_port=sink.port,
            smtp_security="none",
            email_max_replies_per_hour=0,
        )
        adapter = EmailAdapter(settings, runtime.sessions)
        parent = "hanako@example.jp"
        raw = new_mail("開館時間は？", sender=parent, message_id="<p1@example.jp>", subject="質問")
        payload = json.dumps({"raw": base64.b64encode(raw).decode(), "uid": 1, "uidvalidity": 1, "size": len(raw)})
        stored = IncomingEvent("mid:p1", adapter.sender_key(parent), payload)

        async def received() -> list[str]:
            return [m.text for m in sink.received]

        yield Rig(adapter, stored, parent, "開館時間は？", received)
    finally:
        sink.stop()


async def console_rig(runtime: Runtime) -> AsyncIterator[Rig]:
    out = io.StringIO()
    adapter = console.ConsoleAdapter(out, sender_id="p-term")

    async def received() -> list[str]:
        return [out.getvalue()] if out.getvalue() else []

    yield Rig(adapter, adapter.event("開館時間は？\n"), "p-term", "開館時間は？", received)


async def collecting_rig(runtime: Runtime) -> AsyncIterator[Rig]:
    adapter = CollectingChannel()
    stored = IncomingEvent("e1", adapter.sender_key("u1"), json.dumps({"sender": "u1", "text": "開館時間は？"}))

    async def received() -> list[str]:
        return [r.text for d in adapter.delivered for r in d.replies]

    yield Rig(adapter, stored, "u1", "開館時間は？", received)


RIGS = {"line": line_rig, "email": email_rig, "console": console_rig, "collecting": collecting_rig}


@pytest.fixture(params=sorted(RIGS))
async def rig(request: pytest.FixtureRequest, runtime: Runtime) -> AsyncIterator[Rig]:
    async for made in RIGS[request.param](runtime):
        yield made


async def test_parses_a_stored_event(rig: Rig) -> None:
    message = rig.adapter.parse_event(rig.stored.payload).message
    assert message is not None
    assert message.channel == rig.adapter.name and message.sender_id == rig.sender
    assert rig.text in (message.text or "")


async def test_delivers_a_reply_to_the_sender(rig: Rig) -> None:
    await rig.adapter.deliver(Delivery(recipient=rig.sender, replies=[REPLY], retry_key="0b7f3c1e-1111-4222-8333-9444"))
    got = await rig.received()
    assert got and any("開館時間は9時から18時です。" in text for text in got)


async def test_declares_its_capabilities(rig: Rig) -> None:
    caps = rig.adapter.capabilities
    assert caps.channel == rig.adapter.name and caps.label
    assert caps.max_text > 0 and caps.max_label > 0 and caps.bulk >= 0
    assert not caps.broadcast or caps.bulk > 1
    if rig.adapter.name in channels.REGISTRY:  # what the console, Telegram and notices read
        assert channels.capabilities(rig.adapter.name) == caps
        assert channels.label(rig.adapter.name) == caps.label


async def test_names_the_key_erasure_finds_a_contacts_events_by(rig: Rig) -> None:
    assert rig.stored.sender_key == rig.adapter.sender_key(rig.sender)
    if rig.adapter.name in channels.REGISTRY:
        assert channels.sender_key(rig.adapter.name, rig.sender) == rig.stored.sender_key
    assert channels.sender_key("office", "anyone") is None  # no channel of ours: no events to find


# ----- the transcript says sent only when the channel accepted the reply


def bot_lines(runtime: Runtime) -> list[Message]:
    with runtime.sessions() as s:
        rows = s.exec(select(Message).where(Message.author == "bot").order_by(Message.id))  # type: ignore[arg-type]
        return list(rows)


CRISIS = "子どもを叩いてしまいそうで怖い"


def crisis_event(key: str) -> IncomingEvent:
    payload = json.dumps({"sender": "u-crisis", "text": CRISIS})
    return IncomingEvent(key, CollectingChannel.sender_key("u-crisis"), payload, text=CRISIS)


async def test_an_urgent_reply_is_queued_until_the_channel_takes_it(runtime: Runtime) -> None:
    channel = CollectingChannel()
    inbox = Inbox(runtime.sessions, runtime.engine, {"test": channel}, backoff_base=0.0)
    inbox.accept("test", [crisis_event("c1")])
    assert inbox.process_one()
    (line_,) = bot_lines(runtime)
    assert line_.delivery == "pending"  # answered and queued, not yet sent
    assert await inbox.deliver_one()
    assert [m.delivery for m in bot_lines(runtime)] == ["sent"]
    assert channel.delivered and "message_id" in channel.delivered[0].replies[0].meta


async def test_a_reply_the_channel_refused_is_failed_with_its_reason(runtime: Runtime) -> None:
    channel = CollectingChannel()
    channel.failures.append(DeliveryError("push 400", retry=False))
    inbox = Inbox(runtime.sessions, runtime.engine, {"test": channel}, backoff_base=0.0)
    inbox.accept("test", [crisis_event("c2")])
    await inbox.drain()
    (line_,) = bot_lines(runtime)
    assert line_.delivery == "failed"
    with runtime.sessions() as s:
        assert queue.delivery_errors(s, message_ids=[line_.id or 0]) == {line_.id: "push 400"}


# ----- a console parent receives a staff reply


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with staffed_console(settings, ("sato", "concierge")) as a:
        yield a


async def test_a_staff_reply_from_the_web_console_reaches_the_console_parents_terminal(app: FastAPI) -> None:
    rt = app.state.runtime
    case_id = parent_opens_case(rt.engine, "p-term")
    out = io.StringIO()
    terminal = Inbox(rt.sessions, rt.engine, {"console": console.ConsoleAdapter(out, sender_id="p-term")})
    me = await session_for(app, "sato")
    async with me:
        r = await me.post(f"/cases/{case_id}/reply", {"text": "保育士の佐藤です。お話を聞かせてください。"})
        assert r.status_code in (200, 303)
    await terminal.drain()
    assert "staff> 保育士の佐藤です。お話を聞かせてください。" in out.getvalue()
    with transaction(rt.sessions) as s:
        staff_line = s.exec(select(Message).where(Message.author == "staff:sato")).one()
        assert staff_line.delivery == "sent"
        assert s.exec(select(OutboundMessage).where(OutboundMessage.channel == "console")).one().status == "done"
