"""The LINE channel: the signed webhook route, the adapter that parses stored events and delivers replies
through the Messaging API (line-bot-sdk v3, async), and the rich menu upload.

The route only verifies, stores and acknowledges (LINE counts a webhook as timed out after about 2 s); the
inbox loop parses and answers later. Replies go out with the event's reply token first (free), then as
pushes carrying `X-Line-Retry-Key` so a retried push is not sent twice. Logs carry counts, status codes and
error class names only: never message text, user ids or request bodies.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from linebot.v3.messaging import (  # type: ignore[import-untyped]
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    BroadcastRequest,
    Configuration,
    MulticastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
    RichMenuRequest,
    ShowLoadingAnimationRequest,
    TextMessage,
)

from handlers.channels import ChannelPlugin
from handlers.inbox import IncomingEvent
from handlers.types import (
    Capabilities,
    Choice,
    ContactCard,
    Delivery,
    DeliveryError,
    InboundKind,
    InboundMessage,
    Parsed,
    Reply,
)

if TYPE_CHECKING:
    from bot.settings import Settings
    from handlers.inbox import Inbox
    from storage.db import SessionFactory

CHANNEL = "line"
WEBHOOK_PATH = "/webhooks/line"
RICHMENU_JSON = Path(__file__).resolve().parents[2] / "bot" / "richmenu.json"
RICHMENU_IMAGE = RICHMENU_JSON.with_suffix(".png")

# Limits of the Messaging API (checked in its reference, November 2026).
MAX_MESSAGES = 5  # message objects per reply or push request
MAX_TEXT = 5000  # characters of one text message (UTF-16 code units, as LINE counts)
MAX_QUICK_REPLY = 13
MAX_LABEL = 20  # quick-reply and button labels
MAX_POSTBACK_DATA = 300
MAX_ALT_TEXT = 400
MAX_URI = 1000
MAX_CAROUSEL = 12
MAX_MULTICAST = 500  # user ids per multicast request
MONTHLY_LIMIT = "monthly limit"  # in LINE's 429 message when the month's quota is used up (else: too many requests)

LOADING_SECONDS = 10  # 5..60 in steps of 5; the indicator disappears as soon as our reply arrives
LOADING_AGAIN_AFTER = 5.0  # seconds: a chat that was just shown the animation is not asked again
MAX_LOADING_IN_FLIGHT = 64  # best-effort: beyond this, no animation rather than a pile of requests
# The animation is asked for only when a message is still unanswered this long after it arrived: a reply that
# comes sooner needs none, and an animation requested after the reply would spin on for LOADING_SECONDS.
LOADING_DELAY = 1.0
# A burst (a backlog after downtime, a broadcast everyone answers) must not turn into as many API calls
# competing with the webhook's own work: beyond this rate the animation is left out.
MAX_LOADING_PER_SECOND = 20.0
LOADING_ROUND = 0.2  # seconds between two look-ups of which due messages are still unanswered
MAX_LOADING_WATCHED = 10_000

log = logging.getLogger("concierge.line")

# The error of a delivery whose reply may or may not have arrived (see LineAdapter.deliver): staff check.
REPLY_UNCONFIRMED = "reply_unconfirmed"

_LABELS = {
    "ja": {
        "call": "電話する",
        "mail": "メールする",
        "web": "ウェブサイト",
        "tel": "電話",
        "fax": "FAX",
        "cards": "連絡先",
    },
    "en": {"call": "Call", "mail": "Email", "web": "Website", "tel": "Tel", "fax": "Fax", "cards": "Contacts"},
}


# ----- signature and webhook body


def signature_ok(secret: bytes, body: bytes, signature: str | None) -> bool:
    """X-Line-Signature is base64(HMAC-SHA256(channel secret, raw body)); compared in constant time."""
    if not signature:
        return False
    expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.strip().encode("ascii", "replace"))


def sign(secret: str, body: bytes) -> str:
    """The signature LINE would send for `body` (tests, benchmarks, local tools)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class WebhookFormatError(ValueError):
    """A correctly signed body that is not a LINE webhook (the message never quotes the body)."""


def split_events(body: bytes) -> list[IncomingEvent]:
    """One stored event per webhook event, keyed by `webhookEventId` so a redelivery is stored once."""
    return [stored for stored, _ in _parse_webhook(body)]


