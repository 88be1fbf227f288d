"""The LINE adapter's pure parts: signatures, splitting webhook bodies, parsing stored events, rendering."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

import pytest
from linebot.v3.messaging import PushMessageRequest  # type: ignore[import-untyped]
from linebot.v3.webhook import SignatureValidator  # type: ignore[import-untyped]

from handlers.channels import line
from handlers.types import Choice, ContactCard, InboundKind, Reply, ReplyKind
from tests.fakes.line_api import FIXTURES, SECRET, encode, webhook


def _event(fixture: str, **values: object) -> str:
    body = webhook(fixture, **values)  # type: ignore[arg-type]
    return line.split_events(encode(body))[0].payload


# ----- signatures


def test_signature_matches_the_sdk_validator_and_the_documented_formula() -> None:
    body = encode(webhook("text", user="U" + "a" * 32))
    sig = line.sign(SECRET, body)
    assert sig == base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert SignatureValidator(SECRET).validate(body.decode(), sig)
    assert line.signature_ok(SECRET.encode(), body, sig)


@pytest.mark.parametrize("signature", [None, "", "not-base64", line.sign("other-secret", b"{}")])
def test_bad_or_missing_signatures_are_refused(signature: str | None) -> None:
    assert not line.signature_ok(SECRET.encode(), b"{}", signature)


def test_signature_covers_the_raw_bytes_even_when_they_are_not_utf8() -> None:
    body = b'{"events":[]}\xff'
    assert line.signature_ok(SECRET.encode(), body, line.sign(SECRET, body))
    assert not line.signature_ok(SECRET.encode(), body[:-1], line.sign(SECRET, body))


# ----- splitting webhook bodies into stored events


def test_split_keys_events_by_webhook_event_id_and_sender() -> None:
    user, group = "U" + "1" * 32, "C" + "2" * 32
    body = webhook("text", user=user)
    body["events"] += webhook("group_message", user=user, group=group)["events"]
    events = line.split_events(encode(body))
    assert [e.event_key for e in events] == [ev["webhookEventId"] for ev in body["events"]]
    assert [e.sender_key for e in events] == [f"line:{user}", f"line:{group}"]
    assert json.loads(events[0].payload) == body["events"][0]


def test_an_event_without_id_still_collapses_with_its_identical_redelivery() -> None:
    body = webhook("text")
    del body["events"][0]["webhookEventId"]
    first, again = line.split_events(encode(body)), line.split_events(encode(body))
    assert first[0].event_key == again[0].event_key
    assert first[0].event_key.startswith("sha256:")


def test_the_console_verify_request_has_no_events() -> None:
    assert line.split_events(b'{"destination":"Uxxx","events":[]}') == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"events": {}}',
        b'{"events": [1]}',
        b'{"events": [{"no": "type"}]}',
        "é".encode("latin-1"),
    ],
)
def test_malformed_bodies_raise_a_format_error_that_does_not_quote_them(body: bytes) -> None:
    with pytest.raises(line.WebhookFormatError) as info:
        line.split_events(body)
    assert body.decode("latin-1") not in str(info.value) or len(body) < 3


# ----- parsing stored events for the engine


@pytest.mark.parametrize(
    ("fixture", "kind", "media_type"),
    [
        ("text", InboundKind.TEXT, None),
        ("postback", InboundKind.POSTBACK, None),
        ("follow", InboundKind.FOLLOW, None),
        ("unfollow", InboundKind.UNFOLLOW, None),
        ("sticker", InboundKind.STICKER, None),
        ("image", InboundKind.MEDIA, "image"),
        ("file", InboundKind.MEDIA, "file"),
        ("location", InboundKind.MEDIA, "location"),
        ("redelivery", InboundKind.TEXT, None),
    ],
)
def test_fixture_events_map_to_inbound_messages(fixture: str, kind: InboundKind, media_type: str | None) -> None:
    user = "U" + uuid.uuid4().hex
    parsed = line.LineAdapter("t").parse_event(_event(fixture, user=user, reply_token="rt-1"))
    msg = parsed.message
    assert msg is not None
    assert (msg.channel, msg.sender_id, msg.kind, msg.media_type) == ("line", user, kind, media_type)
    assert msg.lang_hint is None and msg.timestamp is not None
    assert parsed.reply_token == (None if fixture == "unfollow" else "rt-1")
    if kind == InboundKind.TEXT:
        assert msg.text == "児童手当はいつ振り込まれますか"
    if kind == InboundKind.POSTBACK:
        assert msg.postback == "consent:yes"


@pytest.mark.parametrize("fixture", ["group_message", "room_message"])
def test_group_and_room_messages_become_group_notes_without_their_text(fixture: str) -> None:
    group = "C" + uuid.uuid4().hex
    parsed = line.parse_line_event(_event(fixture, group=group, reply_token="rt-g"))
    assert parsed.message is not None
    assert parsed.message.kind == InboundKind.GROUP
    assert parsed.message.sender_id == (group if fixture == "group_message" else "R" + group[1:])
    assert parsed.message.text is None
    assert parsed.reply_token == "rt-g"


@pytest.mark.parametrize("fixture", ["unknown_type", "standby"])
def test_unknown_event_types_and_standby_mode_are_ignored(fixture: str) -> None:
    assert line.parse_line_event(_event(fixture)).message is None


def test_every_fixture_is_a_documented_webhook_body() -> None:
    names = sorted(p.stem for p in FIXTURES.glob("*.json"))
    for name in names:
        body = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
        assert set(body) == {"destination", "events"}
        for ev in body["events"]:
            assert {"type", "mode", "timestamp", "source", "webhookEventId", "deliveryContext"} <= set(ev)
    assert json.loads((FIXTURES / "redelivery.json").read_text())["events"][0]["deliveryContext"]["isRedelivery"]


# ----- rendering replies


def test_long_text_is_split_at_5000_utf16_units_preferring_line_breaks() -> None:
    text = ("あ" * 99 + "\n") * 120  # 12,000 characters
    pieces = line.split_text(text)
    assert all(line.utf16_len(p) <= 5000 for p in pieces)
    assert "\n".join(pieces) == text
    emoji = "😀" * 3000  # 6,000 UTF-16 units: never cut inside a surrogate pair
    parts = line.split_text(emoji)
    assert [line.utf16_len(p) for p in parts] == [5000, 1000]
    assert "".join(parts) == emoji


def test_render_puts_quick_replies_on_the_last_message_within_limits() -> None:
    choices = tuple(Choice(f"とても長い選択肢のラベルその{i}です、二十文字を超えます", f"faq:{i}") for i in range(16))
    choices += (Choice("長すぎるデータ", "x" * 301),)
    reply = Reply(ReplyKind.CLARIFY, "どれですか？", choices=choices)
    messages = line.render([reply])
    assert len(messages) == 1
    items = messages[0]["quickReply"]["items"]
    assert len(items) == 13
    for item in items:
        action = item["action"]
        assert action["type"] == "postback" and line.utf16_len(action["label"]) <= 20
        assert action["displayText"].startswith(action["label"].rstrip("…"))
        assert len(action["data"]) <= 300


def test_contacts_become_a_flex_bubble_with_tap_to_call_and_mail() -> None:
    card = ContactCard(
        "子育て支援コンシェルジュ", phone="0138-26-7010", email="kosodate@example.jp", hours="10:00〜18:00"
    )
    messages = line.render([Reply(ReplyKind.FALLBACK, "お電話でもどうぞ。", contacts=(card,))])
    assert [m["type"] for m in messages] == ["text", "flex"]
    flex = messages[1]
    assert "0138-26-7010" in flex["altText"] and len(flex["altText"]) <= 400
    uris = [b["action"]["uri"] for b in flex["contents"]["footer"]["contents"]]
    assert uris == ["tel:0138267010", "mailto:kosodate@example.jp"]
    two = line.render([Reply(ReplyKind.URGENT, "至急", contacts=(card, ContactCard("#8000", phone="#8000")))])
    assert two[1]["contents"]["type"] == "carousel"
    # the SDK's own models accept what we build
    PushMessageRequest.from_dict({"to": "U" + "0" * 32, "messages": messages + two})


def test_more_than_five_messages_are_packed_then_batched() -> None:
    replies = [Reply(ReplyKind.INFO, f"お知らせ{i}") for i in range(7)]
    packed = line.render(replies)
    assert len(packed) == 1 and packed[0]["text"].count("お知らせ") == 7
    big = [Reply(ReplyKind.INFO, "あ" * 4000) for _ in range(7)]
    messages = line.render(big)
    assert len(messages) == 7
    assert [len(b) for b in line.batches(messages)] == [5, 2]


def test_push_retry_keys_are_stable_uuids_per_part() -> None:
    key = str(uuid.uuid4())
    assert line.part_retry_key(key, 0) == key
    assert line.part_retry_key(key, 1) == line.part_retry_key(key, 1) != key
    odd = line.part_retry_key("not-a-uuid", 0)
    assert str(uuid.UUID(odd)) == odd
