"""Who a mail is from (security review F1, F2): the address inside From's <...> and nothing else; several or no
From addresses refused and kept for staff; Authentication-Results trusted only from our own receiving server;
unverified mail never acts as an existing parent; no header we write carries CR or LF. Against the real
Dovecot and SMTP servers on both databases where the flow matters."""

from __future__ import annotations

import base64
import email
from email import policy

import pytest
from sqlmodel import col, select

from bot.runtime import Runtime
from bot.settings import Settings
from handlers.channels import mail_parse
from handlers.channels.email import UNVERIFIED_CONTACT, EmailAdapter, Thread
from handlers.types import Delivery, Reply, ReplyKind
from storage import crud
from storage.models import (
    Case,
    ConsentRecord,
    ConsentStatus,
    Contact,
    ConversationStateName,
    Message,
    OutboundMessage,
    Priority,
    StaffAlert,
)
from tests.fakes.mailservers import CONCIERGE, Dovecot, SMTPSink, new_mail
from tests.handlers.test_email_flow import _done, _until, app_settings, dovecot, email_settings, running, smtp

__all__ = ["app_settings", "dovecot", "smtp"]  # fixtures shared with test_email_flow

PARENT = "sakura@example.jp"
ATTACKER = "attacker@evil.example"
AUTHSERV = "mx.kodomo.example.jp"


def b64(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def raw_mail(from_lines: list[str], *, extra: str = "", body: str = "保育料を教えてください") -> bytes:
    head = "".join(f"From: {v}\r\n" for v in from_lines)
    return (
        f"{head}{extra}To: {CONCIERGE}\r\nSubject: =?utf-8?b?{base64.b64encode('質問'.encode()).decode()}?=\r\n"
        "Message-ID: <m-1@example.jp>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body.encode()


# ----- F1: the structure of From


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (f"{b64(PARENT)} <{ATTACKER}>", PARENT),  # the review's attack: the display name encodes an address
        (f'"{PARENT}" <{ATTACKER}>', PARENT),
        (f"=?ISO-2022-JP?B?{base64.b64encode('山田'.encode('iso2022_jp')).decode()}?= <{ATTACKER}>", "山田"),
        (f"{b64('山田 <' + PARENT + '>')} <{ATTACKER}>", f"山田 <{PARENT}>"),
        (f"{b64('x' + chr(13) + chr(10) + 'Bcc: ' + PARENT)} <{ATTACKER}>", f"x Bcc: {PARENT}"),
        (f"Attacker <{ATTACKER.upper()}>", "Attacker"),
    ],
)
def test_the_sender_is_the_address_in_angle_brackets_never_the_display_name(value: str, name: str) -> None:
    mail = mail_parse.parse_mail(raw_mail([value]))
    assert mail.sender == ATTACKER
    assert mail.display_name == name and "\r" not in mail.display_name and "\n" not in mail.display_name
    assert mail.from_problem is None


def test_a_raw_8bit_display_name_is_decoded_and_the_address_kept() -> None:
    raw = raw_mail(["X"]).replace(b"From: X", "From: 山田花子 <Sakura@Example.JP>".encode())
    mail = mail_parse.parse_mail(raw)
    assert (mail.sender, mail.display_name) == (PARENT, "山田花子")


@pytest.mark.parametrize(
    ("from_lines", "problem"),
    [
        ([f"{PARENT}, {ATTACKER}"], "several"),
        ([PARENT, ATTACKER], "several"),  # two From headers
        ([f"friends: {PARENT}, {ATTACKER};"], "several"),
        ([f"{b64('a')} <{PARENT}>, {b64('b')} <{ATTACKER}>"], "several"),
        ([f"{PARENT} <{ATTACKER}>"], "malformed"),
        ([f"<{PARENT}> <{ATTACKER}>"], "malformed"),
        (['"Broken <sakura@example.jp>'], "malformed"),
        (["undisclosed-recipients"], "malformed"),
        (["<>"], "malformed"),
        ([""], "none"),
        ([], "none"),
    ],
)
def test_several_or_no_from_addresses_give_no_sender(from_lines: list[str], problem: str) -> None:
    mail = mail_parse.parse_mail(raw_mail(from_lines))
    assert mail.sender is None and mail.from_problem == problem


# ----- F2: Authentication-Results