def _parse_webhook(body: bytes) -> list[tuple[IncomingEvent, dict[str, Any]]]:
    """Each event to store, with the parsed event it came from (the route reads it again for the animation).
    Events are cleaned first (see `_clean_event`); one that cannot be a real LINE event is left out, so a
    signed but odd body is acknowledged and ignored instead of failing its neighbours or the worker."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise WebhookFormatError("body is not valid JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise WebhookFormatError("body must be an object with an 'events' array")
    out: list[tuple[IncomingEvent, dict[str, Any]]] = []
    dropped = 0
    # Cheap checks on the raw bytes spare the walks for ordinary bodies: a body with few brackets cannot nest
    # deeply, and lone surrogates and NUL can only come in as \u escapes.
    shallow = body.count(b"{") + body.count(b"[") <= MAX_DEPTH
    unsafe = b"\\u" in body and _UNSAFE_ESCAPE.search(body) is not None
    for i, raw in enumerate(data["events"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            raise WebhookFormatError(f"event {i} is not an object with a 'type'")
        event = _clean_event(raw, shallow=shallow)
        if event is None:
            dropped += 1
            continue
        if unsafe:
            event = _clean_strings(event)
        payload = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        key = event.get("webhookEventId")
        if not isinstance(key, str) or not key or len(key) > 255:
            # Every current event has one; without it, identical redeliveries still collapse.
            key = "sha256:" + hashlib.sha256(payload.encode()).hexdigest()
        stored = IncomingEvent(event_key=key, sender_key=_sender_key(event), payload=payload, text=_text(event))
        out.append((stored, event))
    if dropped:
        log.warning("line webhook: %d malformed event(s) ignored", dropped)
    return out


# Bounds of what LINE sends (its ids are 33 characters, texts at most 5,000, postback data 300): values past
# them are not LINE's, and would fail later (a 5,000-character id is longer than our columns on PostgreSQL).
MAX_DEPTH = 32  # a real event nests about 5 deep
MAX_ID = 64
MAX_REPLY_TOKEN = 255
MAX_TEXT_IN = 10_000
MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last moment a datetime holds
# Text the database cannot store: lone UTF-16 surrogates (not encodable as UTF-8) and NUL (PostgreSQL text),
# as the \u escapes that bring them into a body, and as characters once parsed.
_UNSAFE_ESCAPE = re.compile(rb"\\u(?:[dD][89abcdefABCDEF]|0000)")
_UNSAFE_CHARS = re.compile(r"[\ud800-\udfff\x00]")


def _clean_event(event: dict[str, Any], *, shallow: bool = False) -> dict[str, Any] | None:
    """The event with out-of-range values clamped or removed, or None when it cannot be a LINE event
    (nested deeper than any real one, a source or message of the wrong type, an id that is not LINE's).
    `shallow`: the whole body is known not to nest deeper than MAX_DEPTH."""
    if not shallow and _too_deep(event, MAX_DEPTH):
        return None
    source = event.get("source")
    if source is not None:
        if not isinstance(source, dict):
            return None
        for name in ("userId", "groupId", "roomId"):
            value = source.get(name)
            if value is not None and not (isinstance(value, str) and 0 < len(value) <= MAX_ID):
                return None
    message = event.get("message")
    if event["type"] == "message" and not isinstance(message, dict):
        return None
    drop = [
        name
        for name, kind in (("deliveryContext", dict), ("mode", str), ("replyToken", str), ("postback", dict))
        if name in event and not isinstance(event[name], kind)
    ]
    token = event.get("replyToken")
    if isinstance(token, str) and len(token) > MAX_REPLY_TOKEN:
        drop.append("replyToken")
    ts = event.get("timestamp")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int) or not 0 < ts <= MAX_TIMESTAMP_MS):
        drop.append("timestamp")
    text = message.get("text") if isinstance(message, dict) else None
    postback = event.get("postback")
    data = postback.get("data") if isinstance(postback, dict) else None
    long_text = isinstance(text, str) and len(text) > MAX_TEXT_IN
    long_data = isinstance(data, str) and len(data) > MAX_POSTBACK_DATA
    if not (drop or long_text or long_data):
        return event  # the usual case: nothing to change, nothing copied
    event = {k: v for k, v in event.items() if k not in drop}
    if long_text:
        assert isinstance(message, dict) and isinstance(text, str)
        event["message"] = {**message, "text": text[:MAX_TEXT_IN]}
    if long_data and "postback" in event:
        assert isinstance(postback, dict) and isinstance(data, str)
        event["postback"] = {**postback, "data": data[:MAX_POSTBACK_DATA]}
    return event


def _too_deep(value: Any, limit: int) -> bool:
    """Nesting deeper than `limit` (iterative: a deep body must not exhaust the interpreter's stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return False


def _clean_strings(value: Any) -> Any:
    """Every string (keys too) with lone surrogates and NUL replaced by U+FFFD (depth already bounded)."""
    if isinstance(value, str):
        return _UNSAFE_CHARS.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_clean_strings(k): _clean_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_strings(v) for v in value]
    return value


def _text(event: dict[str, Any]) -> str | None:
    """A one-to-one text message's text, for the crisis screening at intake."""
    message = event.get("message")
    if event["type"] != "message" or not isinstance(message, dict) or event.get("mode", "active") != "active":
        return None
    text = message.get("text")
    return text if isinstance(text, str) else None


def _chat_id(source: dict[str, Any]) -> str | None:
    """The id a reply goes to: the group or room for group chats, else the user."""
    kind = source.get("type")
    value = source.get("groupId") if kind == "group" else source.get("roomId") if kind == "room" else None
    value = value or source.get("userId")
    return value if isinstance(value, str) and value else None


def _sender_key(event: dict[str, Any]) -> str:
    source = event.get("source")
    chat = _chat_id(source) if isinstance(source, dict) else None
    return LineAdapter.sender_key(chat or "-")


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed `limit` (from Content-Length when given)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return None
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            return None
    return bytes(buf)


# ----- rendering replies as LINE message objects


def utf16_len(text: str) -> int:
    """LINE counts characters in UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def clip(text: str, limit: int) -> str:
    """At most `limit` UTF-16 units, with an ellipsis when cut."""
    if utf16_len(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        n = 2 if ord(ch) > 0xFFFF else 1
        if used + n > limit - 1:
            break
        out.append(ch)
        used += n
    return "".join(out) + "…"


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Pieces of at most `limit` UTF-16 units, cut after a line break where one is near the end."""
    pieces: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        end, used = 0, 0
        for i, ch in enumerate(rest):
            n = 2 if ord(ch) > 0xFFFF else 1
            if used + n > limit:
                break
            used += n
            end = i + 1
        newline = rest.rfind("\n", 0, end)
        if newline >= end // 2:
            end = newline + 1
        pieces.append(rest[:end].rstrip("\n"))
        rest = rest[end:]
    if rest or not pieces:
        pieces.append(rest)
    return [p if p.strip() else "…" for p in pieces]


def quick_reply(choices: Sequence[Choice]) -> dict[str, Any] | None:
    """Postback buttons (at most 13); a choice whose data is too long for LINE is left out."""
    items = []
    for choice in choices:
        if len(choice.data) > MAX_POSTBACK_DATA:
            log.warning("quick reply item dropped: postback data too long (%d)", len(choice.data))
            continue
        label = clip(choice.label, MAX_LABEL)
        action = {"type": "postback", "label": label, "data": choice.data, "displayText": choice.label[:300]}
        items.append({"type": "action", "action": action})
        if len(items) == MAX_QUICK_REPLY:
            break
    return {"items": items} if items else None


def _labels(lang: str) -> dict[str, str]:
    return _LABELS.get(lang, _LABELS["en"])


def _tel_uri(phone: str) -> str | None:
    digits = "".join(ch for ch in phone if ch.isdigit() or ch == "+")
    return f"tel:{digits}" if len(digits) >= 3 else None


def contact_bubble(card: ContactCard, lang: str) -> dict[str, Any]:
    """A contact as a flex bubble: details as text (readable on PC too) and tap-to-call / mail buttons."""
    words = _labels(lang)
    body: list[dict[str, Any]] = [
        {"type": "text", "text": clip(card.name, 200), "weight": "bold", "size": "md", "wrap": True}
    ]
    for value in (
        f"{words['tel']} {card.phone}" if card.phone else None,
        f"{words['fax']} {card.fax}" if card.fax else None,
        card.email,
        card.address,
        card.hours,
    ):
        if value:
            body.append({"type": "text", "text": clip(value, 500), "size": "sm", "color": "#555555", "wrap": True})
    buttons: list[dict[str, Any]] = []
    tel = _tel_uri(card.phone) if card.phone else None
    if tel:
        buttons.append(_uri_button(words["call"], tel, "primary"))
    if card.email and "@" in card.email and len(card.email) < MAX_URI - 10:
        buttons.append(_uri_button(words["mail"], f"mailto:{card.email.strip()}", "secondary"))
    if card.url and card.url.startswith(("https://", "http://")) and len(card.url) <= MAX_URI:
        buttons.append(_uri_button(words["web"], card.url, "link"))
    bubble: dict[str, Any] = {
        "type": "bubble",
        "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": body},
    }
    if buttons:
        bubble["footer"] = {"type": "box", "layout": "vertical", "spacing": "sm", "contents": buttons}
    return bubble


