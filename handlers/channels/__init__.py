"""The parents' channels: one adapter module per channel, found by name in `REGISTRY`.

Each channel module declares `ADAPTER` (its adapter class, with the channel's `capabilities` and
`sender_key`) and offers `build(settings, inbox) -> ChannelPlugin` (its adapter, its webhook routes, its
background tasks and its close); a channel with bulk capability also offers `build_sender(settings, sessions)`
(the adapter alone, for notices sent outside the app). A module is imported only when something asks for its
channel; nothing is built unless its settings switch it on. Adding a channel: one new module here, its
settings, its tests, and one line in `REGISTRY`."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from handlers.types import BulkAdapter, Capabilities, ChannelAdapter

if TYPE_CHECKING:
    from bot.settings import Settings
    from handlers.inbox import Inbox
    from storage.db import SessionFactory


@dataclass
class ChannelPlugin:
    adapter: ChannelAdapter
    router: APIRouter | None = None  # webhook routes, mounted on the app
    tasks: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)  # run for the app's lifetime
    close: Callable[[], Coroutine[Any, Any, None]] | None = None


# channel name -> (module, whether the settings switch it on). The console is switched on by the command
# (`concierge chat`, `concierge serve --console`), never by settings.
REGISTRY: dict[str, tuple[str, Callable[[Settings], bool]]] = {
    "line": ("handlers.channels.line", lambda s: s.line.enabled),
    "email": ("handlers.channels.email", lambda s: s.email.enabled),
    "console": ("handlers.channels.console", lambda s: False),
}


@functools.cache
def _module(name: str) -> ModuleType:
    return importlib.import_module(REGISTRY[name][0])


def capabilities(name: str) -> Capabilities | None:
    """What the channel `name` can do; None for a name that is no channel of ours (e.g. 'office')."""
    if name not in REGISTRY:
        return None
    caps: Capabilities = _module(name).ADAPTER.capabilities
    return caps


def all_capabilities() -> list[Capabilities]:
    return [c for c in (capabilities(n) for n in REGISTRY) if c is not None]


def notice_channels() -> list[str]:
    """The channels that send notices (bulk capability), by name."""
    return [c.channel for c in all_capabilities() if c.bulk > 0]


def broadcast_channel() -> str | None:
    """The channel whose one call reaches every follower (LINE broadcast), if any channel can."""
    return next((c.channel for c in all_capabilities() if c.bulk > 0 and c.broadcast), None)


# Where a case can come from without being a parent channel of ours: a person at the counter or on the phone
# (entered by staff), the staff's Telegram group.
ORIGINS = {"office": "窓口・電話", "telegram": "Telegram"}


def labels() -> dict[str, str]:
    """Every channel's and origin's name for staff (Japanese)."""
    return {**{c.channel: c.label for c in all_capabilities()}, **ORIGINS}


def label(name: str) -> str:
    caps = capabilities(name)
    return caps.label if caps is not None else ORIGINS.get(name, name)


def sender_key(name: str, external_id: str) -> str | None:
    """The key of a contact's stored events on channel `name` (None: the channel stores no events)."""
    if name not in REGISTRY:
        return None
    key: str = _module(name).ADAPTER.sender_key(external_id)
    return key


def build_channels(settings: Settings, inbox: Inbox) -> list[ChannelPlugin]:
    plugins: list[ChannelPlugin] = []
    for name, (_, enabled) in REGISTRY.items():
        if enabled(settings):
            plugins.append(_module(name).build(settings, inbox))
    return plugins


def build_senders(settings: Settings, sessions: SessionFactory) -> dict[str, BulkAdapter]:
    """The notice senders of the channels that can send notices and are configured for it, by name."""
    senders: dict[str, BulkAdapter] = {}
    for name in REGISTRY:
        caps = capabilities(name)
        if caps is None or caps.bulk <= 0:
            continue
        sender: BulkAdapter | None = _module(name).build_sender(settings, sessions)
        if sender is not None:
            senders[name] = sender
    return senders
