"""Reading real-world mail: each fixture's charset, structure and quoting, and what the adapter hands the engine."""

from __future__ import annotations

import base64
import json

import pytest

from bot.settings import EmailSettings
from handlers.channels import mail_parse
from handlers.channels.email import EmailAdapter, Thread
from handlers.types import InboundKind
from storage.db import SessionFactory
from tests.fakes.mailservers import CONCIERGE, fixture_mail, new_mail


def settings() -> EmailSettings:
    return EmailSettings(
        email_address=CONCIERGE,
        imap_host="127.0.0.1",
        imap_user="concierge",
        smtp_host="127.0.0.1",
        email_max_replies_per_hour=5,
    )


def payload(raw: bytes) -> str:
    return json.dumps({"raw": base64.b64encode(raw).decode(), "uid": 1, "uidvalidity": 1})


# ----- charsets and structure


@pytest.mark.parametrize(
    ("name", "sender", "subject", "body"),
    [
        (
            "iso2022jp.eml",
            "hanako@example.jp",
            "キッズプラザの入館料",
            "キッズプラザの入館料はいくらですか？\n①大人と②子ども",
        ),
        ("shift_jis.eml", "mayumi.takahashi@example.ne.jp", "託児室の料金について～質問", "持ち物を教えてください～"),
        ("utf8-base64.eml", "taro@example.com", "保育園の申し込み", "申し込み方法を教えてください。\n4月から働く"),
        ("utf8-qp.eml", "yuki@example.org", "料金", "ファミサポの料金はいくらですか？"),
        (
            "html-only.eml",
            "midori@example.jp",
            "児童館について",
            "児童館は誰でも使えますか？\n小学生の子どもと 行きたいです&親",
        ),
    ],
)
def test_each_encoding_decodes_to_the_parents_words(name: str, sender: str, subject: str, body: str) -> None:
    mail = mail_parse.parse_mail(fixture_mail(name))
    assert mail.sender == sender
    assert mail.subject == subject
    assert body in mail.body
    assert mail.automated is None
    assert "\ufffd" not in mail.body + mail.subject


def test_signatures_and_rules_are_cut() -> None:
    assert "㈱" not in mail_parse.parse_mail(fixture_mail("iso2022jp.eml")).body  # below the ―――― rule
    assert "札幌 太郎" not in mail_parse.parse_mail(fixture_mail("utf8-base64.eml")).body  # below "-- "


def test_html_mail_loses_styles_scripts_and_the_quoted_part() -> None:
    body = mail_parse.parse_mail(fixture_mail("html-only.eml")).body
    assert "color" not in body and "alert" not in body and "以前のお知らせ" not in body
    assert "2026年11月19日" not in body


def test_plain_text_is_preferred_over_html() -> None:
    assert "HTML版" not in mail_parse.parse_mail(fixture_mail("utf8-qp.eml")).body


def test_windows_iso2022jp_extensions_decode_through_cp932() -> None:
    jis = b'\x1b$B-!-"\x1b(B'  # ①② in ESC $ B, as Windows writes them
    assert mail_parse.decode_bytes(jis, "ISO-2022-JP") == "①②"
    assert mail_parse.decode_bytes("髙橋～".encode("cp932"), "Shift_JIS") == "髙橋～"
    assert mail_parse.decode_bytes(b"\x1b(I1\x1b(B", "iso-2022-jp") == "ｱ"
    assert mail_parse.decode_bytes(b"ok \xff", "utf-8") == "ok \ufffd"
    assert mail_parse.decode_bytes("保育園".encode("euc_jp"), "x-euc-jp") == "保育園"
    assert mail_parse.decode_bytes("保育園".encode(), None) == "保育園"
    assert mail_parse.decode_bytes(b"abc", "no-such-charset") == "abc"


def test_malformed_headers_and_bytes_do_not_stop_the_parse() -> None:
    mail = mail_parse.parse_mail(fixture_mail("malformed-header.eml"))
    # From is an unterminated quoted string: the address in it is a guess, and a guess is never the sender.
    assert mail.sender is None and mail.from_problem == "malformed"
    assert mail.message_id is None
    assert "キッズプラザ" in mail.subject and "開館時間" in mail.subject
    assert "キッズプラザの開館時間と休館日は？" in mail.body


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"From: <a@b.example>\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all",
        b"From: <a@b.example>\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain;"
        b" charset=nonsense\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64\r\n--x",
        b"Subject: =?iso-2022-jp?B?GyRC?=\r\nFrom: =?utf-8?Q?=ZZ?= <c@d.example>\r\n\r\nbody",
        b"From: a@b.example\r\nSubject: " + b"x" * 100_000 + b"\r\n\r\nbody",
    ],
)
def test_garbage_never_raises(raw: bytes) -> None:
    mail_parse.parse_mail(raw)
    mail_parse.strip_attachments(raw)


