"""A reply in flight when the process dies (review F3), on both databases: the attempt is recorded before
the call; a reclaimed delivery tries its reply token again and never falls back to a push that could be a
second copy; what may be lost is shown to staff. The dead worker's work is reclaimed in seconds."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from sqlmodel import select

from bot.runtime import Runtime
from bot.settings import Settings
from handlers.channels.line import REPLY_UNCONFIRMED
from storage import queue
from storage.db import transaction
from storage.models import EventStatus, OutboundMessage, utcnow
from tests.fakes.line_api import FakeLineAPI, LineHarness, encode, user_id, webhook

ROOT = Path(__file__).resolve().parents[2]

# A worker that delivers the queued reply through the real adapter; the fake answers so late that the
# worker is killed while it waits (LINE has taken the reply by then).
DELIVERING_WORKER = """
import asyncio, os
from bot.runtime import bootstrap
from bot.settings import Settings
from handlers.inbox import Inbox
from handlers.channels.line import LineAdapter

rt = bootstrap(Settings(), migrate=False)
adapter = LineAdapter(os.environ["FAKE_TOKEN"], api_base_url=os.environ["FAKE_URL"])
inbox = Inbox(rt.sessions, rt.engine, {"line": adapter}, worker_id="doomed")
inbox.beat()
asyncio.run(inbox.deliver_one())
"""


@pytest.fixture
async def harness(fake: FakeLineAPI, settings: Settings, runtime: Runtime) -> AsyncIterator[LineHarness]:
    h = LineHarness(fake, settings, runtime, dead_after=dt.timedelta(seconds=1))
    yield h
    await h.aclose()


def outbound(runtime: Runtime) -> OutboundMessage:
    with runtime.sessions() as s:
        (row,) = s.exec(select(OutboundMessage))
        return row


async def _queued_reply(harness: LineHarness, user: str, text: str = "児童手当はいつ振り込まれますか") -> None:
    """A parent's question, processed: its reply waits in the outbox with the event's reply token."""
    await harness.send("text", user=user, text=text)
    assert await anyio.to_thread.run_sync(harness.inbox.process_one)


def _kill_while_waiting_for_the_reply(fake: FakeLineAPI, settings: Settings) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "DATABASE_URL"))}
    env.update(DATABASE_URL=settings.database_url, PYTHONPATH=str(ROOT), FAKE_URL=fake.url, FAKE_TOKEN=fake.token)
    fake.answer_late_next(60, path="/v2/bot/message/reply")
    child = subprocess.Popen([sys.executable, "-c", DELIVERING_WORKER], cwd=ROOT, env=env)
    watchdog = threading.Timer(90, child.kill)
    watchdog.start()
    try:
        fake.wait_for(lambda f: len(f.accepted) == 1, timeout=80)  # LINE took the reply; the answer is late
    finally:
        watchdog.cancel()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    return child.returncode


async def _reclaim(harness: LineHarness, within: float = 10.0) -> float:
    """Beat until the dead worker's delivery is taken back; the seconds it took."""
    started = time.monotonic()
    while not await anyio.to_thread.run_sync(harness.inbox.beat):
        assert time.monotonic() - started < within, "the dead worker's delivery was not reclaimed"
        await anyio.sleep(0.2)
    return time.monotonic() - started


async def test_a_reply_taken_by_line_before_the_crash_is_not_sent_again_and_staff_see_it(
    harness: LineHarness, fake: FakeLineAPI, settings: Settings, runtime: Runtime
) -> None:
    user = user_id()
    await _queued_reply(harness, user)
    assert await anyio.to_thread.run_sync(_kill_while_waiting_for_the_reply, fake, settings) == -signal.SIGKILL
    row = outbound(runtime)
    assert (row.status, row.reply_state, row.claimed_by) == ("processing", queue.ReplyState.ATTEMPTED, "doomed")

    assert await _reclaim(harness) < 5  # seconds, not stale_after's two minutes
    await harness.drain()
    assert [a["via"] for a in fake.accepted] == ["reply"]  # once: no push after the dead token
    assert "偶数月" in fake.texts(user)[0]
    row = outbound(runtime)
    assert row.status == EventStatus.FAILED and row.error == REPLY_UNCONFIRMED
    with runtime.sessions() as s:
        assert queue.failed_delivery_count(s) == 1


async def test_a_reply_that_never_reached_line_goes_out_with_the_same_token(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime
) -> None:
    user = user_id()
    await _queued_reply(harness, user)
    with transaction(runtime.sessions) as s:  # claimed (the attempt recorded), then the worker died
        row = queue.claim_outbound(s, worker="died-before-the-call")
        assert row is not None and row.reply_state == queue.ReplyState.ATTEMPTED
        row.claimed_at = utcnow() - dt.timedelta(seconds=5)
        s.add(row)
    assert await _reclaim(harness) < 5
    await harness.drain()
    assert [a["via"] for a in fake.accepted] == ["reply"]
    assert outbound(runtime).status == EventStatus.DONE


async def test_a_reclaimed_reply_whose_token_is_dead_is_reported_not_pushed(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime
) -> None:
    user = user_id()
    await harness.send("text", user=user, reply_token=(token := fake.issue_token(user)))
    assert await anyio.to_thread.run_sync(harness.inbox.process_one)
    with transaction(runtime.sessions) as s:
        row = queue.claim_outbound(s, worker="gone")
        assert row is not None
        row.claimed_at = utcnow() - dt.timedelta(seconds=5)
        s.add(row)
    fake.expire_token(token)  # used or expired: LINE says the same for both
    await _reclaim(harness)
    await harness.drain()
    assert fake.accepted == [] and fake.pushes == []
    row = outbound(runtime)
    assert row.status == EventStatus.FAILED and row.error == REPLY_UNCONFIRMED and row.payload == ""


async def test_a_reply_refused_in_the_same_attempt_still_falls_back_to_a_push(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime
) -> None:
    user = user_id()
    body = webhook("text", user=user, reply_token=(token := fake.issue_token(user)))
    fake.expire_token(token)  # e.g. a redelivery an hour later: LINE answers 400 at once
    assert (await harness.post(encode(body))).status_code == 200
    await harness.drain()
    assert [a["via"] for a in fake.accepted] == ["push"]
    assert outbound(runtime).status == EventStatus.DONE


async def test_a_reply_that_timed_out_but_arrived_is_not_pushed_as_well(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime
) -> None:
    user = user_id()
    harness.adapter.timeout = 0.5
    fake.answer_late_next(1.5, path="/v2/bot/message/reply")  # LINE takes it, we give up waiting
    await harness.send("text", user=user, text="児童手当はいつ振り込まれますか")
    await harness.drain()  # the reply times out: retried with the same token, which LINE now refuses
    assert [a["via"] for a in fake.accepted] == ["reply"]
    row = outbound(runtime)
    assert row.status == EventStatus.FAILED and row.error == REPLY_UNCONFIRMED
