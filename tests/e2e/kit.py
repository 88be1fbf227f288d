"""Shared helpers for the staff-side tests: staff accounts, a console app with its lifespan, logged-in
clients, cases opened by a parent through the real engine, and a live uvicorn server for the browser."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from pydantic import SecretStr
from sqlmodel import select

from bot.app import create_app
from bot.runtime import Runtime, bootstrap
from bot.settings import ConsoleSettings, Settings
from handlers.engine import Engine
from handlers.types import InboundKind, InboundMessage
from storage import crud
from storage import staff as staffdb
from storage.db import SessionFactory, transaction
from storage.models import Case, utcnow
from storage.staff import Role, StaffSession

PASSWORD = "correct-horse-42"
SECRET = "test-console-secret-0123456789"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@lru_cache(maxsize=1)
def password_hash() -> str:
    return PasswordHasher().hash(PASSWORD)


def staff_settings(settings: Settings, **console: Any) -> Settings:
    """The test settings with a fixed console secret and the job scheduler off (not under test here)."""
    # Streams end quickly here (an HTTP test reads a stream to its end); browser tests pass a longer one.
    values: dict[str, Any] = {"session_secret": SecretStr(SECRET), "poll_seconds": 1.0, "stream_seconds": 0.3}
    values.update(console)
    update: dict[str, Any] = {"console": ConsoleSettings(**values)}
    if hasattr(settings, "scheduler"):
        update["scheduler"] = settings.scheduler.model_copy(update={"mode": "off"})
    return settings.model_copy(update=update)


def make_staff(
    sessions: SessionFactory,
    username: str,
    role: Role | str,
    *,
    intake: bool = False,
    name: str = "",
    telegram: int | None = None,
) -> int:
    with transaction(sessions) as s:
        row = staffdb.create_staff(
            s,
            username=username,
            role=Role(role),
            password_hash=password_hash(),
            display_name=name,
            complaint_intake=intake,
        )
        if telegram is not None:
            staffdb.link_telegram(s, staff=row, telegram_user_id=telegram)
        assert row.id is not None
        return row.id


def parent_opens_case(
    engine: Engine, sender: str, text: str = "夜泣きがひどくて眠れません", *, channel: str = "console"
) -> int:
    """A parent asks for a person, consents and writes: the real engine opens the case."""

    def send(**kw: Any) -> None:
        engine.handle(InboundMessage(channel, sender, **kw))

    send(text="相談員と話したい")
    send(postback="consent:yes", kind=InboundKind.POSTBACK)
    send(text=text)
    with engine.sessions() as s:
        contact = crud.get_or_create_contact(s, channel=channel, external_id=sender)
        assert contact.id is not None
        case = crud.open_case_for(s, contact_id=contact.id)
        assert case is not None and case.id is not None
        return case.id


def assign(sessions: SessionFactory, case_id: int, username: str | None) -> None:
    with transaction(sessions) as s:
        case = s.get(Case, case_id)
        assert case is not None
        staffdb.set_assignee(s, case=case, assignee=username)


OUR_CODE = tuple(str(Path(__file__).resolve().parents[2] / d) for d in ("handlers", "storage", "bot", "scheduler"))


def busy_threads() -> list[str]:
    """Threads other than this one that are running our code right now."""
    me = threading.get_ident()
    names = {t.ident: t.name for t in threading.enumerate()}
    busy = []
    for ident, frame in sys._current_frames().items():
        f: Any = frame
        while ident != me and f is not None:
            if f.f_code.co_filename.startswith(OUR_CODE):
                busy.append(names.get(ident, str(ident)))
                break
            f = f.f_back
    return busy


def settle(timeout: float = 30.0) -> None:
    """Wait for worker threads the app left running. The lifespan cancels the inbox task, and a native
    asyncio cancel does not wait for a thread started by anyio.to_thread: without this, a delivery still in
    its transaction meets the next test's wipe (a deadlock on PostgreSQL) or a disposed pool."""
    deadline = time.monotonic() + timeout
    while busy_threads():
        if time.monotonic() > deadline:
            raise AssertionError(f"threads still busy: {busy_threads()}")
        time.sleep(0.02)


@asynccontextmanager
async def console_app(settings: Settings, runtime: Runtime) -> AsyncIterator[FastAPI]:
    """The real app with its lifespan running (inbox loop included)."""
    app = create_app(settings, runtime=runtime)
    try:
        async with app.router.lifespan_context(app):
            yield app
    finally:
        settle()