# ----- quotes, signatures, subjects


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("はい\r\n\r\n> 記録に同意していただけますか？\r\n", "はい"),
        ("はい\n\nOn Fri, Nov 20, 2026 at 10:00 AM Concierge <c@example.jp> wrote:\n> quoted", "はい"),
        ("はい\n\nOn Fri, Nov 20, 2026 at 10:00 AM Concierge <c@example.jp>\nwrote:\n> quoted", "はい"),
        ("いいえ\n2026年11月20日(金) 10:00 子育て支援コンシェルジュ <c@example.jp>:\n> 本文", "いいえ"),
        ("はい\n\n2026/11/20 10:00 に 子育て支援 さんは書きました:\n> 本文", "はい"),
        ("質問です\n\n-----Original Message-----\nFrom: x\nSent: y\n\n前の本文", "質問です"),
        ("質問です\n\n________________________________\n差出人: x\n送信日時: y\n前の本文", "質問です"),
        ("質問です\n\n差出人: x\n送信日時: y\n件名: z\n前の本文", "質問です"),
        ("質問です\n--\n函館 花子\n090-0000-0000", "質問です"),
        ("質問です\n\n――――――――\n函館 花子\n――――――――", "質問です"),
        ("質問です\n\n＊＊＊＊＊＊\n函館\n＊＊＊＊＊＊", "質問です"),
        (
            "お世話になっております。\n保育園の空きを知りたいです。\nよろしくお願いいたします。",
            "保育園の空きを知りたいです。",
        ),
        ("お願いします", "お願いします"),  # a courtesy line alone is the message
        ("はい\nよろしくお願いします", "はい"),
        ("はい、お願いします。", "はい"),
        ("はい。よろしくお願いいたします。", "はい。"),
        ("保育園の空きはありますか？よろしくお願いします", "保育園の空きはありますか？"),
        ("はい、でも少し心配です。", "はい、でも少し心配です。"),
        ("> only quoted\n> text", ""),
    ],
)
def test_strip_reply(text: str, expected: str) -> None:
    assert mail_parse.strip_reply(text) == expected


def test_a_rule_followed_by_a_long_text_is_not_a_signature() -> None:
    long = "\n".join(f"{i}行目の相談内容です。" for i in range(20))
    assert "19行目" in mail_parse.strip_reply(f"はじめに\n--------\n{long}")


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: 保育園", ("保育園", True)),
        ("RE：Re: Fwd: 保育園", ("保育園", True)),
        ("転送: 保育園", ("保育園", True)),
        ("Ｒｅ：保育園", ("保育園", True)),
        ("Re[2]: 保育園", ("保育園", True)),
        ("保育園 Re: について", ("保育園 Re: について", False)),
        ("", ("", False)),
    ],
)
def test_clean_subject(subject: str, expected: tuple[str, bool]) -> None:
    assert mail_parse.clean_subject(subject) == expected


# ----- automated mail


@pytest.mark.parametrize(
    ("name", "reason"),
    [("bounce.eml", "auto-submitted"), ("autoreply.eml", "auto-submitted"), ("list.eml", "precedence")],
)
def test_automated_fixtures(name: str, reason: str) -> None:
    assert mail_parse.parse_mail(fixture_mail(name)).automated == reason


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        ({"Auto-Submitted": "auto-generated"}, "a@example.jp", "auto-submitted"),
        ({"Auto-Submitted": "no"}, "a@example.jp", None),
        ({"Precedence": "bulk"}, "a@example.jp", "precedence"),
        ({"Precedence": "junk"}, "a@example.jp", "precedence"),
        ({"List-Id": "<x.example>"}, "a@example.jp", "list"),
        ({}, "MAILER-DAEMON@mx.example.jp", "daemon"),
        ({}, "postmaster@example.jp", "daemon"),
        ({}, "no-reply@service.example", "no-reply"),
        ({"X-Autoreply": "yes"}, "a@example.jp", "auto-reply"),
        ({}, "a@example.jp", None),
    ],
)
def test_automated_headers(headers: dict[str, str], sender: str, reason: str | None) -> None:
    raw = new_mail("保育園について", sender=sender, message_id="<x@example.jp>", **headers)
    assert mail_parse.parse_mail(raw).automated == reason


def test_a_bounce_without_auto_headers_is_still_a_bounce() -> None:
    raw = (
        fixture_mail("bounce.eml")
        .replace(b"Auto-Submitted: auto-replied\r\n", b"")
        .replace(b"Return-Path: <>\r\n", b"")
    )
    raw = raw.replace(b"MAILER-DAEMON@mx.example.jp", b"relay@mx.example.jp")
    assert mail_parse.parse_mail(raw).automated == "bounce"


