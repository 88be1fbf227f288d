"""The email channel: IMAP intake of the concierge mailbox, SMTP replies in the parent's thread.

Intake (`MailPoller`): UNSEEN messages are fetched with BODY.PEEK, stored as inbound events (attachments
removed first) and only then flagged \\Seen or moved to IMAP_PROCESSED_FOLDER, so a crash in between
means the message is fetched again and the event store's (channel, key) uniqueness drops the copy: no
extra table for "last UID". IDLE is used where the server offers it, renewed with a full search every
EMAIL_POLL_SECONDS (and at least every 5 minutes) as a safety net; without IDLE it polls every
EMAIL_POLL_SECONDS. Mail already marked \\Seen (read by a person in the intake folder) is not fetched.

Replies (`EmailAdapter.deliver`): one plain-text mail per delivery, threaded with In-Reply-To/References
from the parent's mail (kept in the event's context), Auto-Submitted: auto-replied on the bot's answers.
Concierge replies have no context: they follow the last mail sent to that parent (each sent mail leaves
its headers in its outbound row's context) or start a fresh mail with a clear subject.

Never answered: automated mail (Auto-Submitted, Precedence, List-*, bounces, daemons, no-reply), our own
address, and mail whose From gives no single address (kept for staff). Mail whose sender is not verified by
our receiving server's Authentication-Results acts as nobody: the general reply, a note for staff, never the
parent's contact or case. The loop guard (EMAIL_MAX_REPLIES_PER_HOUR) is applied at delivery and holds back
only automatic answers, noting on the parent's case what was not sent; every mail still reaches the engine.
Logs carry reasons, counts and error class names, never addresses or text.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import ssl
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, TypeVar

import aiosmtplib
import anyio
from imapclient import IMAPClient  # type: ignore[import-untyped]
from imapclient.imapclient import DELETED, SEEN, SocketTimeout  # type: ignore[import-untyped]

from handlers import consent
from handlers.channels import ChannelPlugin, mail_parse
from handlers.engine import MAX_STORED, Engine, clean_input, has_words
from handlers.inbox import IncomingEvent
from handlers.texts import t
from handlers.types import (
    Capabilities,
    Delivery,
    DeliveryError,
    InboundKind,
    InboundMessage,
    Parsed,
    Reply,
    ReplyKind,
    render_plain,
    replies_to_json,
)
from knowledge.language import detect_language
from storage import crud, queue
from storage.db import SessionFactory, transaction
from storage.models import (
    Basis,
    ConversationStateName,
    utcnow,
)

if TYPE_CHECKING:
    from bot.settings import EmailSettings, Settings
    from handlers.inbox import Inbox

CHANNEL = "email"
log = logging.getLogger("concierge.email")
T = TypeVar("T")

MAX_REFERENCES = 10  # ids kept in References: the first one and the latest ones
SUBJECT_MAX = 200
SMTP_TIMEOUT = 60.0
IDLE_RENEW = 300.0  # re-issue IDLE well within the 29 minutes of RFC 2177 (and NAT idle timeouts)
MAX_FETCH_BYTES = 40_000_000  # larger messages: only the headers are fetched (the rest is an attachment)


# Notes on the staff side (case transcripts): what happened to a mail, never its text unless life and safety.
STAFF_NOTES = {
    "unreadable": "［差出人（From）を読み取れないメールを受信しました（{why}）。返信していません。"
    "メールボックスで確認してください。受付ID：{tag}］",
    "unverified": "［差出人を確認できないメールを受信しました（{detail}）。表示上の差出人：{claimed}。"
    "既存の相談には結び付けず、一般的な自動応答だけを返しました。受付ID：{tag}］",
    "unverified_quiet": "［差出人を確認できないメールを受信しました（{detail}）。表示上の差出人：{claimed}。"
    "既存の相談には結び付けていません。受付ID：{tag}］",
    "held": "［自動返信の上限（1時間に{limit}通）に達したため、次の自動返信を送らずに保留しました。"
    "保護者のメールは受信済みです。必要なら担当者から返信してください。］\n{text}",
}
FROM_PROBLEMS = {"none": "差出人なし", "several": "差出人が複数", "malformed": "差出人の形式が不正"}
# Staff-side contact for mail that must not attach to anyone: one open case collects them.
UNVERIFIED_CONTACT = "unverified-mail"
# What the loop guard limits: answers the bot writes by itself. The consent question, case notices, crisis
# numbers and staff replies belong to a conversation the parent started and always go out.
AUTO_KINDS = frozenset({ReplyKind.ANSWER, ReplyKind.CLARIFY, ReplyKind.FALLBACK, ReplyKind.INFO})
WRAP_COLUMNS = 70  # display columns per line: 35 full-width characters


def is_automatic(reply: Reply) -> bool:
    return reply.kind in AUTO_KINDS and reply.meta.get("from") != "staff" and "case_id" not in reply.meta


def et(lang: str, key: str, **values: object) -> str:
    """The mail's own wording (sender, subject, instructions, footers), from the text files (`mail_*`)."""
    return t(lang, f"mail_{key}", CHANNEL, **values)


# ----- the thread a reply belongs to


