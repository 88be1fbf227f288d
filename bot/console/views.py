"""What the pages show, built from the database for one staff member: queue rows, case headers, names."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi.responses import RedirectResponse
from sqlmodel import Session

from bot.console import labels
from bot.console.core import Console, ForbiddenError, NotFoundError
from bot.console.waiting import office_minutes, sla_state
from knowledge.models import KnowledgeBase
from storage import console as console_db
from storage import crud, queue
from storage import staff as staffdb
from storage.models import OPEN_CASE_STATUSES, Case, utcnow
from storage.staff import Role, StaffAccount

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


@dataclass(frozen=True)
class QueueFilter:
    """The queue's filters (status, channel, topic, priority, assignee) and its search; empty means any."""

    status: str = ""
    channel: str = ""
    topic: str = ""
    priority: str = ""
    assignee: str = ""  # a username, or "none" for 未担当
    q: str = ""

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> QueueFilter:
        def one(name: str, allowed: Collection[str] | None = None) -> str:
            value = (params.get(name) or "").strip()[:64]
            return value if allowed is None or value in allowed else ""

        return cls(
            status=one("status", labels.STATUSES),
            channel=one("channel", labels.CHANNELS),
            topic=one("topic"),
            priority=one("priority", labels.PRIORITIES),
            assignee=one("assignee"),
            q=(params.get("q") or "").strip()[:100],
        )

    @property
    def active(self) -> bool:
        return any((self.status, self.channel, self.topic, self.priority, self.assignee, self.q))

    def query(self, **extra: str) -> str:
        """The filters as a query string (for links and the live stream); the search is left out of the stream."""
        pairs = {**{k: v for k, v in self.__dict__.items() if v}, **{k: v for k, v in extra.items() if v}}
        return urlencode(pairs)

    def matches(self, case: Case) -> bool:
        if self.status and case.status != self.status:
            return False
        if self.channel and case.channel != self.channel:
            return False
        if self.topic and (case.topic or "") != ("" if self.topic == "none" else self.topic):
            return False
        if self.priority and case.priority != self.priority:
            return False
        if self.assignee == "none":
            return not case.assignee
        return not self.assignee or case.assignee == self.assignee

    def describe(self, *, kb: KnowledgeBase, names: dict[str, str]) -> str:
        """In Japanese for the audit log: which filters, and what kind of search (never the search text)."""
        parts = []
        if self.status:
            parts.append(f"状態={labels.STATUSES[self.status]}")
        if self.channel:
            parts.append(f"経路={labels.CHANNELS[self.channel]}")
        if self.topic:
            parts.append(f"分野={'なし' if self.topic == 'none' else topic_label(kb, self.topic)}")
        if self.priority:
            parts.append(f"優先度={labels.PRIORITIES[self.priority]}")
        if self.assignee:
            parts.append(f"担当={'未担当' if self.assignee == 'none' else names.get(self.assignee, self.assignee)}")
        if self.q:
            parts.append("受付番号で検索" if case_number(self.q) is not None else "やりとりを検索")
        return "、".join(parts)


def case_number(text: str) -> int | None:
    digits = text.strip().lstrip("#＃").translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    return int(digits) if digits.isdigit() and len(digits) < 10 else None


def may_search_transcripts(staff: StaffAccount) -> bool:
    """Searching message text reads many transcripts at once: the roles that read transcripts for their work."""
    return staff.role in (Role.CONCIERGE, Role.SUPERVISOR, Role.AUDITOR)


def crisis_label(kb: KnowledgeBase, category: str | None) -> str | None:
    if not category:
        return None
    for c in kb.crisis.categories:
        if c.id == category:
            return c.label.get("ja") or "危機"
    return "危機"


