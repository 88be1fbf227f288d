"""/kb: the knowledge base the bot answers from, for staff: entries by topic with a search, the entries whose
source has not been confirmed for too long (a reminder to recheck them), 「試してみる」 (what the bot answers
to a question right now: action, entry, score and the reply as a parent reads it; nothing is stored), and the
open-data CSV (子育てオープンデータ協議会 FAQ layout) to download.

Roles: every staff member reads (the KB holds no personal data); the CSV download is audited as an export.
Concierges and supervisors edit the live KB (bot/console/kb_edit.py: editor, checks, revisions, approval).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from bot.console.core import SECURITY_HEADERS, Authed, ConsoleDep, NotFoundError, require
from bot.console.views import topic_label
from bot.deps import RuntimeDep
from handlers.hours import format_date
from handlers.types import render_plain
from knowledge.exchange import export_csv
from knowledge.models import Entry, KnowledgeBase
from knowledge.normalize import clean
from storage import staff as staffdb
from storage.db import transaction
from storage.staff import Role

router = APIRouter()
Reader = Annotated[Authed, Depends(require(Role.CONCIERGE, Role.ASSISTANT, Role.SUPERVISOR, Role.AUDITOR))]
RECORD_TYPE = "kb"
MAX_SOURCE_AGE_DAYS = 365  # as `concierge kb check`: older sources are a warning there and a reminder here
MAX_QUERY = 200

ACTIONS = {
    "answer": "回答する",
    "clarify": "候補を示して聞き返す",
    "fallback": "答えられない（相談員への案内）",
    "handoff": "相談員への引き継ぎ（同意の確認から）",
    "urgent": "緊急（緊急連絡先を示し、職員に通知）",
    "distress": "つらさへの声かけと相談先・相談員の案内",
}


@dataclass(frozen=True)
class Row:
    id: str
    topic: str
    question: str
    answer: str
    contacts: str
    checked: str
    age_days: int
    stale: bool
    languages: str


def _row(kb: KnowledgeBase, entry: Entry, today: dt.date) -> Row:
    age = (today - entry.source.checked).days
    questions = entry.questions.get("ja") or next(iter(entry.questions.values()), [])
    names = [kb.contacts[c].name.get("ja", c) for c in entry.contacts if c in kb.contacts]
    return Row(
        id=entry.id,
        topic=topic_label(kb, entry.topic),
        question=questions[0] if questions else "",
        answer=entry.answer.get("ja") or next(iter(entry.answer.values())),
        contacts="、".join(names),
        checked=format_date(entry.source.checked, "ja"),
        age_days=age,
        stale=age > MAX_SOURCE_AGE_DAYS,
        languages="・".join(sorted(entry.answer)),
    )


def _matches(entry: Entry, needle: str) -> bool:
    texts = [entry.id, *entry.answer.values(), *(q for qs in entry.questions.values() for q in qs)]
    return any(needle in clean(t) for t in texts)


@router.get("/kb", response_class=HTMLResponse)
def kb_page(
    request: Request,
    who: Reader,
    rt: RuntimeDep,
    console: ConsoleDep,
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    topic: Annotated[str, Query(max_length=64)] = "",
    stale: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    kb = rt.kb
    today = dt.datetime.now(console.office_hours.tz).date()
    needle = clean(q)
    entries = [
        e
        for e in kb.entries.values()
        if (not topic or e.topic == topic)
        and (not needle or _matches(e, needle))
        and (not stale or (today - e.source.checked).days > MAX_SOURCE_AGE_DAYS)
    ]
    order = {t: i for i, t in enumerate(kb.topics)}
    entries.sort(key=lambda e: (order.get(e.topic, len(order)), e.id))
    rows = [_row(kb, e, today) for e in entries]
    stale_count = sum((today - e.source.checked).days > MAX_SOURCE_AGE_DAYS for e in kb.entries.values())
    topics = [(t.id, topic_label(kb, t.id)) for t in kb.topics.values()]
    return console.render(
        request,
        "kb.html",
        rows=rows,
        total=len(kb.entries),
        stale_count=stale_count,
        max_age=MAX_SOURCE_AGE_DAYS,
        topics=topics,
        q=q,
        topic=topic,
        stale=stale,
        can_export=who.staff.role != Role.ASSISTANT,
        can_edit=who.staff.role in (Role.CONCIERGE, Role.SUPERVISOR),
        revision=rt.live.revision,
    )


@router.get("/kb/try", response_class=HTMLResponse)
def kb_try(
    request: Request,
    who: Reader,
    rt: RuntimeDep,
    console: ConsoleDep,
    q: Annotated[str, Query(max_length=2000)] = "",
) -> HTMLResponse:
    """What the bot answers to `q` as a first message now; nothing is stored or counted."""
    result = None
    if q.strip():
        decision = rt.engine.classify(q)
        replies = rt.engine.replies_for(decision, channel="line")
        candidates = [
            (c.entry_id, topic_label(rt.kb, c.topic), c.score)
            for c in decision.candidates
            if c.entry_id in rt.kb.entries
        ]
        result = {
            "action": ACTIONS.get(decision.action, decision.action),
            "entry": decision.entry_id,
            "score": decision.score,
            "candidates": candidates,
            "crisis": decision.crisis.category.label.get("ja") if decision.crisis else None,
            "replies": [render_plain(r) for r in replies],
            "buttons": [c.label for r in replies for c in r.choices],
        }
    return console.render(request, "kb_try.html", q=q, result=result)


@router.get("/kb/export.csv")
def kb_csv(
    who: Annotated[Authed, Depends(require(Role.CONCIERGE, Role.SUPERVISOR, Role.AUDITOR))], rt: RuntimeDep
) -> Response:
    """The open-data CSV (`concierge kb export --format csv`): UTF-8 with BOM, chat-only entries left out."""
    with transaction(rt.sessions) as s:
        staffdb.audit(s, actor=who.name, action="export", record_type=RECORD_TYPE, detail="open-data csv")
    headers = dict(SECURITY_HEADERS)
    headers["Content-Disposition"] = 'attachment; filename="faq-opendata.csv"'
    body = export_csv(rt.kb).encode("utf-8")  # starts with the BOM
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/kb/{entry_id}", response_class=HTMLResponse)
def kb_entry(
    request: Request, who: Reader, rt: RuntimeDep, console: ConsoleDep, entry_id: str, msg: str | None = None
) -> HTMLResponse:
    from bot.console.kb_edit import EDITORS, MESSAGES

    entry = rt.kb.entries.get(entry_id)
    if entry is None:
        raise NotFoundError()
    today = dt.datetime.now(console.office_hours.tz).date()
    contacts = [rt.kb.contacts[c] for c in entry.contacts if c in rt.kb.contacts]
    related = [(r, rt.kb.entries[r].questions.get("ja", [r])[0]) for r in entry.related if r in rt.kb.entries]
    return console.render(
        request,
        "kb_entry.html",
        entry=entry,
        row=_row(rt.kb, entry, today),
        contacts=contacts,
        related=related,
        max_age=MAX_SOURCE_AGE_DAYS,
        can_edit=who.staff.role in EDITORS,
        flash=MESSAGES.get(msg or ""),
        revision=rt.live.revision,
    )
