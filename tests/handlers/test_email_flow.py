"""Conversations by email through the real app on both databases: Dovecot in, the engine and queue, aiosmtpd
out. Threads, consent by a written 「はい」, a concierge reply in the same thread, limits, and restarts."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.app import create_app
from bot.runtime import Runtime
from bot.settings import EmailSettings, Settings
from handlers import staff
from handlers.channels.email import EmailAdapter, MailPoller
from handlers.inbox import Inbox
from storage import crud, queue
from storage.db import transaction
from storage.models import EventStatus, InboundEvent, Message, OutboundMessage
from tests.e2e.kit import settle
from tests.fakes.mailservers import (
    CONCIERGE,
    PASSWORD,
    USER,
    Dovecot,
    Received,
    SMTPSink,
    fixture_mail,
    new_mail,
    reply_to,
    shared_dovecot,
)

PARENT = "sakura@example.jp"


@pytest.fixture
def dovecot() -> Dovecot:
    d = shared_dovecot()
    d.reset()
    return d


@pytest.fixture
def smtp() -> Iterator[SMTPSink]:
    sink = SMTPSink(username="bot", password="smtp-secret").start()
    yield sink
    sink.stop()


def email_settings(d: Dovecot, smtp: SMTPSink, **overrides: object) -> EmailSettings:
    values: dict[str, object] = {
        "email_address": CONCIERGE,
        "imap_host": d.host,
        "imap_port": d.port,
        "imap_user": USER,
        "imap_password": PASSWORD,
        "imap_security": "none",
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_user": "bot",
        "smtp_password": "smtp-secret",
        "smtp_security": "none",
        "email_poll_seconds": 30.0,
    }
    values.update(overrides)
    return EmailSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def app_settings(settings: Settings, dovecot: Dovecot, smtp: SMTPSink) -> Settings:
    return settings.model_copy(update={"email": email_settings(dovecot, smtp)})


@asynccontextmanager
async def running(settings: Settings, runtime: Runtime) -> AsyncIterator[None]:
    """The whole app (lifespan: inbox loop, email intake task), as `concierge serve` runs it."""
    app = create_app(settings, runtime=runtime)
    async with app.router.lifespan_context(app):
        yield
        await _until(lambda: _quiet(runtime))  # stop between turns, as a deliberate restart would
    # The lifespan cancels the inbox loop, which may leave a worker thread finishing a query: let it end
    # before the test's database engine is disposed.
    await asyncio.to_thread(settle)


def subject(mail: Received) -> str:
    return str(make_header(decode_header(str(mail.message["Subject"]))))


def ids(mail: Received, name: str) -> list[str]:
    return str(mail.message.get(name, "")).split()


def message_id(mail: Received) -> str:
    return str(mail.message["Message-ID"]).strip()


def with_thread(raw: bytes, parent: EmailMessage) -> bytes:
    """A fixture mail made into a reply to `parent`, as the parent's mail client would thread it."""
    from email import message_from_bytes, policy

    msg = message_from_bytes(raw, policy=policy.compat32)
    refs = f"{parent.get('References', '')} {parent['Message-ID']}".split()
    msg["In-Reply-To"] = str(parent["Message-ID"]).strip()
    msg["References"] = " ".join(refs)
    return msg.as_bytes()