@asynccontextmanager
async def staffed_console(
    settings: Settings,
    *accounts: tuple[str, str],
    names: dict[str, str] | None = None,
    intake: frozenset[str] = frozenset(),
    setup: Callable[[Runtime], None] | None = None,
    **console: Any,
) -> AsyncIterator[FastAPI]:
    """The real app (lifespan running) on a fresh runtime with these (username, role) accounts; `setup` adds
    data before the app starts; `console` overrides console settings."""
    s = staff_settings(settings, **console)
    rt = bootstrap(s, migrate=False)
    try:
        for username, role in accounts:
            make_staff(rt.sessions, username, role, name=(names or {}).get(username, ""), intake=username in intake)
        if setup is not None:
            setup(rt)
        async with console_app(s, rt) as application:
            yield application
    finally:
        rt.close()


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@dataclass
class Login:
    client: httpx.AsyncClient
    csrf: str
    username: str

    async def __aenter__(self) -> Login:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def post(self, url: str, data: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        form = {"csrf_token": self.csrf, **(data or {})}
        return await self.client.post(url, data=form, **kw)


async def login(app: FastAPI, username: str, password: str = PASSWORD) -> Login:
    """Log in through the real login form (argon2 verify included)."""
    c = client(app)
    page = await c.get("/login")
    token = CSRF_RE.search(page.text)
    assert token is not None
    r = await c.post("/login", data={"username": username, "password": password, "csrf_token": token.group(1)})
    assert r.status_code == 303, r.text
    return Login(c, session_csrf(app, c), username)


def session_csrf(app: FastAPI, c: httpx.AsyncClient) -> str:
    console = app.state.console
    token = c.cookies.get("kc_session")
    assert token
    with app.state.runtime.sessions() as s:
        row = s.get(StaffSession, console.digest(token))
        assert row is not None
        return str(row.csrf_token)


async def session_for(app: FastAPI, username: str) -> Login:
    """A logged-in client without the password round (the session row is made as the login makes it)."""
    console = app.state.console
    token = f"tok-{username}-{time.monotonic_ns()}"
    csrf = f"csrf-{username}-{time.monotonic_ns()}"
    with transaction(app.state.runtime.sessions) as s:
        staff = staffdb.get_staff_by_username(s, username=username)
        assert staff is not None
        staffdb.create_session(s, staff=staff, digest=console.digest(token), csrf_token=csrf)
    c = client(app)
    c.cookies.set("kc_session", token)
    return Login(c, csrf, username)


def age_sessions(sessions: SessionFactory, username: str, minutes: float) -> None:
    """Pretend the staff member has been idle for `minutes`."""
    with transaction(sessions) as s:
        staff = staffdb.get_staff_by_username(s, username=username)
        assert staff is not None
        for row in s.exec(select(StaffSession).where(StaffSession.staff_id == staff.id)):
            row.last_seen_at = utcnow() - dt.timedelta(minutes=minutes)
            s.add(row)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """The app under a real uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    port = free_port()
    # A browser page left open holds its live-update stream: do not wait for it at shutdown.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        settle()


async def until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> None:  # noqa: ASYNC109
    """Wait for a condition the app reaches in the background."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


@contextmanager
def line_console(settings: Settings) -> Iterator[tuple[str, Any, Runtime]]:
    """The app under uvicorn with the fake LINE API and one concierge (sato / 佐藤), live updates every second."""
    from bot.settings import LineSettings
    from tests.fakes.line_api import SECRET, FakeLineAPI

    with FakeLineAPI() as fake:
        line = LineSettings(channel_secret=SECRET, channel_access_token=fake.token, api_base_url=fake.url)
        s = staff_settings(settings, poll_seconds=1.0, stream_seconds=30.0).model_copy(update={"line": line})
        rt = bootstrap(s, migrate=False)
        try:
            make_staff(rt.sessions, "sato", "concierge", name="佐藤")
            with live_server(create_app(s, runtime=rt)) as base:
                yield base, fake, rt
        finally:
            rt.close()


@contextmanager
def sqlite_site(directory: Path) -> Iterator[tuple[str, Runtime]]:
    """The app under uvicorn on a fresh SQLite file in `directory` (no channels, no staff)."""
    settings = Settings(database_url=f"sqlite:///{directory / 'concierge.db'}", _env_file=None)  # type: ignore[call-arg]
    rt = bootstrap(settings)
    try:
        with live_server(create_app(settings, runtime=rt)) as base:
            yield base, rt
    finally:
        rt.close()
