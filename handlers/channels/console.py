"""The console channel: a parent's conversation in a terminal (`concierge chat`, `concierge serve --console`).

Choices are shown numbered; typing `/N` picks choice N of the last reply (a postback, as a LINE button
would send). Plain digits go to the engine as text, which also picks clarify options.
"""

from __future__ import annotations

import datetime as dt
from typing import TextIO

from handlers.types import Choice, InboundKind, InboundMessage, Reply, render_plain

CHANNEL = "console"


class ConsoleChannel:
    name = CHANNEL

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._choices: list[Choice] = []

    def parse(self, sender_id: str, line: str, now: dt.datetime | None = None) -> InboundMessage:
        stripped = line.strip()
        if stripped.startswith("/") and stripped[1:].isdigit():
            n = int(stripped[1:])
            if 1 <= n <= len(self._choices):
                return InboundMessage(
                    CHANNEL, sender_id, postback=self._choices[n - 1].data, kind=InboundKind.POSTBACK, timestamp=now
                )
        return InboundMessage(CHANNEL, sender_id, text=line, timestamp=now)

    def show(self, replies: list[Reply]) -> None:
        for reply in replies:
            self._out.write("bot> " + render_plain(reply).replace("\n", "\n     ") + "\n")
            if reply.choices:
                self._choices = list(reply.choices)
        if replies and any(r.choices for r in replies):
            self._out.write("     (/番号 でボタンを選べます / type /N to press button N)\n")
        self._out.flush()
