"""Dialog tests that read like conversations (after Zulip's `verify_dialog`).

Each step is (what the parent does, what the bot must do):
- said: plain text, or `[postback-data]` for a button press.
- expected: reply kinds separated by " + ", each optionally followed by `#id` (the answered entry id or
  the crisis category) and/or `~text` (a substring of the reply); "silent" for no reply at all.
"""

from __future__ import annotations

import datetime as dt

from handlers.engine import Engine
from handlers.types import InboundKind, InboundMessage, Reply

JST = dt.timezone(dt.timedelta(hours=9))
OPEN = dt.datetime(2026, 11, 26, 11, 0, tzinfo=JST)  # a Thursday, within office hours
CLOSED = dt.datetime(2026, 11, 26, 21, 30, tzinfo=JST)


class Dialog:
    def __init__(self, engine: Engine, *, sender: str = "parent-1", channel: str = "console", now: dt.datetime = OPEN):
        self.engine = engine
        self.sender = sender
        self.channel = channel
        self.now = now
        self.transcript: list[tuple[str, list[Reply]]] = []

    def send(self, said: str) -> list[Reply]:
        if said.startswith("[") and said.endswith("]"):
            msg = InboundMessage(
                self.channel, self.sender, postback=said[1:-1], kind=InboundKind.POSTBACK, timestamp=self.now
            )
        else:
            msg = InboundMessage(self.channel, self.sender, text=said, timestamp=self.now)
        replies = self.engine.handle(msg)
        self.transcript.append((said, replies))
        self.now += dt.timedelta(seconds=30)
        return replies

    def later(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def _matches(reply: Reply, spec: str) -> bool:
    spec, _, needle = spec.partition("~")
    kind, _, ident = spec.strip().partition("#")
    if reply.kind.value != kind.strip():
        return False
    if ident:
        got = reply.entry_id or reply.meta.get("crisis")
        if got != ident.strip():
            return False
    return not needle or needle.strip() in reply.text


def verify_dialog(dialog: Dialog, steps: list[tuple[str, str]]) -> None:
    for said, expected in steps:
        replies = dialog.send(said)
        described = [f"{r.kind.value}#{r.entry_id or r.meta.get('crisis', '')}: {r.text[:80]!r}" for r in replies]
        if expected == "silent":
            assert replies == [], f"{said!r}: expected silence, got {described}"
            continue
        specs = [s.strip() for s in expected.split(" + ")]
        assert len(replies) == len(specs), f"{said!r}: expected {expected!r}, got {described}"
        for reply, spec in zip(replies, specs, strict=True):
            assert _matches(reply, spec), f"{said!r}: expected {expected!r}, got {described}"
