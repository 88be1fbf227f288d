"""What the pages show, built from the database for one staff member: queue rows, case headers, names."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi.responses import RedirectResponse
from sqlmodel import Session

from bot.console import labels
from bot.console.core import Console, ForbiddenError, NotFoundError
from bot.console.waiting import office_minutes, sla_state
from knowledge.models import KnowledgeBase
from storage import crud, queue
from storage import staff as staffdb
from storage.models import OPEN_CASE_STATUSES, Case, utcnow
from storage.staff import StaffAccount

Check = Callable[[StaffAccount, Case], bool]


def load_case(session: Session, *, case_id: int, staff: StaffAccount, allowed: Check = staffdb.can_view_case) -> Case:
    case = crud.get_case(session, case_id=case_id)
    if case is None:
        raise NotFoundError()
    if not allowed(staff, case):
        raise ForbiddenError("case")
    return case


def topic_label(kb: KnowledgeBase, topic: str | None) -> str:
    if not topic:
        return "—"
    found = kb.topics.get(topic)
    return found.title.split("（")[0] if found else topic


def staff_names(session: Session) -> dict[str, str]:
    return {s.username: s.display_name or s.username for s in staffdb.list_staff(session)}


def case_row(
    case: Case,
    *,
    console: Console,
    kb: KnowledgeBase,
    names: dict[str, str],
    now: dt.datetime,
    reply: staffdb.ReplyState | None = None,
) -> dict[str, Any]:
    """One case as the queue shows it (metadata only: never message content).

    The wait runs until a reply actually reached the parent: a reply still pending or failed does not stop
    it (`reply.waiting_from`). Urgent cases are measured in real minutes against their own short target
    (a crisis does not wait for office hours); the others in office-hours minutes against the reply target."""
    urgent = case.priority == "urgent"
    since = case.waiting_since
    if reply is not None and reply.waiting_from is not None:
        since = min(since, reply.waiting_from) if since is not None else reply.waiting_from
    waited = office = None
    if since is not None and case.status in OPEN_CASE_STATUSES:
        waited = max(0, int((now - since).total_seconds() // 60))
        office = waited if urgent else office_minutes(console.office_hours, since, now)
    target = console.settings.urgent_target_minutes if urgent else console.settings.reply_target_minutes
    return {
        "id": case.id,
        "url": f"/cases/{case.id}",
        "urgent": urgent,
        "flagged": urgent and not case.assignee and case.status in OPEN_CASE_STATUSES,
        "failed": bool(reply and reply.failed),
        "priority": labels.PRIORITIES.get(case.priority, case.priority),
        "kind": case.kind,
        "kind_label": labels.KINDS.get(case.kind, case.kind),
        "status": case.status,
        "status_label": labels.STATUSES.get(case.status, case.status),
        "channel": labels.CHANNELS.get(case.channel, case.channel),
        "topic": topic_label(kb, case.topic),
        "lang": labels.LANGS.get(case.lang, case.lang),
        "waited": labels.duration(waited) if waited is not None else "—",
        "office_waited": labels.duration(office) if office is not None else "—",
        "office_minutes": office,
        "waiting_since": since.isoformat() if since is not None and waited is not None else None,
        "target": labels.duration(target),
        "sla": sla_state(office, target),
        "sla_label": labels.SLA[sla_state(office, target)],
        "assignee": case.assignee,
        "assignee_label": names.get(case.assignee, case.assignee) if case.assignee else "未担当",
        "created": labels.local(case.created_at, console.office_hours.tz, "%m/%d %H:%M"),
    }


def queue_rows(
    session: Session, *, staff: StaffAccount, view: str, console: Console, kb: KnowledgeBase
) -> list[dict[str, Any]]:
    now = utcnow()
    if view == "closed":
        found = [c for c in staffdb.cases(session, limit=300) if c.status not in OPEN_CASE_STATUSES]
    else:
        found = crud.queue(session)
    visible = [c for c in found if staffdb.can_view_case(staff, c)]
    if view == "mine":
        visible = [c for c in visible if c.assignee == staff.username]
    elif view == "unassigned":
        visible = [c for c in visible if not c.assignee]
    names = staff_names(session)
    replies = staffdb.reply_states(session, case_ids=[c.id for c in visible if c.id is not None])
    rows = []
    for c in visible:
        row = case_row(c, console=console, kb=kb, names=names, now=now, reply=replies.get(c.id or 0))
        row["can_claim"] = (
            c.status in OPEN_CASE_STATUSES and c.assignee != staff.username and staffdb.can_manage_case(staff, c)
        )
        rows.append(row)
    if view != "closed":  # urgent first, then the longest real wait (an undelivered reply does not end it)
        rows.sort(key=lambda r: (not r["urgent"], r["waiting_since"] is None, r["waiting_since"] or ""))
    return rows


def back(case_id: int, message: str | None = None, *, error: str | None = None, anchor: str = "") -> RedirectResponse:
    query = f"?msg={quote(message)}" if message else ""
    if error:
        query = f"?error={quote(error)}"
    return RedirectResponse(f"/cases/{case_id}{query}{anchor}", status_code=303)


def message_text(key: str | None, **values: str) -> str | None:
    if not key or key not in labels.MESSAGES:
        return None
    return labels.MESSAGES[key].format(**values) if values else labels.MESSAGES[key]


def transcript_context(
    session: Session, *, case: Case, console: Console, kb: KnowledgeBase, names: dict[str, str]
) -> dict[str, Any]:
    """What the transcript and the wait clock of a case page need (the page and its live updates)."""
    assert case.id is not None
    transcript = crud.transcript(session, case_id=case.id)
    reply = staffdb.reply_states(session, case_ids=[case.id]).get(case.id)
    failed = [m.id for m in transcript if m.delivery == "failed" and m.id is not None]
    return {
        "row": case_row(case, console=console, kb=kb, names=names, now=utcnow(), reply=reply),
        "transcript": transcript,
        "errors": queue.delivery_errors(session, message_ids=failed),
    }