def _uri_button(label: str, uri: str, style: str) -> dict[str, Any]:
    return {"type": "button", "style": style, "height": "sm", "action": {"type": "uri", "label": label, "uri": uri}}


def contacts_message(cards: Sequence[ContactCard], lang: str) -> dict[str, Any]:
    """One flex message: a bubble for one contact, a carousel for several; altText for notifications."""
    bubbles = [contact_bubble(c, lang) for c in cards[:MAX_CAROUSEL]]
    contents = bubbles[0] if len(bubbles) == 1 else {"type": "carousel", "contents": bubbles}
    words = _labels(lang)
    alt = " / ".join(f"{c.name} {words['tel']} {c.phone}" if c.phone else c.name for c in cards)
    return {"type": "flex", "altText": clip(f"{words['cards']}: {alt}", MAX_ALT_TEXT), "contents": contents}


def render(replies: Sequence[Reply]) -> list[dict[str, Any]]:
    """Replies as LINE message objects: each reply's text (split at 5,000 characters), then its contacts as
    a flex message. Quick replies go on the very last message, the only one LINE shows them on."""
    messages: list[dict[str, Any]] = []
    for reply in replies:
        messages += [{"type": "text", "text": piece} for piece in split_text(reply.text)]
        if reply.contacts:
            messages.append(contacts_message(reply.contacts, reply.lang))
    if len(messages) > MAX_MESSAGES:
        messages = _pack(messages)
    choices = next((r.choices for r in reversed(replies) if r.choices), ())
    qr = quick_reply(choices)
    if qr is not None and messages:
        messages[-1]["quickReply"] = qr
    return messages


