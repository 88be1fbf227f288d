"""Replies by SMTP to a real aiosmtpd server: headers for threading and loop safety, readable Japanese text,
and which SMTP failures are worth another try."""

from __future__ import annotations

from collections.abc import Iterator
from email.header import decode_header, make_header

import pytest
from sqlmodel import select

from bot.settings import EmailSettings, Settings
from handlers.channels.email import EmailAdapter, Thread
from handlers.types import Choice, ContactCard, Delivery, DeliveryError, Reply, ReplyKind
from storage.db import SessionFactory, make_engine, session_factory
from storage.migrate import upgrade
from storage.models import OutboundMessage
from tests.fakes.mailservers import CONCIERGE, SMTPSink, free_port

PARENT = "hanako@example.jp"


@pytest.fixture(scope="module")
def mail_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionFactory]:
    """A real (SQLite) database: a delivery carries its thread, and afterwards leaves the sent mail's headers
    on its outbound row for the next reply to follow."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('mail') / 'concierge.db'}")
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def smtp() -> Iterator[SMTPSink]:
    sink = SMTPSink(username="bot", password="smtp-secret").start()
    yield sink
    sink.stop()


def adapter_for(port: int, sessions: SessionFactory, **overrides: object) -> EmailAdapter:
    values: dict[str, object] = {
        "email_address": CONCIERGE,
        "imap_host": "127.0.0.1",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_user": "bot",
        "smtp_password": "smtp-secret",
        "smtp_security": "none",
        "email_max_replies_per_hour": 0,  # the loop guard reads the database: tested in test_email_guard.py
    }
    values.update(overrides)
    settings = EmailSettings(**values)  # type: ignore[arg-type]
    questions = {"kidsplaza-hours": "キッズプラザの開館時間と休館日は？"}
    names = Settings(_env_file=None).deployment_names()  # type: ignore[call-arg]
    return EmailAdapter(settings, sessions, question_for=lambda entry, lang: questions.get(entry), office_names=names)


def thread(**overrides: object) -> str:
    values: dict[str, object] = {
        "message_id": "<p2@example.jp>",
        "references": ("<p1@example.jp>", "<kc.reply.aaa@kodomo.example.jp>"),
        "subject": "キッズプラザについて",
        "address": PARENT,
        "lang": "ja",
    }
    values.update(overrides)
    return Thread(**values).to_json()  # type: ignore[arg-type]


def delivery(
    *replies: Reply, context: str | None = None, key: str = "0b7f3c1e-1111-4222-8333-944455556666"
) -> Delivery:
    return Delivery(recipient=PARENT, replies=list(replies), retry_key=key, context=context)


def header(value: object) -> str:
    return str(make_header(decode_header(str(value))))


ANSWER = Reply(
    ReplyKind.ANSWER,
    "開館時間は9時から18時です。\n\n最新の情報は各窓口でご確認ください",
    choices=(Choice("キッズプラザの開館時間と休…", "faq:kidsplaza-hours"), Choice("相談員と話す", "handoff:events")),
    contacts=(ContactCard("はこだてキッズプラザ", phone="0138-00-0000", hours="9:00〜18:00"),),
    entry_id="kidsplaza-fees",
)
CONSENT = Reply(
    ReplyKind.CONSENT,
    "記録に同意していただけますか？",
    choices=(Choice("はい（同意する）", "consent:yes"), Choice("いいえ", "consent:no")),
)


async def test_an_answer_goes_out_in_the_parents_thread(smtp: SMTPSink, mail_db: SessionFactory) -> None:
    await adapter_for(smtp.port, mail_db).deliver(delivery(ANSWER, context=thread()))
    (mail,) = await smtp.wait_for(1)
    assert mail.mail_from == CONCIERGE and mail.rcpt_tos == [PARENT]
    assert smtp.recorder.logins == ["bot"]
    msg = mail.message
    assert header(msg["Subject"]) == "Re: キッズプラザについて"
    assert msg["In-Reply-To"] == "<p2@example.jp>"
    assert str(msg["References"]).split() == ["<p1@example.jp>", "<kc.reply.aaa@kodomo.example.jp>", "<p2@example.jp>"]
    assert str(msg["Message-ID"]) == "<kc.reply.0b7f3c1e111142228333944455556666@kodomo.example.jp>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["From"].addresses[0].addr_spec == CONCIERGE
    # Python's parser puts a space between the two encoded words of the long name; mail clients do not.
    assert msg["From"].addresses[0].display_name.replace(" ", "") == "はこだてキッズプラザ子育て支援コンシェルジュ"
    assert msg["To"].addresses[0].addr_spec == PARENT
    text = mail.text
    assert "開館時間は9時から18時です。" in text
    assert "■ はこだてキッズプラザ\n  TEL: 0138-00-0000" in text
    assert "・キッズプラザの開館時間と休館日は？" in text  # the full question, not the 20-character label
    assert "「相談員と話したい」とご返信ください" in text
    assert "[1]" not in text  # no buttons to press in a mail
    assert text.rstrip().endswith("このメールに返信して、続けてご質問いただけます。")


async def test_the_consent_question_asks_for_a_written_yes_or_no(smtp: SMTPSink, mail_db: SessionFactory) -> None:
    await adapter_for(smtp.port, mail_db).deliver(delivery(CONSENT, context=thread()))
    (mail,) = await smtp.wait_for(1)
    assert "「はい」か「いいえ」とご返信ください" in mail.text
    assert str(mail.message["Message-ID"]).startswith("<kc.consent.")


async def test_english_replies_get_english_instructions(smtp: SMTPSink, mail_db: SessionFactory) -> None:
    consent = Reply(ReplyKind.CONSENT, "Do you agree?", choices=CONSENT.choices, lang="en")
    await adapter_for(smtp.port, mail_db).deliver(delivery(consent, context=thread(lang="en")))
    (mail,) = await smtp.wait_for(1)
    assert 'Please reply "yes" or "no"' in mail.text
    assert mail.message["Content-Language"] == "en"


async def test_re_is_never_doubled_and_long_reference_chains_are_trimmed(
    smtp: SMTPSink, mail_db: SessionFactory
) -> None:
    refs = tuple(f"<r{i}@example.jp>" for i in range(30))
    await adapter_for(smtp.port, mail_db).deliver(delivery(ANSWER, context=thread(subject="保育園", references=refs)))
    (mail,) = await smtp.wait_for(1)
    assert header(mail.message["Subject"]) == "Re: 保育園"
    chain = str(mail.message["References"]).split()
    assert len(chain) == 10 and chain[0] == "<r0@example.jp>" and chain[-1] == "<p2@example.jp>"


async def test_a_staff_reply_without_a_known_thread_starts_a_clear_fresh_mail(
    smtp: SMTPSink, mail_db: SessionFactory
) -> None:
    staff = Reply(ReplyKind.INFO, "担当の佐藤です。明日お電話します。", meta={"case_id": "3", "from": "staff"})
    adapter = adapter_for(smtp.port, mail_db)
    adapter._last_thread = lambda recipient: None  # type: ignore[method-assign]
    await adapter.deliver(delivery(staff))
    (mail,) = await smtp.wait_for(1)
    msg = mail.message
    assert header(msg["Subject"]) == "子育て支援コンシェルジュからのご連絡"
    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert msg["Auto-Submitted"] is None  # a person wrote it
    assert "担当の佐藤です。" in mail.text and "このメールに返信してお返事いただけます。" in mail.text


@pytest.mark.parametrize(
    ("response", "retry"),
    [
        ("451 4.3.0 Try again later", True),
        ("452 4.3.1 Insufficient system storage", True),
        ("550 5.1.1 Mailbox unavailable", False),
        ("554 5.7.1 Rejected", False),
    ],
)
async def test_smtp_failures(smtp: SMTPSink, response: str, retry: bool, mail_db: SessionFactory) -> None:
    smtp.fail_next(response)
    with pytest.raises(DeliveryError) as err:
        await adapter_for(smtp.port, mail_db).deliver(delivery(ANSWER, context=thread()))
    assert err.value.retry is retry
    assert err.value.reason == f"SMTP {response[:3]}"
    assert PARENT not in err.value.reason


async def test_a_server_that_is_down_is_worth_another_try(mail_db: SessionFactory) -> None:
    with pytest.raises(DeliveryError) as err:
        await adapter_for(free_port(), mail_db).deliver(delivery(ANSWER, context=thread()))
    assert err.value.retry is True


async def test_wrong_smtp_credentials_are_permanent(smtp: SMTPSink, mail_db: SessionFactory) -> None:
    with pytest.raises(DeliveryError) as err:
        await adapter_for(smtp.port, mail_db, smtp_password="wrong").deliver(delivery(ANSWER, context=thread()))
    assert err.value.retry is False and err.value.reason == "SMTP 535"


async def test_a_recipient_that_is_not_an_address_is_refused(smtp: SMTPSink, mail_db: SessionFactory) -> None:
    bad = Delivery(recipient="hanako@example.jp\r\nBcc: x@example.com", replies=[ANSWER], retry_key="k")
    with pytest.raises(DeliveryError) as err:
        await adapter_for(smtp.port, mail_db).deliver(bad)
    assert err.value.retry is False
    assert smtp.received == []


async def test_the_sent_mails_headers_are_kept_for_the_next_reply(smtp: SMTPSink, mail_db: SessionFactory) -> None:
    key = "0b7f3c1e-1111-4222-8333-000000000001"
    with mail_db() as s:
        s.add(OutboundMessage(channel="email", recipient=PARENT, payload="[]", retry_key=key))
        s.commit()
    await adapter_for(smtp.port, mail_db).deliver(delivery(ANSWER, context=thread(), key=key))
    with mail_db() as s:
        row = s.exec(select(OutboundMessage).where(OutboundMessage.retry_key == key)).one()
    (mail,) = await smtp.wait_for(1)
    kept = Thread.from_json(row.context)
    assert kept is not None and kept.message_id == mail.message["Message-ID"]
    assert "<p2@example.jp>" in kept.references
