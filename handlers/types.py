"""The whole contract between channels and the engine."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Protocol

# No URL longer than this is shown to a parent as text (long percent-encoded addresses fill a phone screen):
# a source becomes the site's name, a contact's web page stays a button where the channel has buttons.
MAX_URL_SHOWN = 100


class InboundKind(StrEnum):
    TEXT = "text"
    POSTBACK = "postback"
    STICKER = "sticker"
    MEDIA = "media"  # image, audio, video, file, location
    FOLLOW = "follow"  # the parent added the bot (LINE) or subscribed
    UNFOLLOW = "unfollow"  # the parent blocked the bot or unsubscribed
    GROUP = "group"  # a message in a group chat: consultations are one-to-one


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """What a parent sent, as any channel sees it."""

    channel: str
    sender_id: str
    text: str | None = None
    postback: str | None = None
    kind: InboundKind = InboundKind.TEXT
    lang_hint: str | None = None
    timestamp: dt.datetime | None = None
    media_type: str | None = None  # "image", "file", ... for kind MEDIA


@dataclass(frozen=True, slots=True)
class Choice:
    """A quick reply: what the parent sees, and what comes back as a postback."""

    label: str
    data: str


@dataclass(frozen=True, slots=True)
class ContactCard:
    name: str
    phone: str | None = None
    fax: str | None = None
    email: str | None = None
    address: str | None = None
    hours: str | None = None
    url: str | None = None


class ReplyKind(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    FALLBACK = "fallback"
    CONSENT = "consent"
    HANDOFF = "handoff"
    URGENT = "urgent"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Reply:
    """One message to the parent; channels render it natively or as plain text."""

    kind: ReplyKind
    text: str
    choices: tuple[Choice, ...] = ()
    contacts: tuple[ContactCard, ...] = ()
    entry_id: str | None = None
    lang: str = "ja"
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A stored event turned into a message for the engine, with what delivery will need."""

    message: InboundMessage | None  # None: nothing for the engine (an ignored event type)
    reply_token: str | None = None
    context: str | None = None  # channel data for the reply (e.g. an email thread's headers)


@dataclass(frozen=True, slots=True)
class Delivery:
    recipient: str
    replies: list[Reply]
    retry_key: str
    reply_token: str | None = None
    context: str | None = None
    # The reply token may already have been used by an attempt cut off by a crash: the channel may try it
    # again, but must not fall back to a push that could deliver the same reply twice.
    reply_unconfirmed: bool = False


class DeliveryError(Exception):
    """A delivery did not go through. `retry`: worth another try later; `token_spent`: push next time."""

    def __init__(self, reason: str, *, retry: bool, token_spent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.token_spent = token_spent


class ChannelAdapter(Protocol):
    """One per channel (handlers/channels/line.py, email.py, telegram.py, console.py): parse stored events, deliver
    replies. Verification of webhooks happens in the channel's route, on the raw body, before storing."""

    name: str

    def parse_event(self, payload: str) -> Parsed: ...

    async def deliver(self, delivery: Delivery) -> None: ...


def replies_to_json(replies: list[Reply]) -> str:
    return json.dumps([asdict(r) for r in replies], ensure_ascii=False)


def replies_from_json(data: str) -> list[Reply]:
    out = []
    for r in json.loads(data):
        out.append(
            Reply(
                kind=ReplyKind(r["kind"]),
                text=r["text"],
                choices=tuple(Choice(**c) for c in r.get("choices", [])),
                contacts=tuple(ContactCard(**c) for c in r.get("contacts", [])),
                entry_id=r.get("entry_id"),
                lang=r.get("lang", "ja"),
                meta=dict(r.get("meta", {})),
            )
        )
    return out


def render_plain(reply: Reply) -> str:
    """Plain-text rendering: the fallback for channels without rich messages (email, console)."""
    parts = [reply.text]
    for card in reply.contacts:
        lines = [f"■ {card.name}"]
        for label, value in (
            ("TEL", card.phone),
            ("FAX", card.fax),
            ("Mail", card.email),
            ("", card.address),
            ("", card.hours),
            ("", card.url if card.url and len(card.url) <= MAX_URL_SHOWN else None),
        ):
            if value:
                lines.append(f"  {label + ': ' if label else ''}{value}")
        parts.append("\n".join(lines))
    if reply.choices:
        parts.append("\n".join(f"[{i}] {c.label}" for i, c in enumerate(reply.choices, 1)))
    return "\n\n".join(parts)
