"""The composition root: one `bootstrap()` builds everything from settings."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy import Engine as DBEngine

from bot.live_kb import LiveKnowledge, Loaded, checked, ensure_seeded, has_kb_tables, load_live, read_folder
from bot.settings import Settings
from handlers.engine import Engine, Extension
from handlers.inbox import Inbox
from knowledge.loader import load_kb
from knowledge.matcher import Matcher
from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalizer
from storage.db import SessionFactory, make_engine, ping, session_factory
from storage.migrate import upgrade

if TYPE_CHECKING:
    from fastapi import APIRouter

    from handlers.channels import ChannelPlugin
    from handlers.telegram import TelegramBridge
    from scheduler.service import SchedulerService


@dataclass
class Runtime:
    settings: Settings
    db: DBEngine
    sessions: SessionFactory
    live: LiveKnowledge
    engine: Engine

    @property
    def kb(self) -> KnowledgeBase:
        """The live KB at this moment (read it at use time: a new revision replaces it)."""
        return self.live.kb

    @property
    def matcher(self) -> Matcher:
        return self.live.matcher

    def healthy(self) -> bool:
        try:
            with self.db.connect() as conn:
                ping(conn)
        except Exception:
            return False
        return bool(self.kb.entries)

    def close(self) -> None:
        self.db.dispose()


def build_matcher(settings: Settings, kb: KnowledgeBase | None = None) -> Matcher:
    kb = kb or load_kb(settings.kb_path)
    return Matcher(kb, Normalizer(kb.synonyms), settings.match.config())


def open_live(settings: Settings, sessions: SessionFactory) -> LiveKnowledge:
    """The live KB of the database (seeded from `KB_PATH` when it holds none yet); the folder alone when the
    database has no KB tables (not migrated). Any error in it stops the start."""
    path = settings.kb_path
    loaded: Loaded | None = None
    if has_kb_tables(sessions):
        seeded = ensure_seeded(sessions, path)
        loaded = load_live(sessions, path) if seeded is None else Loaded(seeded, *read_folder(path))
    else:
        loaded = Loaded(0, *read_folder(path))
    kb = checked(loaded)
    return LiveKnowledge(sessions, path=path, config=settings.match.config(), revision=loaded.revision, kb=kb)


def bootstrap(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Open the database (migrating it to the latest schema), load the live KB and build the engine."""
    db = make_engine(settings.database_url)
    if migrate:
        upgrade(db)
    sessions = session_factory(db)
    live = open_live(settings, sessions)
    kb, matcher = live.kb, live.matcher
    from handlers.appointments import AppointmentExtension

    extensions: list[Extension] = [AppointmentExtension(timezone=settings.office_hours.timezone)]
    from handlers.subscriptions import NoticeSettings

    extensions.append(NoticeSettings(settings.engine_config()))
    engine = Engine(kb, matcher, sessions, settings.engine_config(), extensions=extensions)
    live.on_swap(lambda kb, matcher: partial(engine.use, engine.prepare(kb, matcher)))
    return Runtime(settings, db, sessions, live, engine)


@dataclass
class Services:
    """Everything that runs beside the web routes, built from one runtime: the inbox, the channel adapters,
    the Telegram staff bridge and the job scheduler (with the notice sender among its jobs). `start()` and
    `stop()` run them in order; the web app, the CLI and the test harnesses use this one wiring."""

    runtime: Runtime
    settings: Settings
    inbox: Inbox
    plugins: list[ChannelPlugin]
    bridge: TelegramBridge | None = None
    scheduler: SchedulerService | None = None
    loops: list[asyncio.Task[None]] = field(default_factory=list)
    kb_poll: asyncio.Task[None] | None = None

    def routers(self) -> list[APIRouter]:
        """The webhook routes of the channels (and of the bridge in webhook mode), for the app to mount."""
        routes = [p.router for p in self.plugins if p.router is not None]
        settings = self.settings
        if self.bridge is not None and settings.telegram.mode == "webhook":
            routes.append(self.bridge.router(settings.max_body_bytes))
        return routes

    async def start(self, *, loops: bool = True) -> None:
        """The bridge, the scheduler, then (with `loops`) the inbox worker and the channels' own loops."""
        if self.bridge is not None:
            await self.bridge.start()
        if self.scheduler is not None:
            self.scheduler.start()
        if self.kb_poll is None:  # every worker follows the live KB (bot/live_kb.py)
            self.kb_poll = asyncio.create_task(self.runtime.live.run(), name="kb-poll")
        if loops:
            self.loops.append(asyncio.create_task(self.inbox.run(), name="inbox"))
            self.loops += [asyncio.create_task(job(), name="channel") for p in self.plugins for job in p.tasks]

    async def stop(self, *, grace: float = 15.0) -> None:
        """In reverse: the inbox finishes the event or delivery in hand (so nothing is sent twice), the loops
        end, then the scheduler, the channels' clients and the bridge close."""
        self.inbox.stop()
        if self.kb_poll is not None:
            self.kb_poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.kb_poll
            self.kb_poll = None
        if self.loops:
            inbox_task, *others = self.loops
            try:
                await asyncio.wait_for(asyncio.shield(inbox_task), timeout=grace)
            except (TimeoutError, asyncio.CancelledError):
                inbox_task.cancel()
            for task in others:
                task.cancel()
            for task in self.loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.loops.clear()
        if self.scheduler is not None:
            await anyio.to_thread.run_sync(self.scheduler.stop)
        for plugin in self.plugins:
            if plugin.close is not None:
                await plugin.close()
        if self.bridge is not None:
            await self.bridge.stop()


def _bridge_kb(bridge: TelegramBridge, kb: KnowledgeBase, _matcher: Matcher) -> None:
    bridge.kb = kb


def build_services(
    runtime: Runtime,
    settings: Settings | None = None,
    *,
    scheduler: bool | None = None,
    channels: bool = True,
    bridge: bool | None = None,
    **inbox_options: Any,
) -> Services:
    """Wire the inbox, the channels the settings (default: the runtime's) switch on (unless `channels` is
    False), the Telegram bridge (default: when configured) and the scheduler (default: when SCHEDULER__MODE is
    auto). A process that only runs the scheduler (`concierge scheduler`) asks for it alone. Nothing runs until
    `start()`."""
    from handlers.channels import build_channels

    settings = settings or runtime.settings
    inbox = Inbox(runtime.sessions, runtime.engine, {}, **inbox_options)
    plugins = build_channels(settings, inbox) if channels else []
    for plugin in plugins:
        inbox.adapters[plugin.adapter.name] = plugin.adapter
    staff_bridge = None
    if bridge if bridge is not None else settings.telegram.enabled:
        from bot.console.waiting import office_minutes
        from handlers import telegram

        staff_bridge = telegram.build(
            settings, runtime.sessions, kb=runtime.kb, on_reply=inbox.wake, office_minutes=office_minutes
        )
        runtime.live.listen(partial(_bridge_kb, staff_bridge))
    jobs = None
    if scheduler if scheduler is not None else settings.scheduler.mode == "auto":
        from scheduler.jobs import build_service

        jobs = build_service(settings, runtime.sessions)
    return Services(runtime, settings, inbox, plugins, staff_bridge, jobs)
