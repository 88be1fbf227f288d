"""What a parent writes by mail is never dropped (telegram-email review findings 1, 8, 10): the loop guard only
holds back the bot's own automatic answers, and staff see that it did; a crisis always gets the numbers; the
consent question and case notices are not loop traffic; 「はい」 above a Japanese signature is a yes, in
ISO-2022-JP and UTF-8; reply mails are wrapped for mail clients. Real Dovecot and SMTP, both databases."""

from __future__ import annotations

import unicodedata

import pytest
from pydantic import SecretStr
from sqlmodel import select

from bot.runtime import Runtime
from bot.settings import EmailSettings, Settings
from handlers.channels.email import EmailAdapter, wrap_flowed, wrap_line
from handlers.types import Delivery, Reply, ReplyKind
from storage import crud
from storage.models import Case, ConsentStatus, Contact, ConversationStateName, Message, StaffAlert
from tests.fakes.mailservers import Dovecot, Received, SMTPSink, new_mail, reply_to, unflow
from tests.handlers.test_email_flow import _done, _until, dovecot, email_settings, running, smtp, staff_reply

__all__ = ["dovecot", "smtp"]  # fixtures shared with test_email_flow

PARENT = "sakura@example.jp"


def capped(settings: Settings, dovecot: Dovecot, smtp: SMTPSink, limit: int) -> Settings:
    return settings.model_copy(update={"email": email_settings(dovecot, smtp, email_max_replies_per_hour=limit)})


def _cases(runtime: Runtime) -> list[Case]:
    with runtime.sessions() as s:
        return list(s.exec(select(Case)).all())


def _transcript(runtime: Runtime, case_id: int | None) -> list[Message]:
    assert case_id is not None
    with runtime.sessions() as s:
        return crud.transcript(s, case_id=case_id)


# ----- the loop guard