@dataclass(frozen=True)
class Thread:
    """Where a mail sits in a conversation: the message it answers and that message's References chain.
    Stored as Parsed.context (the parent's mail) and, after sending, in the outbound row (our mail)."""

    message_id: str | None
    references: tuple[str, ...] = ()
    subject: str = ""  # without Re:/Fwd: prefixes
    address: str | None = None
    lang: str | None = None
    sent: bool = False  # True: this records a mail we sent
    auto: bool = False  # the mail held automatic answers (what the loop guard counts)
    held: bool = False  # the loop guard kept the mail back: nothing was sent

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "message_id": self.message_id,
                "references": list(self.references),
                "subject": self.subject,
                "from": self.address,
                "lang": self.lang,
                "sent": self.sent,
                "auto": self.auto,
                "held": self.held,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, data: str | None) -> Thread | None:
        if not data:
            return None
        try:
            d = json.loads(data)
            ids = mail_parse.message_ids(str(d.get("message_id") or ""))
            refs = tuple(r for ref in d.get("references") or [] for r in mail_parse.message_ids(str(ref)))
            return cls(
                message_id=ids[0] if ids else None,
                references=refs,
                subject=str(d.get("subject") or "")[:SUBJECT_MAX],
                address=d.get("from"),
                lang=d.get("lang"),
                sent=bool(d.get("sent")),
                auto=bool(d.get("auto")),
                held=bool(d.get("held")),
            )
        except (ValueError, TypeError, AttributeError):
            return None

    def reply_headers(self) -> tuple[str | None, list[str]]:
        """In-Reply-To and References for a mail answering this thread's tip."""
        if self.message_id is None:
            return None, []
        chain = [r for r in self.references if r != self.message_id] + [self.message_id]
        if len(chain) > MAX_REFERENCES:
            chain = chain[:1] + chain[-(MAX_REFERENCES - 1) :]
        return self.message_id, chain


# ----- the adapter


