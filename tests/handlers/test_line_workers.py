"""Crashes and several workers: a worker killed with SIGKILL after claiming an event, two Inbox instances
sharing one PostgreSQL queue, and `concierge serve --workers 2` as deployed."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.runtime import Runtime
from bot.settings import Settings
from handlers.inbox import Inbox
from storage.models import InboundEvent, OutboundMessage
from tests.fakes.line_api import SECRET, FakeLineAPI, LineHarness, encode, user_id, webhook

ROOT = Path(__file__).resolve().parents[2]

# A worker that claims one event and hangs while "processing" it, until it is killed.
DOOMED_WORKER = """
import sys, time
from bot.runtime import bootstrap
from bot.settings import Settings
from handlers.inbox import Inbox
from handlers.channels.line import LineAdapter

class Hangs(LineAdapter):
    def parse_event(self, payload):
        print("claimed", flush=True)
        time.sleep(600)
        return super().parse_event(payload)

rt = bootstrap(Settings(), migrate=False)
Inbox(rt.sessions, rt.engine, {"line": Hangs("unused")}, worker_id="doomed").process_one()
"""

QUESTIONS = [
    "児童手当はいつ振り込まれますか",
    "一時預かりの料金は？",
    "キッズプラザの営業時間は？",
    "病児保育はありますか",
]


@pytest.fixture
async def harness(fake: FakeLineAPI, settings: Settings, runtime: Runtime) -> AsyncIterator[LineHarness]:
    h = LineHarness(fake, settings, runtime, stale_after=dt.timedelta(seconds=0))
    yield h
    await h.aclose()


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "DATABASE_URL"))}
    env.update(DATABASE_URL=settings.database_url, PYTHONPATH=str(ROOT), **extra)
    return env


async def test_an_event_claimed_by_a_killed_worker_is_answered_after_recovery(
    harness: LineHarness, fake: FakeLineAPI, settings: Settings, runtime: Runtime
) -> None:
    user = user_id()
    await harness.send("text", user=user)
    returncode = await anyio.to_thread.run_sync(_kill_after_claim, settings)
    assert returncode == -signal.SIGKILL
    with runtime.sessions() as s:
        event = s.exec(select(InboundEvent)).one()
    assert (event.status, event.claimed_by) == ("processing", "doomed")

    await harness.drain()  # not stale for the queue yet? stale_after=0 makes it so once recovered
    assert fake.received(user) == []  # a processing event is not taken by another worker as it is
    assert harness.inbox.recover() == 1
    await harness.drain()
    assert "偶数月" in fake.texts(user)[0]
    with runtime.sessions() as s:
        event = s.exec(select(InboundEvent)).one()
    assert (event.status, event.attempts) == ("done", 2)


def _kill_after_claim(settings: Settings) -> int:
    """Start the doomed worker, wait until it has claimed the event, SIGKILL it; its exit code."""
    child = subprocess.Popen(
        [sys.executable, "-c", DOOMED_WORKER], cwd=ROOT, env=_env(settings), stdout=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(90, child.kill)  # never hang the suite on a child that does not get there
    watchdog.start()
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "claimed"
    finally:
        watchdog.cancel()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
    return child.returncode


def _start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _drain_in_thread(inbox: Inbox, deadline: float, errors: list[BaseException]) -> None:
    try:
        idle = 0
        while time.monotonic() < deadline and idle < 50:
            if inbox.process_one():
                idle = 0
            else:
                idle += 1
                time.sleep(0.01)
    except BaseException as exc:
        errors.append(exc)


@pytest.mark.postgres
async def test_two_inboxes_on_postgres_process_each_event_once_and_in_order(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime, db: Engine
) -> None:
    users = [user_id() for _ in range(4)]
    tokens: dict[str, tuple[str, int]] = {}
    for i in range(8):
        for user in users:
            token = fake.issue_token(user)
            tokens[token] = (user, i)
            await harness.send("text", user=user, text=QUESTIONS[i % len(QUESTIONS)], reply_token=token)

    workers = [Inbox(runtime.sessions, runtime.engine, dict(harness.inbox.adapters), worker_id=w) for w in "AB"]
    errors: list[BaseException] = []
    deadline = time.monotonic() + 60
    threads = [threading.Thread(target=_drain_in_thread, args=(w, deadline, errors)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    with runtime.sessions() as s:
        events = list(s.exec(select(InboundEvent).order_by(InboundEvent.id)))  # type: ignore[arg-type]
        rows = list(s.exec(select(OutboundMessage).order_by(OutboundMessage.id)))  # type: ignore[arg-type]
    assert all(e.status == "done" and e.attempts == 1 for e in events)
    assert {e.claimed_by for e in events} == {"A", "B"}  # both workers took part
    assert len(rows) == len(events) == 32  # exactly one set of replies per event

    by_user: dict[str, list[InboundEvent]] = defaultdict(list)
    for e in events:
        by_user[e.sender_key].append(e)
    for seq in by_user.values():  # one parent's events: each claimed only after the previous one was done
        for earlier, later in itertools.pairwise(seq):
            assert earlier.processed_at is not None and later.claimed_at is not None
            assert earlier.processed_at <= later.claimed_at
    order: dict[str, list[int]] = defaultdict(list)  # replies were queued in each parent's order too
    for row in rows:
        user, i = tokens[row.reply_token or ""]
        order[user].append(i)
    assert all(seq == sorted(seq) for seq in order.values())

    await harness.drain()
    assert len(fake.replies) == 32


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.postgres
async def test_concierge_serve_with_two_workers_answers_every_event_once(
    fake: FakeLineAPI, settings: Settings, runtime: Runtime, db: Engine
) -> None:
    port = _free_port()
    env = _env(
        settings,
        LINE_CHANNEL_SECRET=SECRET,
        LINE_CHANNEL_ACCESS_TOKEN=fake.token,
        LINE_API_BASE_URL=fake.url,
    )
    cmd = [str(Path(sys.executable).parent / "concierge"), "serve", "--workers", "2", "--port", str(port)]
    server = _start(cmd, env)
    users = [user_id() for _ in range(6)]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            # Two worker processes each load the KB and the analyser: on a loaded machine that takes a while.
            started = time.monotonic()
            while True:
                assert server.poll() is None, "concierge serve exited before it answered"
                assert time.monotonic() - started < 180, "concierge serve did not answer /healthz in 180 s"
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            from handlers.channels.line import sign

            for i in range(5):
                for user in users:
                    body = encode(webhook("text", user=user, text=QUESTIONS[i % 4], reply_token=fake.issue_token(user)))
                    response = await client.post(
                        "/webhooks/line", content=body, headers={"x-line-signature": sign(SECRET, body)}
                    )
                    assert response.status_code == 200
        await anyio.to_thread.run_sync(lambda: fake.wait_for(lambda f: len(f.replies) + len(f.pushes) >= 30, 60))
        await asyncio.sleep(0.5)  # anything extra would show up now
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    assert len(fake.replies) == 30 and fake.pushes == []
    with runtime.sessions() as s:
        events = list(s.exec(select(InboundEvent).order_by(InboundEvent.id)))  # type: ignore[arg-type]
    assert len(events) == 30 and all(e.status == "done" and e.attempts == 1 for e in events)
    # Which worker takes an event depends on which process uvicorn hands the connection to (the other one
    # polls), so both taking part is not asserted here; the two-Inbox test above checks that.
    by_user: dict[str, list[InboundEvent]] = defaultdict(list)
    for e in events:
        by_user[e.sender_key].append(e)
    for seq in by_user.values():
        for earlier, later in itertools.pairwise(seq):
            assert earlier.processed_at is not None and later.claimed_at is not None
            assert earlier.processed_at <= later.claimed_at
