"""/staff: accounts, roles, lockouts and Telegram links (supervisor only). Everything is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.exc import IntegrityError

from bot.console import labels
from bot.console.core import Authed, ConsoleDep, ForbiddenError, checked_form, require
from bot.console.views import message_text
from bot.deps import RuntimeDep
from storage import staff as staffdb
from storage.db import transaction
from storage.models import utcnow
from storage.staff import Role

router = APIRouter()
MIN_PASSWORD = 10

Supervisor = Annotated[Authed, Depends(require(Role.SUPERVISOR))]


def supervisor_form(who: Annotated[Authed, Depends(checked_form)]) -> Authed:
    if who.staff.role != Role.SUPERVISOR:
        raise ForbiddenError("role")
    return who


SupervisorForm = Annotated[Authed, Depends(supervisor_form)]


def _back(msg: str) -> RedirectResponse:
    return RedirectResponse(f"/staff?msg={msg}", status_code=303)


@router.get("/staff", response_class=HTMLResponse)
def staff_page(
    request: Request, who: Supervisor, rt: RuntimeDep, console: ConsoleDep, msg: str | None = None
) -> HTMLResponse:
    now = utcnow()
    with transaction(rt.sessions) as s:
        accounts = staffdb.list_staff(s)
        watch = staffdb.login_watch(s, now=now)
        staffdb.audit(s, actor=who.name, action="view", record_type="staff")
    return console.render(
        request,
        "staff.html",
        accounts=accounts,
        locked={a.id: staffdb.is_locked(a, now=now) for a in accounts},
        roles=labels.ROLES,
        flash=message_text(msg),
        min_password=MIN_PASSWORD,
        watch=watch,
        now=now,
    )


@router.post("/staff")
def create_account(
    who: SupervisorForm,
    rt: RuntimeDep,
    console: ConsoleDep,
    username: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    complaint_intake: Annotated[str | None, Form()] = None,
    password: Annotated[str, Form()] = "",
    password2: Annotated[str, Form()] = "",
) -> RedirectResponse:
    username = username.strip().lower()
    if not staffdb.valid_username(username):
        return _back("bad_username")
    if role not in tuple(Role):
        return _back("bad_value")
    if len(password) < MIN_PASSWORD:
        return _back("weak_password")
    if password != password2:
        return _back("mismatch")
    try:
        with transaction(rt.sessions) as s:
            if staffdb.get_staff_by_username(s, username=username) is not None:
                return _back("exists")
            row = staffdb.create_staff(
                s,
                username=username,
                role=Role(role),
                password_hash=console.hash_password(password),
                display_name=display_name.strip()[:64],
                complaint_intake=bool(complaint_intake) and role != Role.AUDITOR,
            )
            staffdb.audit(
                s, actor=who.name, action="create", record_type="staff", record_id=row.id, detail=f"role {role}"
            )
    except IntegrityError:
        return _back("exists")
    return _back("staff_created")


@router.post("/staff/{staff_id}")
def update_account(
    staff_id: int,
    who: SupervisorForm,
    rt: RuntimeDep,
    role: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    complaint_intake: Annotated[str | None, Form()] = None,
    active: Annotated[str | None, Form()] = None,
) -> RedirectResponse:
    if role not in tuple(Role):
        return _back("bad_value")
    with transaction(rt.sessions) as s:
        row = staffdb.get_staff(s, staff_id=staff_id)
        if row is None:
            return _back("bad_value")
        if row.id == who.staff.id and (role != Role.SUPERVISOR or not active):
            return _back("bad_value")  # a supervisor cannot lock themselves out of staff management
        staffdb.update_staff(
            s,
            staff=row,
            role=Role(role),
            complaint_intake=bool(complaint_intake),
            display_name=display_name.strip()[:64],
            active=bool(active),
        )
        detail = f"role {row.role}, intake {row.complaint_intake}, active {row.active}"
        staffdb.audit(s, actor=who.name, action="edit", record_type="staff", record_id=staff_id, detail=detail)
    return _back("staff_updated")


@router.post("/staff/{staff_id}/unlock")
def unlock(staff_id: int, who: SupervisorForm, rt: RuntimeDep) -> RedirectResponse:
    with transaction(rt.sessions) as s:
        row = staffdb.get_staff(s, staff_id=staff_id)
        if row is None:
            return _back("bad_value")
        staffdb.unlock_staff(s, staff=row)
        staffdb.audit(s, actor=who.name, action="unlock", record_type="staff", record_id=staff_id)
    return _back("staff_updated")


@router.post("/staff/addresses/unblock")
def unblock_address(who: SupervisorForm, rt: RuntimeDep, address: Annotated[str, Form()] = "") -> RedirectResponse:
    with transaction(rt.sessions) as s:
        if not staffdb.unblock_address(s, address=address):
            return _back("bad_value")
        staffdb.audit(s, actor=who.name, action="unblock", record_type="address", detail=address[:64])
    return _back("staff_updated")


@router.post("/staff/{staff_id}/password")
def reset_password(
    staff_id: int,
    who: SupervisorForm,
    rt: RuntimeDep,
    console: ConsoleDep,
    password: Annotated[str, Form()] = "",
    password2: Annotated[str, Form()] = "",
) -> RedirectResponse:
    if len(password) < MIN_PASSWORD:
        return _back("weak_password")
    if password != password2:
        return _back("mismatch")
    with transaction(rt.sessions) as s:
        row = staffdb.get_staff(s, staff_id=staff_id)
        if row is None:
            return _back("bad_value")
        staffdb.set_password(s, staff=row, password_hash=console.hash_password(password))
        staffdb.audit(s, actor=who.name, action="password", record_type="staff", record_id=staff_id)
    return _back("staff_updated")


@router.post("/staff/{staff_id}/telegram")
def link_telegram(
    staff_id: int, who: SupervisorForm, rt: RuntimeDep, telegram_user_id: Annotated[str, Form()] = ""
) -> RedirectResponse:
    value = telegram_user_id.strip()
    if value and not value.isdigit():
        return _back("bad_value")
    try:
        with transaction(rt.sessions) as s:
            row = staffdb.get_staff(s, staff_id=staff_id)
            if row is None:
                return _back("bad_value")
            staffdb.link_telegram(s, staff=row, telegram_user_id=int(value) if value else None)
            staffdb.audit(
                s,
                actor=who.name,
                action="link_telegram",
                record_type="staff",
                record_id=staff_id,
                detail="linked" if value else "unlinked",
            )
    except ValueError:
        return _back("telegram_taken")
    return _back("staff_updated")