class EmailAdapter:
    """Parses stored mail for the engine and sends replies and notices by SMTP."""

    name = CHANNEL
    capabilities = Capabilities(
        channel=CHANNEL,
        label="メール",
        push=True,
        bulk=1,  # one mail per recipient, each recorded as sent as soon as the server took it
        broadcast=False,
        reply_token=False,
        max_text=MAX_STORED,
        max_label=SUBJECT_MAX,
    )

    def __init__(
        self,
        settings: EmailSettings,
        sessions: SessionFactory,
        *,
        question_for: Callable[[str, str], str | None] | None = None,
        engine: Engine | None = None,
        store: Callable[[list[IncomingEvent]], int] | None = None,
        office_names: Mapping[str, str] | None = None,
    ) -> None:
        if not settings.email_address or not mail_parse.normalise_address(settings.email_address):
            raise ValueError("EMAIL_ADDRESS must be set to the concierge mailbox's address")
        if not settings.smtp_host:
            raise ValueError("SMTP_HOST must be set for the email channel")
        if settings.email_require_auth and not (settings.email_authserv_id or "").strip():
            raise ValueError("EMAIL_REQUIRE_AUTH needs EMAIL_AUTHSERV_ID (the receiving server's authserv-id)")
        self.settings = settings
        self.sessions = sessions
        self.office_names = dict(office_names or {})  # the deployment's name per language (from the KB)
        self.address = mail_parse.normalise_address(settings.email_address) or ""
        self.domain = self.address.rsplit("@", 1)[1]
        others = (mail_parse.normalise_address(settings.imap_user), mail_parse.normalise_address(settings.smtp_user))
        self.own = {self.address} | {a for a in others if a}
        self.question_for = question_for
        # Read-only use of the engine: its crisis words and yes/no phrases (so the email side agrees with
        # it) and its stateless first-message replies for mail that may not touch any conversation.
        self.engine = engine
        self.store = store  # the inbox's intake, for a mail's second message (see _follow_up)

    @staticmethod
    def sender_key(external_id: str) -> str:
        return f"{CHANNEL}:{external_id}"[:255]

    # ----- inbound

    def office(self, lang: str) -> str:
        """The office's name in `lang` (English, then Japanese, where it has none)."""
        names = self.office_names
        return names.get(lang) or names.get("en") or names.get("ja") or ""

    def parse_event(self, payload: str) -> Parsed:
        try:
            data = json.loads(payload)
            if "follow_up" in data:
                return self._parse_follow_up(data)
            raw = base64.b64decode(data["raw"])
        except (ValueError, KeyError, TypeError):
            log.warning("email event unreadable")
            return Parsed(None)
        mail = mail_parse.parse_mail(raw, authserv_id=self.settings.email_authserv_id)
        if mail.from_problem is not None:
            log.info("email sender unreadable: %s", mail.from_problem)
            self._flag(mail, raw, text="", thread=None)
            return Parsed(None)
        reason = mail.automated
        if reason is None and mail.sender in self.own:
            reason = "own-address"
        if reason is not None or mail.sender is None:
            log.info("email not answered: %s", reason)
            return Parsed(None)
        sender = mail.sender
        subject, was_reply = mail_parse.clean_subject(mail.subject)
        text = _text_for_engine(subject, mail.body, subject_is_stale=was_reply)
        references = mail.references or ((mail.in_reply_to,) if mail.in_reply_to else ())
        lang = mail.content_language or detect_language(text or subject)
        thread = Thread(mail.message_id, references, subject[:SUBJECT_MAX], sender, lang)
        if not self.verified(mail):
            log.info("email sender not verified: %s", mail.auth)
            self._flag(mail, raw, text=text, thread=thread)
            return Parsed(None)
        state = self._state(sender)
        if state == ConversationStateName.CONSENT:
            answer = self._consent_answer(mail.body)
            if answer is not None:
                text = answer
                self._follow_up(raw, sender, mail_parse.rest_after(mail.body, answer), thread)
        kind, media_type = InboundKind.TEXT, None
        if mail.attachments:
            if not text:
                kind = InboundKind.MEDIA
                image = all(a.content_type.startswith("image/") for a in mail.attachments)
                media_type = "image" if image else "file"
            elif state in (ConversationStateName.HANDOFF, ConversationStateName.URGENT):
                # The case transcript should say that something came with the words (staff can look in the
                # mailbox); a FAQ question is matched without the note.
                text = f"{text}\n{et('ja', 'attachment', n=len(mail.attachments))}"
        message = InboundMessage(
            channel=CHANNEL,
            sender_id=sender,
            text=text or None,
            kind=kind,
            lang_hint=mail.content_language,
            media_type=media_type,
        )
        return Parsed(message=message, context=thread.to_json())

    def _follow_up(self, raw: bytes, sender: str, rest: str, thread: Thread) -> None:
        """The words after a consent answer («はい。明日なら電話に出られます») are a message of their own: stored
        as an event after this one (same sender, so the engine sees it once the answer is handled, and it
        joins the case the answer opened). Its key derives from the mail: a second pass stores nothing new."""
        if not has_words(rest) or self.store is None:
            return
        key = "rest:" + hashlib.sha256(raw).hexdigest()
        payload = json.dumps({"follow_up": rest[:MAX_STORED], "context": thread.to_json()}, ensure_ascii=False)
        self.store([IncomingEvent(event_key=key, sender_key=self.sender_key(sender), payload=payload)])

    def _parse_follow_up(self, data: dict[str, Any]) -> Parsed:
        thread = Thread.from_json(str(data.get("context") or ""))
        text = str(data["follow_up"])
        if thread is None or thread.address is None:
            return Parsed(None)
        message = InboundMessage(channel=CHANNEL, sender_id=thread.address, text=text, lang_hint=thread.lang)
        return Parsed(message=message, context=thread.to_json())

    def verified(self, mail: mail_parse.Mail) -> bool:
        """May this mail act as its From address? A failing result from our own server never; no result
        only when EMAIL_REQUIRE_AUTH is off (local set-ups without an authenticating server)."""
        if mail.auth == "fail":
            return False
        return mail.auth == "pass" or not self.settings.email_require_auth

    def _consent_answer(self, body: str) -> str | None:
        """The parent's answer to the consent question: the first line(s) they wrote, when they are a clear
        yes or no by the engine's own phrases, whatever signature follows. A crisis anywhere in the mail
        keeps the whole text, so that the engine sees it."""
        if self.engine is None:
            return None
        if self.engine.crisis.detect(clean_input(body)) is not None:
            return None
        for candidate in mail_parse.first_lines(body):
            if self.engine.phrases.yes_no(candidate) is not None:
                return candidate
        return None

    def _state(self, address: str) -> str | None:
        with self.sessions() as s:
            return crud.state_of(s, channel=CHANNEL, external_id=address)

    def _flag(self, mail: mail_parse.Mail, raw: bytes, *, text: str, thread: Thread | None) -> None:
        """A mail that must not act as anyone (From unreadable, or its sender not verified): a note on the
        staff-side case for such mail, never on the parent's own contact or case. A verified-looking address
        gets the general reply (what any first message gets, without consent or case); a crisis also gets
        its numbers and makes that case urgent, with the words kept under the life-and-safety basis.
        Idempotent: a mail processed again (after a crash) finds its note by its tag and adds nothing."""
        tag = hashlib.sha256(raw).hexdigest()[:16]
        hit = self.engine.crisis.detect(clean_input(text)) if self.engine is not None and text else None
        replies: list[Reply] = []
        if thread is not None and mail.sender is not None and self.engine is not None:
            replies = self._general_replies(text, thread.lang or "ja", mail.content_language)
        if mail.from_problem is not None:
            note = STAFF_NOTES["unreadable"].format(why=FROM_PROBLEMS.get(mail.from_problem, "?"), tag=tag)
        else:
            claimed = mail.sender or "?"
            if mail.display_name:
                claimed = f"{mail.display_name} <{claimed}>"
            detail = mail.auth_detail or ("認証結果なし" if mail.auth == "none" else mail.auth)
            key = "unverified" if replies else "unverified_quiet"
            note = STAFF_NOTES[key].format(detail=detail, claimed=claimed[:200], tag=tag)
        with transaction(self.sessions) as s:
            contact = crud.get_or_create_contact(s, channel=CHANNEL, external_id=UNVERIFIED_CONTACT)
            assert contact.id is not None
            case = crud.open_case_for(s, contact_id=contact.id)
            created = case is None
            if case is None:
                case = crud.create_case(s, contact=contact, lang="ja", topic=None)
            elif crud.has_message_containing(s, case_id=case.id or 0, fragment=tag):
                return
            crud.add_message(s, case=case, direction="in", author="parent", text=note, basis=Basis(case.basis))
            if hit is not None:
                reason = f"life_safety:{hit.category.id}"
                consent.escalate(s, case=case, crisis_category=hit.category.id, reason=reason)
                crud.add_message(
                    s, case=case, direction="in", author="parent", text=text[:MAX_STORED], basis=Basis(case.basis)
                )
            crud.mark_parent_waiting(s, case=case)
            crud.add_alert(s, case=case, kind="urgent" if hit else "new_case" if created else "parent_message")
            if replies and mail.sender is not None and thread is not None:
                queue.enqueue_outbound(
                    s,
                    channel=CHANNEL,
                    recipient=mail.sender,
                    payload=replies_to_json(replies),
                    retry_key=f"unverified.{tag}",
                    context=thread.to_json(),
                )

    def _general_replies(self, text: str, lang: str, lang_hint: str | None) -> list[Reply]:
        """What any first message gets (the engine's stateless judgement), without a handoff or consent
        question: this mail cannot open or join a consultation. Crisis numbers always."""
        assert self.engine is not None
        decision = self.engine.classify(text or "", lang_hint) if has_words(text or "") else None
        lang = decision.lang if decision is not None else lang
        notice = Reply(ReplyKind.INFO, et(lang, "unverified"), lang=lang, meta={"unverified": "1"})
        if decision is None or decision.action in ("handoff", "fallback"):
            return [notice]
        replies = [
            replace(r, choices=tuple(c for c in r.choices if not c.data.startswith("handoff")))
            for r in self.engine.replies_for(decision, CHANNEL)
        ]
        return [*replies, notice]

    # ----- outbound
    async def deliver(self, delivery: Delivery) -> None:
        recipient = mail_parse.normalise_address(delivery.recipient)
        if recipient is None or recipient != delivery.recipient.strip().lower():
            raise DeliveryError("invalid recipient", retry=False)
        thread = Thread.from_json(delivery.context)
        if thread is None:  # a concierge reply (or the case's end): follow the last mail to this parent
            thread = await anyio.to_thread.run_sync(self._last_thread, recipient)
        automatic = [r for r in delivery.replies if is_automatic(r)]
        over_limit: bool = False
        if automatic:
            over_limit = await anyio.to_thread.run_sync(self._over_limit, recipient)
        if over_limit:
            # The loop guard: the bot stops answering by itself; the parent's mail is in (the engine saw it)
            # and a person is told, on the parent's case, what was not sent.
            if not any(r.meta.get("unverified") for r in delivery.replies):
                # (the general reply to unverified mail is already noted on the staff-side case, and must
                # never open or touch a case of the address it claims)
                await anyio.to_thread.run_sync(self._hold, recipient, automatic)
            kept = [r for r in delivery.replies if not is_automatic(r)]
            if not kept:
                held = Thread(None, (), thread.subject if thread else "", recipient, None, sent=True, held=True)
                await anyio.to_thread.run_sync(self._remember, delivery.retry_key, held)
                log.info("email auto reply held by the loop guard")
                return
            delivery = replace(delivery, replies=kept)
        message, sent = self.compose(delivery, recipient, thread)
        await self._send(message, recipient)
        await anyio.to_thread.run_sync(self._remember, delivery.retry_key, sent)

    def _over_limit(self, address: str) -> bool:
        limit = self.settings.email_max_replies_per_hour
        if limit <= 0:
            return False
        return recent_auto_replies(self.sessions, recipient=address) >= limit

    def _hold(self, recipient: str, replies: list[Reply]) -> None:
        """Put what the loop guard kept back on the parent's case (opened for it when there is none), so the
        mail is answered from a person's queue; staff are alerted once an hour per case, not per mail."""
        lang = replies[0].lang if replies else "ja"
        plain = self.render(replies, lang, staff=False).split("\n-- \n")[0]
        note = STAFF_NOTES["held"].format(limit=self.settings.email_max_replies_per_hour, text=plain)[:MAX_STORED]
        since = utcnow() - dt.timedelta(hours=1)
        with transaction(self.sessions) as s:
            contact = crud.get_or_create_contact(s, channel=CHANNEL, external_id=recipient)
            assert contact.id is not None
            case = crud.open_case_for(s, contact_id=contact.id)
            if case is None:
                case = crud.create_case(s, contact=contact, lang=lang, topic=None)
                crud.add_alert(s, case=case, kind="new_case")
            elif not crud.has_message_since(s, case_id=case.id or 0, delivery=HELD, since=since):
                crud.add_alert(s, case=case, kind="parent_message")
            crud.add_message(
                s, case=case, direction="out", author="bot", text=note, basis=Basis(case.basis), delivery=HELD
            )
            crud.mark_parent_waiting(s, case=case)

    def compose(self, delivery: Delivery, recipient: str, thread: Thread | None) -> tuple[EmailMessage, Thread]:
        """The mail for a delivery, and the thread record it leaves behind."""
        replies = delivery.replies
        lang = (replies[0].lang if replies else None) or (thread.lang if thread else None) or "ja"
        staff = any(r.meta.get("from") == "staff" for r in replies)
        kinds = {r.kind for r in replies}
        tag = (
            "consent"
            if ReplyKind.CONSENT in kinds
            else "clarify"
            if ReplyKind.CLARIFY in kinds
            else "staff"
            if staff
            else "reply"
        )
        # The kind in our Message-ID tells a person reading headers (and any later routing) what a reply answers.
        message_id = f"<kc.{tag}.{_safe_id(delivery.retry_key)}@{self.domain}>"
        in_reply_to, references = thread.reply_headers() if thread else (None, [])
        # Every header value is rebuilt from checked parts: ids as <...> without white space, the subject and
        # names without control characters, the recipient a plain address (deliver refused anything else).
        ids = [i for r in references for i in mail_parse.message_ids(mail_parse.safe_header_text(r))]
        in_reply_to = next(iter(mail_parse.message_ids(mail_parse.safe_header_text(in_reply_to or ""))), None)
        topic = mail_parse.safe_header_text(thread.subject if thread else "")[:SUBJECT_MAX]
        base = topic or et(lang, "subject")
        subject = f"Re: {topic}" if topic else base
        if not _LANG_TAG.match(lang):
            lang = "ja"

        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = Address(
            display_name=mail_parse.safe_header_text(et(lang, "from_name", office=self.office(lang)).strip()),
            addr_spec=self.address,
        )
        msg["To"] = Address(addr_spec=recipient)
        msg["Subject"] = subject
        msg["Date"] = format_datetime(dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=9))))
        msg["Message-ID"] = message_id
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
            msg["References"] = " ".join(ids)
        if not staff:
            msg["Auto-Submitted"] = "auto-replied"  # RFC 3834: tells other robots not to answer
        msg["X-Auto-Response-Suppress"] = "All"  # and asks Exchange not to send out-of-office replies
        # Wrapped to 35 full-width characters a line and marked format=flowed; delsp=yes, so clients that
        # reflow join the lines again without a stray space (Japanese has none between words).
        body = wrap_flowed(self.render(replies, lang, staff=staff), WRAP_COLUMNS)
        msg.set_content(body, charset="utf-8", cte="base64", params={"format": "flowed", "delsp": "yes"})
        msg["Content-Language"] = lang  # after set_content, which clears Content-* headers
        auto = any(is_automatic(r) for r in replies)
        sent = Thread(message_id, tuple(ids), base, recipient, lang, sent=True, auto=auto)
        return msg, sent

    def render(self, replies: list[Reply], lang: str, *, staff: bool) -> str:
        """Readable plain text: each reply as render_plain shows it, buttons turned into what to write back."""
        blocks: list[str] = []
        for reply in replies:
            blocks.append(render_plain(replace(reply, choices=())))
            blocks += self._choice_help(reply, lang)
        footer = et(lang, "footer_staff" if staff else "footer_bot", office=self.office(lang))
        return "\n\n".join(b for b in blocks if b.strip()) + f"\n\n-- \n{footer}\n"

    def _choice_help(self, reply: Reply, lang: str) -> list[str]:
        out: list[str] = []
        faq = [c for c in reply.choices if c.data.startswith("faq:")]
        if reply.kind == ReplyKind.CONSENT:
            out.append(et(lang, "reply_yes_no"))
        elif reply.kind == ReplyKind.CLARIFY and faq:
            out.append(et(lang, "reply_number", n=len(faq)))
        elif faq:
            questions = []
            for c in faq:
                full = self.question_for(c.data[4:], lang) if self.question_for else None
                questions.append(f"・{full or c.label}")
            out.append(et(lang, "related") + "\n" + "\n".join(questions))
        if any(c.data == "handoff" or c.data.startswith("handoff:") for c in reply.choices):
            out.append(et(lang, "reply_handoff"))
        return out

    # ----- notices
    def compose_notice(self, *, to: str, lang: str, text: str, key: str) -> EmailMessage:
        """A notice mail in the recipient's language, with a way to stop notices."""
        words = NOTICE_TEXTS.get(lang) or NOTICE_TEXTS["en" if lang != "ja" else "ja"]
        message = EmailMessage()
        message["From"] = self.address
        message["To"] = to
        message["Subject"] = words["subject"]
        message["Date"] = format_datetime(utcnow())
        # Deterministic: a message repeated after a crash keeps its id (mail clients collapse the copy).
        message["Message-ID"] = f"<notice.{key}@{self.domain}>"  # the key is ours: run and delivery ids
        message["Auto-Submitted"] = "auto-generated"
        message["List-Unsubscribe"] = f"<mailto:{self.address}?subject=stop%20notices>"
        message.set_content(f"{text}\n\n--\n{words['unsubscribe']}\n", charset="utf-8")
        return message

    async def send_bulk(self, recipients: Sequence[str], text: str, *, lang: str, key: str) -> None:
        """One notice mail (bulk is 1: each recipient is recorded as soon as the server took theirs)."""
        if len(recipients) != 1:
            raise ValueError("a notice mail goes to exactly one recipient")
        (to,) = recipients
        await self._send(self.compose_notice(to=to, lang=lang, text=text, key=key), to)

    async def aclose(self) -> None:
        """Nothing held open: each mail is sent over its own SMTP connection."""

    async def _send(self, message: EmailMessage, recipient: str) -> None:
        cfg = self.settings
        security = cfg.smtp_security
        try:
            await aiosmtplib.send(
                message,
                sender=self.address,
                recipients=[recipient],
                hostname=cfg.smtp_host,
                port=cfg.smtp_port,
                username=cfg.smtp_user or None,
                password=cfg.smtp_password.get_secret_value() if cfg.smtp_password else None,
                use_tls=security == "ssl",
                start_tls=security == "starttls",
                tls_context=ssl.create_default_context() if security != "none" else None,
                timeout=SMTP_TIMEOUT,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise DeliveryError(f"SMTP {codes[0] if codes else '?'}", retry=all(_temporary(c) for c in codes)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.code}", retry=_temporary(exc.code)) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(type(exc).__name__, retry=True) from exc

    def _last_thread(self, recipient: str) -> Thread | None:
        """The latest thread with this parent: what we last sent (or were about to answer)."""
        with self.sessions() as s:
            rows = queue.outbound_contexts(s, channel=CHANNEL, recipient=recipient, limit=20)
        for context in rows:
            thread = Thread.from_json(context)
            if thread is not None and thread.message_id is not None:
                return thread
        return None

    def _remember(self, retry_key: str, sent: Thread) -> None:
        """Leave the sent mail's headers on its outbound row: the next concierge reply follows it."""
        try:
            with transaction(self.sessions) as s:
                queue.set_outbound_context(s, channel=CHANNEL, retry_key=retry_key, context=sent.to_json())
        except Exception as exc:  # the mail is out; a lost record only costs threading of a later reply
            log.warning("email thread record not saved: %s", type(exc).__name__)


NOTICE_TEXTS = {
    "ja": {
        "subject": "子育てコンシェルジュからのお知らせ",
        "unsubscribe": "このお知らせが不要な方は、このメールに「お知らせ停止」とだけ書いて返信してください。",
    },
    "en": {
        "subject": "News from the child-rearing concierge",
        "unsubscribe": 'To stop these notices, reply to this mail with just "stop notices".',
    },
}


def recent_auto_replies(sessions: SessionFactory, *, recipient: str, within: dt.timedelta | None = None) -> int:
    """Mails with automatic answers actually sent to `recipient` lately (each sent mail's record says whether
    it held any); consent questions, case notices, crisis numbers, staff replies and held mails do not count."""
    since = utcnow() - (within or dt.timedelta(hours=1))
    with sessions() as s:
        contexts = queue.outbound_contexts(s, channel=CHANNEL, recipient=recipient, limit=RECENT_SCAN, since=since)
    count = 0
    for context in contexts:
        thread = Thread.from_json(context)
        if thread is not None and thread.sent and thread.auto and not thread.held:
            count += 1
    return count


_KINSOKU_START = set("、。，．,.!?！？」』）)］]｝}〕〉》】ー～・：；:;ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々")
_KINSOKU_END = set("「『（(［[｛{〔〈《【")


def _width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _tokens(line: str) -> list[str]:
    """Units a line may break between: runs of ASCII letters, digits and marks (words, URLs, numbers),
    single spaces, single other characters."""
    return re.findall(r"[!-~]+| |.", line)


def wrap_line(line: str, columns: int) -> list[tuple[str, bool]]:
    """One hard line as soft-wrapped pieces: (text, broken at a space). Never splits a word or URL, keeps
    closing punctuation off the start of a line and opening brackets off its end."""
    pieces: list[tuple[str, bool]] = []
    current: list[str] = []
    used = 0
    for unit in _tokens(line):
        width = sum(_width(ch) for ch in unit)
        if current and used + width > columns and unit != " " and unit not in _KINSOKU_START:
            carry: list[str] = []
            while current and current[-1] in _KINSOKU_END:
                carry.insert(0, current.pop())
            if current:
                at_space = current[-1] == " "
                pieces.append(("".join(current).rstrip(" "), at_space))
                current, used = carry, sum(_width(ch) for t in carry for ch in t)
            else:
                current = carry
        current.append(unit)
        used += width
    pieces.append(("".join(current), False))
    return pieces


def wrap_flowed(text: str, columns: int) -> str:
    """Plain text as format=flowed; delsp=yes (RFC 3676): soft breaks end in a space that reflowing clients
    delete (one more space stands for a break at a word space); hard line ends stay. Lines starting with a
    space, ">" or "From " are space-stuffed. The signature separator "-- " is kept as it is."""
    out: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == "-- ":
            out.append(line)
            continue
        pieces = wrap_line(line.rstrip(" "), columns)
        for i, (piece, at_space) in enumerate(pieces):
            if piece.startswith((" ", ">", "From ")):
                piece = " " + piece
            if i < len(pieces) - 1:
                piece += "  " if at_space else " "
            out.append(piece)
    return "\n".join(out)


RECENT_SCAN = 500  # outbound rows looked at for one sender's hour: far above any sensible cap
HELD = "held"  # Message.delivery of a bot answer the loop guard kept back
_LANG_TAG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$", re.IGNORECASE)


def _temporary(code: int) -> bool:
    return 400 <= code < 500 or code < 0  # aiosmtplib uses -1 when the server said nothing usable


def _safe_id(value: str) -> str:
    """The retry key as a Message-ID part: deterministic, so a resent mail keeps its id; short enough that
    the header stays on one line."""
    kept = "".join(ch for ch in value if ch.isascii() and ch.isalnum())
    return kept[:40] if len(kept) >= 8 else hashlib.sha256(value.encode()).hexdigest()[:32]


def _text_for_engine(subject: str, body: str, *, subject_is_stale: bool) -> str:
    """Subject and body both inform the match; a "Re:" subject only repeats the thread's topic, so a reply's
    own words stand alone (「はい」 must reach the engine as 「はい」)."""
    subject = subject.strip()
    body = body.strip()
    if not body:
        return subject
    if not subject or subject_is_stale:
        return body
    if _fold(subject) in _fold(body):
        return body
    return f"{subject}\n{body}"


def _fold(text: str) -> str:
    return "".join(text.split()).lower()


# ----- intake


class MailPoller:
    """Fetches new mail from the concierge mailbox into the inbox. The IMAP client is blocking and used from
    one worker thread at a time; the asyncio side only schedules and waits."""

    def __init__(
        self,
        settings: EmailSettings,
        inbox: Inbox,
        *,
        use_idle: bool = True,
        idle_renew: float = IDLE_RENEW,
        max_fetch_bytes: int = MAX_FETCH_BYTES,
    ) -> None:
        if not settings.imap_host or not settings.imap_user or settings.imap_password is None:
            raise ValueError("IMAP_HOST, IMAP_USER and IMAP_PASSWORD must be set for the email channel")
        self.settings = settings
        self.inbox = inbox
        # imapclient logs whole IMAP exchanges (message text, addresses) at DEBUG: never let them through.
        for name in ("imapclient", "imapclient.imaplib"):
            logging.getLogger(name).setLevel(max(logging.getLogger(name).level, logging.INFO))
        self.use_idle = use_idle
        self.idle_renew = idle_renew
        self.max_fetch_bytes = max_fetch_bytes
        self._client: Any = None
        self._uidvalidity: int | None = None
        self._idling = False
        self._stopping = False
        self._can_idle = False
        self._can_move = False
        self._can_uidplus = False

    # ----- blocking IMAP work (worker thread)
    def connect(self) -> None:
        cfg = self.settings
        context = ssl.create_default_context() if cfg.imap_security != "none" else None
        client = IMAPClient(
            cfg.imap_host,
            port=cfg.imap_port,
            ssl=cfg.imap_security == "ssl",
            ssl_context=context,
            timeout=SocketTimeout(connect=15.0, read=60.0),
        )
        try:
            if cfg.imap_security == "starttls":
                client.starttls(context)
            assert cfg.imap_password is not None
            client.login(cfg.imap_user, cfg.imap_password.get_secret_value())
            folder = client.select_folder(cfg.imap_folder)
            uidvalidity = int(folder.get(b"UIDVALIDITY", 0))
            if self._uidvalidity is not None and uidvalidity != self._uidvalidity:
                log.info("email folder UIDVALIDITY changed; unseen mail is searched again")
            self._uidvalidity = uidvalidity
            if cfg.imap_processed_folder and not client.folder_exists(cfg.imap_processed_folder):
                client.create_folder(cfg.imap_processed_folder)
            self._can_idle = self.use_idle and bool(client.has_capability("IDLE"))
            self._can_move = bool(client.has_capability("MOVE"))
            self._can_uidplus = bool(client.has_capability("UIDPLUS"))
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        self._client = client
        self._idling = False

    def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if self._idling:
                client.shutdown()
            else:
                client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()
        self._idling = False

    def _ensure(self) -> Any:
        if self._client is None:
            self.connect()
        return self._client

    def pending(self) -> list[int]:
        """UIDs of unprocessed messages, oldest first."""
        client = self._ensure()
        return sorted(int(u) for u in client.search(["UNSEEN", "UNDELETED"]))

    def store(self, uid: int) -> bool:
        """Fetch one message (attachments removed) into the inbox; True when it was new. Not yet marked."""
        client = self._ensure()
        meta = client.fetch([uid], ["RFC822.SIZE"]).get(uid)
        if meta is None:
            return False  # gone (expunged by someone else)
        size = int(meta.get(b"RFC822.SIZE", 0))
        if size > self.max_fetch_bytes:
            header = client.fetch([uid], ["BODY.PEEK[HEADER]"]).get(uid, {}).get(b"BODY[HEADER]", b"")
            raw = _oversize_stub(bytes(header), size)
        else:
            raw = bytes(client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {}).get(b"BODY[]", b""))
            raw = mail_parse.strip_attachments(raw)
        return self.inbox.accept(CHANNEL, [self._event(uid, raw, size)]) > 0

    def _event(self, uid: int, raw: bytes, size: int) -> IncomingEvent:
        try:
            headers = BytesHeaderParser(policy=policy.default).parsebytes(mail_parse.header_block(raw))
            ids = mail_parse.message_ids(str(headers.get("Message-ID", "")))
            sender = mail_parse.parse_from(headers).address  # the same structural reading as parse_event
        except Exception:
            ids, sender = [], None
        if ids:
            key = "mid:" + hashlib.sha256(ids[0].encode("utf-8", "surrogateescape")).hexdigest()
        else:
            key = f"uid:{self._uidvalidity}:{uid}"
        payload = json.dumps(
            {"raw": base64.b64encode(raw).decode("ascii"), "uid": uid, "uidvalidity": self._uidvalidity, "size": size}
        )
        return IncomingEvent(event_key=key, sender_key=EmailAdapter.sender_key(sender or "unknown"), payload=payload)

    def mark(self, uid: int) -> None:
        """Processed: move to the processed folder, or flag \\Seen."""
        client = self._ensure()
        folder = self.settings.imap_processed_folder
        if not folder:
            client.add_flags([uid], [SEEN])
        elif self._can_move:
            client.move([uid], folder)
        else:
            client.copy([uid], folder)
            client.add_flags([uid], [DELETED])
            if self._can_uidplus:
                client.uid_expunge([uid])
            else:
                client.expunge()

    def poll_once(self) -> int:
        """Store and mark every unseen message; the number of new events."""
        new = 0
        for uid in self.pending():
            if self._stopping:
                break
            if self.store(uid):
                new += 1
            self.mark(uid)
        if new:
            log.info("email intake: %d new", new)
        return new

    def _idle_start(self) -> None:
        self._ensure().idle()
        self._idling = True

    def _idle_check(self, timeout: float) -> list[Any]:
        return list(self._client.idle_check(timeout=timeout))

    def _idle_done(self) -> None:
        if self._client is not None and self._idling:
            self._idling = False
            self._client.idle_done()

    # ----- the task
    async def run(self) -> None:
        """Until cancelled: poll, wake the inbox, wait (IDLE or sleep); reconnect with backoff on errors."""
        delay = 1.0
        while True:
            try:
                if await self._blocking(self.poll_once):
                    self.inbox.wake()
                delay = 1.0
                await self._wait()
            except Exception as exc:
                log.warning("email intake failed: %s; retrying in %.0f s", type(exc).__name__, delay)
                await self._blocking(self.disconnect)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 300.0)

    async def _wait(self) -> None:
        period = max(0.5, self.settings.email_poll_seconds)
        if not self._can_idle:
            await asyncio.sleep(period)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(period, self.idle_renew)
        await self._blocking(self._idle_start)
        quick_empty = 0
        while loop.time() < deadline:
            started = loop.time()
            responses = await self._blocking(lambda: self._idle_check(1.0))
            if any(not _keepalive(r) for r in responses):
                break
            # A closed socket answers at once with nothing: do not spin on it.
            quick_empty = quick_empty + 1 if not responses and loop.time() - started < 0.5 else 0
            if quick_empty >= 3:
                raise ConnectionError("IMAP connection closed during IDLE")
        await self._blocking(self._idle_done)

    async def _blocking(self, fn: Callable[[], T]) -> T:
        """Run IMAP work in a thread. A cancelled task still waits for the thread (a native cancel would
        abandon it mid-command): the client is never used by two threads, and `close` comes after."""
        future = asyncio.ensure_future(anyio.to_thread.run_sync(fn))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self._stopping = True  # poll_once stops after the message in hand
            with contextlib.suppress(Exception):
                await future
            raise

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.disconnect)