async def test_over_the_cap_the_bot_goes_quiet_but_nothing_the_parent_writes_is_dropped(
    settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    async with running(capped(settings, dovecot, smtp, 2), runtime):
        for i, question in enumerate(["保育料はいくらですか", "キッズプラザの開館時間は", "ファミサポの料金は"]):
            dovecot.append(new_mail(question, sender=PARENT, message_id=f"<q-{i}@example.jp>"))
        await smtp.wait_for(2)
        await _until(lambda: _done(runtime) == 3 and len(_held(runtime)) == 1)
        assert len(smtp.received) == 2  # the third answer is held back ...
        (case,) = _cases(runtime)
        (note,) = _transcript(runtime, case.id)
        assert note.delivery == "held" and "自動返信の上限（1時間に2通）" in note.text  # ... and staff see it
        with runtime.sessions() as s:
            assert s.exec(select(StaffAlert.kind).where(StaffAlert.case_id == case.id)).all() == ["new_case"]

        # A crisis after the cap: stored, on the case, urgent, and the numbers go out whatever the cap.
        dovecot.append(new_mail("もう死にたいです", sender=PARENT, message_id="<q-3@example.jp>"))
        urgent = (await smtp.wait_for(3))[2]
        assert urgent.rcpt_tos == [PARENT] and "TEL" in urgent.text
        (case,) = _cases(runtime)
        assert case.priority == "urgent"
        assert "もう死にたいです" in [m.text for m in _transcript(runtime, case.id)]

        # The parent writes on: added to the case, a person answers, and the answer goes out.
        dovecot.append(new_mail("今は少し落ち着きました", sender=PARENT, message_id="<q-4@example.jp>"))
        await _until(lambda: "今は少し落ち着きました" in [m.text for m in _transcript(runtime, case.id)])
        await staff_reply(runtime, case.id, "担当の佐藤です。お電話します。")
        reply = (await smtp.wait_for(4))[3]
        assert "担当の佐藤です。お電話します。" in reply.text
    assert len(smtp.received) == 4


async def test_the_consent_question_and_case_notice_are_not_loop_traffic(
    settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    async with running(capped(settings, dovecot, smtp, 1), runtime):
        dovecot.append(new_mail("保育料はいくらですか", sender=PARENT, message_id="<a-1@example.jp>", subject="料金"))
        await smtp.wait_for(1)  # the answer uses the cap up
        dovecot.append(new_mail("相談員と話したいです", sender=PARENT, message_id="<a-2@example.jp>"))
        consent = (await smtp.wait_for(2))[1]
        assert "「はい」か「いいえ」" in consent.text
        dovecot.append(reply_to(consent.message, "はい", sender=PARENT, message_id="<a-3@example.jp>"))
        notice = (await smtp.wait_for(3))[2]
        assert "受付番号" in notice.text
    with runtime.sessions() as s:
        assert not s.exec(select(Message).where(Message.delivery == "held")).all()


async def test_held_answers_alert_staff_once_an_hour_not_per_mail(
    settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    """A looping robot that sets no Auto-Submitted header: answered up to the cap, then one case and one alert,
    however many mails follow."""
    async with running(capped(settings, dovecot, smtp, 1), runtime):
        for i in range(6):
            dovecot.append(new_mail(f"保育料はいくらですか {i}", sender="robot@example.jp", message_id=f"<r-{i}@x.jp>"))
        await _until(lambda: _done(runtime) == 6 and len(_held(runtime)) == 5)
    assert len(smtp.received) == 1
    (case,) = _cases(runtime)
    with runtime.sessions() as s:
        assert s.exec(select(StaffAlert.kind).where(StaffAlert.case_id == case.id)).all() == ["new_case"]


def _held(runtime: Runtime) -> list[Message]:
    with runtime.sessions() as s:
        return list(s.exec(select(Message).where(Message.delivery == "held")).all())


# ----- consent by mail: the first lines the parent wrote

SIGNATURES = [
    "\n\n山田 花子\n090-1234-5678\n株式会社みらい 総務部",
    "\n山田花子\nTEL：0138-00-0000\nhanako@example.jp",
    "\n\n――――――――\n山田 花子（はこだて市）\n携帯: 080-0000-0000",
    "。よろしくお願いします。\n\n山田",
    "\n\n山田花子",
]


@pytest.mark.parametrize("charset", ["iso-2022-jp", "utf-8"])
@pytest.mark.parametrize("signature", SIGNATURES)
@pytest.mark.parametrize(("answer", "granted"), [("はい", True), ("いいえ", False)])
async def test_a_yes_or_no_above_a_japanese_signature_is_read(
    settings: Settings,
    runtime: Runtime,
    dovecot: Dovecot,
    smtp: SMTPSink,
    charset: str,
    signature: str,
    answer: str,
    granted: bool,
) -> None:
    async with running(capped(settings, dovecot, smtp, 5), runtime):
        dovecot.append(new_mail("相談員と話したいです", sender=PARENT, message_id="<k-1@example.jp>", subject="相談"))
        (consent,) = await smtp.wait_for(1)
        raw = reply_to(
            consent.message, answer + signature, sender=PARENT, message_id="<k-2@example.jp>", charset=charset
        )
        assert (b"\x1b$B" in raw) is (charset == "iso-2022-jp")
        dovecot.append(raw)
        outcome = (await smtp.wait_for(2))[1]
    with runtime.sessions() as s:
        contact = s.exec(select(Contact).where(Contact.external_id == PARENT)).one()
        assert contact.id is not None
        record = crud.current_consent(s, contact_id=contact.id)
        state = crud.get_state(s, contact_id=contact.id).state
    assert record is not None
    if granted:
        assert record.status == ConsentStatus.GRANTED and "受付番号" in outcome.text
        assert state == ConversationStateName.HANDOFF and len(_cases(runtime)) == 1
        (case,) = _cases(runtime)
        parent_lines = [m.text for m in _transcript(runtime, case.id) if m.author == "parent"]
        assert parent_lines == ["相談員と話したいです"]  # the signature is not a message
    else:
        assert record.status == ConsentStatus.DECLINED and "受付番号" not in outcome.text
        assert not _cases(runtime)


async def _answer_consent(dovecot: Dovecot, smtp: SMTPSink, body: str) -> Received:
    """Ask for a person, get the consent question, answer it with `body`; the mail that answer brings."""
    dovecot.append(new_mail("相談員と話したいです", sender=PARENT, message_id="<w-1@example.jp>"))
    (consent,) = await smtp.wait_for(1)
    dovecot.append(reply_to(consent.message, body, sender=PARENT, message_id="<w-2@example.jp>"))
    return (await smtp.wait_for(2))[1]


async def test_words_after_the_yes_join_the_case_the_yes_opened(
    settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    async with running(capped(settings, dovecot, smtp, 5), runtime):
        body = "はい\n\n明日の午前中なら電話に出られます。\n\n山田花子\n090-1234-5678"
        notice = await _answer_consent(dovecot, smtp, body)
        assert "受付番号" in notice.text
        await _until(lambda: _done(runtime) == 3)
    (case,) = _cases(runtime)
    parent_lines = [m.text for m in _transcript(runtime, case.id) if m.author == "parent"]
    assert parent_lines == ["相談員と話したいです", "明日の午前中なら電話に出られます。"]
    assert len(smtp.received) == 2  # a person holds the case now: the bot says nothing more


async def test_a_crisis_below_a_yes_still_reaches_the_engine(
    settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    async with running(capped(settings, dovecot, smtp, 5), runtime):
        urgent = await _answer_consent(dovecot, smtp, "はい\n\nもう死にたいです\n\n山田花子\n090-1234-5678")
    assert "TEL" in urgent.text
    (case,) = _cases(runtime)
    assert case.priority == "urgent"


# ----- replies wrapped for mail clients


def _columns(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in line)


async def test_a_long_reply_arrives_wrapped_and_reflows_to_the_original(
    settings: Settings, runtime: Runtime, smtp: SMTPSink
) -> None:
    cfg = EmailSettings(
        email_address="concierge@kodomo.example.jp",
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_user="bot",
        smtp_password=SecretStr("smtp-secret"),
        smtp_security="none",
    )
    adapter = EmailAdapter(cfg, runtime.sessions)
    long_ja = (
        "ファミリー・サポート・センターは、子育ての手助けをしてほしい人（依頼会員）と、手助けをしたい人"
        "（提供会員）が会員になり、地域の中で助け合う仕組みです。保育施設までの送迎や、保護者の病気や"
        "急用のときの預かりなどをお願いできます。利用には事前の会員登録が必要で、登録のときに説明会を"
        "受けていただきます。料金は1時間あたり700円から900円で、時間帯によって変わります。詳しくは"
        "https://hakodate-miraiproject.jp/family-support/very/long/path?with=query&and=more をご覧ください。"
    ) * 2
    english = "The Family Support Center connects parents who need a hand with neighbours who can help. " * 4
    reply = Reply(ReplyKind.ANSWER, f"{long_ja}\n\n{english.strip()}", lang="ja")
    await adapter.deliver(Delivery(PARENT, [reply], "wrap-0001-aaaa-bbbb"))
    (mail,) = await smtp.wait_for(1)
    body = mail.message.get_body(("plain",))
    assert body is not None and body.get_param("format") == "flowed" and body.get_param("delsp") == "yes"
    assert max(_columns(line) for line in mail.lines if "http" not in line) <= 76  # readable without reflowing
    assert max(len(line) for line in mail.lines if not line.isascii()) <= 40
    assert "https://hakodate-miraiproject.jp/family-support/very/long/path?with=query&and=more" in "\n".join(mail.lines)
    assert long_ja in mail.text and english.strip() in mail.text  # a reflowing client shows the original


@pytest.mark.parametrize(
    "text",
    [
        "あ" * 35 + "。" + "い" * 10,  # a closing mark stays on the line it closes
        "あ" * 34 + "「かっこ」の中",  # an opening bracket never ends a line
        "word " * 30,
        "> 引用ではない行\nFrom the start",
        "x" * 120,  # one token longer than a line is left whole
        "",
    ],
)
def test_wrapping_keeps_marks_words_and_round_trips(text: str) -> None:
    flowed = wrap_flowed(text, 70)
    lines = flowed.split("\n")
    assert unflow(lines, delsp=True) == "\n".join(line.rstrip(" ") for line in text.split("\n"))
    for line in lines:
        stripped = line.rstrip(" ")
        assert stripped[:1] not in "。、」）" or not stripped
        assert not stripped.endswith(("「", "（"))
        assert not line.startswith(">") and not line.startswith("From ")
    assert [p for p, _ in wrap_line("x" * 120, 70)] == ["x" * 120]
