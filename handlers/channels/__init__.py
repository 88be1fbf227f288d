"""The parents' channels: one adapter module per channel, found by name in `REGISTRY`.

Each channel module offers `build(settings, inbox) -> ChannelPlugin` (its adapter, its webhook routes, its
background tasks and its close); a channel that is switched off in the settings is never imported. Adding a
channel: one new module here, its settings, its tests, and one line in `REGISTRY`."""

from __future__ import annotations

import importlib
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


# channel name -> (module, whether the settings switch it on)
REGISTRY: dict[str, tuple[str, Callable[[Settings], bool]]] = {
    "line": ("handlers.channels.line", lambda s: s.line.enabled),
    "email": ("handlers.channels.email", lambda s: s.email.enabled),
}


def build_channels(settings: Settings, inbox: Inbox) -> list[ChannelPlugin]:
    plugins: list[ChannelPlugin] = []
    for module_name, enabled in REGISTRY.values():
        if enabled(settings):
            module = importlib.import_module(module_name)
            plugins.append(module.build(settings, inbox))
    return plugins