def _keepalive(response: Any) -> bool:
    return isinstance(response, tuple) and bool(response) and response[0] == b"OK"


def _oversize_stub(header: bytes, size: int) -> bytes:
    """A message too large to fetch: its headers, with the body standing for one attachment."""
    msg = BytesHeaderParser(policy=policy.compat32).parsebytes(header)
    for name in ("Content-Type", "Content-Transfer-Encoding", "Content-Disposition"):
        del msg[name]
    msg["Content-Type"] = "application/octet-stream"
    msg["Content-Disposition"] = "attachment"
    msg["X-Concierge-Attachment-Size"] = str(size)
    msg.set_payload("")
    return msg.as_bytes()


# ----- wiring


def build(settings: Settings, inbox: Inbox) -> ChannelPlugin:
    """The channel for handlers.channels: the adapter, and the intake task for the app's lifetime."""

    def question_for(entry_id: str, lang: str) -> str | None:
        entry = inbox.engine.kb.entries.get(entry_id)  # the live KB at the time of the mail
        if entry is None:
            return None
        questions = entry.questions.get(lang) or entry.questions.get("ja") or []
        return questions[0] if questions else None

    adapter = EmailAdapter(
        settings.email,
        inbox.sessions,
        question_for=question_for,
        engine=inbox.engine,
        store=lambda events: inbox.accept(CHANNEL, events),
        office_names=settings.deployment_names(),
    )
    if not settings.email.email_authserv_id:
        log.warning("email: EMAIL_AUTHSERV_ID unset, senders are not checked against Authentication-Results")
    poller = MailPoller(settings.email, inbox)
    return ChannelPlugin(adapter=adapter, tasks=[poller.run], close=poller.close)


def build_sender(settings: Settings, sessions: SessionFactory) -> EmailAdapter | None:
    """The adapter alone, for notices (SMTP and the address suffice; intake need not be on)."""
    if not settings.email.smtp_host or not settings.email.email_address:
        return None
    return EmailAdapter(settings.email, sessions, office_names=settings.deployment_names())


ADAPTER = EmailAdapter