def _pack(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join neighbouring texts (within the 5,000 limit) so one free reply holds as much as it can."""
    out: list[dict[str, Any]] = []
    for m in messages:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev["type"] == m["type"] == "text"
            and utf16_len(prev["text"]) + 2 + utf16_len(m["text"]) <= MAX_TEXT
        ):
            prev["text"] = prev["text"] + "\n\n" + m["text"]
        else:
            out.append(dict(m))
    return out


def batches(messages: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [list(messages[i : i + MAX_MESSAGES]) for i in range(0, len(messages), MAX_MESSAGES)]


def part_retry_key(retry_key: str, part: int) -> str:
    """The X-Line-Retry-Key of one push request: stable across attempts of the same delivery (a UUID)."""
    try:
        base = uuid.UUID(retry_key)
    except ValueError:
        base = uuid.uuid5(uuid.NAMESPACE_URL, f"kosodate-concierge:{retry_key}")
        return str(uuid.uuid5(base, f"part-{part}"))
    return str(base) if part == 0 else str(uuid.uuid5(base, f"part-{part}"))


# ----- parsing stored events


def _timestamp(event: dict[str, Any]) -> dt.datetime | None:
    ms = event.get("timestamp")
    if isinstance(ms, int) and not isinstance(ms, bool) and 0 < ms <= MAX_TIMESTAMP_MS:
        with contextlib.suppress(OverflowError, ValueError, OSError):
            return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return None


def parse_line_event(payload: str) -> Parsed:
    """A stored webhook event as the engine's InboundMessage: text → TEXT, postback → POSTBACK, follow /
    unfollow, sticker → STICKER, image/video/audio/file/location → MEDIA; anything said in a group or room →
    GROUP (sender: the group/room id, no text); standby mode and other event types → Parsed(None)."""
    event = json.loads(payload)
    if not isinstance(event, dict) or event.get("mode") == "standby":
        return Parsed(None)  # standby: another channel (e.g. the LINE chat console) holds the conversation
    etype = event.get("type")
    source = event.get("source") if isinstance(event.get("source"), dict) else {}
    assert isinstance(source, dict)
    chat_id = _chat_id(source)
    if chat_id is None:
        return Parsed(None)
    in_group = source.get("type") in ("group", "room")
    token = event.get("replyToken") if isinstance(event.get("replyToken"), str) else None
    when = _timestamp(event)

    def msg(kind: InboundKind, **values: Any) -> Parsed:
        return Parsed(InboundMessage(CHANNEL, chat_id, kind=kind, timestamp=when, **values), reply_token=token)

    if etype in ("message", "postback") and in_group:
        return msg(InboundKind.GROUP)  # nothing of the group's text goes any further
    if etype == "follow" and not in_group:
        return msg(InboundKind.FOLLOW)
    if etype == "unfollow" and not in_group:
        return Parsed(InboundMessage(CHANNEL, chat_id, kind=InboundKind.UNFOLLOW, timestamp=when))
    if etype == "postback":
        postback = event.get("postback")
        data = postback.get("data") if isinstance(postback, dict) else None
        return msg(InboundKind.POSTBACK, postback=data if isinstance(data, str) else "")
    if etype == "message":
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        assert isinstance(message, dict)
        mtype = message.get("type")
        if mtype == "text":
            text = message.get("text")
            return msg(InboundKind.TEXT, text=text if isinstance(text, str) else "")
        if mtype == "sticker":
            return msg(InboundKind.STICKER)
        # image/video/audio/file/location, and any message type LINE adds later: a polite "text only".
        return msg(InboundKind.MEDIA, media_type=mtype if isinstance(mtype, str) else "unknown")
    return Parsed(None)  # join, leave, unsend, accountLink, beacon, ...


# ----- the adapter


@dataclass
class _Outcome:
    """What a delivery did so far (a failure after the reply call must not offer the token again)."""

    token_used: bool = False


class LineAdapter:
    """Parses stored LINE events and delivers replies (reply, then push) and notices (multicast, broadcast)
    through the Messaging API."""

    name = CHANNEL
    capabilities = Capabilities(
        channel=CHANNEL,
        label="LINE",
        push=True,
        bulk=MAX_MULTICAST,
        broadcast=True,
        reply_token=True,
        max_text=MAX_TEXT,
        max_label=MAX_LABEL,
    )

    def __init__(
        self, access_token: str, *, api_base_url: str | None = None, timeout: float = 5.0, bulk_timeout: float = 10.0
    ) -> None:
        self._access_token = access_token
        self._host = api_base_url.rstrip("/") if api_base_url else None
        self.timeout = timeout
        self.bulk_timeout = bulk_timeout
        self._client: AsyncApiClient | None = None
        self._messaging: AsyncMessagingApi | None = None
        self._loading: set[asyncio.Task[None]] = set()
        self._loading_shown: dict[str, float] = {}  # chat id -> loop time of the last request
        self._loading_tokens = MAX_LOADING_PER_SECOND  # a token bucket over MAX_LOADING_PER_SECOND
        self._loading_refilled = 0.0

    def configuration(self) -> Any:
        # host None in production: each API picks api.line.me or api-data.line.me itself.
        return Configuration(access_token=self._access_token, host=self._host)

    def _api(self) -> Any:
        """The SDK client, made on first use inside the running event loop (aiohttp needs one)."""
        if self._messaging is None:
            self._client = AsyncApiClient(self.configuration())
            self._messaging = AsyncMessagingApi(self._client)
        return self._messaging

    async def aclose(self) -> None:
        for task in list(self._loading):
            task.cancel()
        if self._loading:
            await asyncio.gather(*self._loading, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = self._messaging = None

    # --- ChannelAdapter
    @staticmethod
    def sender_key(external_id: str) -> str:
        return f"{CHANNEL}:{external_id}"[:255]

    def parse_event(self, payload: str) -> Parsed:
        return parse_line_event(payload)

    async def deliver(self, delivery: Delivery) -> None:
        messages = render(delivery.replies)
        if not messages:
            return
        parts = batches(messages)
        outcome = _Outcome()
        start = 0
        unconfirmed = False
        if delivery.reply_token:
            outcome.token_used = True
            if await self._reply(delivery.reply_token, parts[0]):
                start = 1
            elif delivery.reply_unconfirmed:
                # An earlier attempt was cut off mid-call: LINE may have taken that reply, and a dead token
                # cannot tell "used by us" from "expired". A push could be a second copy, so the first part
                # is left out and the delivery reported to staff; later parts carry retry keys (no doubles).
                start, unconfirmed = 1, True
        for i in range(start, len(parts)):
            await self._push(delivery.recipient, parts[i], part_retry_key(delivery.retry_key, i), outcome)
        if unconfirmed:
            raise DeliveryError(REPLY_UNCONFIRMED, retry=False, token_spent=True)

    async def _reply(self, token: str, messages: list[dict[str, Any]]) -> bool:
        """True when replied; False when the token is dead (400: expired or used) and a push should follow."""
        request = ReplyMessageRequest.from_dict({"replyToken": token, "messages": messages})
        try:
            await self._api().reply_message(request, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 400:
                log.info("reply token refused (400); pushing instead")
                return False
            raise _delivery_error("reply", exc.status, token_spent=True) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            # LINE may or may not have taken it: the token is kept and tried again (a used token is refused,
            # so that cannot send twice), and the delivery stays marked as attempted (no push after a 400).
            raise DeliveryError(f"reply {type(exc).__name__}", retry=True, token_spent=False) from None
        return True

    async def _push(self, to: str, messages: list[dict[str, Any]], retry_key: str, outcome: _Outcome) -> None:
        request = PushMessageRequest.from_dict({"to": to, "messages": messages})
        try:
            await self._api().push_message(request, x_line_retry_key=retry_key, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 409:
                return  # this retry key was accepted before: already delivered
            raise _delivery_error("push", exc.status, token_spent=outcome.token_used) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise DeliveryError(f"push {type(exc).__name__}", retry=True, token_spent=outcome.token_used) from None

    # --- notices
    async def send_bulk(self, recipients: Sequence[str], text: str, *, lang: str, key: str) -> None:
        """A multicast to 1..500 user ids, or a broadcast to every follower when `recipients` is empty. `key`
        goes out as X-Line-Retry-Key: LINE answers 409 for a call it accepted before, which counts as sent.
        Failures carry LINE's status code (or the error's class name) as their reason."""
        if len(recipients) > MAX_MULTICAST:
            raise ValueError("a multicast carries 1..500 user ids")
        # Built without validation: 500 ids through pydantic twice costs more than the call itself, and what goes
        # in is ours (user ids from the database, a text checked when the notice was written).
        message = TextMessage.construct(type="text", text=text, quickReply=None, sender=None, emojis=None)
        api = self._api()
        if recipients:
            request = MulticastRequest.construct(to=list(recipients), messages=[message])
            call = api.multicast(request, x_line_retry_key=key, _request_timeout=self.bulk_timeout)
        else:
            request = BroadcastRequest.from_dict({"messages": [{"type": "text", "text": text}]})
            call = api.broadcast(request, x_line_retry_key=key, _request_timeout=self.bulk_timeout)
        try:
            await call
        except ApiException as exc:
            status = int(exc.status or 0)
            if status == 409:
                return  # this retry key was accepted before: already sent
            if status == 429 and MONTHLY_LIMIT in _api_message(exc).lower():
                # The month's quota is used up: trying again this month cannot succeed.
                raise DeliveryError("429 monthly_limit", retry=False) from None
            raise DeliveryError(str(status), retry=status == 429 or status >= 500, rate_limited=status == 429) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise DeliveryError(type(exc).__name__, retry=True) from None

    async def quota(self) -> tuple[int | None, int]:
        """This month's message quota (None: no limit) and what was used of it."""
        api = self._api()
        limit = await api.get_message_quota(_request_timeout=self.bulk_timeout)
        used = await api.get_message_quota_consumption(_request_timeout=self.bulk_timeout)
        value = limit.value if str(getattr(limit.type, "value", limit.type)) == "limited" else None
        return value, int(used.total_usage)

    # --- the loading animation (best effort, never in the way of the webhook's answer)
    def loading_room(self, chat_ids: Iterable[str]) -> list[str]:
        """Those of `chat_ids` an animation could be shown in now (not shown there just before, within the
        rate and the calls in flight): the rest need no look-up. `show_loading` starts exactly these."""
        now = asyncio.get_running_loop().time()
        if len(self._loading_shown) > 10_000:
            self._loading_shown = {c: t for c, t in self._loading_shown.items() if now - t < LOADING_AGAIN_AFTER}
        elapsed = now - self._loading_refilled
        self._loading_refilled = now
        self._loading_tokens = min(MAX_LOADING_PER_SECOND, self._loading_tokens + elapsed * MAX_LOADING_PER_SECOND)
        room = min(int(self._loading_tokens), MAX_LOADING_IN_FLIGHT - len(self._loading))
        out: list[str] = []
        for chat_id in dict.fromkeys(chat_ids):
            if len(out) >= room:
                break
            if now - self._loading_shown.get(chat_id, -LOADING_AGAIN_AFTER) >= LOADING_AGAIN_AFTER:
                out.append(chat_id)
        return out

    def show_loading(self, chat_ids: Iterable[str]) -> None:
        loop = asyncio.get_running_loop()
        for chat_id in self.loading_room(chat_ids):
            self._loading_shown[chat_id] = loop.time()
            self._loading_tokens -= 1
            task = loop.create_task(self._show_loading(chat_id))
            self._loading.add(task)
            task.add_done_callback(self._loading.discard)

    async def _show_loading(self, chat_id: str) -> None:
        request = ShowLoadingAnimationRequest(chatId=chat_id, loadingSeconds=LOADING_SECONDS)
        try:
            await self._api().show_loading_animation(request, _request_timeout=2.0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # best effort: the reply does not depend on it
            status = getattr(exc, "status", None)
            log.debug("loading animation not shown: %s %s", type(exc).__name__, status or "")


def _delivery_error(what: str, status: int | None, *, token_spent: bool) -> DeliveryError:
    retry = status is not None and (status == 429 or status >= 500)
    return DeliveryError(f"{what} {status}", retry=retry, token_spent=token_spent)


def _loading_targets(events: list[tuple[IncomingEvent, dict[str, Any]]]) -> list[tuple[str, str]]:
    """(chat id, event key) of one-to-one chats that just wrote to us (not redeliveries, not standby): the
    animation applies there."""
    targets: list[tuple[str, str]] = []
    chats: set[str] = set()
    for e, event in events:
        source = event.get("source")
        context = event.get("deliveryContext")
        if (
            isinstance(source, dict)
            and event.get("type") in ("message", "postback")
            and event.get("mode", "active") == "active"
            and source.get("type") == "user"
            and isinstance(source.get("userId"), str)
            and not (isinstance(context, dict) and context.get("isRedelivery", False) is True)
            and source["userId"] not in chats
        ):
            chats.add(source["userId"])
            targets.append((source["userId"], e.event_key))
    return targets


class LoadingWatch:
    """Asks for the loading animation in chats whose message is still unanswered `delay` seconds after it
    was stored (one database look-up per round, for all the messages that came due together)."""

    def __init__(self, adapter: LineAdapter, inbox: Inbox, *, delay: float = LOADING_DELAY) -> None:
        self._adapter = adapter
        self._inbox = inbox
        self.delay = delay
        self._due: collections.deque[tuple[float, str, str]] = collections.deque()
        self._task: asyncio.Task[None] | None = None

    def watch(self, targets: list[tuple[str, str]]) -> None:
        if not targets or len(self._due) >= MAX_LOADING_WATCHED:
            return  # best effort: under a flood, no animation rather than an unbounded list
        loop = asyncio.get_running_loop()
        due = loop.time() + self.delay
        self._due.extend((due, chat, key) for chat, key in targets)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._due:
            wait = self._due[0][0] - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            now = loop.time()
            batch: dict[str, str] = {}  # chat -> its latest due message
            while self._due and self._due[0][0] <= now:
                _, chat, key = self._due.popleft()
                batch[chat] = key
            # Only chats the animation could still be shown in are looked up; under a burst most cannot.
            chats = self._adapter.loading_room(batch)
            if chats:
                try:
                    waiting = await anyio.to_thread.run_sync(self._inbox.unfinished, CHANNEL, [batch[c] for c in chats])
                except Exception as exc:  # best effort; the driver's message may quote parameters: class name only
                    log.debug("loading animation skipped: %s", type(exc).__name__)
                else:
                    self._adapter.show_loading([c for c in chats if batch[c] in waiting])
            # One look-up per round at most every LOADING_ROUND: the messages that come due meanwhile share it.
            await asyncio.sleep(LOADING_ROUND)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._due.clear()


# ----- the route and the plugin


class Intake:
    """Stores webhook events through `inbox.accept` in a worker thread, one call at a time: webhooks that
    arrive while a call runs are stored together by the next one (one transaction, one commit). Each
    webhook is acknowledged only after the transaction holding its events has committed. One writer at a
    time also keeps SQLite from making concurrent writers wait on its lock."""

    def __init__(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._waiting: list[tuple[list[IncomingEvent], asyncio.Future[int]]] = []
        self._writer: asyncio.Task[None] | None = None
        # One thread of its own: writes are serial anyway, and a plain executor hop is cheaper than anyio's.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="line-intake")

    async def store(self, events: list[IncomingEvent]) -> int:
        """How many of the batch's events were new (0: all were redeliveries); raises if storing failed."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # an abandoned request's failure is not "never retrieved"
        self._waiting.append((events, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())
        return await asyncio.shield(future)  # a client that goes away does not cancel the others' write

    async def aclose(self) -> None:
        """Wait for the write in progress (its webhooks are answered), then let the thread go."""
        if self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
        self._thread.shutdown(wait=False)

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch, self._waiting = self._waiting, []
            events = [e for evs, _ in batch for e in evs]
            try:
                new = await loop.run_in_executor(self._thread, self._inbox.accept, CHANNEL, events)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                    continue
                # One webhook must not fail its neighbours: each is stored alone, only the bad one fails.
                log.warning(
                    "line intake: a batch of %d webhooks failed (%s); storing each alone",
                    len(batch),
                    type(exc).__name__,
                )
                for evs, future in batch:
                    try:
                        alone = await loop.run_in_executor(self._thread, self._inbox.accept, CHANNEL, evs)
                    except Exception as one:
                        _settle(future, one)
                    else:
                        _settle(future, alone)
                continue
            for _, future in batch:
                _settle(future, new)


def _settle(future: asyncio.Future[int], outcome: int | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _retrieve(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()


_EMPTY_JSON = b"{}"  # the acknowledgement's body, not serialised again for every webhook


def make_router(*, secret: str, inbox: Inbox, intake: Intake, loading: LoadingWatch, max_body_bytes: int) -> APIRouter:
    router = APIRouter()
    key = secret.encode()

    @router.post(WEBHOOK_PATH, include_in_schema=False)
    async def line_webhook(request: Request) -> Response:
        body = await _read_limited(request, max_body_bytes)
        if body is None:
            log.warning("line webhook refused: body over %d bytes", max_body_bytes)
            return JSONResponse({"error": "request body too large"}, status_code=413)
        if not signature_ok(key, body, request.headers.get("x-line-signature")):
            log.warning("line webhook refused: bad or missing signature (%d bytes)", len(body))
            return JSONResponse({"error": "invalid signature"}, status_code=400)
        try:
            parsed = _parse_webhook(body)
        except WebhookFormatError as exc:
            log.warning("line webhook refused: %s", exc)
            return JSONResponse({"error": f"malformed webhook body: {exc}"}, status_code=400)
        events = [stored for stored, _ in parsed]
        if events:
            try:
                new = await intake.store(events)
            except Exception as exc:  # the driver's message may quote the payload: class name only
                log.error("line webhook: storing %d event(s) failed: %s", len(events), type(exc).__name__)
                return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
            inbox.wake()
            if new:
                loading.watch(_loading_targets(parsed))
        return Response(_EMPTY_JSON, media_type="application/json")

    return router


def build(settings: Settings, inbox: Inbox) -> ChannelPlugin:
    """The LINE channel for the app's lifespan (called by handlers.channels when both secrets are set)."""
    line = settings.line
    if line.channel_secret is None or line.channel_access_token is None:
        raise ValueError("LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN are required")
    adapter = LineAdapter(line.channel_access_token.get_secret_value(), api_base_url=line.api_base_url)
    loading = LoadingWatch(adapter, inbox)
    intake = Intake(inbox)
    router = make_router(
        secret=line.channel_secret.get_secret_value(),
        inbox=inbox,
        intake=intake,
        loading=loading,
        max_body_bytes=settings.max_body_bytes,
    )

    async def close() -> None:
        await loading.aclose()
        await adapter.aclose()
        await intake.aclose()

    return ChannelPlugin(adapter=adapter, router=router, close=close)


def build_sender(settings: Settings, sessions: SessionFactory) -> LineAdapter | None:
    """The adapter alone, for notices and the quota (None when LINE is not configured)."""
    token = settings.line.channel_access_token
    if not settings.line.enabled or token is None:
        return None
    return LineAdapter(
        token.get_secret_value(),
        api_base_url=settings.line.api_base_url,
        bulk_timeout=settings.notices.line_timeout_seconds,
    )


ADAPTER = LineAdapter


# ----- rich menu


def upload_rich_menu(settings: Settings, definition: Path | None = None, image: Path | None = None) -> str:
    """Create the rich menu, upload its image and make it every user's default; returns its id."""
    line = settings.line
    if line.channel_access_token is None:
        raise ValueError("LINE_CHANNEL_ACCESS_TOKEN is required")
    menu = json.loads((definition or RICHMENU_JSON).read_text(encoding="utf-8"))
    path = image or RICHMENU_IMAGE
    data = path.read_bytes()
    content_type = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
    adapter = LineAdapter(line.channel_access_token.get_secret_value(), api_base_url=line.api_base_url)
    return asyncio.run(_upload_rich_menu(adapter, menu, data, content_type))


class RichMenuError(RuntimeError):
    """The Messaging API refused a step of the rich menu upload (LINE's own message says why)."""


async def _upload_rich_menu(adapter: LineAdapter, menu: dict[str, Any], image: bytes, content_type: str) -> str:
    async with AsyncApiClient(adapter.configuration()) as client:
        api = AsyncMessagingApi(client)
        blob = AsyncMessagingApiBlob(client)
        step, menu_id = "create", None
        try:
            created = await api.create_rich_menu(RichMenuRequest.from_dict(menu))
            menu_id = str(created.rich_menu_id)
            step = "upload image"
            await blob.set_rich_menu_image(menu_id, image, _headers={"Content-Type": content_type})
            step = "set default"
            await api.set_default_rich_menu(menu_id)
        except ApiException as exc:
            if menu_id is not None:  # no half-made menus left behind
                with contextlib.suppress(ApiException):
                    await api.delete_rich_menu(menu_id)
            raise RichMenuError(f"rich menu {step} failed: {exc.status} {_api_message(exc)}") from None
        return menu_id


def _api_message(exc: Any) -> str:
    """LINE's error message about our request (rich menu and bulk calls: it names the problem, never user
    content)."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""
