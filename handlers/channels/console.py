"""The console channel: a parent's conversation in a terminal (`concierge chat`, `concierge serve --console`).

What the parent types is stored as an inbound event like any channel's, answered by the inbox, and the
replies come back through `ConsoleAdapter.deliver` into the terminal: so a staff reply to a console parent
(from the staff console or Telegram) is printed there too. One terminal is one parent (its sender id).

Choices are shown numbered; typing `/N` picks choice N of the last reply (a postback, as a LINE button
would send). Plain digits go to the engine as text, which also picks clarify options.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import uuid
from typing import TYPE_CHECKING, TextIO

import anyio

from handlers.channels import ChannelPlugin
from handlers.inbox import IncomingEvent
from handlers.types import (
    Capabilities,
    Choice,
    Delivery,
    DeliveryError,
    InboundKind,
    InboundMessage,
    Parsed,
    Reply,
    render_plain,
)

if TYPE_CHECKING:
    from bot.settings import Settings
    from handlers.inbox import Inbox

CHANNEL = "console"
DEFAULT_SENDER = "console-user"
HINT = "     (/番号 でボタンを選べます / type /N to press button N)\n"


class ConsoleAdapter:
    """Turns typed lines into stored events and prints the replies for its one parent."""

    name = CHANNEL
    capabilities = Capabilities(
        channel=CHANNEL,
        label="ターミナル（試用チャット）",
        push=True,  # the terminal shows whatever arrives while it is open
        bulk=0,
        broadcast=False,
        reply_token=False,
        max_text=5000,
        max_label=200,
    )

    def __init__(self, out: TextIO, *, sender_id: str = DEFAULT_SENDER) -> None:
        self._out = out
        self.sender_id = sender_id
        self._choices: list[Choice] = []

    @staticmethod
    def sender_key(external_id: str) -> str:
        return f"{CHANNEL}:{external_id}"[:255]

    def event(self, line: str, now: dt.datetime | None = None) -> IncomingEvent:
        """A typed line as the event to store (`/N` becomes the postback of choice N of the last reply)."""
        when = (now or dt.datetime.now(dt.UTC)).isoformat()
        data: dict[str, str] = {"sender": self.sender_id, "at": when}
        stripped = line.strip()
        n = int(stripped[1:]) if stripped.startswith("/") and stripped[1:].isdigit() else 0
        if 1 <= n <= len(self._choices):
            data["postback"] = self._choices[n - 1].data
        else:
            data["text"] = line.rstrip("\n")
        payload = json.dumps(data, ensure_ascii=False)
        return IncomingEvent(
            event_key=str(uuid.uuid4()),
            sender_key=self.sender_key(self.sender_id),
            payload=payload,
            text=data.get("text"),
        )

    def parse_event(self, payload: str) -> Parsed:
        data = json.loads(payload)
        sender = str(data["sender"])
        when = dt.datetime.fromisoformat(data["at"]) if data.get("at") else None
        if data.get("postback") is not None:
            message = InboundMessage(
                CHANNEL, sender, postback=str(data["postback"]), kind=InboundKind.POSTBACK, timestamp=when
            )
        else:
            message = InboundMessage(CHANNEL, sender, text=str(data.get("text", "")), timestamp=when)
        return Parsed(message)

    async def deliver(self, delivery: Delivery) -> None:
        if delivery.recipient != self.sender_id:
            # Another terminal's parent: left for the terminal that has them.
            raise DeliveryError("not this terminal", retry=True)
        self.show(delivery.replies)

    def show(self, replies: list[Reply]) -> None:
        for reply in replies:
            prefix = "staff> " if reply.meta.get("from") == "staff" else "bot> "
            self._out.write(prefix + render_plain(reply).replace("\n", "\n     ") + "\n")
            if reply.choices:
                self._choices = list(reply.choices)
        if any(r.choices for r in replies):
            self._out.write(HINT)
        self._out.flush()


async def _read(lines: TextIO) -> str:
    line: str = await anyio.to_thread.run_sync(lines.readline, abandon_on_cancel=True)
    return line


async def serve_terminal(inbox: Inbox, adapter: ConsoleAdapter, lines: TextIO) -> None:
    """The console channel beside a running inbox loop (`concierge serve --console`), until end of input."""
    inbox.adapters[CHANNEL] = adapter
    while line := await _read(lines):
        await anyio.to_thread.run_sync(inbox.accept, CHANNEL, [adapter.event(line)])
        inbox.wake()


async def chat(inbox: Inbox, lines: TextIO, out: TextIO, *, sender_id: str = DEFAULT_SENDER, poll: float = 1.0) -> None:
    """A terminal conversation whose process runs the inbox itself, for the console channel alone (`concierge
    chat`): each line is answered before the next is read (piped input gets its answers in order), and staff
    replies are printed as they come while the parent is typing."""
    adapter = ConsoleAdapter(out, sender_id=sender_id)
    inbox.adapters = {CHANNEL: adapter}
    reading: asyncio.Task[str] = asyncio.create_task(_read(lines))
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reading), timeout=poll)
            await anyio.to_thread.run_sync(inbox.beat)
            await inbox.drain()
            if not reading.done():
                continue
            line = reading.result()
            if not line:
                return
            await anyio.to_thread.run_sync(inbox.accept, CHANNEL, [adapter.event(line)])
            await inbox.drain()
            reading = asyncio.create_task(_read(lines))
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading


def build(settings: Settings, inbox: Inbox) -> ChannelPlugin:
    """The channel for an app started with a terminal (`concierge serve --console`): stdin and stdout."""
    import sys

    adapter = ConsoleAdapter(sys.stdout)

    async def run() -> None:
        await serve_terminal(inbox, adapter, sys.stdin)

    return ChannelPlugin(adapter=adapter, tasks=[run])


ADAPTER = ConsoleAdapter