@pytest.mark.parametrize(
    ("headers", "verdict"),
    [
        ([f"{AUTHSERV}; spf=pass smtp.mailfrom=example.jp; dkim=pass header.d=example.jp; dmarc=pass"], "pass"),
        ([f"{AUTHSERV}; spf=pass smtp.mailfrom=evil.example; dmarc=fail (p=reject) header.from=example.jp"], "fail"),
        ([f"{AUTHSERV} 1; dkim=pass header.d=example.jp header.s=sel"], "pass"),
        ([f"{AUTHSERV}; dkim=pass header.d=mail.example.jp"], "pass"),  # relaxed alignment
        ([f"{AUTHSERV}; dkim=pass header.d=evil.example"], "none"),  # a pass for someone else's domain
        ([f"{AUTHSERV}; dkim=fail header.d=example.jp; spf=none"], "fail"),
        ([f"{AUTHSERV}; spf=fail smtp.mailfrom=example.jp"], "fail"),
        ([f"{AUTHSERV}; none"], "none"),
        ([f"{AUTHSERV.upper()}; dmarc=fail"], "fail"),
        # Only our server's header counts, and of ours the topmost (the one it prepended).
        (["evil.example; dmarc=pass header.from=example.jp"], "none"),
        ([f"{AUTHSERV}; dmarc=fail", f"{AUTHSERV}; dmarc=pass"], "fail"),
        ([f"{AUTHSERV}.evil.example; dmarc=pass"], "none"),
        ([], "none"),
    ],
)
def test_only_our_servers_authentication_results_count(headers: list[str], verdict: str) -> None:
    extra = "".join(f"Authentication-Results: {h}\r\n" for h in headers)
    mail = mail_parse.parse_mail(raw_mail([f"Sakura <{PARENT}>"], extra=extra), authserv_id=AUTHSERV)
    assert mail.auth == verdict
    without = mail_parse.parse_mail(raw_mail([f"Sakura <{PARENT}>"], extra=extra))
    assert without.auth == "none"  # no authserv-id configured: nothing is trusted


def test_requiring_authentication_needs_our_servers_id(settings: Settings, runtime: Runtime) -> None:
    cfg = settings.email.model_copy(
        update={"email_address": CONCIERGE, "smtp_host": "127.0.0.1", "email_require_auth": True}
    )
    with pytest.raises(ValueError, match="EMAIL_AUTHSERV_ID"):
        EmailAdapter(cfg, runtime.sessions)


# ----- no CR or LF in any header we write


def test_no_header_we_write_carries_a_line_break(settings: Settings, runtime: Runtime) -> None:
    cfg = settings.email.model_copy(update={"email_address": CONCIERGE, "smtp_host": "127.0.0.1"})
    adapter = EmailAdapter(cfg, runtime.sessions)
    # A thread record as it could come back from the database, every field poisoned.
    thread = Thread(
        message_id="<p1@example.jp>\r\nBcc: x@evil.example",
        references=("<p0@example.jp>\r\nBcc: y@evil.example", "<ok@example.jp>"),
        subject="相談\r\nBcc: z@evil.example\x00\x0b",
        address=PARENT,
        lang="ja\r\nBcc: w@evil.example",
    )
    reply = Reply(ReplyKind.ANSWER, "こんにちは", lang="ja\r\nX: y")
    msg, _ = adapter.compose(Delivery(PARENT, [reply], "k" * 36), PARENT, thread)
    raw = msg.as_bytes()
    back = email.message_from_bytes(raw, policy=policy.default)
    names = {k.lower() for k in back}
    assert "bcc" not in names and "x" not in names
    assert back["To"] == PARENT and back["Content-Language"] == "ja"
    assert back["Subject"] == "Re: 相談 Bcc: z@evil.example"  # one line of text, not a header
    assert back["In-Reply-To"] == "<p1@example.jp>"
    assert str(back["References"]).split() == ["<p0@example.jp>", "<ok@example.jp>", "<p1@example.jp>"]


# ----- the flow: Dovecot in, SMTP out


def _parent_with_a_case(runtime: Runtime) -> int:
    """A parent who consented and whose case a person holds."""
    from storage.db import transaction

    with transaction(runtime.sessions) as s:
        contact = crud.get_or_create_contact(s, channel="email", external_id=PARENT)
        crud.record_consent(
            s, contact=contact, status=ConsentStatus.GRANTED, notice_version=runtime.engine.notices.version
        )
        case = crud.create_case(s, contact=contact, lang="ja", topic=None)
        crud.add_message(s, case=case, direction="in", author="parent", text="最初の相談", basis=case.basis)  # type: ignore[arg-type]
        assert contact.id is not None
        state = crud.get_state(s, contact_id=contact.id)
        crud.set_state(s, state=state, name=ConversationStateName.HANDOFF, case_id=case.id)
        assert case.id is not None
        return case.id


def _texts(runtime: Runtime, case_id: int) -> list[str]:
    with runtime.sessions() as s:
        return [m.text for m in crud.transcript(s, case_id=case_id)]


