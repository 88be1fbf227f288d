"""The console's live updates (/cases/events, server-sent events): access control and the session check on
the stream like every staff view, what its events carry (no message text in the queue's), the stream keeping
an open console logged in up to the maximum session age, the urgent target, and a reply that did not reach
the parent keeping the wait clock running (and 未達, and 再送 through the same outbox)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlmodel import select

from bot.settings import Settings
from handlers.types import InboundMessage
from storage import crud
from storage.db import transaction
from storage.models import Case, Message, OutboundMessage, utcnow
from storage.staff import AuditEntry, StaffSession
from tests.e2e.kit import assign, client, parent_opens_case, session_for, staffed_console

ACCOUNTS = (("sato", "concierge"), ("yamada", "assistant"), ("kansa", "auditor"))
WORRY = "夜泣きがひどくて眠れません"


def events(body: str) -> list[tuple[str, Any]]:
    """The named events of a text/event-stream body, in order."""
    found = []
    for block in body.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with staffed_console(settings, *ACCOUNTS) as a:
        yield a


async def test_the_stream_refuses_without_a_session_and_with_an_ended_one(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "p-anon", WORRY)
    async with client(app) as anon:
        for url in ("/cases/events", f"/cases/events?case={case_id}"):
            r = await anon.get(url, headers={"accept": "text/event-stream"})
            assert r.status_code == 401 and r.json()["error"] == "not authenticated"
            assert "夜泣き" not in r.text and "event:" not in r.text
        anon.cookies.set("kc_session", "forged-token")
        r = await anon.get("/cases/events")
        assert r.status_code == 401 and r.json()["expired"] is True


async def test_the_stream_checks_case_permission_before_it_starts(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "p-perm", WORRY)
    assistant = await session_for(app, "yamada")
    async with assistant:
        r = await assistant.client.get(f"/cases/events?case={case_id}")
        assert r.status_code == 403 and "夜泣き" not in r.text
        r = await assistant.client.get("/cases/events?case=999999")
        assert r.status_code == 404
        r = await assistant.client.get("/cases/events?view=all")  # the queue: their own (empty) view
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        queue = [d for name, d in events(r.text) if name == "queue"]
        assert queue == [{"rows": []}]
        assert "夜泣き" not in r.text
        assign(app.state.runtime.sessions, case_id, "yamada")  # now theirs: the case stream opens
        r = await assistant.client.get(f"/cases/events?case={case_id}")
        assert r.status_code == 200 and WORRY in r.text


async def test_queue_events_carry_the_preview_the_page_shows_and_case_events_the_transcript(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "p-text", WORRY)
    me = await session_for(app, "sato")
    async with me:
        r = await me.client.get("/cases/events?view=all")
        got = dict(events(r.text))
        assert [row["id"] for row in got["queue"]["rows"]] == [case_id]
        assert got["urgent"] == {"ids": []}
        assert got["queue"]["rows"][0]["preview"] == WORRY[:40] + ("…" if len(WORRY) > 40 else "")
        r = await me.client.get(f"/cases/events?case={case_id}")
        got = dict(events(r.text))
        assert "queue" not in got and got["case"]["id"] == case_id
        assert WORRY in got["case"]["transcript"] and "根拠：同意" in got["case"]["transcript"]
    with app.state.runtime.sessions() as s:  # the stream is not a view of its own: nothing extra audited
        assert not list(s.exec(select(AuditEntry).where(AuditEntry.actor == "sato")))


async def test_a_new_case_and_a_new_message_arrive_on_an_open_stream(settings: Settings) -> None:
    async with staffed_console(settings, *ACCOUNTS, stream_seconds=4.0) as app:
        rt = app.state.runtime
        first = parent_opens_case(rt.engine, "p-one", WORRY)
        me = await session_for(app, "sato")
        async with me:

            async def meanwhile() -> None:
                await asyncio.sleep(1.2)
                await asyncio.to_thread(parent_opens_case, rt.engine, "p-two", "保育園の入園について")
                await asyncio.to_thread(rt.engine.handle, InboundMessage("console", "p-one", text="追加で相談です"))

            queue, case, _ = await asyncio.gather(
                me.client.get("/cases/events?view=all"), me.client.get(f"/cases/events?case={first}"), meanwhile()
            )
        rows = [[r["id"] for r in d["rows"]] for name, d in events(queue.text) if name == "queue"]
        assert rows[0] == [first] and len(rows[-1]) == 2
        transcripts = [d["transcript"] for name, d in events(case.text) if name == "case"]
        assert "追加で相談です" not in transcripts[0] and "追加で相談です" in transcripts[-1]


async def test_an_open_stream_keeps_the_session_alive(settings: Settings) -> None:
    # idle timeout 3 s, streams of 5 s: the stream touches the session while it runs
    async with staffed_console(settings, *ACCOUNTS, idle_timeout_minutes=0.05, stream_seconds=5.0) as app:
        me = await session_for(app, "sato")
        async with me:
            r = await me.client.get("/cases/events?view=all")
            assert "session" not in dict(events(r.text))
            assert (await me.client.get("/cases/queue.json")).status_code == 200  # still logged in


async def test_a_stream_ends_the_session_at_its_maximum_age(settings: Settings) -> None:
    async with staffed_console(settings, *ACCOUNTS, session_max_hours=2 / 3600, stream_seconds=6.0) as app:
        me = await session_for(app, "sato")
        async with me:
            r = await me.client.get("/cases/events?view=all")
            assert dict(events(r.text))["session"] == {"ended": True, "expired": True}
            assert (await me.client.get("/cases/queue.json")).status_code == 401
        with app.state.runtime.sessions() as s:
            assert not list(s.exec(select(StaffSession)))


async def test_a_session_ended_elsewhere_ends_the_stream(settings: Settings) -> None:
    # The stream ends as soon as it sees the logout; its limit is only a bound, wide enough for a loaded machine.
    async with staffed_console(settings, *ACCOUNTS, stream_seconds=15.0) as app:
        me = await session_for(app, "sato")
        async with me:

            async def logout_elsewhere() -> None:
                await asyncio.sleep(1.2)
                await me.post("/logout")

            r, _ = await asyncio.gather(me.client.get("/cases/events?view=all"), logout_elsewhere())
        assert events(r.text)[-1] == ("session", {"ended": True, "expired": True})


async def test_urgent_cases_have_their_own_short_target_in_real_minutes(app: FastAPI) -> None:
    rt = app.state.runtime
    rt.engine.handle(InboundMessage("console", "p-crisis", text="子どもを叩いてしまいそうで怖い"))
    with transaction(rt.sessions) as s:
        case = next(c for c in crud.queue(s) if c.priority == "urgent")
        case_id = case.id
        case.waiting_since = utcnow() - dt.timedelta(minutes=9)
        s.add(case)
    me = await session_for(app, "sato")
    async with me:
        row = (await me.client.get("/cases/queue.json")).json()["rows"][0]
        assert row["id"] == case_id and row["target"] == "10分" and row["sla"] == "soon" and row["flagged"]
        with transaction(rt.sessions) as s:
            c = s.get(Case, case_id)
            assert c is not None
            c.waiting_since = utcnow() - dt.timedelta(minutes=11)  # real minutes, even outside office hours
            s.add(c)
        r = await me.client.get("/cases/events?view=all")
        got = dict(events(r.text))
        assert got["queue"]["rows"][0]["sla"] == "over" and got["urgent"] == {"ids": [case_id]}
        await me.post(f"/cases/{case_id}/claim")  # flagged until someone claims it
        got = dict(events((await me.client.get("/cases/events?view=all")).text))
        assert got["urgent"] == {"ids": []} and not got["queue"]["rows"][0]["flagged"]
        assert got["queue"]["rows"][0]["sla"] == "over"  # still red: nobody has answered yet


def set_delivery(app: FastAPI, message_id: int, delivery: str, error: str | None = None) -> None:
    """What the outbox records when the channel answers (the LINE flow is in tests/e2e)."""
    with transaction(app.state.runtime.sessions) as s:
        line = s.get(Message, message_id)
        assert line is not None
        line.delivery = delivery
        s.add(line)
        for out in s.exec(select(OutboundMessage).where(OutboundMessage.message_id == message_id)):
            out.status = "done" if delivery == "sent" else "failed"
            out.error = error
            s.add(out)


async def test_the_wait_clock_runs_until_a_reply_is_delivered_and_a_failed_one_is_resent(app: FastAPI) -> None:
    rt = app.state.runtime
    case_id = parent_opens_case(rt.engine, "p-wait", WORRY)
    with transaction(rt.sessions) as s:
        c = s.get(Case, case_id)
        assert c is not None
        c.waiting_since = utcnow() - dt.timedelta(minutes=30)
        s.add(c)
    me = await session_for(app, "sato")
    async with me:
        await me.post(f"/cases/{case_id}/reply", data={"text": "お返事です"})
        with rt.sessions() as s:
            reply = s.exec(select(Message).where(Message.author == "staff:sato")).one()
            assert reply.id is not None and s.get(Case, case_id).waiting_since is None  # type: ignore[union-attr]
        row = (await me.client.get("/cases/queue.json")).json()["rows"][0]
        assert row["office_minutes"] is not None and row["waiting_since"] is not None  # pending: still waiting
        set_delivery(app, reply.id, "failed", "push 400")
        row = (await me.client.get("/cases/queue.json")).json()["rows"][0]
        assert row["failed"] and row["waiting_since"] is not None
        page = (await me.client.get(f"/cases/{case_id}")).text
        assert "未達" in page and "友だち登録が解除されたかブロック" in page and "再送" in page
        assert "ほかの連絡方法" in page
        r = await me.post(f"/cases/{case_id}/messages/{reply.id}/resend")
        assert r.status_code == 303 and "msg=" in r.headers["location"]
        with rt.sessions() as s:
            line = s.get(Message, reply.id)
            assert line is not None and line.delivery == "pending"
            outs = list(s.exec(select(OutboundMessage).where(OutboundMessage.message_id == reply.id)))
            assert len(outs) == 1 and outs[0].status == "pending" and outs[0].attempts == 0
            assert "お返事です" in outs[0].payload
        r = await me.post(f"/cases/{case_id}/messages/{reply.id}/resend")  # not failed: nothing queued twice
        assert "error=not_failed" in r.headers["location"]
        set_delivery(app, reply.id, "sent")
        row = (await me.client.get("/cases/queue.json")).json()["rows"][0]
        assert not row["failed"] and row["waiting_since"] is None and row["sla"] == "none"
