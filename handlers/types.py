"""The whole contract between channels and the engine."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
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
    """A delivery did not go through. `retry`: worth another try later; `token_spent`: push next time;
    `rate_limited`: the channel said we called too fast (the same call may go again as soon as the pace allows)."""

    def __init__(self, reason: str, *, retry: bool, token_spent: bool = False, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.token_spent = token_spent
        self.rate_limited = rate_limited


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can do, declared once by its adapter; the console, the Telegram bridge and notices read it."""

    channel: str  # the channel's name (Contact.channel, InboundEvent.channel)
    label: str  # the channel's name for staff (Japanese)
    push: bool  # can reach a parent who did not just write (staff replies, case notices)
    bulk: int  # recipients per bulk call for notices (0: no notices through this channel)
    broadcast: bool  # one call reaches every follower (no recipient list)
    reply_token: bool  # a free reply to the parent's message comes with it
    max_text: int  # characters of one text message (longer replies are split or wrapped)
    max_label: int  # characters of a quick-reply label shown to the parent


class ChannelAdapter(Protocol):
    """One per channel (handlers/channels/line.py, email.py, console.py): parse stored events, deliver
    replies. Verification of webhooks happens in the channel's route, on the raw body, before storing."""

    name: str
    capabilities: Capabilities

    def parse_event(self, payload: str) -> Parsed: ...

    async def deliver(self, delivery: Delivery) -> None: ...

    @staticmethod
    def sender_key(external_id: str) -> str:
        """The `InboundEvent.sender_key` of a contact's stored events (erasure finds them by it)."""
        ...


class BulkAdapter(ChannelAdapter, Protocol):
    """A channel that sends notices (capabilities.bulk > 0)."""

    async def send_bulk(self, recipients: Sequence[str], text: str, *, lang: str, key: str) -> None:
        """Send one notice text to up to `capabilities.bulk` recipients in one call; no recipients means a
        broadcast (capabilities.broadcast). `key` is the call's idempotency key, stable across retries: a call
        the channel already accepted under it is not sent again. Raises DeliveryError."""
        ...

    async def aclose(self) -> None: ...


# Message.delivery of a transcript line for a reply: queued until the channel accepted it, then sent; failed
# when the channel gave up (the reason stays on the outbound row that carries the line's id).
QUEUED = "pending"
SENT = "sent"
FAILED = "failed"


def recorded(reply: Reply, message_id: int | None) -> Reply:
    """The reply, carrying the id of the transcript line that records it (marked sent on delivery)."""
    if message_id is None:
        return reply
    return Reply(
        kind=reply.kind,
        text=reply.text,
        choices=reply.choices,
        contacts=reply.contacts,
        entry_id=reply.entry_id,
        lang=reply.lang,
        meta={**reply.meta, "message_id": str(message_id)},
    )


def recorded_lines(replies: list[Reply]) -> list[int]:
    """The transcript lines these replies are recorded in."""
    return [int(r.meta["message_id"]) for r in replies if r.meta.get("message_id", "").isdigit()]


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
