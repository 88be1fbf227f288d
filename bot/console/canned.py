"""/canned: 定型文 (canned replies). Supervisors keep them; everyone who replies inserts them in the reply box
(a click, or `/` and a few letters). Placeholders are filled for the case at hand when the page is built:
{受付番号} the case number, {受付時間} the office hours. Every change is audited (no text in the log)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session

from bot.console.core import Authed, ConsoleDep, ForbiddenError, checked_form, require
from bot.console.views import message_text
from bot.deps import RuntimeDep
from storage import canned as canned_db
from storage import staff as staffdb
from storage.db import transaction
from storage.models import Case
from storage.staff import Role

router = APIRouter()
RECORD_TYPE = "canned"
PLACEHOLDERS = {"受付番号": "このケースの受付番号", "受付時間": "受付時間（例：10:00〜17:00）"}

Reader = Annotated[Authed, Depends(require(Role.SUPERVISOR, Role.CONCIERGE, Role.ASSISTANT))]


def checked_supervisor(who: Annotated[Authed, Depends(checked_form)]) -> Authed:
    if who.staff.role != Role.SUPERVISOR:
        raise ForbiddenError("role")
    return who


Supervisor = Annotated[Authed, Depends(checked_supervisor)]


def fill(body: str, *, case: Case, office_hours: Any) -> str:
    """The text as it goes in the reply box for `case`."""
    hours = f"{office_hours.opens:%H:%M}〜{office_hours.closes:%H:%M}"
    return body.replace("{受付番号}", str(case.id)).replace("{受付時間}", hours)


def for_case(session: Session, *, case: Case, office_hours: Any) -> list[dict[str, str]]:
    """The active texts, filled for this case, for the reply box."""
    return [
        {"title": c.title, "text": fill(c.body, case=case, office_hours=office_hours)}
        for c in canned_db.list_canned(session)
    ]


@router.get("/canned", response_class=HTMLResponse)
def canned_page(request: Request, who: Reader, rt: RuntimeDep, console: ConsoleDep, msg: str | None = None) -> Any:
    with transaction(rt.sessions) as s:
        rows = canned_db.list_canned(s, include_inactive=who.staff.role == Role.SUPERVISOR)
        staffdb.audit(s, actor=who.name, action="view", record_type=RECORD_TYPE, detail="list")
    return console.render(
        request,
        "canned.html",
        rows=rows,
        placeholders=PLACEHOLDERS,
        can_edit=who.staff.role == Role.SUPERVISOR,
        flash=message_text(msg),
        max_title=canned_db.MAX_TITLE,
        max_body=canned_db.MAX_BODY,
    )


def _valid(title: str, body: str) -> tuple[str, str] | None:
    title, body = title.strip(), body.strip()
    if not title or not body or len(title) > canned_db.MAX_TITLE or len(body) > canned_db.MAX_BODY:
        return None
    return title, body


@router.post("/canned")
def create_canned(
    who: Supervisor, rt: RuntimeDep, title: Annotated[str, Form()] = "", body: Annotated[str, Form()] = ""
) -> RedirectResponse:
    valid = _valid(title, body)
    if valid is None:
        return RedirectResponse("/canned?msg=bad_value", status_code=303)
    with transaction(rt.sessions) as s:
        row = canned_db.save_canned(s, title=valid[0], body=valid[1], by=who.name)
        staffdb.audit(s, actor=who.name, action="create", record_type=RECORD_TYPE, record_id=row.id)
    return RedirectResponse("/canned?msg=saved", status_code=303)


@router.post("/canned/{canned_id}")
def edit_canned(
    canned_id: int,
    who: Supervisor,
    rt: RuntimeDep,
    title: Annotated[str, Form()] = "",
    body: Annotated[str, Form()] = "",
    active: Annotated[str, Form()] = "",
) -> RedirectResponse:
    valid = _valid(title, body)
    if valid is None:
        return RedirectResponse("/canned?msg=bad_value", status_code=303)
    with transaction(rt.sessions) as s:
        if canned_db.get_canned(s, canned_id=canned_id) is None:
            return RedirectResponse("/canned?msg=bad_value", status_code=303)
        canned_db.save_canned(s, canned_id=canned_id, title=valid[0], body=valid[1], by=who.name, active=bool(active))
        staffdb.audit(s, actor=who.name, action="edit", record_type=RECORD_TYPE, record_id=canned_id)
    return RedirectResponse("/canned?msg=saved", status_code=303)