# ----- attachments


def test_attachments_are_counted_and_removed_before_storage() -> None:
    raw = fixture_mail("attachment-only.eml")
    mail = mail_parse.parse_mail(raw)
    assert [a.content_type for a in mail.attachments] == ["image/jpeg"] and mail.body == ""
    slim = mail_parse.strip_attachments(raw)
    assert b"/9j/" not in slim  # the JPEG's base64 is gone
    again = mail_parse.parse_mail(slim)
    assert [(a.content_type, a.size) for a in again.attachments] == [("image/jpeg", 22)]


def test_inline_images_of_an_html_mail_are_not_attachments() -> None:
    raw = (
        b"From: a@example.jp\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
        b"--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hello</p><img src=cid:logo>\r\n"
        b"--r\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n"
        b"--r--\r\n"
    )
    mail = mail_parse.parse_mail(raw)
    assert mail.attachments == () and mail.body == "hello"


# ----- the adapter's parse_event (reads the outbound counts: both databases)


def test_parse_event_gives_the_engine_subject_and_body(sessions: SessionFactory) -> None:
    adapter = EmailAdapter(settings(), sessions)
    parsed = adapter.parse_event(payload(fixture_mail("iso2022jp.eml")))
    assert parsed.message is not None
    assert parsed.message.channel == "email" and parsed.message.sender_id == "hanako@example.jp"
    assert parsed.message.text is not None and parsed.message.text.startswith("キッズプラザの入館料はいくら")
    thread = Thread.from_json(parsed.context)
    assert thread is not None
    assert thread.message_id == "<iso2022jp-0001@mail.example.jp>" and thread.subject == "キッズプラザの入館料"
    assert thread.address == "hanako@example.jp" and thread.lang == "ja"


def test_a_reply_subject_does_not_join_the_words(sessions: SessionFactory) -> None:
    adapter = EmailAdapter(settings(), sessions)
    raw = new_mail(
        "はい\n\n> 記録に同意していただけますか？",
        sender="p@example.jp",
        message_id="<r1@example.jp>",
        subject="Re: 相談員と話したい",
        In_Reply_To="<kc.consent.abc@kodomo.example.jp>",
    )
    parsed = adapter.parse_event(payload(raw))
    assert parsed.message is not None and parsed.message.text == "はい"
    thread = Thread.from_json(parsed.context)
    assert thread is not None and thread.references == ("<kc.consent.abc@kodomo.example.jp>",)
    assert thread.subject == "相談員と話したい"


def test_a_new_subject_joins_the_words(sessions: SessionFactory) -> None:
    adapter = EmailAdapter(settings(), sessions)
    raw = new_mail(
        "締め切りはいつですか", sender="p@example.jp", message_id="<n1@example.jp>", subject="保育園の申込み"
    )
    parsed = adapter.parse_event(payload(raw))
    assert parsed.message is not None and parsed.message.text == "保育園の申込み\n締め切りはいつですか"


def test_attachment_only_mail_is_media(sessions: SessionFactory) -> None:
    parsed = EmailAdapter(settings(), sessions).parse_event(payload(fixture_mail("attachment-only.eml")))
    assert parsed.message is not None
    assert parsed.message.kind == InboundKind.MEDIA and parsed.message.media_type == "image"


@pytest.mark.parametrize("name", ["bounce.eml", "autoreply.eml", "list.eml"])
def test_automated_mail_is_not_for_the_engine(sessions: SessionFactory, name: str) -> None:
    assert EmailAdapter(settings(), sessions).parse_event(payload(fixture_mail(name))).message is None


def test_our_own_address_is_never_answered(sessions: SessionFactory) -> None:
    raw = new_mail("保育園について", sender=f"Concierge <{CONCIERGE.upper()}>", message_id="<own@example.jp>")
    assert EmailAdapter(settings(), sessions).parse_event(payload(raw)).message is None


def test_unreadable_payload_is_dropped(sessions: SessionFactory) -> None:
    adapter = EmailAdapter(settings(), sessions)
    assert adapter.parse_event("not json").message is None
    assert adapter.parse_event(json.dumps({"raw": "!!!"})).message is None


def test_shift_jis_mislabelled_as_utf8_is_read_as_cp932() -> None:
    assert mail_parse.decode_bytes("保育園".encode("cp932"), "utf-8") == "保育園"
    assert mail_parse.decode_bytes("保育園".encode() + b"\xff", "utf-8") == "保育園\ufffd"