@dataclass(frozen=True)
class Glance:
    """What the queue shows beside a case's metadata, read for all rows at once."""

    latest: dict[int, console_db.Latest]
    viewed: dict[int, dt.datetime]
    consent: dict[int, str]
    exports: set[int]
    booked: set[int]

    @classmethod
    def load(cls, session: Session, *, cases: list[Case], actor: str, now: dt.datetime) -> Glance:
        ids = [c.id for c in cases if c.id is not None]
        return cls(
            latest=console_db.latest_parent_messages(session, case_ids=ids),
            viewed=console_db.last_views(session, actor=actor, case_ids=ids),
            consent=console_db.consent_statuses(session, contact_ids=list({c.contact_id for c in cases})),
            exports=console_db.export_requested(session, case_ids=ids),
            booked=console_db.booked(session, case_ids=ids, now=now),
        )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def case_row(
    case: Case,
    *,
    console: Console,
    kb: KnowledgeBase,
    names: dict[str, str],
    now: dt.datetime,
    reply: staffdb.ReplyState | None = None,
    glance: Glance | None = None,
) -> dict[str, Any]:
    """One case as the queue shows it: metadata, and the first characters of the parent's latest message
    when consent is in force (the queue page view is audited; the JSON and the stream repeat what it shows).

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
    cid = case.id or 0
    consent = glance.consent.get(case.contact_id) if glance else None
    latest = glance.latest.get(cid) if glance else None
    viewed = glance.viewed.get(cid) if glance else None
    crisis = crisis_label(kb, case.crisis_category)
    return {
        "id": case.id,
        "url": f"/cases/{case.id}",
        "urgent": urgent,
        "flagged": urgent and not case.assignee and case.status in OPEN_CASE_STATUSES,
        "failed": bool(reply and reply.failed),
        "priority": labels.PRIORITIES.get(case.priority, case.priority),
        "crisis": crisis,
        "kind": case.kind,
        "kind_label": labels.KINDS.get(case.kind, case.kind),
        "status": case.status,
        "status_label": labels.STATUSES.get(case.status, case.status),
        "channel": labels.CHANNELS.get(case.channel, case.channel),
        "topic": topic_label(kb, case.topic),
        "lang": labels.LANGS.get(case.lang, case.lang),
        "preview": latest.preview if latest and consent == "granted" else None,
        "preview_hidden": latest is not None and consent != "granted",
        "new_message": latest is not None and (viewed is None or _aware(latest.at) > _aware(viewed)),
        "export_request": bool(glance and cid in glance.exports) or case.kind == "records_export",
        "withdrawn": consent == "withdrawn",
        "booked": bool(glance and cid in glance.booked),
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
    session: Session,
    *,
    staff: StaffAccount,
    view: str,
    console: Console,
    kb: KnowledgeBase,
    filters: QueueFilter | None = None,
) -> list[dict[str, Any]]:
    now = utcnow()
    if view == "closed":
        found = [c for c in staffdb.cases(session, limit=300) if c.status not in OPEN_CASE_STATUSES]
    elif filters is not None and filters.status and filters.status not in OPEN_CASE_STATUSES:
        found = [c for c in staffdb.cases(session, limit=300) if c.status == filters.status]
    else:
        found = crud.queue(session)
    visible = [c for c in found if staffdb.can_view_case(staff, c)]
    if view == "mine":
        visible = [c for c in visible if c.assignee == staff.username]
    elif view == "unassigned":
        visible = [c for c in visible if not c.assignee]
    if filters is not None:
        visible = [c for c in visible if filters.matches(c)]
        if filters.q:
            number = case_number(filters.q)
            if number is not None:
                visible = [c for c in visible if c.id == number]
            elif may_search_transcripts(staff):
                hits = console_db.search_transcripts(
                    session, case_ids=[c.id for c in visible if c.id is not None], text=filters.q
                )
                visible = [c for c in visible if c.id in hits]
            else:
                visible = []
    names = staff_names(session)
    replies = staffdb.reply_states(session, case_ids=[c.id for c in visible if c.id is not None])
    glance = Glance.load(session, cases=visible, actor=staff.username, now=now)
    rows = []
    for c in visible:
        row = case_row(c, console=console, kb=kb, names=names, now=now, reply=replies.get(c.id or 0), glance=glance)
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
    unrecorded = console_db.unrecorded_times(session, case_id=case.id)
    timeline: list[tuple[dt.datetime, Any]] = [(_aware(m.created_at), m) for m in transcript]
    timeline += [(_aware(at), None) for at in unrecorded]  # None: a message that was not recorded
    timeline.sort(key=lambda pair: pair[0])
    return {
        "row": case_row(case, console=console, kb=kb, names=names, now=utcnow(), reply=reply),
        "transcript": transcript,
        "timeline": timeline,
        "withdrawn_at": console_db.withdrawn_at(session, contact_id=case.contact_id),
        "errors": queue.delivery_errors(session, message_ids=failed),
    }
