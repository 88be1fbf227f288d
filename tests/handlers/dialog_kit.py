"""What the dialog test modules share: a look at stored rows."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from bot.runtime import Runtime


def rows(runtime: Runtime, model: type) -> list[Any]:
    with runtime.sessions() as s:
        return list(s.exec(select(model)))
