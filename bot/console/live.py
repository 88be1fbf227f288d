"""/cases/events: the console's live updates as server-sent events (`text/event-stream`).

One stream per open console page. It re-reads, about once a second, what that staff member may see and
sends only what changed:
- `queue`: the queue rows of the page's view and filters (as /cases/queue.json and the audited page);
- `urgent`: the urgent cases nobody has claimed yet, by number (every page: a crisis must not go unseen);
- `case`: on a case page, its transcript and wait clock, rendered exactly as the page renders them (the
  text is what the page itself shows to this staff member, who was checked like the page checks);
- `session`: the session has ended (expired, logged out, account disabled): the page says so and stops.

The stream counts as activity (an open console is not logged out by the idle timeout) but not beyond the
maximum session age, and it closes after `stream_seconds` so the browser reconnects through the same
session and permission checks. The browser falls back to polling the JSON views when it cannot stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from bot.console.core import (
    SECURITY_HEADERS,
    SESSION_COOKIE,
    Console,
    ConsoleDep,
    ForbiddenError,
    NotAuthenticatedError,
    NotFoundError,
    StaffDep,
    check_session,
)
from bot.console.views import QueueFilter, load_case, queue_rows, staff_names, transcript_context
from bot.deps import RuntimeDep
from storage import staff as staffdb
from storage.models import OPEN_CASE_STATUSES

router = APIRouter()
VIEWS = ("all", "mine", "unassigned", "closed")
TICK = 1.0  # seconds between looks at the database: a new case or message shows within two seconds
TOUCH_EVERY = 60.0  # the session is marked active this often while a stream is open (or sooner: idle / 4)
HEARTBEAT = 15.0  # a comment line now and then keeps proxies from closing a quiet stream


def event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def snapshot(
    rt: Any,
    console: Console,
    token: str | None,
    view: str | None,
    case_id: int | None,
    touch: bool,
    filters: QueueFilter | None = None,
) -> dict[str, Any]:
    """What the page shows now; raises NotAuthenticatedError / ForbiddenError / NotFoundError."""
    staff, row = check_session(rt.sessions, console, token, touch=touch)
    out: dict[str, Any] = {}
    with rt.sessions() as s:
        everything = queue_rows(s, staff=staff, view="all", console=console, kb=rt.kb)
        out["urgent"] = {"ids": [r["id"] for r in everything if r["flagged"]]}
        if view is not None:
            rows = (
                everything
                if view == "all" and filters is None
                else queue_rows(s, staff=staff, view=view, console=console, kb=rt.kb, filters=filters)
            )
            out["queue"] = {"rows": rows}
        if case_id is not None:
            case = load_case(s, case_id=case_id, staff=staff)
            names = staff_names(s)
            ctx = transcript_context(s, case=case, console=console, kb=rt.kb, names=names)
            page = console.templates.get_template("_transcript.html")
            wait = console.templates.get_template("_wait.html")
            can_reply = staffdb.can_reply(staff, case) and case.status in OPEN_CASE_STATUSES
            out["case"] = {
                "id": case_id,
                "count": len(ctx["transcript"]),
                "transcript": page.render(case=case, names=names, csrf=row.csrf_token, can_reply=can_reply, **ctx),
                "wait": wait.render(**ctx),
                "failed": ctx["row"]["failed"],
            }
    return out


@router.get("/cases/events")
async def events(
    request: Request,
    who: StaffDep,
    rt: RuntimeDep,
    console: ConsoleDep,
    view: str | None = None,
    case: int | None = None,
) -> StreamingResponse:
    """The stream; its first look runs before the response starts, so a refused request is a plain 401/403/404."""
    view = view if view is None or view in VIEWS else "all"
    token = request.cookies.get(SESSION_COOKIE)
    parsed = replace(QueueFilter.parse(request.query_params), q="")  # the page's filters; no repeated search
    filters = parsed if parsed.active else None
    first = await anyio.to_thread.run_sync(snapshot, rt, console, token, view, case, False, filters)
    limit = console.settings.stream_seconds
    touch_every = min(TOUCH_EVERY, console.idle.total_seconds() / 4)

    async def stream() -> AsyncIterator[str]:
        started = last_touch = last_sent = time.monotonic()
        sent: dict[str, str] = {}
        current = first
        yield "retry: 2000\n\n"
        while True:
            for name, data in current.items():
                text = json.dumps(data, ensure_ascii=False, sort_keys=True)
                if sent.get(name) != text:
                    sent[name] = text
                    last_sent = time.monotonic()
                    yield event(name, data)
            now = time.monotonic()
            if now - started >= limit:
                return
            if now - last_sent >= HEARTBEAT:
                last_sent = now
                yield ": ping\n\n"
            await anyio.sleep(TICK)
            touch = time.monotonic() - last_touch >= touch_every
            try:
                current = await anyio.to_thread.run_sync(snapshot, rt, console, token, view, case, touch, filters)
            except NotAuthenticatedError as exc:
                yield event("session", {"ended": True, "expired": exc.expired})
                return
            except (ForbiddenError, NotFoundError):
                yield event("session", {"ended": False, "gone": True})
                return
            if touch:
                last_touch = time.monotonic()

    headers = dict(SECURITY_HEADERS)
    headers["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
