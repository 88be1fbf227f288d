"""The channel registry: which adapters run, from settings. Each channel module offers
`build(settings, inbox) -> ChannelPlugin`; a disabled channel is never imported."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from handlers.types import ChannelAdapter

if TYPE_CHECKING:
    from bot.settings import Settings
    from handlers.inbox import Inbox


@dataclass
class ChannelPlugin:
    adapter: ChannelAdapter
    router: APIRouter | None = None  # webhook routes, mounted on the app
    tasks: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)  # run for the app's lifetime
    close: Callable[[], Coroutine[Any, Any, None]] | None = None


def build_channels(settings: Settings, inbox: Inbox) -> list[ChannelPlugin]:
    plugins: list[ChannelPlugin] = []
    if settings.line.enabled:
        from handlers import line

        plugins.append(line.build(settings, inbox))
    if settings.email.enabled:
        from handlers import email

        plugins.append(email.build(settings, inbox))
    return plugins