def _unverified_case(runtime: Runtime) -> Case | None:
    with runtime.sessions() as s:
        return s.exec(
            select(Case)
            .join(Contact, col(Contact.id) == col(Case.contact_id))
            .where(Contact.external_id == UNVERIFIED_CONTACT)
        ).first()


async def test_a_display_name_holding_the_parents_address_does_not_act_as_the_parent(
    app_settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    case_id = _parent_with_a_case(runtime)
    async with running(app_settings, runtime):
        spoof = new_mail("保育料はいくらですか", sender="x@x.example", message_id="<s-1@evil.example>", subject="質問")
        spoof = spoof.replace(b"From: x@x.example", f"From: {b64(PARENT)} <{ATTACKER}>".encode())
        dovecot.append(spoof)
        (answer,) = await smtp.wait_for(1)
    assert answer.rcpt_tos == [ATTACKER] and answer.message["To"] == ATTACKER
    assert _texts(runtime, case_id) == ["最初の相談"]  # the parent's case never saw it


async def test_a_display_name_with_a_line_break_cannot_add_a_recipient(
    app_settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    crlf = "x" + chr(13) + chr(10) + "Bcc: other@example.org"
    async with running(app_settings, runtime):
        mail = new_mail("保育料はいくらですか", sender="x@x.example", message_id="<s-2@example.jp>", subject="質問")
        mail = mail.replace(b"From: x@x.example", f"From: {b64(crlf)} <{PARENT}>".encode())
        mail = mail.replace(
            b"Subject: ", f"Subject: {b64('料金' + chr(13) + chr(10) + 'Bcc: other@example.org')}".encode()
        )
        dovecot.append(mail)
        (answer,) = await smtp.wait_for(1)
    assert answer.rcpt_tos == [PARENT]
    assert answer.message["Bcc"] is None and b"other@example.org" not in answer.data


async def test_mail_with_several_from_addresses_is_kept_for_staff_and_not_answered(
    app_settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    case_id = _parent_with_a_case(runtime)
    async with running(app_settings, runtime):
        dovecot.append(raw_mail([f"{PARENT}, {ATTACKER}"], body="はい"))
        dovecot.append(raw_mail([PARENT, ATTACKER], body="もう一通").replace(b"<m-1@", b"<m-2@"))
        await _until(lambda: _done(runtime) == 2)
    assert smtp.received == []
    assert _texts(runtime, case_id) == ["最初の相談"]
    case = _unverified_case(runtime)
    assert case is not None and case.id is not None
    notes = _texts(runtime, case.id)
    assert len(notes) == 2 and all("差出人が複数" in n for n in notes)
    assert not any("はい" in n or "もう一通" in n for n in notes)  # the note says what happened, not the words


def _auth(settings: Settings, dovecot: Dovecot, smtp: SMTPSink, **overrides: object) -> Settings:
    return settings.model_copy(update={"email": email_settings(dovecot, smtp, email_authserv_id=AUTHSERV, **overrides)})


def _spoof(body: str, n: int, result: str = f"{AUTHSERV}; spf=pass smtp.mailfrom=evil.example; dmarc=fail") -> bytes:
    return new_mail(
        body,
        sender=f"Sakura <{PARENT}>",
        message_id=f"<spoof-{n}@evil.example>",
        subject="Re: 相談",
        Authentication_Results=result,
    )


async def test_a_dmarc_failure_never_joins_the_parents_case_nor_consents_nor_erases(
    settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    case_id = _parent_with_a_case(runtime)
    with runtime.sessions() as s:
        consents_before = len(s.exec(select(ConsentRecord)).all())
    async with running(_auth(settings, dovecot, smtp), runtime):
        dovecot.append(_spoof("お迎えの時間を変えてください", 1))
        dovecot.append(_spoof("はい", 2))
        dovecot.append(_spoof("記録を削除", 3))
        dovecot.append(_spoof("同意を取り消します", 4))
        got = await smtp.wait_for(4)
        await _until(lambda: _done(runtime) == 4)
    # Each gets the general reply, only at the parsed address, and nothing about the parent's case.
    assert all(m.rcpt_tos == [PARENT] for m in got)
    assert all("差出人を確認できなかった" in m.text for m in got)
    assert not any("受付番号" in m.text or "削除しました" in m.text or "取り消しました" in m.text for m in got)
    assert _texts(runtime, case_id) == ["最初の相談"]
    with runtime.sessions() as s:
        assert len(s.exec(select(ConsentRecord)).all()) == consents_before
        parent = s.exec(select(Contact).where(Contact.external_id == PARENT)).one()
        assert parent.id is not None
        assert crud.has_consent(s, contact_id=parent.id)
        assert crud.get_state(s, contact_id=parent.id).state == ConversationStateName.HANDOFF
    case = _unverified_case(runtime)
    assert case is not None and case.id is not None and case.priority == Priority.NORMAL
    notes = _texts(runtime, case.id)
    assert len(notes) == 4 and all("dmarc=fail" in n and PARENT in n for n in notes)
    with runtime.sessions() as s:
        alerts = s.exec(select(StaffAlert.kind).where(StaffAlert.case_id == case.id)).all()
    assert sorted(alerts) == ["new_case", "parent_message", "parent_message", "parent_message"]


async def test_an_unverified_yes_never_answers_the_parents_consent_question(
    settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    async with running(_auth(settings, dovecot, smtp), runtime):
        real = f"{AUTHSERV}; dkim=pass header.d=example.jp; dmarc=pass"
        dovecot.append(_spoof("相談員と話したいです", 1, result=real))
        (question,) = await smtp.wait_for(1)
        assert "「はい」か「いいえ」" in question.text
        dovecot.append(_spoof("はい", 2))
        (_, general) = await smtp.wait_for(2)
        await _until(lambda: _done(runtime) == 2)
    assert "差出人を確認できなかった" in general.text and "受付番号" not in general.text
    with runtime.sessions() as s:
        parent = s.exec(select(Contact).where(Contact.external_id == PARENT)).one()
        assert parent.id is not None
        assert crud.current_consent(s, contact_id=parent.id) is None
        assert crud.get_state(s, contact_id=parent.id).state == ConversationStateName.CONSENT
        assert crud.open_case_for(s, contact_id=parent.id) is None


async def test_a_flood_of_unverified_mail_never_opens_a_case_for_the_claimed_address(
    settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    async with running(_auth(settings, dovecot, smtp, email_max_replies_per_hour=1), runtime):
        for i in range(3):
            dovecot.append(_spoof(f"保育料はいくらですか {i}", i))
        await _until(lambda: _done(runtime) == 3)
        await smtp.wait_for(1)
    with runtime.sessions() as s:
        assert s.exec(select(Contact).where(Contact.external_id == PARENT)).first() is None
        assert not s.exec(select(Message).where(Message.delivery == "held")).all()
    case = _unverified_case(runtime)
    assert case is not None and case.id is not None and len(_texts(runtime, case.id)) == 3


async def test_an_unverified_crisis_gets_the_numbers_and_an_urgent_staff_case(
    settings: Settings, runtime: Runtime, dovecot: Dovecot, smtp: SMTPSink
) -> None:
    case_id = _parent_with_a_case(runtime)
    async with running(_auth(settings, dovecot, smtp), runtime):
        dovecot.append(_spoof("もう死にたいです", 1))
        (reply,) = await smtp.wait_for(1)
    assert reply.rcpt_tos == [PARENT]
    assert "0120" in reply.text or "TEL" in reply.text  # the crisis contacts
    assert _texts(runtime, case_id) == ["最初の相談"]
    case = _unverified_case(runtime)
    assert case is not None and case.id is not None
    assert case.priority == Priority.URGENT
    assert "もう死にたいです" in _texts(runtime, case.id)  # kept under the life-and-safety exception


@pytest.mark.parametrize(
    ("overrides", "result", "verified"),
    [
        ({}, None, True),  # local use: no authenticating server, nothing required
        ({"email_require_auth": True}, None, False),
        ({"email_require_auth": True}, "evil.example; dmarc=pass header.from=example.jp", False),
        ({"email_require_auth": True}, f"{AUTHSERV}; dkim=pass header.d=example.jp; dmarc=pass", True),
        ({}, f"{AUTHSERV}; dkim=fail header.d=example.jp", False),
    ],
)
async def test_which_mail_may_act_as_its_sender(
    settings: Settings,
    runtime: Runtime,
    dovecot: Dovecot,
    smtp: SMTPSink,
    overrides: dict[str, object],
    result: str | None,
    verified: bool,
) -> None:
    case_id = _parent_with_a_case(runtime)
    headers = {"Authentication_Results": result} if result else {}
    async with running(_auth(settings, dovecot, smtp, **overrides), runtime):
        dovecot.append(new_mail("明日伺います", sender=PARENT, message_id="<v-1@example.jp>", **headers))
        await _until(lambda: _done(runtime) == 1)
    joined = "明日伺います" in _texts(runtime, case_id)
    assert joined is verified
    assert (_unverified_case(runtime) is None) is verified
    with runtime.sessions() as s:
        rows = s.exec(select(OutboundMessage)).all()
        held = s.exec(select(Message).where(Message.delivery == "held")).all()
    assert all(r.recipient == PARENT for r in rows) and not held