async def test_a_thread_of_three_mails_is_answered_in_the_thread(
    app_settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    async with running(app_settings, runtime):
        dovecot.append(fixture_mail("thread-1.eml"))
        (first,) = await smtp.wait_for(1)
        assert first.rcpt_tos == [PARENT] and first.mail_from == CONCIERGE
        assert subject(first) == "Re: キッズプラザについて"
        assert ids(first, "In-Reply-To") == ["<thread-0001@example.jp>"]
        assert first.message["Auto-Submitted"] == "auto-replied"
        assert "出典：" in first.text  # a KB answer, with its source

        dovecot.append(with_thread(fixture_mail("thread-2.eml"), first.message))
        second = (await smtp.wait_for(2))[1]
        assert subject(second) == "Re: キッズプラザについて"  # not "Re: Re:"
        assert ids(second, "In-Reply-To") == ["<thread-0002@example.jp>"]
        assert ids(second, "References") == ["<thread-0001@example.jp>", message_id(first), "<thread-0002@example.jp>"]

        dovecot.append(with_thread(fixture_mail("thread-3.eml"), second.message))  # a new subject, same thread
        third = (await smtp.wait_for(3))[2]
        assert subject(third) == "Re: 託児室のこと"
        assert ids(third, "References")[:4] == [*ids(second, "References"), message_id(second)]
        assert ids(third, "References")[-1] == "<thread-0003@example.jp>"
        texts = [first.text, second.text, third.text]
        assert len(set(texts)) == 3  # three different answers

        # A new mail from the same address without references starts a new conversation.
        dovecot.append(
            new_mail("ファミサポの料金はいくらですか", sender=PARENT, message_id="<new-1@example.jp>", subject="料金")
        )
        fourth = (await smtp.wait_for(4))[3]
        assert ids(fourth, "References") == ["<new-1@example.jp>"] and subject(fourth) == "Re: 料金"
    assert all(SEEN_FLAG in flags for _, flags in dovecot.messages())


SEEN_FLAG = b"\\Seen"


async def test_consent_by_mail_then_a_concierge_reply_in_the_same_thread(
    app_settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    parent = "Hanako <Hanako@Example.JP>"
    async with running(app_settings, runtime):
        dovecot.append(new_mail("相談員と話したいです", sender=parent, message_id="<c-1@example.jp>", subject="相談"))
        (consent,) = await smtp.wait_for(1)
        assert "「はい」か「いいえ」とご返信ください" in consent.text
        assert consent.rcpt_tos == ["hanako@example.jp"]

        dovecot.append(reply_to(consent.message, "はい、お願いします。", sender=parent, message_id="<c-2@example.jp>"))
        handoff = (await smtp.wait_for(2))[1]
        assert "受付番号" in handoff.text
        assert "このメールでお返事します" in handoff.text and "トーク" not in handoff.text
        with runtime.sessions() as s:
            (case,) = crud.queue(s)
        assert case.channel == "email"

        await staff_reply(runtime, case.id, "担当の佐藤です。明日お電話します。")
        reply = (await smtp.wait_for(3))[2]
        assert "担当の佐藤です。明日お電話します。" in reply.text
        assert reply.rcpt_tos == ["hanako@example.jp"]
        assert subject(reply) == "Re: 相談"
        assert ids(reply, "In-Reply-To") == [message_id(handoff)]
        assert ids(reply, "References") == [
            "<c-1@example.jp>",
            message_id(consent),
            "<c-2@example.jp>",
            message_id(handoff),
        ]
        assert reply.message["Auto-Submitted"] is None

        # The parent answers the concierge: the engine stays silent and the case transcript has it.
        answer = "ありがとうございます。明日は家にいます。"
        photo = b"\xff\xd8\xff\xe0" + b"0" * 5000
        dovecot.append(reply_to(reply.message, answer, sender=parent, message_id="<c-3@example.jp>", attachment=photo))
        await _until(lambda: _parent_lines(runtime, case.id) >= 2)
        assert len(smtp.received) == 3
    with runtime.sessions() as s:
        texts = [m.text for m in crud.transcript(s, case_id=case.id)]
    assert (
        "ありがとうございます。明日は家にいます。 ［添付ファイル1件を受け取りました（内容は保存していません）］"
        in texts
    )
    assert not any("2026年11月20日" in t or "> " in t for t in texts)  # quotes never reach the transcript


async def staff_reply(runtime: Runtime, case_id: int | None, text: str) -> None:
    """A concierge answers the case from the console (in a worker thread, as the web route does)."""
    assert case_id is not None
    await asyncio.to_thread(staff.reply_to_parent, runtime.sessions, case_id=case_id, text=text, staff="sato")


def _parent_lines(runtime: Runtime, case_id: int | None) -> int:
    with runtime.sessions() as s:
        rows = s.exec(select(Message).where(Message.case_id == case_id, Message.author == "parent")).all()
    return len(rows)


async def test_automated_mail_gets_no_answer(
    app_settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    async with running(app_settings, runtime):
        for name in ("bounce.eml", "autoreply.eml", "list.eml"):
            dovecot.append(fixture_mail(name))
        dovecot.append(new_mail("保育園について", sender=CONCIERGE, message_id="<own@kodomo.example.jp>"))
        dovecot.append(fixture_mail("utf8-base64.eml"))  # a person: the only one answered
        (answer,) = await smtp.wait_for(1)
        await _until(lambda: _done(runtime) == 5)
        assert answer.rcpt_tos == ["taro@example.com"]
    assert len(smtp.received) == 1


async def test_a_sender_gets_at_most_the_hourly_number_of_automatic_replies(
    settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    limited = settings.model_copy(update={"email": email_settings(dovecot, smtp, email_max_replies_per_hour=2)})
    async with running(limited, runtime):
        for i in range(4):
            dovecot.append(new_mail(f"質問{i}です", sender="loop@example.jp", message_id=f"<loop-{i}@example.jp>"))
        await _until(lambda: _done(runtime) == 4)
        await smtp.wait_for(2)
        await _until(lambda: _quiet(runtime))  # every reply delivered or held: a third mail would be out by now
    assert len(smtp.received) == 2


async def test_a_restart_mid_way_loses_nothing_and_answers_nothing_twice(
    app_settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    async with running(app_settings, runtime):
        dovecot.append(fixture_mail("thread-1.eml"))
        await smtp.wait_for(1)
        await _until(lambda: _outbound_statuses(runtime) == {EventStatus.DONE})  # a clean stop, not a crash

    # While the app is down: B was stored by a poller that died before marking it, and a worker died while
    # processing it; C just arrived; a reply to D was claimed by a worker that died before sending it.
    inbox = Inbox(runtime.sessions, runtime.engine, {"email": EmailAdapter(app_settings.email, runtime.sessions)})
    dovecot.append(fixture_mail("utf8-base64.eml"))
    dying = MailPoller(app_settings.email, inbox)
    (uid,) = dying.pending()
    assert dying.store(uid)
    dying.disconnect()
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with transaction(runtime.sessions) as s:
        event = queue.claim_event(s, worker="dead")
        assert event is not None
        s.execute(update(InboundEvent).where(col(InboundEvent.id) == event.id).values(claimed_at=long_ago))
    dovecot.append(fixture_mail("shift_jis.eml"))
    from handlers.types import Reply, ReplyKind, replies_to_json

    with transaction(runtime.sessions) as s:
        row = queue.enqueue_outbound(
            s,
            channel="email",
            recipient="d@example.jp",
            payload=replies_to_json([Reply(ReplyKind.INFO, "Dさんへのお返事")]),
            retry_key="dead-worker-0001",
        )
        row.status = EventStatus.PROCESSING
        row.claimed_at = long_ago
        row.attempts = 1
        s.add(row)

    async with running(app_settings, runtime):
        await smtp.wait_for(4)
        # every event done and every delivery settled: a duplicate would have gone out by now
        await _until(
            lambda: _done(runtime) == 3 and _quiet(runtime) and _outbound_statuses(runtime) == {EventStatus.DONE}
        )
    recipients = sorted(r for m in smtp.received for r in m.rcpt_tos)
    assert recipients == ["d@example.jp", "mayumi.takahashi@example.ne.jp", PARENT, "taro@example.com"]
    assert _outbound_statuses(runtime) == {EventStatus.DONE}
    assert all(SEEN_FLAG in flags for _, flags in dovecot.messages())


def _outbound_statuses(runtime: Runtime) -> set[str]:
    with runtime.sessions() as s:
        return {o.status for o in s.exec(select(OutboundMessage)).all()}


def _quiet(runtime: Runtime) -> bool:
    busy = (EventStatus.PENDING, EventStatus.PROCESSING)
    with runtime.sessions() as s:
        events = s.exec(select(InboundEvent).where(col(InboundEvent.status).in_(busy))).all()
        outbound = s.exec(select(OutboundMessage).where(col(OutboundMessage.status).in_(busy))).all()
    return not events and not outbound


def _done(runtime: Runtime) -> int:
    with runtime.sessions() as s:
        return len(s.exec(select(InboundEvent).where(InboundEvent.status == EventStatus.DONE)).all())


async def _until(check: object, within: float = 15.0) -> None:
    assert callable(check)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")
